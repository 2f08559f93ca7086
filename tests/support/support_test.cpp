// The test support must be right before it can judge the engine: fixtures are what they claim
// (checked with the independent decoder), and the signal helpers measure what they say.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <numbers>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/audio_decode.hpp"
#include "support/fixtures.hpp"

namespace vmp3::test {
namespace {

namespace fs = std::filesystem;

std::vector<float> Sine(double freq, int rate, int n, double amplitude = 0.125) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) {
    v[i] = static_cast<float>(amplitude * std::sin(2 * std::numbers::pi * freq * i / rate));
  }
  return v;
}

std::vector<float> Noise(uint32_t seed, int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    v[i] = static_cast<float>(static_cast<int32_t>(seed) / 2147483648.0);
  }
  return v;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// --- Signal helpers ------------------------------------------------------------------------------

TEST(DominantFrequencyTest, FindsPureTonesWithinHalfAHertz) {
  struct Case {
    double freq;
    int rate;
  };
  for (const Case& c : std::vector<Case>{{20, 8000},
                                         {60, 48000},
                                         {440, 44100},
                                         {440.5, 44100},
                                         {997.3, 22050},
                                         {3000, 96000},
                                         {5000, 48000},
                                         {11000, 22050 * 2},
                                         {19990, 44100}}) {
    SCOPED_TRACE(testing::Message() << c.freq << " Hz at " << c.rate);
    EXPECT_NEAR(DominantFrequency(Sine(c.freq, c.rate, c.rate), c.rate), c.freq, 0.5);
  }
}

TEST(DominantFrequencyTest, WorksOnAShortStretch) {
  // 0.1 s: coarse bins, still within the tests' +-2 Hz.
  EXPECT_NEAR(DominantFrequency(Sine(523, 48000, 4800), 48000), 523, 2);
}

TEST(DominantFrequencyTest, PicksTheStrongerOfTwoTones) {
  std::vector<float> a = Sine(440, 44100, 44100, 0.1);
  std::vector<float> b = Sine(1300, 44100, 44100, 0.05);
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  EXPECT_NEAR(DominantFrequency(a, 44100), 440, 0.5);
}

TEST(DominantFrequencyTest, SilenceAndTooShortGiveZero) {
  EXPECT_EQ(DominantFrequency(std::vector<float>(48000, 0.0f), 48000), 0);
  EXPECT_EQ(DominantFrequency(Sine(440, 44100, 10), 44100), 0);
  EXPECT_EQ(DominantFrequency({}, 44100), 0);
}

TEST(ToneAmplitudeTest, MeasuresPresentAndAbsentTones) {
  std::vector<float> a = Sine(440, 44100, 44100, 0.125);
  std::vector<float> b = Sine(880, 44100, 44100, 0.05);
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  EXPECT_NEAR(ToneAmplitude(a, 44100, 440), 0.125, 0.003);
  EXPECT_NEAR(ToneAmplitude(a, 44100, 880), 0.05, 0.003);
  EXPECT_LT(ToneAmplitude(a, 44100, 660), 0.002);
}

TEST(RmsTest, OfASineIsAmplitudeOverRootTwo) {
  EXPECT_NEAR(Rms(Sine(1000, 48000, 48000, 0.5)), 0.5 / std::numbers::sqrt2, 1e-3);
  EXPECT_EQ(Rms({}), 0);
}

TEST(BestCorrelationTest, FindsTheLagOfAShiftedCopy) {
  std::vector<float> a = Noise(1, 50000);
  std::vector<float> b(a.size(), 0.0f);
  for (size_t i = 0; i + 37 < a.size(); ++i) b[i + 37] = a[i];
  int lag = 0;
  EXPECT_GT(BestCorrelation(a, b, 100, &lag), 0.999);
  EXPECT_EQ(lag, 37);
  EXPECT_LT(std::abs(BestCorrelation(a, b, 0)), 0.05);
  EXPECT_LT(std::abs(BestCorrelation(a, Noise(2, 50000), 0)), 0.05);
}

// --- Fixtures ------------------------------------------------------------------------------------

TEST(FixturesTest, EveryFixtureIsGeneratedOnceAndNamedByItsRecipe) {
  std::set<fs::path> paths;
  for (std::string_view name : FixtureNames()) {
    SCOPED_TRACE(name);
    fs::path p = Fixture(name);
    ASSERT_TRUE(fs::exists(p));
    EXPECT_EQ(p.parent_path(), fs::path(VMP3_FIXTURE_DIR));
    EXPECT_EQ(p.filename().string().rfind(std::string(name) + "-", 0), 0u) << p;
    EXPECT_EQ(Fixture(name), p);
    const auto before = fs::last_write_time(p);
    EXPECT_EQ(fs::last_write_time(Fixture(name)), before) << "regenerated although cached";
    if (name != "broken_empty") {
      EXPECT_GT(fs::file_size(p), 0u);
    }
    paths.insert(p);
  }
  EXPECT_EQ(paths.size(), FixtureNames().size());
}

TEST(FixturesTest, UnknownNamesThrow) {
  EXPECT_THROW(Fixture("no_such_fixture"), std::invalid_argument);
  EXPECT_THROW(AudioFixtureNamed("broken_empty"), std::invalid_argument);
}

class AudioFixtureTest : public testing::TestWithParam<AudioFixture> {};

TEST_P(AudioFixtureTest, DecodesToTheDocumentedTones) {
  const AudioFixture& f = GetParam();
  auto d = DecodeAudio(Fixture(f.name));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->container, f.container);
  EXPECT_EQ(d->stream_index, f.stream_index);
  EXPECT_EQ(d->codec, f.codec);
  EXPECT_EQ(d->sample_rate, f.sample_rate);
  ASSERT_EQ(d->channels, static_cast<int>(f.freqs.size()));
  ASSERT_EQ(d->pcm.size(), f.freqs.size());
  if (f.samples > 0) {
    EXPECT_EQ(d->samples, f.samples);
  } else {
    // mid_damage loses the packets its damage hits.
    EXPECT_NEAR(d->seconds(), f.name == "mid_damage" ? 4.9 : 3.0, 0.1);
  }
  for (size_t c = 0; c < f.freqs.size(); ++c) {
    SCOPED_TRACE(testing::Message() << "channel " << c);
    EXPECT_EQ(d->pcm[c].size(), static_cast<size_t>(d->samples));
    EXPECT_NEAR(DominantFrequency(d->pcm[c], d->sample_rate), f.freqs[c], 1.0);
    EXPECT_NEAR(ToneAmplitude(d->pcm[c], d->sample_rate, f.freqs[c]), 0.125, 0.01);
  }
  if (f.name == "mid_damage") {
    EXPECT_GT(d->decode_errors + d->corrupt_packets, 0);
  } else {
    EXPECT_EQ(d->decode_errors, 0);
    EXPECT_EQ(d->corrupt_packets, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(All, AudioFixtureTest, testing::ValuesIn(AudioFixtures()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(FixturesTest, Ac3IsFivePointOneSide) {
  auto d = DecodeAudio(Fixture("mkv_ac3_51"), {.keep_pcm = false});
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->channels, 6);
  EXPECT_EQ(d->channel_layout, "5.1(side)");
}

TEST(FixturesTest, TwoAudioTracksDifferInRateToneAndLanguage) {
  auto first = DecodeAudio(Fixture("two_audio_tracks"), {.stream_index = 1});
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->audio_streams, 2);
  EXPECT_EQ(first->sample_rate, 44100);
  EXPECT_EQ(first->stream_tags["language"], "eng");
  EXPECT_NEAR(DominantFrequency(first->pcm[0], first->sample_rate), 440, 1);

  auto best = DecodeAudio(Fixture("two_audio_tracks"));
  ASSERT_TRUE(best) << best.error().message;
  EXPECT_EQ(best->stream_index, 2) << "the default-flagged second track";
  EXPECT_EQ(best->sample_rate, 48000);
  EXPECT_EQ(best->stream_tags["language"], "fra");
  EXPECT_NEAR(DominantFrequency(best->pcm[0], best->sample_rate), 880, 1);

  EXPECT_EQ(DecodeAudio(Fixture("two_audio_tracks"), {.stream_index = 0}).error().code,
            ErrorCode::kNoAudioStream);
}

TEST(FixturesTest, TaggedCarriesUtf8Tags) {
  auto d = DecodeAudio(Fixture("tagged"), {.keep_pcm = false});
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->tags["title"], kTaggedTitle);
  EXPECT_EQ(d->tags["artist"], kTaggedArtist);
  EXPECT_EQ(d->tags["album"], kTaggedAlbum);
  EXPECT_EQ(d->tags["date"], kTaggedDate);
  EXPECT_EQ(d->tags["genre"], kTaggedGenre);
  EXPECT_EQ(d->tags["track"], kTaggedTrack);
  EXPECT_EQ(d->tags["comment"], kTaggedComment);
}

TEST(FixturesTest, CoverFixturesHaveAttachedPictures) {
  auto mp4 = DecodeAudio(Fixture("cover_mp4"), {.keep_pcm = false});
  ASSERT_TRUE(mp4) << mp4.error().message;
  EXPECT_TRUE(mp4->has_cover);
  EXPECT_EQ(mp4->cover_codec, "mjpeg");
  EXPECT_EQ(mp4->cover_width, 64);
  EXPECT_EQ(mp4->cover_height, 64);
  EXPECT_NE(mp4->cover_hash, 0u);

  auto mkv = DecodeAudio(Fixture("cover_mkv"), {.keep_pcm = false});
  ASSERT_TRUE(mkv) << mkv.error().message;
  EXPECT_TRUE(mkv->has_cover);
  EXPECT_EQ(mkv->cover_codec, "png");
  EXPECT_EQ(mkv->cover_width, 64);

  auto plain = DecodeAudio(Fixture("m4a"), {.keep_pcm = false});
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_FALSE(plain->has_cover);
}

TEST(FixturesTest, Mp3HasALameTagThatMakesItGapless) {
  const std::string bytes = ReadFile(Fixture("mp3"));
  EXPECT_NE(bytes.find("Xing"), std::string::npos);
  EXPECT_NE(bytes.find("LAME"), std::string::npos);
  auto d = DecodeAudio(Fixture("mp3"), {.strict = true});
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->samples, 132300) << "LAME delay/padding not applied";
  EXPECT_EQ(d->decode_errors, 0);
  EXPECT_EQ(d->tags["title"], kMp3Title);
  EXPECT_EQ(d->packets, static_cast<int64_t>(d->packet_hashes.size()));
  EXPECT_GT(d->packets, 100);
}

TEST(FixturesTest, BrokenFixturesAreBroken) {
  EXPECT_EQ(fs::file_size(Fixture("broken_empty")), 0u);
  EXPECT_EQ(fs::file_size(Fixture("broken_random")), 64u * 1024);
  EXPECT_EQ(ReadFile(Fixture("broken_html")).rfind("<!DOCTYPE html>", 0), 0u);
  const std::string truncated = ReadFile(Fixture("broken_truncated"));
  EXPECT_EQ(truncated.find("moov"), std::string::npos);
  EXPECT_NE(truncated.find("mdat"), std::string::npos);
  for (std::string_view name :
       {"broken_empty", "broken_random", "broken_html", "broken_truncated"}) {
    SCOPED_TRACE(name);
    EXPECT_FALSE(DecodeAudio(Fixture(name), {.keep_pcm = false}));
  }
  auto video = DecodeAudio(Fixture("video_no_audio"));
  ASSERT_FALSE(video);
  EXPECT_EQ(video.error().code, ErrorCode::kNoAudioStream);
}

TEST(FixturesTest, RandomFixtureLooksRandom) {
  const std::string a = ReadFile(Fixture("broken_random"));
  EXPECT_EQ(a.size(), 64u * 1024);
  std::set<char> distinct(a.begin(), a.end());
  EXPECT_GT(distinct.size(), 250u) << "should look random";
}

TEST(DecodeAudioTest, MissingFileIsNotFound) {
  auto d = DecodeAudio(TempDir() / "missing.mp3");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ErrorCode::kNotFound);
}

TEST(TempDirTest, IsFreshEmptyAndDistinct) {
  fs::path a = TempDir();
  fs::path b = TempDir();
  EXPECT_NE(a, b);
  EXPECT_TRUE(fs::is_directory(a));
  EXPECT_TRUE(fs::is_empty(a));
  EXPECT_NE(a.filename().string().find("IsFreshEmptyAndDistinct"), std::string::npos) << a;
}

}  // namespace
}  // namespace vmp3::test
