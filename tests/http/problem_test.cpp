#include "http/problem.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace vmp3::http {
namespace {

constexpr ErrorCode kAllCodes[] = {
    ErrorCode::kInvalidArgument, ErrorCode::kNotFound,         ErrorCode::kAlreadyExists,
    ErrorCode::kConflict,        ErrorCode::kUnauthenticated,  ErrorCode::kPermissionDenied,
    ErrorCode::kRateLimited,     ErrorCode::kTooLarge,         ErrorCode::kUnavailable,
    ErrorCode::kCancelled,       ErrorCode::kDeadlineExceeded, ErrorCode::kIo,
    ErrorCode::kInternal,        ErrorCode::kEmptyInput,       ErrorCode::kNotMedia,
    ErrorCode::kNoAudioStream,   ErrorCode::kCorruptMedia,     ErrorCode::kUnsupportedMedia,
    ErrorCode::kMediaTooLong,    ErrorCode::kOutputTooLarge,   ErrorCode::kMisdirected,
    ErrorCode::kUrlRefused,
};

TEST(HttpStatusForTest, MapsEveryCode) {
  EXPECT_EQ(HttpStatusFor(ErrorCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kConflict), 409);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kCancelled), 409);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kTooLarge), 413);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kRateLimited), 429);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kIo), 500);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kInternal), 500);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kMisdirected), 421);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kUrlRefused), 422);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kDeadlineExceeded), 504);
  for (ErrorCode code : {ErrorCode::kEmptyInput, ErrorCode::kNotMedia, ErrorCode::kNoAudioStream,
                         ErrorCode::kCorruptMedia, ErrorCode::kUnsupportedMedia,
                         ErrorCode::kMediaTooLong, ErrorCode::kOutputTooLarge}) {
    EXPECT_EQ(HttpStatusFor(code), 422) << ErrorCodeName(code);
  }
}

TEST(ProblemJsonTest, HasAllMembersInOrder) {
  Error error(ErrorCode::kNoAudioStream, "the file has no audio stream to convert");
  EXPECT_EQ(ProblemJson(error, 422, "/v1/jobs/abc"),
            R"({"type":"/problems/no_audio_stream","title":"No audio stream","status":422,)"
            R"("detail":"the file has no audio stream to convert","instance":"/v1/jobs/abc",)"
            R"("code":"no_audio_stream"})");
}

TEST(ProblemJsonTest, OmitsEmptyInstanceAndDefaultsTheStatus) {
  nlohmann::json body = nlohmann::json::parse(ProblemJson(Error(ErrorCode::kTooLarge, "big")));
  EXPECT_FALSE(body.contains("instance"));
  EXPECT_EQ(body["status"], 413);
  EXPECT_EQ(body["code"], "too_large");
  EXPECT_EQ(body["type"], "/problems/too_large");
  EXPECT_EQ(body["detail"], "big");
}

TEST(ProblemJsonTest, EscapesAndSurvivesInvalidUtf8) {
  Error error(ErrorCode::kInvalidArgument, "bad \"name\"\n\\ \xC3\xA9 \xFF end");
  std::string text = ProblemJson(error, 400);
  nlohmann::json body = nlohmann::json::parse(text);  // throws if the output is not valid JSON
  EXPECT_EQ(body["detail"], "bad \"name\"\n\\ \xC3\xA9 \xEF\xBF\xBD end");  // U+FFFD
}

TEST(ProblemJsonTest, EveryCodeHasATitleAndAValidBody) {
  for (ErrorCode code : kAllCodes) {
    EXPECT_FALSE(ProblemTitle(code).empty());
    if (code != ErrorCode::kInternal) {
      EXPECT_NE(ProblemTitle(code), ProblemTitle(ErrorCode::kInternal)) << ErrorCodeName(code);
    }
    const int status = HttpStatusFor(code);
    EXPECT_GE(status, 400);
    EXPECT_LT(status, 600);
    nlohmann::json body = nlohmann::json::parse(ProblemJson(Error(code, "m"), status));
    EXPECT_EQ(body["code"], ErrorCodeName(code));
    EXPECT_EQ(body["title"], ProblemTitle(code));
  }
}

TEST(ProblemJsonTest, ContentType) { EXPECT_EQ(kProblemContentType, "application/problem+json"); }

}  // namespace
}  // namespace vmp3::http

namespace vmp3::http {
namespace {

// The one table: every code has a distinct name, a status and a title.
TEST(ErrorTable, EveryCodeHasANameStatusAndTitle) {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(ErrorCode::kOutputTooLarge); ++i) {
    auto code = static_cast<ErrorCode>(i);
    const ErrorCodeInfo& info = InfoOf(code);
    EXPECT_FALSE(info.name.empty());
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    EXPECT_GE(info.http_status, 400);
    EXPECT_LT(info.http_status, 600);
    EXPECT_FALSE(info.title.empty());
    EXPECT_EQ(ErrorCodeName(code), info.name);
    EXPECT_EQ(HttpStatusFor(code), info.http_status);
  }
}

TEST(ErrorTable, ProtocolAndQuotaCodes) {
  EXPECT_EQ(HttpStatusFor(ErrorCode::kMethodNotAllowed), 405);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kHeadersTooLarge), 431);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kRangeNotSatisfiable), 416);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kQuotaExceeded), 403);
  EXPECT_EQ(ErrorCodeName(ErrorCode::kQuotaExceeded), "quota_exceeded");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kUnavailable), "backend_unavailable");
}

TEST(ErrorTable, RetryAfterForLimitsAndOutages) {
  EXPECT_EQ(RetryAfterFor(Error(ErrorCode::kRateLimited, "slow down", 42)), 42);
  EXPECT_GT(RetryAfterFor(Error(ErrorCode::kUnavailable, "Redis did not answer")), 0);
  EXPECT_EQ(RetryAfterFor(Error(ErrorCode::kNotFound, "no such job")), 0);
}

}  // namespace
}  // namespace vmp3::http
