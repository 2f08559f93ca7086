#include "auth/login_throttle.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "metadata/memory_limit_store.hpp"

namespace vmp3::auth {
namespace {

constexpr int64_t kT0 = 1'700'000'000;
constexpr int64_t kMinute = 60;

// The throttle on a store of its own, with the calls the tests make unwrapped.
class Throttle {
 public:
  explicit Throttle(LoginThrottleOptions options = {}) : throttle_(store_, options) {}
  void RecordFailure(std::string_view key, int64_t now) {
    ASSERT_TRUE(throttle_.RecordFailure(key, now));
  }
  void RecordSuccess(std::string_view key) { ASSERT_TRUE(throttle_.RecordSuccess(key)); }
  int64_t RetryAfterSeconds(std::string_view key, int64_t now) {
    return throttle_.RetryAfterSeconds(key, now).value();
  }
  bool Allowed(std::string_view key, int64_t now) { return RetryAfterSeconds(key, now) == 0; }
  size_t size() const { return store_.size(); }

 private:
  MemoryLimitStore store_;
  LoginThrottle throttle_;
};

TEST(LoginThrottleTest, LocksAfterMaxFailuresAndUnlocksAfterTheLockout) {
  Throttle throttle;  // 5 failures / 15 min -> 15 min lock
  for (int i = 0; i < 4; ++i) {
    throttle.RecordFailure("user:alice", kT0 + i);
    EXPECT_TRUE(throttle.Allowed("user:alice", kT0 + i)) << "after failure " << i + 1;
  }
  throttle.RecordFailure("user:alice", kT0 + 10);
  EXPECT_FALSE(throttle.Allowed("user:alice", kT0 + 10));
  EXPECT_EQ(throttle.RetryAfterSeconds("user:alice", kT0 + 10), 15 * kMinute);
  EXPECT_EQ(throttle.RetryAfterSeconds("user:alice", kT0 + 10 + 5 * kMinute), 10 * kMinute);
  EXPECT_FALSE(throttle.Allowed("user:alice", kT0 + 10 + 15 * kMinute - 1));
  EXPECT_TRUE(throttle.Allowed("user:alice", kT0 + 10 + 15 * kMinute));
  EXPECT_EQ(throttle.RetryAfterSeconds("user:alice", kT0 + 10 + 15 * kMinute), 0);
}

TEST(LoginThrottleTest, KeysAreIndependent) {
  Throttle throttle;
  for (int i = 0; i < 5; ++i) throttle.RecordFailure("user:alice", kT0);
  EXPECT_FALSE(throttle.Allowed("user:alice", kT0));
  EXPECT_TRUE(throttle.Allowed("user:bob", kT0));
  EXPECT_TRUE(throttle.Allowed("addr:10.0.0.1", kT0));
}

TEST(LoginThrottleTest, FailuresSpreadBeyondTheWindowDoNotLock) {
  Throttle throttle;
  for (int i = 0; i < 20; ++i) {
    throttle.RecordFailure("user:alice", kT0 + i * 4 * kMinute);  // 4 per 16 minutes
    EXPECT_TRUE(throttle.Allowed("user:alice", kT0 + i * 4 * kMinute)) << i;
  }
}

TEST(LoginThrottleTest, SuccessClearsFailures) {
  Throttle throttle;
  for (int i = 0; i < 4; ++i) throttle.RecordFailure("user:alice", kT0);
  throttle.RecordSuccess("user:alice");
  EXPECT_EQ(throttle.size(), 0u);
  for (int i = 0; i < 4; ++i) throttle.RecordFailure("user:alice", kT0 + 1);
  EXPECT_TRUE(throttle.Allowed("user:alice", kT0 + 1));
  throttle.RecordFailure("user:alice", kT0 + 1);
  EXPECT_FALSE(throttle.Allowed("user:alice", kT0 + 1));
}

TEST(LoginThrottleTest, FailuresWhileLockedDoNotExtendTheLock) {
  Throttle throttle;
  for (int i = 0; i < 5; ++i) throttle.RecordFailure("k", kT0);
  for (int i = 0; i < 50; ++i) throttle.RecordFailure("k", kT0 + 60);
  EXPECT_TRUE(throttle.Allowed("k", kT0 + 15 * kMinute));
}

TEST(LoginThrottleTest, RepeatedLocksDoubleUpToTheCap) {
  LoginThrottleOptions options;
  options.lockout_seconds = 15 * kMinute;
  options.max_lockout_seconds = 60 * kMinute;
  Throttle throttle(options);
  int64_t now = kT0;
  for (int64_t expected : {15 * kMinute, 30 * kMinute, 60 * kMinute, 60 * kMinute}) {
    for (int i = 0; i < 5; ++i) throttle.RecordFailure("k", now);
    EXPECT_EQ(throttle.RetryAfterSeconds("k", now), expected);
    now += expected;  // retry as soon as allowed
    EXPECT_TRUE(throttle.Allowed("k", now));
  }
}

TEST(LoginThrottleTest, QuietWindowForgivesEarlierLocks) {
  Throttle throttle;
  for (int i = 0; i < 5; ++i) throttle.RecordFailure("k", kT0);
  const int64_t unlocked = kT0 + 15 * kMinute;
  const int64_t later = unlocked + 15 * kMinute;  // a whole quiet window after the lock
  for (int i = 0; i < 5; ++i) throttle.RecordFailure("k", later);
  EXPECT_EQ(throttle.RetryAfterSeconds("k", later), 15 * kMinute);  // not doubled
}

TEST(LoginThrottleTest, RecordsRoundTripAndBadOnesReadFresh) {
  ThrottleRecord record{.failures = 3, .window_start = kT0, .locked_until = kT0 + 5, .lockouts = 2};
  ThrottleRecord back = ThrottleRecord::Decode(record.Encode());
  EXPECT_EQ(back.failures, 3);
  EXPECT_EQ(back.window_start, kT0);
  EXPECT_EQ(back.locked_until, kT0 + 5);
  EXPECT_EQ(back.lockouts, 2);
  for (std::string_view bad : {"", "2 1 2 3 4", "1 x 2 3 4", "1 1 2", "1 -5 0 0 0"}) {
    ThrottleRecord fresh = ThrottleRecord::Decode(bad);
    EXPECT_EQ(fresh.failures, 0) << bad;
    EXPECT_EQ(fresh.locked_until, 0) << bad;
  }
}

TEST(LoginThrottleTest, TwoThrottlesOnOneStoreShareTheCount) {
  // Two auth replicas on one backend: failures through either count together.
  MemoryLimitStore store;
  LoginThrottle a(store), b(store);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE((i % 2 ? a : b).RecordFailure("user:alice", kT0));
  EXPECT_EQ(a.RetryAfterSeconds("user:alice", kT0).value(), 0);
  ASSERT_TRUE(b.RecordFailure("user:alice", kT0));
  EXPECT_EQ(a.RetryAfterSeconds("user:alice", kT0).value(), 15 * kMinute);
  EXPECT_EQ(b.RetryAfterSeconds("user:alice", kT0).value(), 15 * kMinute);
}

TEST(LoginThrottleTest, LongKeysAreTruncated) {
  Throttle throttle;
  const std::string prefix(LoginThrottle::kMaxKeyBytes, 'x');
  for (int i = 0; i < 5; ++i) throttle.RecordFailure(prefix + std::to_string(i), kT0);
  EXPECT_EQ(throttle.size(), 1u);
  EXPECT_FALSE(throttle.Allowed(prefix + "anything", kT0));
  EXPECT_TRUE(throttle.Allowed(prefix.substr(1), kT0));
}

TEST(LoginThrottleTest, ConcurrentFailuresAreAllCounted) {
  LoginThrottleOptions options;
  options.max_failures = 400;
  Throttle throttle(options);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 99; ++i) {
        throttle.RecordFailure("shared", kT0);
        throttle.RecordFailure("own" + std::to_string(t), kT0);
        (void)throttle.Allowed("shared", kT0);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_TRUE(throttle.Allowed("shared", kT0));  // 396 < 400
  for (int i = 0; i < 4; ++i) throttle.RecordFailure("shared", kT0);
  EXPECT_FALSE(throttle.Allowed("shared", kT0));
  EXPECT_EQ(throttle.size(), 5u);
}

}  // namespace
}  // namespace vmp3::auth
