// Abuse limits as an operator runs them: kept in the metadata backend, so they hold across
// replicas (two processes on the same backend share one count) and across restarts; per-user
// quotas refuse with a clear problem and leave nothing behind; GET /v1/account shows them.
// Runs on both backends (embedded: processes share the SQLite database of one data dir;
// distributed: they share Redis under one prefix).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

using nlohmann::json;

HttpResponse LoginAs(const HttpClient& client, const std::string& user, const std::string& pass) {
  HttpRequest login{.method = "POST", .target = "/v1/auth/login"};
  login.basic = {{user, pass}};
  return client.Send(login);
}

void ExpectProblem(const HttpResponse& r, int status, std::string_view code) {
  EXPECT_EQ(r.status, status) << r.Describe();
  EXPECT_EQ(r.Header("Content-Type").value_or(""), "application/problem+json") << r.Describe();
  json problem = json::parse(r.body, nullptr, false);
  EXPECT_EQ(problem.value("code", ""), code) << r.body;
  EXPECT_EQ(problem.value("status", 0), status) << r.body;
  EXPECT_FALSE(problem.value("detail", "").empty()) << r.body;
}

// Two auth processes on one backend, as two replicas behind a gateway: five wrong passwords
// spread over both lock the account on both, with 429 and Retry-After; a restart forgets none.
TEST(LimitsTest, TheLoginThrottleIsSharedByAuthReplicas) {
  auto data_dir = NewDataDir();
  auto first = ServerProcess::Start(data_dir, {"--roles", "auth"});
  auto second = ServerProcess::Start(data_dir, {"--roles", "auth"});
  HttpClient a(first->base_url()), b(second->base_url());
  Account account = CreateAccount(a, "throttled");
  for (int i = 0; i < 5; ++i) {
    HttpResponse wrong = LoginAs(i % 2 ? a : b, account.username, "not the password");
    ASSERT_EQ(wrong.status, 401) << "attempt " << i + 1 << ": " << wrong.Describe();
  }
  for (const HttpClient* client : {&a, &b}) {
    HttpResponse locked = LoginAs(*client, account.username, account.password);
    ExpectProblem(locked, 429, "rate_limited");
    int retry_after = std::stoi(locked.Header("Retry-After").value_or("0"));
    EXPECT_GT(retry_after, 60) << "the lock lasts minutes";
    EXPECT_LE(retry_after, 15 * 60);
  }
  // A restart of both replicas keeps the lock: it lives in the backend.
  first->Terminate();
  second->Terminate();
  auto restarted = ServerProcess::Start(data_dir, {"--roles", "auth"});
  ExpectProblem(LoginAs(HttpClient(restarted->base_url()), account.username, account.password), 429,
                "rate_limited");
}

// Per-user quotas: unfinished jobs (429) and stored bytes (403), refused before anything is
// stored; shown, with usage, in GET /v1/account. No converter runs, so uploads stay queued.
TEST(LimitsTest, QuotasRefuseCleanlyAndShowInTheAccount) {
  auto data_dir = NewDataDir();
  const auto clip = test::Fixture("mp4_h264_aac");
  const auto clip_size = std::filesystem::file_size(clip);
  auto server = ServerProcess::Start(
      data_dir, {"--roles", "auth,upload,metadata,download", "--max-active-jobs", "2",
                 "--max-user-bytes", std::to_string(clip_size * 3 - 1)});
  HttpClient client(server->base_url());
  Account account = CreateAccount(client, "quota");

  UploadJob(client, account, clip);
  UploadJob(client, account, clip);
  auto stored_before = ObjectFiles(data_dir);
  HttpResponse third = Upload(client, account, clip);
  ExpectProblem(third, 429, "rate_limited");
  EXPECT_TRUE(third.Header("Retry-After").has_value());
  EXPECT_NE(json::parse(third.body).value("detail", "").find("unfinished"), std::string::npos)
      << third.body;
  EXPECT_EQ(ObjectFiles(data_dir), stored_before) << "a refused upload left something behind";
  json listed = client.Get("/v1/jobs", account.token).Json();
  EXPECT_EQ(listed["jobs"].size(), 2u);

  HttpResponse account_info = client.Get("/v1/account", account.token);
  ASSERT_EQ(account_info.status, 200) << account_info.Describe();
  json info = account_info.Json();
  EXPECT_EQ(info.value("username", ""), account.username);
  EXPECT_EQ(info["usage"].value("active_jobs", 0), 2);
  EXPECT_EQ(info["usage"].value("stored_bytes", uint64_t{0}), clip_size * 2);
  EXPECT_EQ(info["limits"].value("max_active_jobs", 0), 2);
  EXPECT_EQ(info["limits"].value("max_stored_bytes", uint64_t{0}), clip_size * 3 - 1);
  EXPECT_TRUE(info["limits"]["rate"].is_object()) << info;

  // Deleting one frees a place; a file of two clips' size would then take the stored bytes
  // (one clip + two) past the quota of three clips minus a byte: 403 quota_exceeded, refused
  // before its bytes are stored.
  std::string first_id = listed["jobs"][0].value("id", "");
  ASSERT_EQ(client.Delete("/v1/jobs/" + first_id, account.token).status, 204);
  auto double_clip = test::TempDir() / "double.mp4";
  WriteFile(double_clip, ReadFile(clip) + ReadFile(clip));
  auto stored_one = ObjectFiles(data_dir);
  HttpResponse over = Upload(client, account, double_clip);
  ExpectProblem(over, 403, "quota_exceeded");
  EXPECT_EQ(ObjectFiles(data_dir), stored_one) << "a refused upload left something behind";
  EXPECT_EQ(
      client.Get("/v1/account", account.token).Json()["usage"].value("stored_bytes", uint64_t{0}),
      clip_size);
  // Within the quota it is accepted.
  EXPECT_EQ(Upload(client, account, clip).status, 202);
  // Another user is not affected.
  Account other = CreateAccount(client, "quota-other");
  EXPECT_EQ(Upload(client, other, clip).status, 202);
}

// The per-user request rate, shared by two processes serving the API on one backend.
TEST(LimitsTest, TheRateLimitIsSharedByReplicas) {
  auto data_dir = NewDataDir();
  std::vector<std::string> args = {"--rate-limit", "0.2", "--rate-burst", "4"};
  auto first = ServerProcess::Start(data_dir, args);
  std::vector<std::string> api_args = {
      "--roles",      "metadata", "--auth-url",   first->base_url(),
      "--rate-limit", "0.2",      "--rate-burst", "4"};
  auto second = ServerProcess::Start(data_dir, api_args);
  HttpClient a(first->base_url()), b(second->base_url());
  Account account = CreateAccount(a, "rated");
  for (int i = 0; i < 4; ++i) {
    HttpResponse ok = (i % 2 ? a : b).Get("/v1/jobs", account.token);
    ASSERT_EQ(ok.status, 200) << "request " << i + 1 << ": " << ok.Describe();
  }
  for (const HttpClient* client : {&a, &b}) {
    HttpResponse limited = client->Get("/v1/jobs", account.token);
    ExpectProblem(limited, 429, "rate_limited");
    EXPECT_EQ(limited.Header("Retry-After").value_or(""), "5");
  }
  // Another user has a bucket of their own; unauthenticated routes are not counted.
  Account other = CreateAccount(a, "rated-other");
  EXPECT_EQ(b.Get("/v1/jobs", other.token).status, 200);
  EXPECT_EQ(a.Get("/healthz").status, 200);
}

// A process needs only the configuration its roles use: a converter verifies no token, so it
// starts without --auth-url or --jwt-public-key; an API role without them is refused clearly.
TEST(LimitsTest, AConverterNeedsNoTokenSettings) {
  auto data_dir = NewDataDir();
  auto converter = ServerProcess::Start(data_dir, {"--roles", "converter"});
  EXPECT_TRUE(converter->running());
  EXPECT_EQ(HttpClient(converter->base_url()).Get("/healthz").status, 200);
  ProcessResult refused =
      RunProcess({BinaryPath().string(), "serve", "--roles", "metadata", "--listen", "127.0.0.1:0",
                  "--data-dir", NewDataDir().string()},
                 std::chrono::seconds(30));
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("--auth-url"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace vmp3::itest
