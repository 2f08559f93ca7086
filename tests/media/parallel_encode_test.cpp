// Parallel encoding (ConvertOptions::threads > 1) is judged against the single-pass encode of the
// same input, by two independent decoders (libavcodec with every check on and its log captured,
// libmpg123) and an independent stream inspector (support/mp3_stream): exact length, no decoder
// complaint, the same PCM (VBR), the same quality (CBR, and dense VBR material: see Case::dense),
// consistent Xing/LAME fields and CRCs, a bit reservoir every frame can be decoded from. A negative
// control proves the checks see a seam that was not repaired.
//
// These tests encode minutes of audio several times, so they carry the ctest label
// media_parallel instead of unit (tests/CMakeLists.txt): `make test` runs them, the sanitizer
// pass does not. The single-pass reference of each fixture is encoded once per process.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/io.hpp"
#include "media/converter.hpp"
#include "media/ffmpeg_util.hpp"
#include "support/audio_decode.hpp"
#include "support/convert_file.hpp"
#include "support/fixtures.hpp"
#include "support/mp3_stream.hpp"
#include "support/mpg123_decode.hpp"

namespace vmp3::media::parallel_encode_test {
namespace {

namespace fs = std::filesystem;
using test::DecodeAudio;
using test::DecodedAudio;
using test::Fixture;

// -60 dBFS: the largest PCM difference from single-pass a parallel VBR encode may show anywhere.
constexpr double kMaxDifference = 0.001;

std::string Lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += "\n  " + l;
  return s;
}

// --- libavcodec's log, captured while decoding --------------------------------------------------

// Collects every av_log line at warning level or worse while an instance lives. The callback is
// process-wide: the engine's own log bridge is installed first (it installs itself only once),
// then replaced for good, so the engine can never swap it back mid-test. Captures are serialised.
class AvLogCapture {
 public:
  AvLogCapture() : lock_(Serial()) {
    static std::once_flag once;
    std::call_once(once, [] {
      InstallFfmpegLogBridge();
      av_log_set_callback(&AvLogCapture::Callback);
    });
    std::lock_guard lines(LinesMutex());
    Active() = &lines_;
  }
  ~AvLogCapture() {
    std::lock_guard lines(LinesMutex());
    Active() = nullptr;
  }
  AvLogCapture(const AvLogCapture&) = delete;
  AvLogCapture& operator=(const AvLogCapture&) = delete;

  std::vector<std::string> Take() {
    std::lock_guard lines(LinesMutex());
    return std::move(lines_);
  }

 private:
  static void Callback(void* avcl, int level, const char* fmt, va_list args) {
    if (level > AV_LOG_WARNING) return;
    char line[1024];
    int print_prefix = 1;
    av_log_format_line2(avcl, level, fmt, args, line, sizeof(line), &print_prefix);
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    std::lock_guard lines(LinesMutex());
    if (Active() != nullptr) Active()->push_back(std::move(text));
  }
  static std::mutex& Serial() {
    static std::mutex mu;
    return mu;
  }
  static std::mutex& LinesMutex() {
    static std::mutex mu;
    return mu;
  }
  static std::vector<std::string>*& Active() {
    static std::vector<std::string>* active = nullptr;
    return active;
  }

  std::lock_guard<std::mutex> lock_;
  std::vector<std::string> lines_;
};

// --- Converting and judging ---------------------------------------------------------------------

using Encoded = test::ConvertedFile;
using test::ConvertFile;
using test::Describe;

// Everything the two decoders and the inspector say about one MP3.
struct Judged {
  DecodedAudio av;                     // libavcodec, strict
  std::vector<std::string> av_log;     // its warnings and errors while decoding
  test::Mpg123Decoded mpg123;          // PCM not kept, hashed
  test::Mp3Stream stream;              // bytes dropped after the checks
  std::vector<std::string> problems;   // the inspector's, every kind
  std::vector<std::string> reservoir;  // the reservoir walk's alone
};

std::shared_ptr<const Judged> Judge(const fs::path& mp3, int64_t expected_samples) {
  auto j = std::make_shared<Judged>();
  {
    AvLogCapture capture;
    auto av = DecodeAudio(mp3, {.strict = true});
    j->av_log = capture.Take();
    if (!av) {
      ADD_FAILURE() << "libavcodec cannot decode " << mp3 << ": " << Describe(av.error());
      return nullptr;
    }
    j->av = std::move(*av);
  }
  auto mpg = test::DecodeWithMpg123(mp3, /*keep_pcm=*/false);
  if (!mpg) {
    ADD_FAILURE() << "libmpg123 cannot decode " << mp3 << ": " << Describe(mpg.error());
    return nullptr;
  }
  j->mpg123 = std::move(*mpg);
  j->stream = test::ReadMp3Stream(mp3);
  j->problems = test::CheckMp3Stream(j->stream, expected_samples);
  j->reservoir = test::WalkMp3Reservoir(j->stream).problems;
  j->stream.bytes.clear();
  j->stream.bytes.shrink_to_fit();
  return j;
}

// The checks every output must pass, single-pass or parallel.
void ExpectWellFormed(const Judged& j, int64_t expected_samples, int rate, int channels) {
  EXPECT_EQ(j.av.samples, expected_samples) << "libavcodec's length differs from the source's";
  EXPECT_EQ(j.mpg123.samples, expected_samples) << "libmpg123's length differs from the source's";
  EXPECT_EQ(j.av.sample_rate, rate);
  EXPECT_EQ(j.av.channels, channels);
  EXPECT_EQ(j.mpg123.sample_rate, rate);
  EXPECT_EQ(j.mpg123.channels, channels);
  EXPECT_EQ(j.av.decode_errors, 0) << "frames libavcodec rejects";
  EXPECT_TRUE(j.av_log.empty()) << "libavcodec warned:" << Lines(j.av_log);
  EXPECT_EQ(j.mpg123.problems, 0) << "libmpg123 complained:" << Lines(j.mpg123.messages);
  // Gapless libmpg123 need not decode trailing frames that hold nothing but padding (MPEG-2's
  // 576-sample frames often end with one); any other shortfall is a frame it skipped.
  const auto frames = static_cast<int64_t>(j.stream.frames.size());
  const int64_t padding_frames =
      j.stream.xing && j.stream.xing->lame && !j.stream.frames.empty()
          ? j.stream.xing->lame->padding / j.stream.frames.front().samples
          : 0;
  EXPECT_LE(j.mpg123.frames, frames);
  EXPECT_GE(j.mpg123.frames, frames - 1 - padding_frames)
      << "libmpg123 decoded fewer frames than the stream has";
  EXPECT_TRUE(j.problems.empty()) << "the stream inspector found:" << Lines(j.problems);
}

struct Reference {
  int64_t source_samples = 0;  // at the output rate
  ConvertResult result;
  std::shared_ptr<const Judged> judged;
};

struct Case {
  std::string_view fixture;
  std::optional<int> sample_rate;  // ConvertOptions.sample_rate
  int out_rate = 0;
  int out_channels = 0;
  // PCM identical to single-pass.
  bool identical = false;
  // Every seam proven exact (inexact_seams 0): the encoders' reservoirs agreed within the pre-roll
  // or the chase. Not so for mono and the quiet passage here: their reservoir levels differ for
  // good, but far from LAME's frame limit, where the difference decides nothing (so the PCM is
  // still identical) and is not chased.
  bool proven = false;
  // Dense material (~260 kbps and more at V2: noise, several loud tones): LAME wants more than
  // its per-frame limit for many frames, and how many bits those get depends on the bit
  // reservoir's level, which a segment's encoder, started with an empty reservoir, reaches only
  // when both encoders drain or fill it alike: here often thousands of frames on, past the chase's
  // budget. Those frames are quantised differently: judged by quality against the source, as
  // CBR is, not by identity.
  bool dense = false;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.fixture; }

ConvertOptions BaseOptions(const Case& c) {
  ConvertOptions o;
  o.sample_rate = c.sample_rate;
  return o;
}

int64_t SourceSamples(const Case& c) {
  static std::mutex mu;
  static std::map<std::string, int64_t, std::less<>> cache;
  std::lock_guard lock(mu);
  if (auto it = cache.find(c.fixture); it != cache.end()) return it->second;
  auto src = DecodeAudio(Fixture(c.fixture), {.keep_pcm = false});
  if (!src) {
    ADD_FAILURE() << Describe(src.error());
    return -1;
  }
  const int64_t n =
      src->sample_rate == c.out_rate
          ? src->samples
          : std::llround(static_cast<double>(src->samples) * c.out_rate / src->sample_rate);
  cache.emplace(std::string(c.fixture), n);
  return n;
}

// The single-pass encode of a fixture under `options`, judged, once per process and key.
std::shared_ptr<const Reference> SinglePass(const Case& c, const ConvertOptions& options,
                                            const std::string& key) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const Reference>> cache;
  std::lock_guard lock(mu);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  auto ref = std::make_shared<Reference>();
  ref->source_samples = SourceSamples(c);
  ConvertOptions single = options;
  single.threads = 1;
  Encoded e = ConvertFile(Fixture(c.fixture), single);
  if (!e.result) {
    ADD_FAILURE() << "single pass: " << Describe(e.result.error());
    return nullptr;
  }
  ref->result = *e.result;
  ref->judged = Judge(e.path, ref->source_samples);
  if (!ref->judged) return nullptr;
  std::error_code ec;
  fs::remove_all(e.dir, ec);
  cache.emplace(key, ref);
  return ref;
}

struct PcmDifference {
  double max = 0;
  int64_t at = -1;  // sample index of the largest difference
};

PcmDifference Compare(const DecodedAudio& a, const DecodedAudio& b) {
  PcmDifference d;
  for (size_t ch = 0; ch < std::min(a.pcm.size(), b.pcm.size()); ++ch) {
    const size_t n = std::min(a.pcm[ch].size(), b.pcm[ch].size());
    for (size_t i = 0; i < n; ++i) {
      const double diff = std::abs(static_cast<double>(a.pcm[ch][i]) - b.pcm[ch][i]);
      if (diff > d.max) {
        d.max = diff;
        d.at = static_cast<int64_t>(i);
      }
    }
  }
  return d;
}

// Which frames' worth of decoded PCM differ between two encodes, as "first-last" ranges of frame
// indices with their times: tells a seam's own frames from a divergence that never converges.
// (PCM, not the frames' bytes: LAME fills a frame's unused bits with an alternating pattern whose
// phase carries the whole stream's history, so bytes differ where the audio does not.)
std::string DifferingFrames(const DecodedAudio& a, const DecodedAudio& b, int samples_per_frame,
                            int rate) {
  std::string out;
  int ranges = 0;
  int64_t total = 0;
  size_t samples = 0;
  for (size_t ch = 0; ch < std::min(a.pcm.size(), b.pcm.size()); ++ch)
    samples = std::max({samples, a.pcm[ch].size(), b.pcm[ch].size()});
  const size_t n = (samples + static_cast<size_t>(samples_per_frame) - 1) /
                   static_cast<size_t>(samples_per_frame);
  auto differs = [&](size_t k) {
    const size_t from = k * static_cast<size_t>(samples_per_frame);
    const size_t to = from + static_cast<size_t>(samples_per_frame);
    for (size_t ch = 0; ch < std::min(a.pcm.size(), b.pcm.size()); ++ch) {
      if (std::min(to, a.pcm[ch].size()) != std::min(to, b.pcm[ch].size())) return true;
      for (size_t i = from; i < std::min(to, a.pcm[ch].size()); ++i)
        if (a.pcm[ch][i] != b.pcm[ch][i]) return true;
    }
    return false;
  };
  for (size_t i = 0; i < n;) {
    if (!differs(i)) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j + 1 < n && differs(j + 1)) ++j;
    total += static_cast<int64_t>(j - i + 1);
    if (++ranges <= 8) {
      out += fmt::format(" {}-{} ({:.2f}-{:.2f} s)", i, j,
                         static_cast<double>(i) * samples_per_frame / rate,
                         static_cast<double>(j + 1) * samples_per_frame / rate);
    }
    i = j + 1;
  }
  return fmt::format("{} of {} frames' PCM differ in {} runs:{}", total, n, ranges, out);
}

// Segment length that cuts the input into `threads` segments, the last slightly shorter (so the
// rounding of seams to the frame grid never makes one more).
double SegmentSeconds(int64_t samples, int rate, int threads) {
  return static_cast<double>(samples) / rate / threads + 0.25;
}

void Report(const std::string& what) {
  std::printf("[ parallel ] %s\n", what.c_str());
  std::fflush(stdout);
}

// --- Single-pass against threads 2, 3 and 4, per fixture
// ------------------------------------------

// Signal-to-noise ratio of `out` against `src` over samples [from, to) of every channel, in dB.
double Snr(const DecodedAudio& src, const DecodedAudio& out, int64_t from, int64_t to) {
  double signal = 0, noise = 0;
  for (size_t ch = 0; ch < std::min(src.pcm.size(), out.pcm.size()); ++ch) {
    const int64_t end = std::min<int64_t>(
        to, static_cast<int64_t>(std::min(src.pcm[ch].size(), out.pcm[ch].size())));
    for (int64_t i = std::max<int64_t>(0, from); i < end; ++i) {
      const double s = src.pcm[ch][static_cast<size_t>(i)];
      const double e = s - out.pcm[ch][static_cast<size_t>(i)];
      signal += s * s;
      noise += e * e;
    }
  }
  return noise > 0 ? 10 * std::log10(signal / noise) : 200.0;
}

class ParallelEncodeTest : public testing::TestWithParam<Case> {};

TEST_P(ParallelEncodeTest, MatchesSinglePass) {
  const Case& c = GetParam();
  const ConvertOptions base = BaseOptions(c);
  auto ref = SinglePass(c, base, std::string(c.fixture) + "/vbr");
  ASSERT_TRUE(ref && ref->judged);
  {
    SCOPED_TRACE("single pass (the control: every check must hold here first)");
    ExpectWellFormed(*ref->judged, ref->source_samples, c.out_rate, c.out_channels);
  }
  std::optional<DecodedAudio> src;
  if (c.dense) {
    auto decoded = DecodeAudio(Fixture(c.fixture));
    ASSERT_TRUE(decoded) << Describe(decoded.error());
    src = std::move(*decoded);
  }
  for (int threads : {2, 3, 4}) {
    SCOPED_TRACE(testing::Message() << threads << " threads");
    ConvertOptions o = base;
    o.threads = threads;
    o.segment_seconds = SegmentSeconds(ref->source_samples, c.out_rate, threads);
    Encoded e = ConvertFile(Fixture(c.fixture), o);
    ASSERT_TRUE(e.result) << Describe(e.result.error());
    EXPECT_EQ(e.result->segments, threads);
    EXPECT_EQ(e.result->samples, ref->source_samples);
    if (c.proven) EXPECT_EQ(e.result->inexact_seams, 0) << "seams where the encoders never agreed";
    auto j = Judge(e.path, ref->source_samples);
    ASSERT_TRUE(j);
    ExpectWellFormed(*j, ref->source_samples, c.out_rate, c.out_channels);
    const PcmDifference d = Compare(j->av, ref->judged->av);
    if (c.dense) {
      // The differences must be far below the coding noise: the parallel output against the
      // single-pass one, and (where source and output share rate and layout) the same quality
      // against the source.
      const double vs_single = Snr(ref->judged->av, j->av, 0, ref->source_samples);
      EXPECT_GT(vs_single, 40.0) << "differs from single-pass by more than isolated frames";
      double snr = 0, single_snr = 0;
      if (src->sample_rate == c.out_rate && src->channels == c.out_channels) {
        snr = Snr(*src, j->av, 0, ref->source_samples);
        single_snr = Snr(*src, ref->judged->av, 0, ref->source_samples);
        EXPECT_NEAR(snr, single_snr, 0.1) << "quality against the source differs from single-pass";
      }
      Report(fmt::format(
          "{} threads={} inexact seams={} vs single-pass {:.1f} dB; vs source {:.3f} dB (single "
          "{:.3f})",
          c.fixture, threads, e.result->inexact_seams, vs_single, snr, single_snr));
    } else {
      EXPECT_LE(d.max, kMaxDifference)
          << "differs from single-pass by " << 20 * std::log10(d.max) << " dBFS at "
          << static_cast<double>(d.at) / c.out_rate << " s";
    }
    if (c.identical) {
      EXPECT_EQ(d.max, 0.0) << "loud material must decode exactly as single-pass; largest "
                               "difference at "
                            << static_cast<double>(d.at) / c.out_rate << " s";
      EXPECT_EQ(j->mpg123.pcm_hash, ref->judged->mpg123.pcm_hash)
          << "libmpg123 decodes it differently from single-pass";
    }
    Report(fmt::format(
        "{} threads={} segments={} bytes={} (single {}) max_diff={:.3g} at {:.3f} s; {}", c.fixture,
        threads, e.result->segments, e.result->output_bytes, ref->result.output_bytes, d.max,
        static_cast<double>(d.at) / c.out_rate,
        DifferingFrames(j->av, ref->judged->av, c.out_rate < 32000 ? 576 : 1152, c.out_rate)));
    std::error_code ec;
    fs::remove_all(e.dir, ec);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, ParallelEncodeTest,
    testing::Values(
        Case{.fixture = "long_loud",
             .out_rate = 44100,
             .out_channels = 2,
             .identical = true,
             .proven = true},
        Case{.fixture = "long_dense", .out_rate = 44100, .out_channels = 2, .dense = true},
        Case{.fixture = "long_quiet", .out_rate = 44100, .out_channels = 2, .identical = true},
        Case{.fixture = "long_speech",
             .out_rate = 44100,
             .out_channels = 2,
             .identical = true,
             .proven = true},
        Case{.fixture = "long_mono", .out_rate = 44100, .out_channels = 1, .identical = true},
        Case{.fixture = "long_22050",
             .out_rate = 22050,
             .out_channels = 2,
             .identical = true,
             .proven = true},
        Case{.fixture = "long_51",
             .out_rate = 48000,
             .out_channels = 2,
             .identical = true,
             .proven = true},
        Case{.fixture = "long_48000",
             .sample_rate = 44100,
             .out_rate = 44100,
             .out_channels = 2,
             .identical = true,
             .proven = true}),
    [](const auto& info) { return std::string(info.param.fixture); });

const Case kLoud{.fixture = "long_loud", .out_rate = 44100, .out_channels = 2, .identical = true};

// The engine's own choice of segments (segment_seconds 0) must be as good as forced seams.
TEST(ParallelEncodeOptionsTest, AutomaticSegmentsMatchSinglePass) {
  auto ref = SinglePass(kLoud, {}, "long_loud/vbr");
  ASSERT_TRUE(ref && ref->judged);
  Encoded e = ConvertFile(Fixture(kLoud.fixture), {.threads = 2});
  ASSERT_TRUE(e.result) << Describe(e.result.error());
  auto j = Judge(e.path, ref->source_samples);
  ASSERT_TRUE(j);
  ExpectWellFormed(*j, ref->source_samples, 44100, 2);
  const PcmDifference d = Compare(j->av, ref->judged->av);
  EXPECT_EQ(d.max, 0.0) << "largest difference at " << static_cast<double>(d.at) / 44100 << " s";
  Report(fmt::format("long_loud automatic threads=2 segments={} max_diff={:.3g}; {}",
                     e.result->segments, d.max,
                     DifferingFrames(j->av, ref->judged->av, 1152, 44100)));
}

// --- CBR: every frame at the rate, quality as single-pass ----------------------------------------

TEST(ParallelEncodeCbrTest, EveryFrameAtTheRateAndQualityAsSinglePass) {
  constexpr int kKbps = 128;
  const ConvertOptions cbr{.cbr_kbps = kKbps};
  auto ref = SinglePass(kLoud, cbr, "long_loud/cbr128");
  ASSERT_TRUE(ref && ref->judged);
  ExpectWellFormed(*ref->judged, ref->source_samples, 44100, 2);
  auto src = DecodeAudio(Fixture(kLoud.fixture));
  ASSERT_TRUE(src) << Describe(src.error());
  const int64_t n = ref->source_samples;
  const double single_snr = Snr(*src, ref->judged->av, 0, n);
  for (int threads : {2, 3, 4}) {
    SCOPED_TRACE(testing::Message() << threads << " threads");
    ConvertOptions o = cbr;
    o.threads = threads;
    o.segment_seconds = SegmentSeconds(n, 44100, threads);
    Encoded e = ConvertFile(Fixture(kLoud.fixture), o);
    ASSERT_TRUE(e.result) << Describe(e.result.error());
    EXPECT_EQ(e.result->segments, threads);
    EXPECT_EQ(e.result->inexact_seams, threads - 1) << "a CBR seam is never called exact";
    auto j = Judge(e.path, n);
    ASSERT_TRUE(j);
    ExpectWellFormed(*j, n, 44100, 2);
    ASSERT_TRUE(j->stream.xing);
    EXPECT_FALSE(j->stream.xing->vbr) << "a CBR stream's header says Xing, not Info";
    int64_t off_rate = 0;
    for (const auto& f : j->stream.frames) off_rate += f.bitrate_kbps != kKbps;
    EXPECT_EQ(off_rate, 0) << "audio frames not at " << kKbps << " kbps";
    // The reservoir drives CBR quantisation, so segments are not bit-identical, but the quality
    // must be: overall within 0.1 dB, and no seam may hide a click (a broken seam costs tens of
    // dB over its second; encoder noise alone moves a 2-second window by well under 1 dB).
    const double snr = Snr(*src, j->av, 0, n);
    EXPECT_NEAR(snr, single_snr, 0.1);
    const double seg = SegmentSeconds(n, 44100, threads);
    for (int k = 1; k < threads; ++k) {
      const auto at = static_cast<int64_t>(k * seg * 44100);
      const double here = Snr(*src, j->av, at - 44100, at + 44100);
      const double there = Snr(*src, ref->judged->av, at - 44100, at + 44100);
      EXPECT_GT(here, there - 1.0) << "around the seam at " << k * seg << " s";
    }
    Report(fmt::format("long_loud cbr{} threads={} segments={} snr={:.3f} dB (single {:.3f})",
                       kKbps, threads, e.result->segments, snr, single_snr));
  }
}

// --- Negative control: a splice without the seam repair must fail the checks ---------------------

TEST(ParallelEncodeNegativeControlTest, UnrepairedSeamsFailTheChecks) {
  auto ref = SinglePass(kLoud, {}, "long_loud/vbr");
  ASSERT_TRUE(ref && ref->judged);
  ConvertOptions o{.threads = 2, .repair_seams = false};
  o.segment_seconds = SegmentSeconds(ref->source_samples, 44100, 2);
  Encoded e = ConvertFile(Fixture(kLoud.fixture), o);
  ASSERT_TRUE(e.result) << Describe(e.result.error());
  ASSERT_EQ(e.result->segments, 2);
  auto j = Judge(e.path, ref->source_samples);
  ASSERT_TRUE(j);
  // The naive splice leaves the next segment's first frame pointing at bytes the previous
  // segment's flush wrote: they exist (so the reservoir walk, which checks where main data
  // lies, not what it holds, may pass), but decode as garbage. Both decoders must notice and
  // the PCM must be far from single-pass.
  const PcmDifference d = Compare(j->av, ref->judged->av);
  // Decoders do not always notice (the garbage is well-formed Huffman data often enough), but the
  // PCM is far from single-pass: a click of more than -20 dBFS.
  EXPECT_GT(d.max, 0.1) << "the unrepaired seam decodes close to single-pass";
  Report(
      fmt::format("negative control: reservoir problems={} av warnings={} av errors={} "
                  "mpg123 problems={} max_diff={:.3g}{}{}",
                  j->reservoir.size(), j->av_log.size(), j->av.decode_errors, j->mpg123.problems,
                  d.max, Lines(j->reservoir), Lines(j->av_log)));
}

// --- Everything else an encode carries ----------------------------------------------------------

TEST(ParallelEncodeOptionsTest, TagsAndCoverSurvive) {
  // Three-second inputs cut every second: two seams.
  const ConvertOptions o{.threads = 2, .segment_seconds = 1};
  std::vector<int> segments;
  {
    SCOPED_TRACE("tagged");
    Encoded e = ConvertFile(Fixture("tagged"), o);
    ASSERT_TRUE(e.result) << Describe(e.result.error());
    auto out = DecodeAudio(e.path, {.keep_pcm = false});
    ASSERT_TRUE(out) << Describe(out.error());
    EXPECT_EQ(out->tags["title"], test::kTaggedTitle);
    EXPECT_EQ(out->tags["artist"], test::kTaggedArtist);
    EXPECT_EQ(out->tags["album"], test::kTaggedAlbum);
    EXPECT_EQ(out->tags["date"], test::kTaggedDate);
    EXPECT_EQ(out->tags["genre"], test::kTaggedGenre);
    EXPECT_EQ(out->tags["track"], test::kTaggedTrack);
    EXPECT_EQ(out->tags["comment"], test::kTaggedComment);
    auto src = DecodeAudio(Fixture("tagged"), {.keep_pcm = false});
    ASSERT_TRUE(src);
    auto j = Judge(e.path, src->samples);
    ASSERT_TRUE(j);
    ExpectWellFormed(*j, src->samples, 44100, 2);
    segments.push_back(e.result->segments);
  }
  {
    SCOPED_TRACE("cover_mp4");
    auto src = DecodeAudio(Fixture("cover_mp4"), {.keep_pcm = false});
    ASSERT_TRUE(src);
    ASSERT_TRUE(src->has_cover);
    Encoded e = ConvertFile(Fixture("cover_mp4"), o);
    ASSERT_TRUE(e.result) << Describe(e.result.error());
    EXPECT_TRUE(e.result->cover_art);
    auto j = Judge(e.path, src->samples);
    ASSERT_TRUE(j);
    ExpectWellFormed(*j, src->samples, 44100, 2);
    EXPECT_TRUE(j->av.has_cover);
    EXPECT_EQ(j->av.cover_codec, src->cover_codec);
    EXPECT_EQ(j->av.cover_hash, src->cover_hash) << "picture bytes changed";
    segments.push_back(e.result->segments);
  }
  ASSERT_EQ(segments.size(), 2u);
  EXPECT_EQ(segments, (std::vector<int>{3, 3}));
}

TEST(ParallelEncodeOptionsTest, ProgressIsOneSmoothBar) {
  std::vector<double> values;
  bool other_thread = false;
  const auto caller = std::this_thread::get_id();
  ConvertControl control;
  control.on_progress = [&](double p) {
    values.push_back(p);
    other_thread |= std::this_thread::get_id() != caller;
  };
  Encoded e = ConvertFile(Fixture("long_speech"), {.threads = 2, .segment_seconds = 30}, control);
  ASSERT_TRUE(e.result) << Describe(e.result.error());
  EXPECT_FALSE(other_thread) << "called from another thread than Convert's caller";
  ASSERT_FALSE(values.empty());
  EXPECT_GE(values.size(), 100u);
  EXPECT_DOUBLE_EQ(values.back(), 1.0);
  double largest_gap = values.front();
  for (size_t i = 1; i < values.size(); ++i) {
    ASSERT_GE(values[i], values[i - 1]) << "progress went backwards at call " << i;
    largest_gap = std::max(largest_gap, values[i] - values[i - 1]);
  }
  EXPECT_LE(largest_gap, 0.01 + 1e-9) << "not one bar: a jump over " << values.size() << " calls";
  Report(fmt::format("progress: {} calls, segments={}", values.size(), e.result->segments));
  EXPECT_EQ(e.result->segments, 4);
}

TEST(ParallelEncodeOptionsTest, StopFromProgressReturnsCancelledPromptly) {
  using Clock = std::chrono::steady_clock;
  std::stop_source stop;
  Clock::time_point stopped_at{};
  int calls_after_stop = 0;
  ConvertControl control;
  control.stop = stop.get_token();
  control.on_progress = [&](double p) {
    if (stop.stop_requested()) {
      ++calls_after_stop;
    } else if (p >= 0.3) {
      stopped_at = Clock::now();
      stop.request_stop();
    }
  };
  Encoded e = ConvertFile(Fixture(kLoud.fixture), {.threads = 2, .segment_seconds = 45}, control);
  const auto returned_at = Clock::now();
  ASSERT_TRUE(stop.stop_requested()) << "progress never reached 30%";
  ASSERT_FALSE(e.result) << "finished although cancelled";
  EXPECT_EQ(e.result.error().code, ErrorCode::kCancelled) << Describe(e.result.error());
  EXPECT_LT(returned_at - stopped_at, std::chrono::milliseconds(500));
  EXPECT_EQ(calls_after_stop, 0);
  EXPECT_FALSE(fs::exists(e.path));
  EXPECT_TRUE(fs::is_empty(e.dir)) << "a temporary file was left behind";
}

TEST(ParallelEncodeOptionsTest, OutputLimitHolds) {
  Encoded e = ConvertFile(Fixture(kLoud.fixture),
                          {.max_output_bytes = 100000, .threads = 2, .segment_seconds = 45});
  ASSERT_FALSE(e.result);
  EXPECT_EQ(e.result.error().code, ErrorCode::kOutputTooLarge) << Describe(e.result.error());
  EXPECT_FALSE(fs::exists(e.path));
  EXPECT_TRUE(fs::is_empty(e.dir)) << "a temporary file was left behind";
}

}  // namespace
}  // namespace vmp3::media::parallel_encode_test
