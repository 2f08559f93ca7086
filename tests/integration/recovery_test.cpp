// Crashes, restarts and time passing: work survives a kill -9, a SIGTERM hands it back, and
// expired jobs are swept from the database and the disk.
#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <memory>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

using nlohmann::json;

TEST(RecoveryTest, KillDashNineDuringConversionThenRestartFinishesTheJob) {
  const auto data_dir = NewDataDir();
  const std::vector<std::string> args = {"--workers", "1", "--lease", "5"};
  auto server = ServerProcess::Start(data_dir, args);
  HttpClient client(server->base_url());
  Account account = CreateAccount(client, "crash");
  json job = UploadJob(client, account, LongAudio());
  const std::string id = job["id"];
  json converting = WaitForStatus(client, account, id, "converting");
  ExitInfo killed = server->Kill();
  EXPECT_FALSE(killed.exited);
  EXPECT_EQ(killed.signal, SIGKILL);

  server = ServerProcess::Start(data_dir, args);
  HttpClient again(server->base_url());
  // The token survives the restart: same key on disk.
  HttpResponse after = again.Get("/v1/jobs/" + id, account.token);
  ASSERT_EQ(after.status, 200) << after.Describe();
  EXPECT_NE(after.Json().value("status", ""), "done") << "it was killed mid-conversion";
  // The lease (5 s) runs out, the job is delivered again and finishes.
  json end = WaitForEnd(again, account, id, 90s);
  ASSERT_EQ(end.value("status", ""), "done") << end << "\n" << server->Log();
  EXPECT_NEAR(end["output"].value("duration", 0.0), kLongAudioSeconds, 0.05);
  ExpectMp3(again, account, end, kLongAudioSeconds);
  // Storage holds exactly the MP3: the input was removed, no partial objects linger.
  EXPECT_EQ(ObjectFiles(data_dir), std::vector<std::string>{"outputs/" + id + ".mp3"});
}

// A job whose converter dies on every attempt (a file that crashes the decoder, an OOM kill)
// must end "failed" once the queue gives up on it, not stay "converting" forever.
// The queue dead-letters it when the last attempt's lease runs out; the converter's dead-letter
// sweep records the job as failed.
TEST(RecoveryTest, JobThatKillsItsConverterEveryTimeEndsFailed) {
  const auto data_dir = NewDataDir();
  const std::vector<std::string> args = {"--workers", "1", "--lease", "5", "--job-attempts", "1"};
  auto server = ServerProcess::Start(data_dir, args);
  HttpClient client(server->base_url());
  Account account = CreateAccount(client, "poison");
  json job = UploadJob(client, account, LongAudio());
  const std::string id = job["id"];
  WaitForStatus(client, account, id, "converting");
  server->Kill();
  server = ServerProcess::Start(data_dir, args);
  HttpClient again(server->base_url());
  json end = WaitForEnd(again, account, id, 30s);
  EXPECT_EQ(end.value("status", ""), "failed") << end;
  EXPECT_FALSE(end["error"].is_null()) << end;
}

TEST(RecoveryTest, SigtermDuringConversionDrainsAndHandsTheJobBack) {
  const auto data_dir = NewDataDir();
  // A long lease: if the job were not handed back on shutdown, the restarted server would have
  // to wait a minute for it.
  const std::vector<std::string> args = {"--workers", "1", "--lease", "60", "--drain", "5"};
  auto server = ServerProcess::Start(data_dir, args);
  HttpClient client(server->base_url());
  Account account = CreateAccount(client, "term");
  json job = UploadJob(client, account, LongAudio());
  const std::string id = job["id"];
  WaitForStatus(client, account, id, "converting");

  // A client following the job: its stream must end when the server drains, not hang.
  auto follower = std::async(std::launch::async, [&] {
    return client.ReadEvents("/v1/jobs/" + id + "/events", account.token, 30s);
  });
  std::this_thread::sleep_for(200ms);  // let it subscribe
  ExitInfo stopped = server->Terminate(30s);
  EXPECT_TRUE(stopped.exited) << "killed by signal " << stopped.signal;
  EXPECT_EQ(stopped.exit_code, 0);
  EXPECT_FALSE(stopped.forced);
  EXPECT_LT(stopped.seconds, 5 + 2) << "shutdown took longer than the drain bound";
  SseResult stream = follower.get();
  EXPECT_FALSE(stream.timed_out) << "the event stream was left hanging by the shutdown";
  EXPECT_EQ(stream.response.status, 200);

  auto started = std::chrono::steady_clock::now();
  server = ServerProcess::Start(data_dir, args);
  HttpClient again(server->base_url());
  json end = WaitForEnd(again, account, id, 40s);
  ASSERT_EQ(end.value("status", ""), "done") << end;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 40s)
      << "the job waited for its lease: it was not handed back";
  ExpectMp3(again, account, end, kLongAudioSeconds);
}

TEST(RecoveryTest, JanitorRemovesExpiredJobsAndTheirFiles) {
  const auto data_dir = NewDataDir();
  auto server = ServerProcess::Start(data_dir, {"--retention", "60"});
  HttpClient client(server->base_url());
  Account account = CreateAccount(client, "janitor");
  json job = UploadJob(client, account, vmp3::test::Fixture("mp4_h264_aac"));
  const std::string id = job["id"];
  json end = WaitForEnd(client, account, id);
  ASSERT_EQ(end.value("status", ""), "done");
  ASSERT_EQ(ObjectFiles(data_dir), std::vector<std::string>{"outputs/" + id + ".mp3"});
  // Expiry is a minute after it finished.
  EXPECT_NEAR(end.value("expires_at", 0.0) - end.value("finished_at", 0.0), 60, 1);
  ExitInfo stopped = server->Terminate();
  ASSERT_TRUE(stopped.exited);

  // An hour later.
  server = ServerProcess::Start(
      data_dir, {"--retention", "60", "--clock-offset", "3600", "--janitor-interval", "1"});
  HttpClient later(server->base_url());
  account.token = Login(later, account);  // the old token expired an hour ago... on this clock
  HttpResponse gone;
  for (int i = 0; i < 100; ++i) {
    gone = later.Get("/v1/jobs/" + id, account.token);
    if (gone.status == 404) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(gone.status, 404) << gone.Describe();
  EXPECT_EQ(later.Get("/v1/jobs/" + id + "/mp3", account.token).status, 404);
  EXPECT_TRUE(ObjectFiles(data_dir).empty()) << "objects of the expired job are still on disk";

  // A job made now is not swept (its minute has not passed) across several sweeps.
  json fresh = UploadJob(later, account, vmp3::test::Fixture("mp4_h264_aac"));
  ASSERT_EQ(WaitForEnd(later, account, fresh["id"]).value("status", ""), "done");
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(later.Get("/v1/jobs/" + fresh["id"].get<std::string>(), account.token).status, 200);
}

// The orphan sweep: objects no job owns (or that an ended job no longer needs), older than the
// grace period, are removed by the janitor; young ones and the MP3s of done jobs stay.
TEST(RecoveryTest, JanitorRemovesObjectsNoJobOwns) {
  const auto data_dir = NewDataDir();
  const std::vector<std::string> args = {"--orphan-grace", "60", "--janitor-interval", "1"};
  auto server = ServerProcess::Start(data_dir, args);
  HttpClient client(server->base_url());
  Account account = CreateAccount(client, "orphans");
  json job = UploadJob(client, account, vmp3::test::Fixture("mp4_h264_aac"));
  const std::string id = job["id"];
  ASSERT_EQ(WaitForEnd(client, account, id).value("status", ""), "done");
  const std::string kept = "outputs/" + id + ".mp3";
  // What a crash or a failed removal leaves: an upload whose job was never recorded, an MP3
  // whose record is gone, and the input of the done job that was not removed.
  const std::vector<std::string> orphans = {"inputs/aaaaaaaaaaaaaaaaaaaaaaaaaa",
                                            "outputs/bbbbbbbbbbbbbbbbbbbbbbbbbb.mp3",
                                            "inputs/" + id};
  for (const std::string& key : orphans) PutObject(data_dir, key, "left behind");
  // Young: several sweeps leave them alone.
  std::this_thread::sleep_for(2500ms);
  auto young = ObjectFiles(data_dir);
  for (const std::string& key : orphans)
    EXPECT_NE(std::find(young.begin(), young.end(), key), young.end()) << key << " went early";
  server->Terminate();

  // Two minutes later on the service's clock: past the grace period.
  std::vector<std::string> later_args = args;
  later_args.insert(later_args.end(), {"--clock-offset", "120"});
  server = ServerProcess::Start(data_dir, later_args);
  std::vector<std::string> left;
  for (int i = 0; i < 100; ++i) {
    left = ObjectFiles(data_dir);
    if (left == std::vector<std::string>{kept}) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(left, std::vector<std::string>{kept});
  HttpClient later(server->base_url());
  account.token = Login(later, account);
  ExpectMp3(later, account, later.Get("/v1/jobs/" + id, account.token).Json(), 3.0);
}

}  // namespace
}  // namespace vmp3::itest
