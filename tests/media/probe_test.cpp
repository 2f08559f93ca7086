#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/io.hpp"
#include "media/media_info.hpp"
#include "support/convert_file.hpp"
#include "support/fixtures.hpp"

namespace vmp3::media {
namespace {

using test::AudioFixture;
using test::Describe;
using test::Fixture;

Result<MediaInfo> ProbeFixture(std::string_view name) {
  auto source = FileSource::Open(Fixture(name));
  if (!source) return tl::unexpected(source.error());
  return Probe(**source);
}

const StreamInfo* StreamAt(const MediaInfo& info, int index) {
  for (const auto& s : info.streams) {
    if (s.index == index) return &s;
  }
  return nullptr;
}

class ProbeFixtureTest : public testing::TestWithParam<AudioFixture> {};

TEST_P(ProbeFixtureTest, DescribesTheAudioStream) {
  const AudioFixture& f = GetParam();
  auto info = ProbeFixture(f.name);
  ASSERT_TRUE(info) << Describe(info.error());
  EXPECT_EQ(info->container, f.container);
  EXPECT_FALSE(info->container_long_name.empty());
  ASSERT_TRUE(info->duration_seconds);
  EXPECT_NEAR(*info->duration_seconds, f.name == "mid_damage" ? 5.0 : 3.0, 0.2);
  ASSERT_TRUE(info->best_audio_stream);
  EXPECT_EQ(*info->best_audio_stream, f.stream_index);

  for (size_t i = 0; i < info->streams.size(); ++i) {
    EXPECT_EQ(info->streams[i].index, static_cast<int>(i)) << "streams in container order";
  }
  const StreamInfo* s = StreamAt(*info, f.stream_index);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->type, "audio");
  EXPECT_EQ(s->codec, f.codec);
  EXPECT_EQ(s->sample_rate, f.sample_rate);
  EXPECT_EQ(s->channels, static_cast<int>(f.freqs.size()));
  EXPECT_FALSE(s->is_cover_art);
  EXPECT_FALSE(s->width.has_value());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ProbeFixtureTest, testing::ValuesIn(test::AudioFixtures()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ProbeTest, VideoAndSurroundStreams) {
  auto info = ProbeFixture("mkv_ac3_51");
  ASSERT_TRUE(info) << Describe(info.error());
  EXPECT_EQ(info->container, "matroska,webm");
  ASSERT_EQ(info->streams.size(), 2u);
  const StreamInfo& video = info->streams[0];
  EXPECT_EQ(video.type, "video");
  EXPECT_EQ(video.codec, "h264");
  EXPECT_EQ(video.width, 160);
  EXPECT_EQ(video.height, 120);
  EXPECT_FALSE(video.sample_rate.has_value());
  const StreamInfo& audio = info->streams[1];
  EXPECT_EQ(audio.codec, "ac3");
  EXPECT_EQ(audio.channels, 6);
  EXPECT_EQ(audio.channel_layout, "5.1(side)");
  ASSERT_TRUE(audio.bit_rate);
  EXPECT_EQ(*audio.bit_rate, 384000);
}

TEST(ProbeTest, LanguagesAndDefaultFlags) {
  auto info = ProbeFixture("two_audio_tracks");
  ASSERT_TRUE(info) << Describe(info.error());
  ASSERT_EQ(info->streams.size(), 3u);
  EXPECT_EQ(info->streams[1].language, "eng");
  EXPECT_FALSE(info->streams[1].is_default);
  EXPECT_EQ(info->streams[1].sample_rate, 44100);
  EXPECT_EQ(info->streams[2].language, "fra");
  EXPECT_TRUE(info->streams[2].is_default);
  EXPECT_EQ(info->streams[2].sample_rate, 48000);
  EXPECT_EQ(info->best_audio_stream, 2);
}

TEST(ProbeTest, ContainerTagsWithLowerCaseKeys) {
  auto info = ProbeFixture("tagged");
  ASSERT_TRUE(info) << Describe(info.error());
  auto& tags = info->tags;
  EXPECT_EQ(tags["title"], test::kTaggedTitle);
  EXPECT_EQ(tags["artist"], test::kTaggedArtist);
  EXPECT_EQ(tags["album"], test::kTaggedAlbum);
  EXPECT_EQ(tags["date"], test::kTaggedDate);
  EXPECT_EQ(tags["genre"], test::kTaggedGenre);
  EXPECT_EQ(tags["track"], test::kTaggedTrack);
  EXPECT_EQ(tags["comment"], test::kTaggedComment);
  for (const auto& [key, value] : tags) {
    EXPECT_TRUE(std::none_of(key.begin(), key.end(), [](unsigned char c) {
      return std::isupper(c);
    })) << key;
  }

  auto mp3 = ProbeFixture("mp3");
  ASSERT_TRUE(mp3) << Describe(mp3.error());
  EXPECT_EQ(mp3->tags["title"], test::kMp3Title);
}

TEST(ProbeTest, CoverArtStreams) {
  struct Case {
    std::string_view fixture;
    std::string_view codec;
  };
  for (const Case& c : {Case{"cover_mp4", "mjpeg"}, Case{"cover_mkv", "png"}}) {
    SCOPED_TRACE(c.fixture);
    auto info = ProbeFixture(c.fixture);
    ASSERT_TRUE(info) << Describe(info.error());
    ASSERT_EQ(info->streams.size(), 2u);
    EXPECT_EQ(info->best_audio_stream, 0);
    const StreamInfo& pic = info->streams[1];
    EXPECT_TRUE(pic.is_cover_art);
    EXPECT_EQ(pic.codec, c.codec);
    EXPECT_EQ(pic.width, 64);
    EXPECT_EQ(pic.height, 64);
  }
  auto plain = ProbeFixture("mp4_h264_aac");
  ASSERT_TRUE(plain);
  for (const auto& s : plain->streams) EXPECT_FALSE(s.is_cover_art) << s.index;
}

TEST(ProbeTest, VideoWithoutAudioHasNoBestAudioStream) {
  auto info = ProbeFixture("video_no_audio");
  ASSERT_TRUE(info) << Describe(info.error());
  ASSERT_EQ(info->streams.size(), 1u);
  EXPECT_EQ(info->streams[0].type, "video");
  EXPECT_FALSE(info->best_audio_stream.has_value());
  ASSERT_TRUE(info->duration_seconds);
  EXPECT_NEAR(*info->duration_seconds, 2.0, 0.2);
}

struct BrokenCase {
  std::string_view fixture;
  std::vector<ErrorCode> allowed;
};
void PrintTo(const BrokenCase& b, std::ostream* os) { *os << b.fixture; }

class ProbeBrokenTest : public testing::TestWithParam<BrokenCase> {};

TEST_P(ProbeBrokenTest, FailsWithTheRightCode) {
  auto info = ProbeFixture(GetParam().fixture);
  ASSERT_FALSE(info) << "probed a broken input as " << info->container;
  const auto& allowed = GetParam().allowed;
  RecordProperty("error_code", std::string(ErrorCodeName(info.error().code)));
  EXPECT_NE(std::find(allowed.begin(), allowed.end(), info.error().code), allowed.end())
      << Describe(info.error());
  EXPECT_FALSE(info.error().message.empty());
  EXPECT_NE(info.error().message.back(), '.');
}

INSTANTIATE_TEST_SUITE_P(Inputs, ProbeBrokenTest,
                         testing::Values(BrokenCase{"broken_empty", {ErrorCode::kEmptyInput}},
                                         BrokenCase{"broken_random", {ErrorCode::kNotMedia}},
                                         BrokenCase{"broken_html", {ErrorCode::kNotMedia}},
                                         BrokenCase{
                                             "broken_truncated",
                                             {ErrorCode::kCorruptMedia, ErrorCode::kNotMedia}}),
                         [](const auto& info) { return std::string(info.param.fixture); });

TEST(ProbeTest, ToJson) {
  auto info = ProbeFixture("two_audio_tracks");
  ASSERT_TRUE(info) << Describe(info.error());
  nlohmann::json j = *info;
  EXPECT_EQ(j.at("container"), "matroska,webm");
  EXPECT_EQ(j.at("best_audio_stream"), 2);
  ASSERT_EQ(j.at("streams").size(), 3u);
  EXPECT_EQ(j.at("streams")[2].at("language"), "fra");
  EXPECT_EQ(j.at("streams")[2].at("sample_rate"), 48000);
  EXPECT_NEAR(j.at("duration").get<double>(), 3.0, 0.2);

  auto none = ProbeFixture("video_no_audio");
  ASSERT_TRUE(none);
  nlohmann::json k = *none;
  EXPECT_TRUE(k.at("best_audio_stream").is_null());
}

}  // namespace
}  // namespace vmp3::media
