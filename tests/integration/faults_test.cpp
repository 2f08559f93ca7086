// Faults in the distributed mode: every role its own process on the real RabbitMQ, Redis and
// Ceph RGW, while a converter is killed and each of those servers is restarted or stopped. After
// each, nothing is lost: every job ends done exactly once (one "done" in all the converters' logs),
// its MP3 decodes in full, and storage holds exactly the outputs.
//
// These tests stop and start the servers `make test` runs (their directory comes in
// VMP3_TEST_SERVERS_DIR, their ports from its ports.env; scripts/servers/*.sh do the work), so
// ctest runs them alone (RUN_SERIAL). They skip unless VMP3_IT_BACKENDS=distributed.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <thread>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/fixtures.hpp"
#include "support/test_servers.hpp"

namespace vmp3::itest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kNeedsServers[] =
    "fault tests need the real servers: run with VMP3_IT_BACKENDS=distributed (ctest -L "
    "integration-distributed)";

using test::TestServers;

// The servers `make test` runs (VMP3_TEST_SERVERS_DIR).
TestServers Servers() {
  auto servers = TestServers::FromEnvironment();
  if (!servers) {
    throw std::runtime_error(
        "VMP3_TEST_SERVERS_DIR is not set: run the fault tests through `make test`, or export "
        "the directory given to `scripts/test-servers start`");
  }
  return *servers;
}

// A server stopped for a while: started again when the scope ends, even when an assertion
// failed meanwhile, so the next test finds it running.
class Outage {
 public:
  Outage(TestServers& servers, std::string name) : servers_(servers), name_(std::move(name)) {
    servers_.Stop(name_);
  }
  ~Outage() {
    if (ended_) return;
    try {
      servers_.Start(name_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  }
  Outage(const Outage&) = delete;
  Outage& operator=(const Outage&) = delete;

  void End() {
    ended_ = true;
    servers_.Start(name_);
  }

 private:
  TestServers& servers_;
  std::string name_;
  bool ended_ = false;
};

// One deployment with every role in its own process on the same backends (one data directory,
// so one key and queue prefix): auth, an API process (upload, metadata, download) and converters
// started on demand. Converters are kept (stopped or not) so their logs can be read at the end.
class Cluster {
 public:
  Cluster() : data_dir_(NewDataDir()) {
    auth_ = ServerProcess::Start(data_dir_, {"--roles", "auth"});
    api_ = ServerProcess::Start(
        data_dir_, {"--roles", "upload,metadata,download", "--auth-url", auth_->base_url()});
  }

  // A converter process with one worker thread.
  ServerProcess& StartConverter(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--roles", "converter",  "--workers",
                                     "1",       "--auth-url", auth_->base_url()};
    args.insert(args.end(), extra.begin(), extra.end());
    converters_.push_back(ServerProcess::Start(data_dir_, args));
    return *converters_.back();
  }

  HttpClient auth() const { return HttpClient(auth_->base_url()); }
  HttpClient api() const { return HttpClient(api_->base_url()); }
  const fs::path& data_dir() const { return data_dir_; }

  // How many times any converter of this cluster recorded the job as done.
  int TimesDone(const std::string& id) const {
    int count = 0;
    const std::string line = fmt::format("job {}: done (", id);
    for (const auto& converter : converters_) {
      std::string log = converter->Log();
      for (size_t at = log.find(line); at != std::string::npos; at = log.find(line, at + 1))
        ++count;
    }
    return count;
  }

  // Every converter's log, for failure messages.
  std::string ConverterLogs() const {
    std::string all;
    for (const auto& converter : converters_)
      all += "--- " + converter->log_path().string() + "\n" + converter->Log();
    return all;
  }

 private:
  fs::path data_dir_;
  std::unique_ptr<ServerProcess> auth_;
  std::unique_ptr<ServerProcess> api_;
  std::vector<std::unique_ptr<ServerProcess>> converters_;  // destroyed (stopped) first
};

std::vector<std::string> Outputs(std::vector<std::string> ids) {
  std::vector<std::string> keys;
  for (const auto& id : ids) keys.push_back("outputs/" + id + ".mp3");
  std::sort(keys.begin(), keys.end());
  return keys;
}

using test::SecondsSince;

TEST(FaultsTest, ConverterKilledMidJobIsReplacedByAnother) {
  if (!DistributedBackends()) GTEST_SKIP() << kNeedsServers;
  Cluster cluster;
  HttpClient api = cluster.api();
  Account account = CreateAccount(cluster.auth(), "kill");
  ServerProcess& first = cluster.StartConverter();
  const std::string id = UploadJob(api, account, LongAudio())["id"];
  WaitForStatus(api, account, id, "converting");
  // Only now a second converter: the job is the first one's.
  ServerProcess& second = cluster.StartConverter();
  ExitInfo killed = first.Kill();
  EXPECT_EQ(killed.signal, SIGKILL);
  EXPECT_EQ(cluster.TimesDone(id), 0) << "the job finished before the kill: nothing was tested";

  // The broker sees the connection die and delivers the job to the second converter.
  json end = WaitForEnd(api, account, id, 120s);
  ExpectMp3(api, account, end, kLongAudioSeconds);
  EXPECT_EQ(cluster.TimesDone(id), 1) << cluster.ConverterLogs();
  EXPECT_NE(second.Log().find(fmt::format("job {}: converting (attempt 2)", id)), std::string::npos)
      << second.Log();
  EXPECT_EQ(ObjectFiles(cluster.data_dir()), Outputs({id}));
}

TEST(FaultsTest, JobsQueuedAcrossARabbitMqRestartEachFinishOnce) {
  if (!DistributedBackends()) GTEST_SKIP() << kNeedsServers;
  TestServers servers = Servers();
  Cluster cluster;
  HttpClient api = cluster.api();
  Account account = CreateAccount(cluster.auth(), "amqp");
  std::vector<std::string> ids;

  // One job done before, by a converter that then stops: an acknowledged job must not come back.
  ServerProcess& before = cluster.StartConverter();
  ids.push_back(UploadJob(api, account, TonesVideo25s())["id"]);
  ASSERT_EQ(WaitForEnd(api, account, ids[0]).value("status", ""), "done");
  ExitInfo stopped = before.Terminate();
  EXPECT_TRUE(stopped.exited && stopped.exit_code == 0) << before.Log();

  for (int i = 0; i < 3; ++i) ids.push_back(UploadJob(api, account, TonesVideo25s())["id"]);
  {
    Outage outage(servers, "rabbitmq");
    // While the broker is down an upload cannot be queued: refused as retryable, nothing kept.
    HttpResponse refused = Upload(api, account, TonesVideo25s());
    EXPECT_EQ(refused.status, 503) << refused.Describe();
    EXPECT_EQ(refused.Header("Content-Type").value_or(""), "application/problem+json");
    outage.End();
  }
  // The API process's broker connection died with the broker: the next upload reconnects.
  ids.push_back(UploadJob(api, account, TonesVideo25s())["id"]);
  for (const auto& id : ids) {
    HttpResponse r = api.Get("/v1/jobs/" + id, account.token);
    ASSERT_EQ(r.status, 200) << r.Describe();
  }

  cluster.StartConverter();
  for (const auto& id : ids) {
    json end = WaitForEnd(api, account, id, 60s);
    ExpectMp3(api, account, end, kTonesVideoSeconds);
    EXPECT_EQ(cluster.TimesDone(id), 1) << id << "\n" << cluster.ConverterLogs();
  }
  // The jobs list holds exactly these: the refused upload left no job behind.
  HttpResponse list = api.Get("/v1/jobs?limit=100", account.token);
  ASSERT_EQ(list.status, 200) << list.Describe();
  EXPECT_EQ(list.Json()["jobs"].size(), ids.size()) << list.body;
  EXPECT_EQ(ObjectFiles(cluster.data_dir()), Outputs(ids));
}

TEST(FaultsTest, AResourceAlarmRefusesUploadsAtOnceAndLeavesNothingBehind) {
  if (!DistributedBackends()) GTEST_SKIP() << kNeedsServers;
  TestServers servers = Servers();
  Cluster cluster;
  HttpClient api = cluster.api();
  Account account = CreateAccount(cluster.auth(), "alarm");
  // A job before the alarm: the upload process's publishing connection is open and idle.
  const std::string before = UploadJob(api, account, TonesVideo25s())["id"];
  const std::vector<std::string> objects = ObjectFiles(cluster.data_dir());
  {
    test::MemoryAlarm alarm(servers);
    // RabbitMQ holds publishes in a memory or disk alarm rather than refusing them: the upload
    // must not wait for a confirm that cannot come, but answer 503 at once, keeping nothing.
    for (int i = 0; i < 2; ++i) {
      auto start = Clock::now();
      HttpResponse refused = Upload(api, account, TonesVideo25s());
      const double seconds = SecondsSince(start);
      EXPECT_EQ(refused.status, 503) << refused.Describe();
      EXPECT_EQ(refused.Header("Content-Type").value_or(""), "application/problem+json");
      EXPECT_NE(refused.body.find("resource alarm is active"), std::string::npos) << refused.body;
      EXPECT_LT(seconds, 6.0) << "an upload in a resource alarm must not hang";
      std::printf("[ measured ] upload #%d in a resource alarm: %d after %.3f s\n", i + 1,
                  refused.status, seconds);
    }
    // Nothing half-created: no job record without its queue message, no input without a job.
    HttpResponse list = api.Get("/v1/jobs?limit=100", account.token);
    ASSERT_EQ(list.status, 200) << list.Describe();
    EXPECT_EQ(list.Json()["jobs"].size(), 1u) << "a refused upload left a job: " << list.body;
    EXPECT_EQ(ObjectFiles(cluster.data_dir()), objects) << "a refused upload left an object";
    alarm.End();
  }
  // The alarm cleared: uploads are taken again, and both jobs convert once.
  const std::string after = UploadJob(api, account, TonesVideo25s())["id"];
  cluster.StartConverter();
  for (const auto& id : {before, after}) {
    json end = WaitForEnd(api, account, id, 60s);
    ExpectMp3(api, account, end, kTonesVideoSeconds);
    EXPECT_EQ(cluster.TimesDone(id), 1) << id << "\n" << cluster.ConverterLogs();
  }
  HttpResponse list = api.Get("/v1/jobs?limit=100", account.token);
  ASSERT_EQ(list.status, 200) << list.Describe();
  EXPECT_EQ(list.Json()["jobs"].size(), 2u) << list.body;
  EXPECT_EQ(ObjectFiles(cluster.data_dir()), Outputs({before, after}));
}

TEST(FaultsTest, AConverterStoppedInAResourceAlarmGivesItsJobBack) {
  if (!DistributedBackends()) GTEST_SKIP() << kNeedsServers;
  TestServers servers = Servers();
  Cluster cluster;
  HttpClient api = cluster.api();
  Account account = CreateAccount(cluster.auth(), "giveback");
  ServerProcess& first = cluster.StartConverter();
  const std::string id = UploadJob(api, account, LongAudio())["id"];
  WaitForStatus(api, account, id, "converting");
  // Frozen while the alarm is raised (rabbitmqctl may take seconds, long enough for the
  // conversion to finish otherwise), so the stop below really lands mid-conversion.
  ASSERT_EQ(::kill(first.pid(), SIGSTOP), 0);
  {
    test::MemoryAlarm alarm(servers);
    ASSERT_EQ(::kill(first.pid(), SIGCONT), 0);
    // Stopping hands the job back by republishing it, which the alarm blocks: the converter
    // must give the delivery back to the broker instead, and still stop promptly.
    ExitInfo stopped = first.Terminate();
    EXPECT_TRUE(stopped.exited && stopped.exit_code == 0) << first.Log();
    EXPECT_LT(stopped.seconds, 10.0) << first.Log();
    std::printf("[ measured ] converter stopped in a resource alarm after %.1f s\n",
                stopped.seconds);
    EXPECT_EQ(cluster.TimesDone(id), 0) << "the job finished before the stop: nothing was tested";
    const std::string log = first.Log();
    EXPECT_NE(
        log.find(fmt::format("job {}: queue release failed: RabbitMQ refuses new messages", id)),
        std::string::npos)
        << log;
    EXPECT_NE(log.find(fmt::format("job {}: could not move it in the queue; giving it back", id)),
              std::string::npos)
        << log;
    alarm.End();
  }
  // Another converter gets it (the broker counted the lost delivery) and converts it, once.
  ServerProcess& second = cluster.StartConverter();
  json end = WaitForEnd(api, account, id, 120s);
  ExpectMp3(api, account, end, kLongAudioSeconds);
  EXPECT_NE(second.Log().find(fmt::format("job {}: converting (attempt 2)", id)), std::string::npos)
      << second.Log();
  // The copy the blocked release had in flight arrives too, and must not convert it again.
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(cluster.TimesDone(id), 1) << cluster.ConverterLogs();
  EXPECT_EQ(ObjectFiles(cluster.data_dir()), Outputs({id}));
}

TEST(FaultsTest, RedisRestartsWhileIdleAndDuringAConversion) {
  if (!DistributedBackends()) GTEST_SKIP() << kNeedsServers;
  TestServers servers = Servers();
  Cluster cluster;
  HttpClient api = cluster.api();
  Account account = CreateAccount(cluster.auth(), "redis");
  cluster.StartConverter();
  // Every process now holds pooled Redis connections.
  const std::string idle_id = UploadJob(api, account, TonesVideo25s())["id"];
  ASSERT_EQ(WaitForEnd(api, account, idle_id).value("status", ""), "done");

  // Idle: the very first calls after the restart work (closed connections are not reused).
  {
    Outage outage(servers, "redis");
    outage.End();
  }
  HttpResponse got = api.Get("/v1/jobs/" + idle_id, account.token);
  ASSERT_EQ(got.status, 200) << got.Describe();
  EXPECT_EQ(got.Json().value("status", ""), "done") << "the record did not survive the restart";
  EXPECT_NO_THROW(Login(cluster.auth(), account)) << "login failed after the restart";

  // During a conversion: progress writes fail for a moment; the job still ends done, once.
  const std::string id = UploadJob(api, account, LongAudio())["id"];
  WaitForStatus(api, account, id, "converting");
  {
    Outage outage(servers, "redis");
    outage.End();
  }
  EXPECT_EQ(cluster.TimesDone(id), 0) << "the job finished before the restart: nothing was tested";
  json end = WaitForEnd(api, account, id, 120s);
  ExpectMp3(api, account, end, kLongAudioSeconds);
  EXPECT_EQ(cluster.TimesDone(idle_id), 1) << cluster.ConverterLogs();
  EXPECT_EQ(cluster.TimesDone(id), 1) << cluster.ConverterLogs();
  EXPECT_EQ(ObjectFiles(cluster.data_dir()), Outputs({idle_id, id}));
}

TEST(FaultsTest, ObjectStorageOutageRefusesUploadsAndDelaysConversions) {
  if (!DistributedBackends()) GTEST_SKIP() << kNeedsServers;
  TestServers servers = Servers();
  Cluster cluster;
  HttpClient api = cluster.api();
  Account account = CreateAccount(cluster.auth(), "s3");
  cluster.StartConverter();
  // One job converting when storage goes away, one queued behind it (one worker).
  const std::string converting = UploadJob(api, account, LongAudio())["id"];
  WaitForStatus(api, account, converting, "converting");
  const std::string queued = UploadJob(api, account, TonesVideo25s())["id"];
  {
    auto down = Clock::now();
    Outage outage(servers, "rgw");
    EXPECT_EQ(cluster.TimesDone(converting), 0)
        << "the job finished before the outage: nothing was tested";
    // An upload while storage is down: refused as retryable, with nothing half-stored.
    HttpResponse refused = Upload(api, account, TonesVideo25s());
    EXPECT_EQ(refused.status, 503) << refused.Describe();
    EXPECT_EQ(refused.Header("Content-Type").value_or(""), "application/problem+json");
    // A second converter takes the queued job in the outage: its conversion cannot read the
    // input and must wait for storage rather than use up the job's attempts.
    ServerProcess& late = cluster.StartConverter();
    WaitForStatus(api, account, queued, "converting", 30s);
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::max<int64_t>(0, static_cast<int64_t>((20 - SecondsSince(down)) * 1000))));
    EXPECT_NE(late.Log().find(fmt::format("job {}: a backend is unavailable", queued)),
              std::string::npos)
        << late.Log();
    for (const auto& id : {converting, queued}) {
      HttpResponse r = api.Get("/v1/jobs/" + id, account.token);
      ASSERT_EQ(r.status, 200) << r.Describe();
      EXPECT_NE(r.Json().value("status", ""), "done") << r.body;
      EXPECT_NE(r.Json().value("status", ""), "failed") << r.body;
    }
    std::printf("[ faults   ] storage down for %.1f s\n", SecondsSince(down));
    outage.End();
  }
  for (const auto& [id, seconds] :
       {std::pair{converting, kLongAudioSeconds}, std::pair{queued, kTonesVideoSeconds}}) {
    json end = WaitForEnd(api, account, id, 120s);
    ExpectMp3(api, account, end, seconds);
    EXPECT_EQ(cluster.TimesDone(id), 1) << id << "\n" << cluster.ConverterLogs();
  }
  HttpResponse list = api.Get("/v1/jobs?limit=100", account.token);
  ASSERT_EQ(list.status, 200) << list.Describe();
  EXPECT_EQ(list.Json()["jobs"].size(), 2u) << "the refused upload left a job: " << list.body;
  // Exactly the two MP3s: no input of the refused upload, no multipart upload left open.
  EXPECT_EQ(ObjectFiles(cluster.data_dir()), Outputs({converting, queued}));
}

TEST(FaultsTest, JobWhoseConverterDiesEveryTimeIsDeadLetteredAndFailed) {
  if (!DistributedBackends()) GTEST_SKIP() << kNeedsServers;
  Cluster cluster;
  HttpClient api = cluster.api();
  Account account = CreateAccount(cluster.auth(), "poison");
  // One attempt: the first converter's death uses it up.
  const std::vector<std::string> args = {"--job-attempts", "1"};
  ServerProcess& first = cluster.StartConverter(args);
  const std::string id = UploadJob(api, account, LongAudio())["id"];
  WaitForStatus(api, account, id, "converting");
  first.Kill();
  ServerProcess& second = cluster.StartConverter(args);

  json end = WaitForEnd(api, account, id, 30s);
  EXPECT_EQ(end.value("status", ""), "failed") << end;
  ASSERT_TRUE(end["error"].is_object()) << end;
  EXPECT_NE(end["error"].value("message", "").find("attempted 1 times"), std::string::npos) << end;
  EXPECT_NE(second.Log().find(fmt::format("queue: job {} dead-lettered", id)), std::string::npos)
      << second.Log();
  EXPECT_EQ(cluster.TimesDone(id), 0) << cluster.ConverterLogs();
  // It stays failed: nothing converts it later.
  std::this_thread::sleep_for(2s);
  HttpResponse again = api.Get("/v1/jobs/" + id, account.token);
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.Json().value("status", ""), "failed") << again.body;
  EXPECT_TRUE(ObjectFiles(cluster.data_dir()).empty()) << "a failed job keeps no objects";
}

}  // namespace
}  // namespace vmp3::itest
