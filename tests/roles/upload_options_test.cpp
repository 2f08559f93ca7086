#include "roles/upload_options.hpp"

#include <gtest/gtest.h>

namespace vmp3::roles {
namespace {

TEST(UploadOptionsTest, NothingAskedForIsNoOption) {
  UploadOptions options;
  auto converted = options.ToConvertOptions();
  ASSERT_TRUE(converted) << converted.error().message;
  EXPECT_FALSE(converted->vbr_quality || converted->cbr_kbps);
  EXPECT_EQ(options.Json(), "{}");
  options.quality = "";
  options.bitrate = "";
  EXPECT_TRUE(options.ToConvertOptions());
  EXPECT_EQ(options.Json(), "{}");
}

TEST(UploadOptionsTest, QualityAndBitrate) {
  auto quality = UploadOptions{"v0", std::nullopt}.ToConvertOptions();
  ASSERT_TRUE(quality) << quality.error().message;
  EXPECT_EQ(quality->vbr_quality, 0);
  auto bitrate = UploadOptions{std::nullopt, "192"}.ToConvertOptions();
  ASSERT_TRUE(bitrate) << bitrate.error().message;
  EXPECT_EQ(bitrate->cbr_kbps, 192);
}

TEST(UploadOptionsTest, RejectsWhatTheCliRejects) {
  for (const UploadOptions& bad :
       {UploadOptions{"V10", std::nullopt}, UploadOptions{"best", std::nullopt},
        UploadOptions{std::nullopt, "191"}, UploadOptions{std::nullopt, " 192"},
        UploadOptions{std::nullopt, "192k"}, UploadOptions{std::nullopt, "99999999999"},
        UploadOptions{"V2", "192"}}) {
    auto converted = bad.ToConvertOptions();
    ASSERT_FALSE(converted) << bad.quality.value_or("-") << " " << bad.bitrate.value_or("-");
    EXPECT_EQ(converted.error().code, ErrorCode::kInvalidArgument);
  }
}

// The upload role records Json(); the converter reads it back with ConvertOptionsFromJson.
TEST(UploadOptionsTest, TheConverterReadsBackWhatTheUploadRecorded) {
  for (const UploadOptions& options :
       {UploadOptions{"V2", std::nullopt}, UploadOptions{"7", ""}, UploadOptions{"", "320"},
        UploadOptions{std::nullopt, "32"}, UploadOptions{}}) {
    auto converted = options.ToConvertOptions();
    ASSERT_TRUE(converted) << converted.error().message;
    auto read = ConvertOptionsFromJson(options.Json());
    ASSERT_TRUE(read) << options.Json() << ": " << read.error().message;
    EXPECT_EQ(read->vbr_quality, converted->vbr_quality) << options.Json();
    EXPECT_EQ(read->cbr_kbps, converted->cbr_kbps) << options.Json();
  }
}

TEST(ConvertOptionsFromJsonTest, LenientWithOldOrOddRecords) {
  for (const char* json :
       {"", "{}", "not json", "[1,2]", "null", R"({"quality":2,"bitrate":"1"})"}) {
    auto read = ConvertOptionsFromJson(json);
    ASSERT_TRUE(read) << json << ": " << read.error().message;
    EXPECT_FALSE(read->vbr_quality || read->cbr_kbps) << json;
  }
  auto bad = ConvertOptionsFromJson(R"({"quality":"V11"})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vmp3::roles
