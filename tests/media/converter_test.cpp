// The engine is judged by an independent decoder (support/audio_decode): every output must be a
// clean MP3 with the source's exact length, tones, tags and cover; every failure a readable error
// with nothing left behind.
#include "media/converter.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/io.hpp"
#include "support/audio_decode.hpp"
#include "support/convert_file.hpp"
#include "support/fixtures.hpp"

namespace vmp3::media {
namespace {

namespace fs = std::filesystem;
using test::AudioFixture;
using test::DecodeAudio;
using test::DecodedAudio;
using test::DominantFrequency;
using test::Fixture;
using test::TempDir;

using Converted = test::ConvertedFile;
using test::ConvertFile;
using test::Describe;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> DirEntries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

// A failed conversion leaves neither the output nor a temporary file.
void ExpectNothingLeftBehind(const Converted& c) {
  EXPECT_FALSE(fs::exists(c.path));
  EXPECT_EQ(DirEntries(c.dir), std::vector<std::string>{});
}

// A sentence for a person: no FFmpeg internals, no numeric error codes.
void ExpectReadableMessage(const Error& e) {
  EXPECT_FALSE(e.message.empty());
  EXPECT_LT(e.message.size(), 300u) << e.message;
  EXPECT_NE(e.message.back(), '.') << "no trailing period: " << e.message;
  for (std::string_view bad : {"AVERROR", "(null)", "-1094995529", "Unknown error"}) {
    EXPECT_EQ(e.message.find(bad), std::string::npos) << e.message;
  }
}

// What the engine must pick when no rate is asked for: the source's if MP3 carries it.
int ExpectedRate(int source_rate) {
  for (int r : {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}) {
    if (r == source_rate) return r;
  }
  if (source_rate == 96000) return 48000;
  if (source_rate == 88200) return 44100;
  ADD_FAILURE() << "no expectation for " << source_rate << " Hz";
  return 0;
}

int64_t Resampled(int64_t samples, int from, int to) {
  if (from == to) return samples;
  return std::llround(static_cast<double>(samples) * to / from);
}

// --- Every decodable fixture, default options --------------------------------------------------

std::vector<AudioFixture> ConvertibleFixtures() {
  std::vector<AudioFixture> out;
  for (const auto& f : test::AudioFixtures()) {
    if (f.name != "mid_damage") out.push_back(f);  // tested on its own below
  }
  return out;
}

class ConvertFixtureTest : public testing::TestWithParam<AudioFixture> {};

TEST_P(ConvertFixtureTest, KeepsLengthTonesAndLayout) {
  const AudioFixture& f = GetParam();
  auto src = DecodeAudio(Fixture(f.name));
  ASSERT_TRUE(src) << Describe(src.error());

  Converted c = ConvertFile(Fixture(f.name));
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  const ConvertResult& r = *c.result;
  auto out = DecodeAudio(c.path, {.strict = true});
  ASSERT_TRUE(out) << Describe(out.error());

  EXPECT_EQ(out->container, "mp3");
  EXPECT_EQ(out->codec, "mp3");
  EXPECT_EQ(out->audio_streams, 1);
  EXPECT_EQ(out->decode_errors, 0) << "some MP3 frames do not decode cleanly";

  const int rate = ExpectedRate(src->sample_rate);
  const int channels = std::min(src->channels, 2);
  EXPECT_EQ(out->sample_rate, rate);
  EXPECT_EQ(out->channels, channels);
  // A copy out of a container that declares no MP3 encoder delay (AVI) loses only the standard
  // 529-sample decoder delay, which the raw decode of the container keeps (see StreamCopyTest).
  const int64_t decoder_delay = f.codec == "mp3" && f.container == "avi" ? 529 : 0;
  EXPECT_EQ(out->samples, Resampled(src->samples, src->sample_rate, rate) - decoder_delay)
      << "source has " << src->samples << " samples at " << src->sample_rate << " Hz";

  EXPECT_EQ(r.source_stream_index, f.stream_index);
  EXPECT_EQ(r.source_codec, f.codec);
  EXPECT_EQ(r.stream_copied, f.codec == "mp3");
  EXPECT_EQ(r.sample_rate, out->sample_rate);
  EXPECT_EQ(r.channels, out->channels);
  EXPECT_EQ(r.samples, out->samples) << "result.samples disagrees with what a decoder gets";
  EXPECT_NEAR(r.duration_seconds, static_cast<double>(out->samples) / rate, 1e-6);
  EXPECT_EQ(r.output_bytes, fs::file_size(c.path));
  EXPECT_GT(r.bit_rate_kbps, 8);
  EXPECT_LE(r.bit_rate_kbps, 400);
  EXPECT_EQ(r.damaged_packets, 0);
  const bool has_cover = f.name.rfind("cover_", 0) == 0;  // (the picture is checked below)
  EXPECT_EQ(r.cover_art, has_cover);
  EXPECT_EQ(out->has_cover, has_cover);

  ASSERT_EQ(out->pcm.size(), static_cast<size_t>(channels));
  for (int ch = 0; ch < channels; ++ch) {
    SCOPED_TRACE(testing::Message() << "output channel " << ch);
    // Mono stays mono; stereo keeps L/R; 5.1 folds FL into L and FR into R.
    const int tone = src->channels == 1 ? f.freqs[0] : f.freqs[ch];
    EXPECT_NEAR(DominantFrequency(out->pcm[ch], rate), tone, 2.0);
    if (src->channels <= 2) {
      EXPECT_NEAR(test::ToneAmplitude(out->pcm[ch], rate, tone), 0.125, 0.02) << "level changed";
    }
    if (rate == src->sample_rate && src->channels <= 2) {
      // Same waveform at the same instants: a wrong delay/padding shifts the tone's phase.
      std::span<const float> source = src->pcm[ch];
      EXPECT_GT(test::BestCorrelation(source.subspan(decoder_delay), out->pcm[ch], 0), 0.9)
          << "output is shifted against the source";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ConvertFixtureTest, testing::ValuesIn(ConvertibleFixtures()),
                         [](const auto& info) { return std::string(info.param.name); });

// --- Output format ----------------------------------------------------------------------------

TEST(ConvertTest, OutputHasAnInfoHeaderAndIsDeterministic) {
  Converted a = ConvertFile(Fixture("wav"));
  Converted b = ConvertFile(Fixture("wav"));
  ASSERT_TRUE(a.result && b.result);
  const std::string bytes = ReadFile(a.path);
  EXPECT_TRUE(bytes.find("Xing") != std::string::npos || bytes.find("Info") != std::string::npos)
      << "no Xing/Info header: decoders cannot trim delay and padding";
  EXPECT_EQ(bytes, ReadFile(b.path)) << "same input and options, different bytes";
}

TEST(ConvertTest, UncommittedOutputIsNotVisible) {
  const fs::path dir = TempDir();
  const fs::path dest = dir / "out.mp3";
  auto source = FileSource::Open(Fixture("wav"));
  ASSERT_TRUE(source);
  {
    auto sink = AtomicFileSink::Create(dest, false);
    ASSERT_TRUE(sink);
    auto r = Convert(**source, **sink, {});
    ASSERT_TRUE(r) << Describe(r.error());
    EXPECT_FALSE(fs::exists(dest));
    EXPECT_GT((*sink)->Position(), 0u);
  }
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{});
}

TEST(ConvertTest, ResultToJson) {
  Converted c = ConvertFile(Fixture("cover_mp4"));
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  nlohmann::json j = *c.result;
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.value("source_codec", ""), "aac");
  EXPECT_EQ(j.value("stream_copied", true), false);
  EXPECT_EQ(j.value("sample_rate", 0), 44100);
  EXPECT_EQ(j.value("channels", 0), 2);
  EXPECT_EQ(j.value("samples", int64_t{0}), c.result->samples);
  EXPECT_EQ(j.value("cover_art", false), true);
}

// --- Options --------------------------------------------------------------------------------

TEST(ConvertOptionsTest, MonoDownmixesBothChannels) {
  auto src = DecodeAudio(Fixture("mp4_h264_aac"), {.keep_pcm = false});
  ASSERT_TRUE(src);
  Converted c = ConvertFile(Fixture("mp4_h264_aac"), {.mono = true});
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  EXPECT_EQ(c.result->channels, 1);
  auto out = DecodeAudio(c.path, {.strict = true});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->channels, 1);
  EXPECT_EQ(out->samples, src->samples);
  // L was 440 Hz, R 880 Hz: both must be in the single channel.
  EXPECT_GT(test::ToneAmplitude(out->pcm[0], out->sample_rate, 440), 0.03);
  EXPECT_GT(test::ToneAmplitude(out->pcm[0], out->sample_rate, 880), 0.03);
}

TEST(ConvertOptionsTest, MonoOnAnMp3ReencodesIt) {
  Converted c = ConvertFile(Fixture("mp3"), {.mono = true});
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  EXPECT_FALSE(c.result->stream_copied);
  auto out = DecodeAudio(c.path, {.strict = true});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->channels, 1);
  EXPECT_EQ(out->samples, 132300);
}

struct RateCase {
  std::string_view fixture;
  int rate;
};
void PrintTo(const RateCase& c, std::ostream* os) { *os << c.fixture << " to " << c.rate; }

class ConvertRateTest : public testing::TestWithParam<RateCase> {};

TEST_P(ConvertRateTest, ResamplesToTheExactLength) {
  const RateCase& rc = GetParam();
  const AudioFixture& f = test::AudioFixtureNamed(rc.fixture);
  auto src = DecodeAudio(Fixture(f.name), {.keep_pcm = false});
  ASSERT_TRUE(src);
  Converted c = ConvertFile(Fixture(f.name), {.sample_rate = rc.rate});
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  auto out = DecodeAudio(c.path, {.strict = true});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->sample_rate, rc.rate);
  EXPECT_EQ(c.result->sample_rate, rc.rate);
  const int64_t expected = Resampled(src->samples, src->sample_rate, rc.rate);
  EXPECT_EQ(out->samples, expected)
      << "round(" << src->samples << " * " << rc.rate << " / " << src->sample_rate << ")";
  EXPECT_EQ(c.result->samples, out->samples);
  EXPECT_EQ(out->decode_errors, 0);
  for (int ch = 0; ch < out->channels; ++ch) {
    EXPECT_NEAR(DominantFrequency(out->pcm[ch], rc.rate), f.freqs[ch], 2.0) << "channel " << ch;
  }
}

INSTANTIATE_TEST_SUITE_P(Rates, ConvertRateTest,
                         testing::Values(RateCase{"wav", 48000},         // 132301 -> 144000.87
                                         RateCase{"flac", 22050},        // 2:1 -ish down
                                         RateCase{"rate_22050", 44100},  // up
                                         RateCase{"m4a", 8000},          // far down
                                         RateCase{"mp3", 32000}),        // mp3 re-encoded
                         [](const auto& info) {
                           return std::string(info.param.fixture) + "_" +
                                  std::to_string(info.param.rate);
                         });

TEST(ConvertOptionsTest, ConstantBitRate) {
  Converted c = ConvertFile(Fixture("wav"), {.cbr_kbps = 128});
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  EXPECT_NEAR(c.result->bit_rate_kbps, 128, 4);
  auto out = DecodeAudio(c.path, {.keep_pcm = false, .strict = true});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->bit_rate, 128000);

  Converted low = ConvertFile(Fixture("wav"), {.cbr_kbps = 64});
  ASSERT_TRUE(low.result) << Describe(low.result.error());
  EXPECT_NEAR(low.result->bit_rate_kbps, 64, 3);
  EXPECT_LT(low.result->output_bytes, c.result->output_bytes * 6 / 10);
}

TEST(ConvertOptionsTest, VbrQualityChangesSize) {
  Converted best = ConvertFile(Fixture("mp4_h264_aac"), {.vbr_quality = 0});
  Converted small = ConvertFile(Fixture("mp4_h264_aac"), {.vbr_quality = 9});
  ASSERT_TRUE(best.result && small.result);
  EXPECT_GT(best.result->output_bytes, small.result->output_bytes);
  EXPECT_FALSE(best.result->stream_copied);
}

TEST(ConvertOptionsTest, ForceReencodeOfAnMp3) {
  Converted c = ConvertFile(Fixture("mp3"), {.force_reencode = true});
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  EXPECT_FALSE(c.result->stream_copied);
  EXPECT_EQ(c.result->source_codec, "mp3");
  auto out = DecodeAudio(c.path, {.strict = true});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->samples, 132300);
  EXPECT_EQ(c.result->samples, 132300);
  EXPECT_NEAR(DominantFrequency(out->pcm[0], out->sample_rate), 440, 2);
  EXPECT_NEAR(DominantFrequency(out->pcm[1], out->sample_rate), 660, 2);
}

struct BadOptions {
  std::string_view what;
  ConvertOptions options;
};
void PrintTo(const BadOptions& b, std::ostream* os) { *os << b.what; }

class InvalidOptionsTest : public testing::TestWithParam<BadOptions> {};

TEST_P(InvalidOptionsTest, AreRefusedBeforeAnyWork) {
  const ConvertOptions& o = GetParam().options;
  auto v = o.Validate();
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::kInvalidArgument);
  ExpectReadableMessage(v.error());

  Converted c = ConvertFile(Fixture("wav"), o);
  ASSERT_FALSE(c.result);
  EXPECT_EQ(c.result.error().code, ErrorCode::kInvalidArgument) << Describe(c.result.error());
  ExpectNothingLeftBehind(c);
}

INSTANTIATE_TEST_SUITE_P(
    Options, InvalidOptionsTest,
    testing::Values(
        BadOptions{"vbr_10", {.vbr_quality = 10}}, BadOptions{"vbr_minus_1", {.vbr_quality = -1}},
        BadOptions{"cbr_100", {.cbr_kbps = 100}}, BadOptions{"cbr_999", {.cbr_kbps = 999}},
        BadOptions{"cbr_0", {.cbr_kbps = 0}}, BadOptions{"rate_12345", {.sample_rate = 12345}},
        BadOptions{"rate_96000", {.sample_rate = 96000}}, BadOptions{"rate_0", {.sample_rate = 0}},
        BadOptions{"stream_minus_1", {.stream_index = -1}},
        BadOptions{"max_seconds_negative", {.max_input_seconds = -1}}),
    [](const auto& info) { return std::string(info.param.what); });

TEST(ConvertOptionsTest, ValidOptionsPass) {
  for (const ConvertOptions& o :
       {ConvertOptions{}, ConvertOptions{.vbr_quality = 0}, ConvertOptions{.vbr_quality = 9},
        ConvertOptions{.cbr_kbps = 32}, ConvertOptions{.cbr_kbps = 320},
        ConvertOptions{.sample_rate = 8000}, ConvertOptions{.sample_rate = 48000},
        ConvertOptions{.stream_index = 0,
        .mono = true,
        .force_reencode = true,
        .max_input_seconds = 10,
        .max_output_bytes = 1}}) {
    auto v = o.Validate();
    EXPECT_TRUE(v) << v.error().message;
  }
}

TEST(ConvertOptionsTest, RequestsChangeOnlyForWhatACopyCannotGive) {
  EXPECT_FALSE(ConvertOptions{}.RequestsChange());
  EXPECT_FALSE((ConvertOptions{.stream_index = 1}).RequestsChange());
  EXPECT_FALSE((ConvertOptions{.max_input_seconds = 5, .max_output_bytes = 100}).RequestsChange());
  EXPECT_TRUE((ConvertOptions{.vbr_quality = 2}).RequestsChange());
  EXPECT_TRUE((ConvertOptions{.cbr_kbps = 128}).RequestsChange());
  EXPECT_TRUE((ConvertOptions{.sample_rate = 44100}).RequestsChange());
  EXPECT_TRUE((ConvertOptions{.mono = true}).RequestsChange());
  EXPECT_TRUE((ConvertOptions{.force_reencode = true}).RequestsChange());
}

TEST(ParseVbrQualityTest, AcceptsV0ToV9) {
  EXPECT_EQ(ParseVbrQuality("V0"), 0);
  EXPECT_EQ(ParseVbrQuality("V2"), 2);
  EXPECT_EQ(ParseVbrQuality("v9"), 9);
  EXPECT_EQ(ParseVbrQuality("5"), 5);
  for (std::string_view bad : {"", "V", "V10", "10", "X2", "V-1", " V2", "V2 ", "2.5"}) {
    auto q = ParseVbrQuality(bad);
    ASSERT_FALSE(q) << "'" << bad << "'";
    EXPECT_EQ(q.error().code, ErrorCode::kInvalidArgument);
    ExpectReadableMessage(q.error());
  }
}

// --- Stream copy -----------------------------------------------------------------------------

TEST(StreamCopyTest, Mp3IsCopiedPacketForPacket) {
  auto src = DecodeAudio(Fixture("mp3"), {.keep_pcm = false});
  ASSERT_TRUE(src);
  Converted c = ConvertFile(Fixture("mp3"));
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  EXPECT_TRUE(c.result->stream_copied);
  auto out = DecodeAudio(c.path, {.keep_pcm = false, .strict = true});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->samples, 132300) << "gapless info lost in the copy";
  EXPECT_EQ(c.result->samples, 132300);
  EXPECT_EQ(out->packet_hashes, src->packet_hashes) << "packets were changed";
  EXPECT_EQ(out->tags["title"], test::kMp3Title);
  EXPECT_EQ(out->decode_errors, 0);
}

TEST(StreamCopyTest, Mp3InAviIsCopied) {
  auto src = DecodeAudio(Fixture("avi_mpeg4_mp3"), {.keep_pcm = false});
  ASSERT_TRUE(src);
  Converted c = ConvertFile(Fixture("avi_mpeg4_mp3"));
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  EXPECT_TRUE(c.result->stream_copied);
  EXPECT_EQ(c.result->source_stream_index, 1);
  auto out = DecodeAudio(c.path, {.strict = true});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->decode_errors, 0);
  EXPECT_EQ(out->packet_hashes, src->packet_hashes) << "packets were changed";
  // AVI declares no encoder delay, so the copy's LAME header declares none either, and a gapless
  // decoder trims only the standard 529-sample MP3 decoder delay that the raw AVI decode keeps.
  constexpr int64_t kDecoderDelay = 529;
  EXPECT_EQ(out->samples, src->samples - kDecoderDelay);
  EXPECT_EQ(c.result->samples, out->samples);
  auto raw = DecodeAudio(Fixture("avi_mpeg4_mp3"));
  ASSERT_TRUE(raw);
  int lag = 0;
  double correlation = test::BestCorrelation(out->pcm[1], raw->pcm[1], 1200, &lag);
  EXPECT_GT(correlation, 0.99);
  EXPECT_EQ(std::abs(lag), kDecoderDelay)
      << "the copy must be the same signal, less the decoder delay";
  EXPECT_NEAR(DominantFrequency(out->pcm[0], out->sample_rate), 330, 2);
  EXPECT_NEAR(DominantFrequency(out->pcm[1], out->sample_rate), 550, 2);
}

// --- Stream selection ------------------------------------------------------------------------

TEST(StreamSelectionTest, DefaultIsTheDefaultFlaggedTrack) {
  Converted c = ConvertFile(Fixture("two_audio_tracks"));
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  EXPECT_EQ(c.result->source_stream_index, 2);
  auto out = DecodeAudio(c.path);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->sample_rate, 48000);
  EXPECT_NEAR(DominantFrequency(out->pcm[0], out->sample_rate), 880, 2);
}

TEST(StreamSelectionTest, StreamIndexPicksTheRequestedTrack) {
  for (int index : {1, 2}) {
    SCOPED_TRACE(index);
    auto src = DecodeAudio(Fixture("two_audio_tracks"), {.stream_index = index, .keep_pcm = false});
    ASSERT_TRUE(src);
    Converted c = ConvertFile(Fixture("two_audio_tracks"), {.stream_index = index});
    ASSERT_TRUE(c.result) << Describe(c.result.error());
    EXPECT_EQ(c.result->source_stream_index, index);
    auto out = DecodeAudio(c.path);
    ASSERT_TRUE(out);
    EXPECT_EQ(out->sample_rate, src->sample_rate);
    EXPECT_EQ(out->samples, src->samples);
    EXPECT_NEAR(DominantFrequency(out->pcm[0], out->sample_rate), index == 1 ? 440 : 880, 2);
  }
}

TEST(StreamSelectionTest, NonAudioOrMissingStreamIsAnInvalidArgument) {
  for (int index : {0, 3, 99}) {
    SCOPED_TRACE(index);
    Converted c = ConvertFile(Fixture("two_audio_tracks"), {.stream_index = index});
    ASSERT_FALSE(c.result);
    EXPECT_EQ(c.result.error().code, ErrorCode::kInvalidArgument) << Describe(c.result.error());
    ExpectReadableMessage(c.result.error());
    ExpectNothingLeftBehind(c);
  }
}

// --- Tags and cover art ----------------------------------------------------------------------

TEST(MetadataTest, TagsSurviveIncludingUtf8) {
  Converted c = ConvertFile(Fixture("tagged"));
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  auto out = DecodeAudio(c.path, {.keep_pcm = false});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->tags["title"], test::kTaggedTitle);
  EXPECT_EQ(out->tags["artist"], test::kTaggedArtist);
  EXPECT_EQ(out->tags["album"], test::kTaggedAlbum);
  EXPECT_EQ(out->tags["date"], test::kTaggedDate);
  EXPECT_EQ(out->tags["genre"], test::kTaggedGenre);
  EXPECT_EQ(out->tags["track"], test::kTaggedTrack);
  EXPECT_EQ(out->tags["comment"], test::kTaggedComment);
}

TEST(MetadataTest, CoverArtIsCarriedOver) {
  for (std::string_view name : {"cover_mp4", "cover_mkv"}) {
    SCOPED_TRACE(name);
    auto src = DecodeAudio(Fixture(name), {.keep_pcm = false});
    ASSERT_TRUE(src);
    ASSERT_TRUE(src->has_cover);
    Converted c = ConvertFile(Fixture(name));
    ASSERT_TRUE(c.result) << Describe(c.result.error());
    EXPECT_TRUE(c.result->cover_art);
    auto out = DecodeAudio(c.path, {.strict = true});
    ASSERT_TRUE(out);
    EXPECT_TRUE(out->has_cover);
    EXPECT_EQ(out->cover_codec, src->cover_codec);
    EXPECT_EQ(out->cover_width, 64);
    EXPECT_EQ(out->cover_height, 64);
    EXPECT_EQ(out->cover_hash, src->cover_hash) << "picture bytes changed";
    EXPECT_EQ(out->audio_streams, 1);
    EXPECT_EQ(out->samples, src->samples);
    EXPECT_NEAR(DominantFrequency(out->pcm[0], out->sample_rate), name == "cover_mp4" ? 440 : 523,
                2);
  }
}

TEST(MetadataTest, NoCoverWhenTheSourceHasNone) {
  Converted c = ConvertFile(Fixture("mp4_h264_aac"));
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  EXPECT_FALSE(c.result->cover_art);
  auto out = DecodeAudio(c.path, {.keep_pcm = false});
  ASSERT_TRUE(out);
  EXPECT_FALSE(out->has_cover);
}

// --- Progress and cancellation --------------------------------------------------------------

class ProgressTest : public testing::TestWithParam<std::string_view> {};

TEST_P(ProgressTest, ReportsAtLeastEveryPercentUpToOne) {
  std::vector<double> values;
  bool other_thread = false;
  const auto caller = std::this_thread::get_id();
  ConvertControl control;
  control.on_progress = [&](double p) {
    values.push_back(p);
    other_thread |= std::this_thread::get_id() != caller;
  };
  Converted c = ConvertFile(Fixture(GetParam()), {}, control);
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  EXPECT_FALSE(other_thread) << "called from another thread";
  ASSERT_FALSE(values.empty());
  EXPECT_GE(values.size(), 100u);
  EXPECT_DOUBLE_EQ(values.back(), 1.0);
  EXPECT_LE(values.front(), 0.01 + 1e-9);
  double largest_gap = values.front();
  for (size_t i = 1; i < values.size(); ++i) {
    ASSERT_GE(values[i], values[i - 1]) << "progress went backwards at call " << i;
    largest_gap = std::max(largest_gap, values[i] - values[i - 1]);
  }
  EXPECT_GE(values.front(), 0.0);
  EXPECT_LE(largest_gap, 0.01 + 1e-9) << values.size() << " calls";
}

INSTANTIATE_TEST_SUITE_P(Inputs, ProgressTest,
                         testing::Values("mp4_h264_aac", "wav", "mp3", "flac", "mkv_ac3_51"),
                         [](const auto& info) { return std::string(info.param); });

class CancelTest : public testing::TestWithParam<std::string_view> {};

TEST_P(CancelTest, StopMidwayReturnsCancelledPromptly) {
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
  Converted c = ConvertFile(Fixture(GetParam()), {}, control);
  const auto returned_at = Clock::now();
  ASSERT_TRUE(stop.stop_requested()) << "progress never reached 30%";
  ASSERT_FALSE(c.result) << "finished although cancelled";
  EXPECT_EQ(c.result.error().code, ErrorCode::kCancelled) << Describe(c.result.error());
  EXPECT_LT(returned_at - stopped_at, std::chrono::milliseconds(500));
  EXPECT_EQ(calls_after_stop, 0);
  ExpectReadableMessage(c.result.error());
  ExpectNothingLeftBehind(c);
}

TEST_P(CancelTest, StopBeforeStartReturnsCancelled) {
  std::stop_source stop;
  stop.request_stop();
  int calls = 0;
  ConvertControl control{.on_progress = [&](double) { ++calls; }, .stop = stop.get_token()};
  Converted c = ConvertFile(Fixture(GetParam()), {}, control);
  ASSERT_FALSE(c.result);
  EXPECT_EQ(c.result.error().code, ErrorCode::kCancelled) << Describe(c.result.error());
  EXPECT_EQ(calls, 0);
  ExpectNothingLeftBehind(c);
}

INSTANTIATE_TEST_SUITE_P(Inputs, CancelTest,
                         testing::Values("mp4_h264_aac", "mp3"),  // encode and copy paths
                         [](const auto& info) { return std::string(info.param); });

// --- Limits ---------------------------------------------------------------------------------

class LimitTest : public testing::TestWithParam<std::string_view> {};

TEST_P(LimitTest, InputLongerThanTheLimitIsRefused) {
  Converted c = ConvertFile(Fixture(GetParam()), {.max_input_seconds = 1});
  ASSERT_FALSE(c.result);
  EXPECT_EQ(c.result.error().code, ErrorCode::kMediaTooLong) << Describe(c.result.error());
  ExpectReadableMessage(c.result.error());
  ExpectNothingLeftBehind(c);

  Converted ok = ConvertFile(Fixture(GetParam()), {.max_input_seconds = 10});
  EXPECT_TRUE(ok.result) << Describe(ok.result.error());
}

TEST_P(LimitTest, OutputLargerThanTheLimitIsRefused) {
  Converted c = ConvertFile(Fixture(GetParam()), {.max_output_bytes = 1000});
  ASSERT_FALSE(c.result);
  EXPECT_EQ(c.result.error().code, ErrorCode::kOutputTooLarge) << Describe(c.result.error());
  ExpectReadableMessage(c.result.error());
  ExpectNothingLeftBehind(c);
}

TEST_P(LimitTest, OutputLimitIsInclusive) {
  Converted free = ConvertFile(Fixture(GetParam()));
  ASSERT_TRUE(free.result) << Describe(free.result.error());
  const uint64_t size = free.result->output_bytes;

  Converted exact = ConvertFile(Fixture(GetParam()), {.max_output_bytes = size});
  ASSERT_TRUE(exact.result) << Describe(exact.result.error());
  EXPECT_EQ(fs::file_size(exact.path), size);

  Converted under = ConvertFile(Fixture(GetParam()), {.max_output_bytes = size - 1});
  ASSERT_FALSE(under.result);
  EXPECT_EQ(under.result.error().code, ErrorCode::kOutputTooLarge);
  ExpectNothingLeftBehind(under);
}

INSTANTIATE_TEST_SUITE_P(Inputs, LimitTest, testing::Values("mp4_h264_aac", "wav", "mp3"),
                         [](const auto& info) { return std::string(info.param); });

// --- Broken inputs --------------------------------------------------------------------------

struct BrokenCase {
  std::string_view fixture;
  std::vector<ErrorCode> allowed;  // the first is the preferred one
};
void PrintTo(const BrokenCase& b, std::ostream* os) { *os << b.fixture; }

class BrokenInputTest : public testing::TestWithParam<BrokenCase> {};

TEST_P(BrokenInputTest, FailsWithAReadableErrorAndNoOutput) {
  const BrokenCase& bc = GetParam();
  Converted c = ConvertFile(Fixture(bc.fixture));
  ASSERT_FALSE(c.result) << "converted a broken input";
  const Error& e = c.result.error();
  RecordProperty("error_code", std::string(ErrorCodeName(e.code)));
  EXPECT_NE(std::find(bc.allowed.begin(), bc.allowed.end(), e.code), bc.allowed.end())
      << Describe(e);
  ExpectReadableMessage(e);
  ExpectNothingLeftBehind(c);
}

INSTANTIATE_TEST_SUITE_P(Inputs, BrokenInputTest,
                         testing::Values(BrokenCase{"broken_empty", {ErrorCode::kEmptyInput}},
                                         BrokenCase{"broken_random", {ErrorCode::kNotMedia}},
                                         BrokenCase{"broken_html", {ErrorCode::kNotMedia}},
                                         BrokenCase{
                                             "broken_truncated",
                                             {ErrorCode::kCorruptMedia, ErrorCode::kNotMedia}},
                                         BrokenCase{"video_no_audio", {ErrorCode::kNoAudioStream}}),
                         [](const auto& info) { return std::string(info.param.fixture); });

TEST(BrokenInputTest, DamageInTheMiddleIsSkippedAndCounted) {
  auto src = DecodeAudio(Fixture("mid_damage"), {.keep_pcm = false});
  ASSERT_TRUE(src);
  ASSERT_GT(src->decode_errors, 0) << "the damage should hit audio packets";
  Converted c = ConvertFile(Fixture("mid_damage"));
  ASSERT_TRUE(c.result) << Describe(c.result.error());
  EXPECT_GT(c.result->damaged_packets, 0);
  auto out = DecodeAudio(c.path, {.strict = true});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->decode_errors, 0) << "damage must not leak into the MP3";
  EXPECT_EQ(out->samples, c.result->samples);
  EXPECT_EQ(out->samples, src->samples) << "a player of the source gets this many";
  EXPECT_NEAR(DominantFrequency(out->pcm[0], out->sample_rate), 1000, 2);
}

// --- I/O failures ---------------------------------------------------------------------------

// Wraps a real source and fails every read after `good_bytes` (fault injection by wrapping).
class FailingSource final : public ByteSource {
 public:
  FailingSource(ByteSource& inner, uint64_t good_bytes) : inner_(inner), left_(good_bytes) {}
  Result<size_t> Read(std::span<std::byte> out) override {
    if (left_ == 0) return MakeError(ErrorCode::kIo, "the disk went away");
    auto n = inner_.Read(out.first(std::min<uint64_t>(out.size(), left_)));
    if (n) left_ -= *n;
    return n;
  }
  Status Seek(uint64_t offset) override { return inner_.Seek(offset); }
  bool Seekable() const override { return inner_.Seekable(); }
  std::optional<uint64_t> Size() const override { return inner_.Size(); }
  std::string Describe() const override { return inner_.Describe(); }

 private:
  ByteSource& inner_;
  uint64_t left_;
};

// Wraps a real sink and fails every write after `good_bytes`.
class FailingSink final : public ByteSink {
 public:
  FailingSink(ByteSink& inner, uint64_t good_bytes) : inner_(inner), left_(good_bytes) {}
  Status Write(std::span<const std::byte> data) override {
    if (data.size() > left_) return MakeError(ErrorCode::kIo, "no space left on device");
    left_ -= data.size();
    return inner_.Write(data);
  }
  Status Seek(uint64_t offset) override { return inner_.Seek(offset); }
  bool Seekable() const override { return inner_.Seekable(); }
  uint64_t Position() const override { return inner_.Position(); }

 private:
  ByteSink& inner_;
  uint64_t left_;
};

TEST(IoFailureTest, SourceErrorIsReportedAsItself) {
  for (std::string_view name : {"wav", "mp3"}) {
    SCOPED_TRACE(name);
    auto file = FileSource::Open(Fixture(name));
    ASSERT_TRUE(file);
    FailingSource source(**file, fs::file_size(Fixture(name)) / 2);
    const fs::path dir = TempDir();
    auto sink = AtomicFileSink::Create(dir / "out.mp3", false);
    ASSERT_TRUE(sink);
    auto r = Convert(source, **sink, {});
    ASSERT_FALSE(r) << "converted although the source failed";
    EXPECT_EQ(r.error().code, ErrorCode::kIo) << Describe(r.error());
    EXPECT_NE(r.error().message.find("the disk went away"), std::string::npos) << r.error().message;
  }
}

TEST(IoFailureTest, SinkErrorIsReportedAsItself) {
  for (std::string_view name : {"wav", "mp3"}) {
    SCOPED_TRACE(name);
    auto source = FileSource::Open(Fixture(name));
    ASSERT_TRUE(source);
    const fs::path dir = TempDir();
    auto file = AtomicFileSink::Create(dir / "out.mp3", false);
    ASSERT_TRUE(file);
    FailingSink sink(**file, 8000);
    auto r = Convert(**source, sink, {});
    ASSERT_FALSE(r) << "converted although the sink failed";
    EXPECT_EQ(r.error().code, ErrorCode::kIo) << Describe(r.error());
    EXPECT_NE(r.error().message.find("no space left"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace vmp3::media
