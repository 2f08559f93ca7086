// The main path a user takes: register, sign in, upload, follow progress, download, listen.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <thread>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/audio_decode.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

using nlohmann::json;

class FlowTest : public ::testing::Test {
 protected:
  // One converter, so a long job ahead in the queue holds the next one back while a test
  // subscribes to its events.
  static void SetUpTestSuite() {
    server_ = ServerProcess::Start(NewDataDir(), {"--workers", "1"});
    client_ = std::make_unique<HttpClient>(server_->base_url());
  }
  static void TearDownTestSuite() {
    client_.reset();
    server_.reset();
  }
  static std::unique_ptr<ServerProcess> server_;
  static std::unique_ptr<HttpClient> client_;
};
std::unique_ptr<ServerProcess> FlowTest::server_;
std::unique_ptr<HttpClient> FlowTest::client_;

TEST_F(FlowTest, RegisterLoginUploadFollowDownloadAndListen) {
  const HttpClient& client = *client_;
  // Register and sign in by hand: the answers' shapes are part of the API.
  const std::string username = UniqueName("ada");
  const std::string password = "correct horse battery staple";
  HttpResponse reg =
      client.PostJson("/v1/auth/register", {{"username", username}, {"password", password}});
  ASSERT_EQ(reg.status, 201) << reg.Describe();
  EXPECT_EQ(reg.Json().value("username", ""), username);
  EXPECT_FALSE(reg.Json().value("id", "").empty());

  HttpRequest login;
  login.method = "POST";
  login.target = "/v1/auth/login";
  login.basic = {{username, password}};
  HttpResponse signed_in = client.Send(login);
  ASSERT_EQ(signed_in.status, 200) << signed_in.Describe();
  EXPECT_EQ(signed_in.Header("Cache-Control").value_or(""), "no-store");
  json token_json = signed_in.Json();
  ASSERT_TRUE(token_json["access_token"].is_string()) << token_json;
  EXPECT_EQ(token_json.value("token_type", ""), "Bearer");
  ASSERT_TRUE(token_json["expires_in"].is_number_integer()) << token_json;
  EXPECT_EQ(token_json["expires_in"].get<int>(), 3600);
  Account me{username, password, token_json["access_token"].get<std::string>()};
  // A compact JWS: three base64url parts.
  EXPECT_EQ(std::count(me.token.begin(), me.token.end(), '.'), 2);

  // A long job first: with one converter, ours waits in the queue until we are subscribed.
  json blocker = UploadJob(client, me, LongAudio());
  WaitForStatus(client, me, blocker["id"], "converting");

  const std::filesystem::path source = TonesVideo25s();
  HttpResponse uploaded = Upload(client, me, source, "Café tour.mp4");
  ASSERT_EQ(uploaded.status, 202) << uploaded.Describe();
  json job = uploaded.Json();
  const std::string id = job.value("id", "");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(uploaded.Header("Location").value_or(""), "/v1/jobs/" + id);
  EXPECT_EQ(job.value("status", ""), "queued");
  EXPECT_EQ(job["input"].value("filename", ""), "Café tour.mp4");
  EXPECT_EQ(job["input"].value("size", uint64_t{0}), std::filesystem::file_size(source));
  EXPECT_TRUE(job["output"].is_null());

  // Follow the job; once subscribed, cancel the blocker so ours starts.
  bool deleted_blocker = false;
  SseResult stream =
      client.ReadEvents("/v1/jobs/" + id + "/events", me.token, 60s, [&](const SseEvent&) {
        if (!deleted_blocker) {
          deleted_blocker = true;
          HttpResponse d = client.Delete("/v1/jobs/" + blocker["id"].get<std::string>(), me.token);
          EXPECT_EQ(d.status, 204) << d.Describe();
        }
        return true;
      });
  ASSERT_EQ(stream.response.status, 200) << stream.response.Describe();
  EXPECT_TRUE(stream.ended_by_server) << "the stream should end after the final status";
  EXPECT_EQ(stream.response.Header("Content-Type").value_or(""), "text/event-stream");
  ASSERT_FALSE(stream.events.empty());
  EXPECT_EQ(stream.events.front().event, "status");
  EXPECT_EQ(json::parse(stream.events.front().data).value("status", ""), "queued");

  std::vector<double> progress;
  bool saw_converting = false;
  for (const SseEvent& e : stream.events) {
    json data = json::parse(e.data);
    if (e.event == "progress") {
      EXPECT_EQ(data.value("id", ""), id);
      progress.push_back(data.value("progress", -1.0));
    }
    if (e.event == "status" && data.value("status", "") == "converting") saw_converting = true;
  }
  EXPECT_TRUE(saw_converting);
  ASSERT_GE(progress.size(), 3u) << "a 25 s input should report progress several times";
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_GE(progress.front(), 0.0);
  EXPECT_GT(progress.back(), 0.9);
  EXPECT_LE(progress.back(), 1.0);
  ASSERT_EQ(stream.events.back().event, "status");
  json final_status = json::parse(stream.events.back().data);
  EXPECT_EQ(final_status.value("status", ""), "done");

  // The record.
  HttpResponse got = client.Get("/v1/jobs/" + id, me.token);
  ASSERT_EQ(got.status, 200) << got.Describe();
  job = got.Json();
  EXPECT_EQ(job.value("status", ""), "done");
  EXPECT_DOUBLE_EQ(job.value("progress", 0.0), 1.0);
  EXPECT_TRUE(job["error"].is_null());
  ASSERT_TRUE(job["output"].is_object()) << job;
  const uint64_t size = job["output"].value("size", uint64_t{0});
  const double duration = job["output"].value("duration", 0.0);
  EXPECT_GT(size, 10000u);
  EXPECT_NEAR(duration, kTonesVideoSeconds, 0.05);
  EXPECT_EQ(job["links"].value("mp3", ""), "/v1/jobs/" + id + "/mp3");

  // The blocker was cancelled and deleted.
  EXPECT_EQ(client.Get("/v1/jobs/" + blocker["id"].get<std::string>(), me.token).status, 404);

  // Download and listen with an independent decoder.
  HttpResponse mp3 = client.Get("/v1/jobs/" + id + "/mp3", me.token);
  ASSERT_EQ(mp3.status, 200) << mp3.Describe();
  EXPECT_EQ(mp3.Header("Content-Type").value_or(""), "audio/mpeg");
  EXPECT_EQ(mp3.Header("Content-Length").value_or(""), std::to_string(size));
  ASSERT_EQ(mp3.body.size(), size);
  const std::filesystem::path file = vmp3::test::TempDir() / "out.mp3";
  WriteFile(file, mp3.body);

  auto src = vmp3::test::DecodeAudio(source, {.keep_pcm = false});
  ASSERT_TRUE(src) << src.error().message;
  auto out = vmp3::test::DecodeAudio(file, {.strict = true});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->container, "mp3");
  EXPECT_EQ(out->codec, "mp3");
  EXPECT_EQ(out->sample_rate, 44100);
  ASSERT_EQ(out->channels, 2);
  EXPECT_EQ(out->decode_errors, 0);
  EXPECT_EQ(out->samples, src->samples) << "gapless: a player gets exactly the source's samples";
  EXPECT_NEAR(out->seconds(), kTonesVideoSeconds, 0.05);
  EXPECT_NEAR(duration, out->seconds(), 0.01);
  EXPECT_NEAR(vmp3::test::DominantFrequency(out->pcm[0], out->sample_rate), 440, 2);
  EXPECT_NEAR(vmp3::test::DominantFrequency(out->pcm[1], out->sample_rate), 880, 2);
}

// DELETE while converting: subscribers see "cancelled", the converter stops, nothing is left.
TEST_F(FlowTest, DeletingAConvertingJobEndsItsStreamAndLeavesNothing) {
  const HttpClient& client = *client_;
  Account me = CreateAccount(client);
  json job = UploadJob(client, me, LongAudio());
  const std::string id = job["id"];
  bool deleted = false;
  SseResult stream =
      client.ReadEvents("/v1/jobs/" + id + "/events", me.token, 60s, [&](const SseEvent& e) {
        if (!deleted && e.event == "progress") {
          deleted = true;
          HttpResponse d = client.Delete("/v1/jobs/" + id, me.token);
          EXPECT_EQ(d.status, 204) << d.Describe();
        }
        return true;
      });
  ASSERT_TRUE(deleted) << "no progress event before the end";
  EXPECT_TRUE(stream.ended_by_server);
  ASSERT_FALSE(stream.events.empty());
  EXPECT_EQ(stream.events.back().event, "status");
  EXPECT_EQ(json::parse(stream.events.back().data).value("status", ""), "cancelled");
  EXPECT_EQ(client.Get("/v1/jobs/" + id, me.token).status, 404);
  EXPECT_EQ(client.Delete("/v1/jobs/" + id, me.token).status, 404) << "deleted twice";

  // The converter notices within its progress interval and drops its partial output.
  auto leftovers = [&] {
    std::vector<std::string> found;
    for (const auto& f : ObjectFiles(server_->data_dir()))
      if (f.find(id) != std::string::npos || f.rfind(".tmp/", 0) == 0) found.push_back(f);
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(server_->data_dir() / "spool", ec))
      found.push_back("spool/" + e.path().filename().string());
    return found;
  };
  for (int i = 0; i < 100 && !leftovers().empty(); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
  // The converter is free again: a new job finishes.
  json next = UploadJob(client, me, vmp3::test::Fixture("mp4_h264_aac"));
  EXPECT_EQ(WaitForEnd(client, me, next["id"], 30s).value("status", ""), "done");
}

// The same flow for a short upload with no subscriber: GET polling sees it end done.
TEST_F(FlowTest, ShortVideoEndsDoneWithoutSubscribers) {
  const HttpClient& client = *client_;
  Account me = CreateAccount(client);
  json job = UploadJob(client, me, vmp3::test::Fixture("mp4_h264_aac"));
  json done = WaitForEnd(client, me, job["id"]);
  EXPECT_EQ(done.value("status", ""), "done") << done;
  // A late subscriber gets the final status at once, and the stream ends.
  SseResult stream =
      client.ReadEvents("/v1/jobs/" + job["id"].get<std::string>() + "/events", me.token, 10s);
  ASSERT_EQ(stream.response.status, 200);
  EXPECT_TRUE(stream.ended_by_server);
  ASSERT_EQ(stream.events.size(), 1u);
  EXPECT_EQ(json::parse(stream.events[0].data).value("status", ""), "done");
}

}  // namespace
}  // namespace vmp3::itest
