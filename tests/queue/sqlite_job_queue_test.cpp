// What is specific to the SQLite queue (an injectable clock, the file, the factory); the shared
// behaviour is in job_queue_contract_test.cpp.
#include "queue/sqlite_job_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "queue/job_queue_factory.hpp"
#include "support/fixtures.hpp"

namespace vmp3 {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using test::TempDir;

constexpr int64_t kStart = 1'700'000'000'000;  // unix ms

class FakeClockQueue : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteJobQueue> Open(JobQueueOptions options = {}) {
    auto q = SqliteJobQueue::Open(path_, options, {.now_ms = [this] { return now_.load(); }});
    EXPECT_TRUE(q) << q.error().message;
    return q ? std::move(*q) : nullptr;
  }
  std::optional<Delivery> TakeNow(JobQueue& q) {
    auto d = q.Take(0ms);
    EXPECT_TRUE(d) << d.error().message;
    return d ? *d : std::nullopt;
  }

  fs::path path_ = TempDir() / "queue.db";
  std::atomic<int64_t> now_{kStart};
};

TEST_F(FakeClockQueue, LeaseRunsOnTheInjectedClock) {
  auto q = Open();  // 60 s lease
  ASSERT_TRUE(q->Publish("j"));
  ASSERT_TRUE(TakeNow(*q));
  now_ += 59'999;
  EXPECT_FALSE(TakeNow(*q));
  now_ += 1;
  auto again = TakeNow(*q);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->attempt, 2);
}

TEST_F(FakeClockQueue, HeartbeatExtendsFromNow) {
  auto q = Open();
  ASSERT_TRUE(q->Publish("j"));
  auto d = TakeNow(*q);
  ASSERT_TRUE(d);
  now_ += 50'000;
  ASSERT_TRUE(q->Heartbeat(*d));
  now_ += 59'000;  // 109 s after the take, 59 s after the heartbeat
  EXPECT_FALSE(TakeNow(*q));
  now_ += 2'000;
  EXPECT_TRUE(TakeNow(*q));
}

TEST_F(FakeClockQueue, ExpiredButUntakenLeaseCanStillBeAcked) {
  auto q = Open();
  ASSERT_TRUE(q->Publish("j"));
  auto d = TakeNow(*q);
  ASSERT_TRUE(d);
  now_ += 120'000;
  EXPECT_TRUE(q->Ack(*d));
  EXPECT_EQ(q->Depth().value(), 0u);
}

TEST_F(FakeClockQueue, LeasesSurviveARestart) {
  {
    auto q = Open();
    ASSERT_TRUE(q->Publish("j"));
    ASSERT_TRUE(TakeNow(*q));
  }
  now_ += 30'000;
  auto q = Open();
  EXPECT_FALSE(TakeNow(*q)) << "the lease taken before the restart still holds";
  now_ += 31'000;
  auto d = TakeNow(*q);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->attempt, 2);
}

TEST_F(FakeClockQueue, RetryDelayRunsOnTheInjectedClock) {
  auto q = Open();
  ASSERT_TRUE(q->Publish("j"));
  auto d = TakeNow(*q);
  ASSERT_TRUE(d);
  ASSERT_FALSE(q->Retry(*d, 10min).value());
  now_ += 599'999;
  EXPECT_FALSE(TakeNow(*q));
  now_ += 1;
  EXPECT_TRUE(TakeNow(*q));
}

TEST_F(FakeClockQueue, DelayedJobDoesNotBlockLaterOnes) {
  auto q = Open();
  ASSERT_TRUE(q->Publish("first"));
  auto d = TakeNow(*q);
  ASSERT_TRUE(q->Retry(*d, 1min));
  ASSERT_TRUE(q->Publish("second"));
  auto next = TakeNow(*q);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->job_id, "second");
}

// With a poll interval far beyond the test's patience, only the in-process signal can wake the
// waiting Take in time.
TEST(SqliteJobQueue, PublishAndReleaseWakeAWaitingTakeWithoutPolling) {
  auto q = SqliteJobQueue::Open(TempDir() / "q.db", {}, {.poll_interval = 1h});
  ASSERT_TRUE(q) << q.error().message;
  for (bool release : {false, true}) {
    SCOPED_TRACE(release ? "release" : "publish");
    std::optional<Delivery> held;
    if (release) {
      ASSERT_TRUE((*q)->Publish("held"));
      held = (*q)->Take(0ms).value();
      ASSERT_TRUE(held);
    }
    std::optional<Delivery> got;
    auto start = std::chrono::steady_clock::now();
    std::thread taker([&] { got = (*q)->Take(30s).value(); });
    std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(release ? (*q)->Release(*held) : (*q)->Publish("new"));
    taker.join();
    ASSERT_TRUE(got);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    ASSERT_TRUE((*q)->Ack(*got));
  }
}

// A delayed retry becomes visible at its time, not at the next poll.
TEST(SqliteJobQueue, WaitingTakeWakesWhenADelayRunsOut) {
  auto q = SqliteJobQueue::Open(TempDir() / "q.db", {}, {.poll_interval = 1h});
  ASSERT_TRUE(q) << q.error().message;
  ASSERT_TRUE((*q)->Publish("later"));
  auto d = (*q)->Take(0ms).value();
  ASSERT_TRUE(d);
  ASSERT_TRUE((*q)->Retry(*d, 300ms));
  auto start = std::chrono::steady_clock::now();
  auto again = (*q)->Take(30s);
  ASSERT_TRUE(again && *again);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(SqliteJobQueue, RejectsANonPositivePollInterval) {
  auto q = SqliteJobQueue::Open(TempDir() / "q.db", {}, {.poll_interval = 0ms});
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code, ErrorCode::kInvalidArgument);
}

TEST(SqliteJobQueue, FailsCleanlyOnAFileThatIsNotADatabase) {
  fs::path path = TempDir() / "garbage.db";
  {
    std::ofstream out(path);
    out << std::string(8192, 'x');
  }
  auto q = SqliteJobQueue::Open(path, {});
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message.find("garbage.db"), std::string::npos) << q.error().message;
}

TEST(JobQueueFactory, SqliteDefaultsToQueueDbInTheDataDirectory) {
  fs::path data = TempDir() / "data";
  for (std::string_view url : {"", "sqlite"}) {
    auto q = MakeJobQueue(url, data, {});
    ASSERT_TRUE(q) << q.error().message;
    EXPECT_EQ(q->queue->Describe(), "sqlite://" + (data / "queue.db").string());
    EXPECT_FALSE(q->lifecycle) << "no broker, no lifecycle events";
  }
  EXPECT_TRUE(fs::exists(data / "queue.db"));
}

TEST(JobQueueFactory, SqliteUrlWithAbsolutePath) {
  fs::path path = TempDir() / "sub" / "jobs.db";
  auto q = MakeJobQueue("sqlite://" + path.string(), TempDir(), {});
  ASSERT_TRUE(q) << q.error().message;
  ASSERT_TRUE(q->queue->Publish("x"));
  EXPECT_TRUE(fs::exists(path));
}

TEST(JobQueueFactory, RejectsOtherUrlsWithoutEchoingThem) {
  EXPECT_EQ(MakeJobQueue("sqlite://relative.db", TempDir(), {}).error().code,
            ErrorCode::kInvalidArgument);
  auto kafka = MakeJobQueue("kafka://admin:hunter2@broker:9092/", TempDir(), {});
  ASSERT_FALSE(kafka);
  EXPECT_EQ(kafka.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(kafka.error().message.find("unsupported queue URL"), std::string::npos);
  EXPECT_EQ(kafka.error().message.find("hunter2"), std::string::npos) << kafka.error().message;
  EXPECT_EQ(MakeJobQueue("", TempDir(), {.max_attempts = 0}).error().code,
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vmp3
