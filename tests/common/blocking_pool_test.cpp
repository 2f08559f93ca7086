#include "common/blocking_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <latch>

namespace vmp3 {
namespace {

using namespace std::chrono_literals;

// Submits work and returns a future of the Status `done` receives.
std::future<Status> Submitted(BlockingPool& pool, std::function<void()> work,
                              std::optional<DeadlineClock::time_point> deadline = std::nullopt) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  pool.Submit(
      std::move(work), [promise](Status s) { promise->set_value(std::move(s)); }, deadline);
  return future;
}

TEST(BlockingPool, RunsWorkAndReportsSuccess) {
  BlockingPool pool({.threads = 2, .max_queued = 4});
  std::atomic<int> ran{0};
  auto f = Submitted(pool, [&] { ++ran; });
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(f.get().has_value());
  EXPECT_EQ(ran, 1);
}

TEST(BlockingPool, WorkRunsInsideItsDeadline) {
  BlockingPool pool({.threads = 1, .max_queued = 4});
  auto deadline = DeadlineClock::now() + 10s;
  std::optional<DeadlineClock::time_point> seen;
  auto f = Submitted(
      pool, [&] { seen = CurrentDeadline(); }, deadline);
  ASSERT_TRUE(f.get().has_value());
  ASSERT_TRUE(seen);
  EXPECT_EQ(*seen, deadline);
}

TEST(BlockingPool, RefusesAtOnceWhenTheQueueIsFull) {
  BlockingPool pool({.threads = 1, .max_queued = 2});
  std::latch release(1);
  std::latch started(1);
  auto busy = Submitted(pool, [&] {
    started.count_down();
    release.wait();
  });
  started.wait();
  auto queued1 = Submitted(pool, [] {});
  auto queued2 = Submitted(pool, [] {});
  bool ran = false;
  auto refused = Submitted(pool, [&] { ran = true; });
  // Refused synchronously, before the busy task ends.
  ASSERT_EQ(refused.wait_for(0s), std::future_status::ready);
  Status s = refused.get();
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(s.error().message.find("overloaded"), std::string::npos);
  release.count_down();
  EXPECT_TRUE(busy.get().has_value());
  EXPECT_TRUE(queued1.get().has_value());
  EXPECT_TRUE(queued2.get().has_value());
  EXPECT_FALSE(ran);
  EXPECT_EQ(pool.refused(), 1u);
}

TEST(BlockingPool, WorkWhoseDeadlinePassedWhileQueuedNeverRuns) {
  BlockingPool pool({.threads = 1, .max_queued = 4});
  std::latch release(1);
  std::latch started(1);
  auto busy = Submitted(pool, [&] {
    started.count_down();
    release.wait();
  });
  started.wait();
  bool ran = false;
  auto late = Submitted(
      pool, [&] { ran = true; }, DeadlineClock::now() + 50ms);
  std::this_thread::sleep_for(100ms);
  release.count_down();
  Status s = late.get();
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(busy.get().has_value());
}

TEST(BlockingPool, StopRefusesWhatIsQueuedAndFinishesWhatRuns) {
  auto pool = std::make_unique<BlockingPool>(BlockingPoolOptions{.threads = 1, .max_queued = 4});
  std::latch started(1);
  std::atomic<bool> finished{false};
  auto busy = Submitted(*pool, [&] {
    started.count_down();
    std::this_thread::sleep_for(100ms);
    finished = true;
  });
  started.wait();
  bool ran = false;
  auto queued = Submitted(*pool, [&] { ran = true; });
  pool->Stop();
  EXPECT_TRUE(busy.get().has_value());
  EXPECT_TRUE(finished);
  EXPECT_FALSE(queued.get().has_value());
  EXPECT_FALSE(ran);
  // After Stop, new work is refused at once.
  auto after = Submitted(*pool, [] {});
  ASSERT_EQ(after.wait_for(0s), std::future_status::ready);
  EXPECT_FALSE(after.get().has_value());
}

TEST(BlockingPool, ManyTasksFromManyThreadsAllComplete) {
  BlockingPool pool({.threads = 4, .max_queued = 10000});
  std::atomic<int> ran{0};
  std::vector<std::future<Status>> futures;
  std::mutex mu;
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        auto f = Submitted(pool, [&] { ++ran; });
        std::lock_guard lock(mu);
        futures.push_back(std::move(f));
      }
    });
  }
  for (auto& t : submitters) t.join();
  for (auto& f : futures) EXPECT_TRUE(f.get().has_value());
  EXPECT_EQ(ran, 2000);
}

}  // namespace
}  // namespace vmp3
