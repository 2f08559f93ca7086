// The behaviour every JobQueue must have, run against each backend in job_queue_contract.hpp.
// Lease tests use real short leases (a few hundred ms), since a broker's clock cannot be faked.
#include "queue/job_queue_contract.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace vmp3::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

JobQueueOptions ShortLease(std::chrono::milliseconds lease, int max_attempts = 3) {
  return JobQueueOptions{.lease = lease, .max_attempts = max_attempts};
}

class JobQueueContract : public ::testing::TestWithParam<JobQueueBackend> {
 protected:
  void SetUp() override {
    const JobQueueBackend& backend = GetParam();
    if (!backend.required_env.empty() && std::getenv(backend.required_env.c_str()) == nullptr) {
      GTEST_SKIP() << "set " << backend.required_env << " to test the " << backend.name
                   << " job queue";
    }
    harness_ = backend.make();
  }

  std::unique_ptr<JobQueue> Open(const JobQueueOptions& options = {}) {
    auto queue = harness_->Open(options);
    EXPECT_TRUE(queue) << queue.error().message;
    return queue ? std::move(*queue) : nullptr;
  }

  // The delivery Take returns within `wait`, or nullopt (with a failure recorded on error).
  static std::optional<Delivery> Take(JobQueue& queue, std::chrono::milliseconds wait) {
    auto taken = queue.Take(wait);
    EXPECT_TRUE(taken) << taken.error().message;
    return taken ? *taken : std::nullopt;
  }

  static uint64_t Depth(JobQueue& queue) {
    auto depth = queue.Depth();
    EXPECT_TRUE(depth) << depth.error().message;
    return depth ? *depth : ~uint64_t{0};
  }

  static std::vector<std::string> DeadLetters(JobQueue& queue) {
    auto dead = queue.DeadLetters();
    EXPECT_TRUE(dead) << dead.error().message;
    return dead ? *dead : std::vector<std::string>{};
  }

  std::unique_ptr<JobQueueHarness> harness_;
};

TEST_P(JobQueueContract, PublishTakeAck) {
  auto q = Open();
  ASSERT_TRUE(q);
  EXPECT_EQ(Depth(*q), 0u);
  ASSERT_TRUE(q->Publish("job-1"));
  EXPECT_EQ(Depth(*q), 1u);
  auto d = Take(*q, 5s);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->job_id, "job-1");
  EXPECT_EQ(d->attempt, 1);
  EXPECT_FALSE(d->receipt.empty());
  EXPECT_EQ(Depth(*q), 1u) << "a leased job still counts";
  ASSERT_TRUE(q->Ack(*d));
  EXPECT_EQ(Depth(*q), 0u);
  EXPECT_FALSE(Take(*q, 0ms));
  EXPECT_TRUE(DeadLetters(*q).empty());
}

TEST_P(JobQueueContract, TakesInPublishOrder) {
  auto q = Open();
  ASSERT_TRUE(q);
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(q->Publish(id));
  for (const char* id : {"a", "b", "c"}) {
    auto d = Take(*q, 5s);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->job_id, id);
  }
}

TEST_P(JobQueueContract, PublishingTwiceQueuesTwice) {
  auto q = Open();
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("dup"));
  ASSERT_TRUE(q->Publish("dup"));
  EXPECT_EQ(Depth(*q), 2u);
  auto first = Take(*q, 5s);
  auto second = Take(*q, 5s);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(second->job_id, "dup");
  EXPECT_NE(first->receipt, second->receipt);
  EXPECT_TRUE(q->Ack(*first));
  EXPECT_TRUE(q->Ack(*second));
}

TEST_P(JobQueueContract, RejectsMalformedJobIds) {
  auto q = Open();
  ASSERT_TRUE(q);
  EXPECT_EQ(q->Publish("").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(q->Publish(std::string(201, 'j')).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(q->Publish(std::string(200, 'j')));
}

TEST_P(JobQueueContract, RejectsInvalidOptions) {
  auto no_attempts = harness_->Open(JobQueueOptions{.max_attempts = 0});
  ASSERT_FALSE(no_attempts);
  EXPECT_EQ(no_attempts.error().code, ErrorCode::kInvalidArgument);
  auto no_lease = harness_->Open(JobQueueOptions{.lease = 0ms});
  ASSERT_FALSE(no_lease);
  EXPECT_EQ(no_lease.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(JobQueueContract, TakeWaitsThenReturnsEmpty) {
  auto q = Open();
  ASSERT_TRUE(q);
  auto start = Clock::now();
  EXPECT_FALSE(Take(*q, 300ms));
  auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 3s);
}

TEST_P(JobQueueContract, WaitingTakeWakesOnPublish) {
  auto q = Open();
  ASSERT_TRUE(q);
  std::optional<Delivery> got;
  auto start = Clock::now();
  std::thread taker([&] { got = Take(*q, 10s); });
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(q->Publish("wake"));
  taker.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->job_id, "wake");
  EXPECT_LT(Clock::now() - start, 3s);
}

TEST_P(JobQueueContract, AnotherHandleSeesPublishedJobs) {
  auto producer = Open();
  auto consumer = Open();
  ASSERT_TRUE(producer && consumer);
  std::optional<Delivery> got;
  auto start = Clock::now();
  std::thread taker([&] { got = Take(*consumer, 10s); });
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(producer->Publish("across"));
  taker.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->job_id, "across");
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_TRUE(consumer->Ack(*got));
  EXPECT_EQ(Depth(*producer), 0u);
}

TEST_P(JobQueueContract, ConcurrentTakersNeverShareAJob) {
  constexpr int kJobs = 100;
  auto q1 = Open();
  auto q2 = Open();
  ASSERT_TRUE(q1 && q2);
  for (int i = 0; i < kJobs; ++i) ASSERT_TRUE(q1->Publish("job-" + std::to_string(i)));

  std::mutex mu;
  std::map<std::string, int> taken;  // job id → deliveries
  std::vector<std::thread> takers;
  for (int t = 0; t < 4; ++t) {
    JobQueue* q = t % 2 == 0 ? q1.get() : q2.get();  // two threads per handle
    takers.emplace_back([&, q] {
      for (;;) {
        auto d = Take(*q, 300ms);
        if (!d) return;
        {
          std::lock_guard lock(mu);
          ++taken[d->job_id];
        }
        EXPECT_TRUE(q->Ack(*d));
      }
    });
  }
  for (auto& t : takers) t.join();
  EXPECT_EQ(taken.size(), static_cast<size_t>(kJobs));
  for (const auto& [id, count] : taken) EXPECT_EQ(count, 1) << id << " was delivered twice";
  EXPECT_EQ(Depth(*q1), 0u);
}

TEST_P(JobQueueContract, ExpiredLeaseRedeliversWithTheNextAttempt) {
  if (!harness_->TimedLeases())
    GTEST_SKIP() << "leases are connections here: see TakerThatDiesLosesItsJob";
  auto q = Open(ShortLease(300ms));
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("crashy"));
  auto first = Take(*q, 5s);
  ASSERT_TRUE(first);
  auto taken_at = Clock::now();
  EXPECT_FALSE(Take(*q, 0ms)) << "a leased job is invisible";
  auto second = Take(*q, 5s);
  ASSERT_TRUE(second);
  EXPECT_GE(Clock::now() - taken_at, 250ms);
  EXPECT_EQ(second->job_id, "crashy");
  EXPECT_EQ(second->attempt, 2);
  EXPECT_NE(second->receipt, first->receipt);
  EXPECT_EQ(Depth(*q), 1u);
}

TEST_P(JobQueueContract, StaleDeliveryLosesItsLease) {
  if (!harness_->TimedLeases())
    GTEST_SKIP() << "leases are connections here: see TakerThatDiesLosesItsJob";
  auto q = Open(ShortLease(200ms));
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("slow"));
  auto stale = Take(*q, 5s);
  ASSERT_TRUE(stale);
  auto current = Take(*q, 5s);  // after the lease expired
  ASSERT_TRUE(current);
  EXPECT_EQ(q->Ack(*stale).error().code, ErrorCode::kConflict);
  EXPECT_EQ(q->Heartbeat(*stale).error().code, ErrorCode::kConflict);
  EXPECT_EQ(q->Release(*stale).error().code, ErrorCode::kConflict);
  EXPECT_EQ(q->Retry(*stale, 0ms).error().code, ErrorCode::kConflict);
  EXPECT_EQ(Depth(*q), 1u) << "the stale delivery changed nothing";
  EXPECT_TRUE(q->Ack(*current));
  EXPECT_EQ(Depth(*q), 0u);
}

TEST_P(JobQueueContract, ExpiredLeaseThatNobodyTookIsStillHonoured) {
  if (!harness_->TimedLeases())
    GTEST_SKIP() << "leases are connections here: a live taker never loses its lease";
  auto q = Open(ShortLease(200ms));
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("late"));
  auto d = Take(*q, 5s);
  ASSERT_TRUE(d);
  std::this_thread::sleep_for(400ms);  // the lease ran out, but no Take came
  EXPECT_TRUE(q->Heartbeat(*d)) << "nobody took the job over";
  EXPECT_FALSE(Take(*q, 0ms)) << "the heartbeat renewed the lease";
  EXPECT_TRUE(q->Ack(*d));
  EXPECT_EQ(Depth(*q), 0u);
}

TEST_P(JobQueueContract, FinishedDeliveryCannotBeFinishedAgain) {
  auto q = Open();
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("once"));
  auto d = Take(*q, 5s);
  ASSERT_TRUE(d);
  ASSERT_TRUE(q->Ack(*d));
  EXPECT_EQ(q->Ack(*d).error().code, ErrorCode::kConflict);
  EXPECT_EQ(q->Heartbeat(*d).error().code, ErrorCode::kConflict);
  Delivery forged = *d;
  forged.receipt = "not a receipt";
  EXPECT_FALSE(q->Ack(forged));
}

TEST_P(JobQueueContract, HeartbeatKeepsTheLease) {
  auto q = Open(ShortLease(400ms));
  auto other = Open(ShortLease(400ms));
  ASSERT_TRUE(q && other);
  ASSERT_TRUE(q->Publish("long"));
  auto d = Take(*q, 5s);
  ASSERT_TRUE(d);
  auto until = Clock::now() + 1200ms;  // three leases
  while (Clock::now() < until) {
    std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(q->Heartbeat(*d));
    ASSERT_FALSE(Take(*other, 0ms)) << "the job was delivered again despite heartbeats";
  }
  EXPECT_TRUE(q->Ack(*d));
  EXPECT_EQ(Depth(*q), 0u);
}

TEST_P(JobQueueContract, RetryHidesTheJobForTheDelay) {
  auto q = Open();
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("flaky"));
  auto d = Take(*q, 5s);
  ASSERT_TRUE(d);
  auto retried = q->Retry(*d, 500ms);
  ASSERT_TRUE(retried) << retried.error().message;
  EXPECT_FALSE(*retried) << "not dead-lettered on attempt 1 of 3";
  auto start = Clock::now();
  EXPECT_FALSE(Take(*q, 0ms)) << "visible before the delay";
  EXPECT_EQ(Depth(*q), 1u);
  auto again = Take(*q, 5s);
  ASSERT_TRUE(again);
  EXPECT_GE(Clock::now() - start, 400ms);
  EXPECT_EQ(again->attempt, 2);
}

TEST_P(JobQueueContract, ADelayedRetryDoesNotHoldUpOtherJobs) {
  auto q = Open();
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("delayed"));
  auto d = Take(*q, 5s);
  ASSERT_TRUE(d);
  auto retried_at = Clock::now();
  ASSERT_TRUE(q->Retry(*d, 1500ms));
  ASSERT_TRUE(q->Publish("behind"));
  auto behind = Take(*q, 5s);
  ASSERT_TRUE(behind);
  EXPECT_EQ(behind->job_id, "behind");
  EXPECT_LT(Clock::now() - retried_at, 1000ms) << "the later job waited for the delayed one";
  EXPECT_TRUE(q->Ack(*behind));
  auto delayed = Take(*q, 5s);
  ASSERT_TRUE(delayed);
  EXPECT_EQ(delayed->job_id, "delayed");
  EXPECT_GE(Clock::now() - retried_at, 1400ms);
  EXPECT_TRUE(q->Ack(*delayed));
}

TEST_P(JobQueueContract, RetryOnTheLastAttemptDeadLetters) {
  auto q = Open(JobQueueOptions{.max_attempts = 3});
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("poison"));
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto d = Take(*q, 5s);
    ASSERT_TRUE(d);
    ASSERT_EQ(d->job_id, "poison");
    EXPECT_EQ(d->attempt, attempt);
    auto dead = q->Retry(*d, 0ms);
    ASSERT_TRUE(dead) << dead.error().message;
    EXPECT_EQ(*dead, attempt == 3);
  }
  EXPECT_EQ(Depth(*q), 0u);
  EXPECT_EQ(DeadLetters(*q), std::vector<std::string>{"poison"});
  EXPECT_FALSE(Take(*q, 0ms));
}

TEST_P(JobQueueContract, LeaseExpiryOnTheLastAttemptDeadLetters) {
  if (!harness_->TimedLeases())
    GTEST_SKIP() << "leases are connections here: see TakerThatDiesLosesItsJob";
  auto q = Open(ShortLease(200ms, 2));
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("hangs"));
  auto first = Take(*q, 5s);
  ASSERT_TRUE(first);
  auto second = Take(*q, 5s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->attempt, 2);
  EXPECT_FALSE(Take(*q, 1s)) << "a job that used up its attempts must not be delivered again";
  EXPECT_EQ(DeadLetters(*q), std::vector<std::string>{"hangs"});
  EXPECT_EQ(Depth(*q), 0u);
}

TEST_P(JobQueueContract, ReleaseDoesNotCountAnAttempt) {
  auto q = Open(JobQueueOptions{.max_attempts = 1});
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("interrupted"));
  for (int i = 0; i < 3; ++i) {
    auto d = Take(*q, 5s);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->attempt, 1);
    ASSERT_TRUE(q->Release(*d));
  }
  auto d = Take(*q, 5s);
  ASSERT_TRUE(d);
  auto dead = q->Retry(*d, 0ms);
  ASSERT_TRUE(dead);
  EXPECT_TRUE(*dead) << "max_attempts 1: the first real failure dead-letters";
}

TEST_P(JobQueueContract, ReleasedJobIsVisibleAtOnce) {
  auto q = Open();
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("handback"));
  auto d = Take(*q, 5s);
  ASSERT_TRUE(d);
  std::optional<Delivery> got;
  auto start = Clock::now();
  std::thread taker([&] { got = Take(*q, 10s); });
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(q->Release(*d));
  taker.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->job_id, "handback");
  EXPECT_LT(Clock::now() - start, 3s);
}

TEST_P(JobQueueContract, InterruptWakesTakeAndStopsFurtherTakes) {
  auto q = Open();
  auto other = Open();
  ASSERT_TRUE(q && other);
  ASSERT_TRUE(q->Publish("in-hand"));
  auto in_hand = Take(*q, 5s);
  ASSERT_TRUE(in_hand);

  Result<std::optional<Delivery>> woken = std::nullopt;
  auto start = Clock::now();
  std::thread taker([&] { woken = q->Take(30s); });
  std::this_thread::sleep_for(100ms);
  q->Interrupt();
  taker.join();
  EXPECT_LT(Clock::now() - start, 3s);
  ASSERT_TRUE(woken) << woken.error().message;
  EXPECT_FALSE(woken->has_value());

  ASSERT_TRUE(q->Publish("after"));
  EXPECT_FALSE(Take(*q, 100ms)) << "an interrupted handle takes nothing";
  EXPECT_TRUE(q->Ack(*in_hand)) << "deliveries in hand can still be finished";
  auto d = Take(*other, 5s);
  ASSERT_TRUE(d) << "other handles are not interrupted";
  EXPECT_EQ(d->job_id, "after");
}

TEST_P(JobQueueContract, TakerThatDiesLosesItsJob) {
  {
    auto taker = Open(ShortLease(300ms, 2));
    ASSERT_TRUE(taker);
    ASSERT_TRUE(taker->Publish("dies"));
    auto d = Take(*taker, 5s);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->attempt, 1);
  }  // the taker's process is gone
  auto q = Open(ShortLease(300ms, 2));
  ASSERT_TRUE(q);
  auto again = Take(*q, 5s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->job_id, "dies");
  EXPECT_EQ(again->attempt, 2);
  EXPECT_TRUE(q->Ack(*again));
}

TEST_P(JobQueueContract, JobsSurviveARestart) {
  {
    auto q = Open(ShortLease(300ms));
    ASSERT_TRUE(q);
    ASSERT_TRUE(q->Publish("leased"));
    ASSERT_TRUE(q->Publish("ready"));
    auto d = Take(*q, 5s);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->job_id, "leased");
  }  // the process "dies" holding a lease
  auto q = Open(ShortLease(300ms));
  ASSERT_TRUE(q);
  EXPECT_EQ(Depth(*q), 2u);
  auto ready = Take(*q, 5s);
  ASSERT_TRUE(ready);
  auto redelivered = Take(*q, 5s);
  ASSERT_TRUE(redelivered);
  // A broker may hand the returned job back before or after the other one.
  if (ready->job_id == "leased") std::swap(ready, redelivered);
  EXPECT_EQ(ready->job_id, "ready");
  EXPECT_EQ(ready->attempt, 1);
  EXPECT_EQ(redelivered->job_id, "leased");
  EXPECT_EQ(redelivered->attempt, 2);
  EXPECT_TRUE(q->Ack(*ready));
  EXPECT_TRUE(q->Ack(*redelivered));
  EXPECT_EQ(Depth(*q), 0u);
}

TEST_P(JobQueueContract, DeadLettersSurviveARestart) {
  {
    auto q = Open(JobQueueOptions{.max_attempts = 1});
    ASSERT_TRUE(q);
    ASSERT_TRUE(q->Publish("dead"));
    auto d = Take(*q, 5s);
    ASSERT_TRUE(d);
    ASSERT_TRUE(q->Retry(*d, 0ms).value());
  }
  auto q = Open();
  ASSERT_TRUE(q);
  EXPECT_EQ(DeadLetters(*q), std::vector<std::string>{"dead"});
  EXPECT_EQ(Depth(*q), 0u);
}

TEST_P(JobQueueContract, PingAndDescribe) {
  auto q = Open();
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->Ping());
  EXPECT_FALSE(q->Describe().empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, JobQueueContract, ::testing::ValuesIn(JobQueueBackends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace vmp3::test
