// One user's jobs are invisible to another; listing pages through every job exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <thread>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

using nlohmann::json;

class IsolationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = ServerProcess::Start(NewDataDir());
    client_ = std::make_unique<HttpClient>(server_->base_url());
  }
  static void TearDownTestSuite() {
    client_.reset();
    server_.reset();
  }
  static std::unique_ptr<ServerProcess> server_;
  static std::unique_ptr<HttpClient> client_;
};
std::unique_ptr<ServerProcess> IsolationTest::server_;
std::unique_ptr<HttpClient> IsolationTest::client_;

std::vector<std::string> Ids(const json& page) {
  std::vector<std::string> ids;
  for (const json& job : page["jobs"]) ids.push_back(job.value("id", ""));
  return ids;
}

TEST_F(IsolationTest, AnotherUsersJobIsNotFoundEverywhere) {
  const HttpClient& client = *client_;
  Account a = CreateAccount(client, "alice");
  Account b = CreateAccount(client, "bob");
  json job = UploadJob(client, a, vmp3::test::Fixture("mp4_h264_aac"));
  const std::string id = job["id"];
  ASSERT_EQ(WaitForEnd(client, a, id).value("status", ""), "done");

  HttpResponse get = client.Get("/v1/jobs/" + id, b.token);
  EXPECT_EQ(get.status, 404) << get.Describe();
  SseResult events = client.ReadEvents("/v1/jobs/" + id + "/events", b.token, 10s);
  EXPECT_EQ(events.response.status, 404);
  EXPECT_TRUE(events.events.empty());
  EXPECT_EQ(client.Get("/v1/jobs/" + id + "/mp3", b.token).status, 404);
  EXPECT_EQ(client.Get("/download?fid=" + id, b.token).status, 404);
  HttpRequest head{.method = "HEAD", .target = "/v1/jobs/" + id + "/mp3", .bearer = b.token};
  EXPECT_EQ(client.Send(head).status, 404);
  EXPECT_EQ(client.Delete("/v1/jobs/" + id, b.token).status, 404);
  // The same answer as for an id that never existed: nothing to learn by probing.
  HttpResponse missing = client.Get("/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa", b.token);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Json().value("detail", ""), get.Json().value("detail", ""));

  HttpResponse list = client.Get("/v1/jobs", b.token);
  ASSERT_EQ(list.status, 200);
  EXPECT_TRUE(list.Json()["jobs"].empty()) << list.body;

  // B's failed DELETE did not touch A's job.
  HttpResponse still = client.Get("/v1/jobs/" + id, a.token);
  ASSERT_EQ(still.status, 200);
  EXPECT_EQ(still.Json().value("status", ""), "done");
  EXPECT_EQ(client.Get("/v1/jobs/" + id + "/mp3", a.token).status, 200);
}

TEST_F(IsolationTest, PaginationWalksEveryJobOnceNewestFirst) {
  const HttpClient& client = *client_;
  Account a = CreateAccount(client, "pager");
  Account b = CreateAccount(client, "noise");
  std::vector<std::string> uploaded;  // oldest first
  for (int i = 0; i < 5; ++i) {
    uploaded.push_back(UploadJob(client, a, vmp3::test::Fixture("mp4_h264_aac"))["id"]);
    UploadJob(client, b, vmp3::test::Fixture("mp4_h264_aac"));  // interleaved, must not show
    std::this_thread::sleep_for(3ms);  // distinct creation times (milliseconds), so a known order
  }
  std::vector<std::string> walked;
  std::string cursor;
  for (int page = 0; page < 20; ++page) {
    std::string target = "/v1/jobs?limit=1";
    if (!cursor.empty()) target += "&cursor=" + cursor;
    HttpResponse r = client.Get(target, a.token);
    ASSERT_EQ(r.status, 200) << r.Describe();
    json body = r.Json();
    ASSERT_LE(body["jobs"].size(), 1u);
    for (const auto& id : Ids(body)) walked.push_back(id);
    if (body["next_cursor"].is_null()) break;
    cursor = body["next_cursor"].get<std::string>();
    ASSERT_FALSE(cursor.empty());
  }
  std::vector<std::string> newest_first(uploaded.rbegin(), uploaded.rend());
  EXPECT_EQ(walked, newest_first);

  // One page with everything agrees with the walk.
  HttpResponse all = client.Get("/v1/jobs?limit=100", a.token);
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(Ids(all.Json()), newest_first);
  EXPECT_TRUE(all.Json()["next_cursor"].is_null());

  // Bad limits are refused, not clamped silently.
  EXPECT_EQ(client.Get("/v1/jobs?limit=0", a.token).status, 400);
  EXPECT_EQ(client.Get("/v1/jobs?limit=101", a.token).status, 400);
  EXPECT_EQ(client.Get("/v1/jobs?limit=abc", a.token).status, 400);
}

}  // namespace
}  // namespace vmp3::itest
