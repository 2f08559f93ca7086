#include "auth/rate_limiter.hpp"

#include <gtest/gtest.h>

#include "metadata/memory_limit_store.hpp"

namespace vmp3::auth {
namespace {

constexpr int64_t kStartMs = 1'700'000'000'000;

TEST(RateLimiter, ABurstThenTheRate) {
  RateLimit limit{.per_second = 10, .burst = 3};
  TakeResult r = TakeToken(std::nullopt, kStartMs, limit);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(r.taken) << i;
    r = TakeToken(r.bucket, kStartMs, limit);
  }
  ASSERT_TRUE(r.taken);
  r = TakeToken(r.bucket, kStartMs, limit);
  EXPECT_FALSE(r.taken);
  EXPECT_EQ(r.retry_after_ms, 100);
  r = TakeToken(r.bucket, kStartMs + 100, limit);
  EXPECT_TRUE(r.taken);
  r = TakeToken(r.bucket, kStartMs + 150, limit);
  EXPECT_FALSE(r.taken);
  EXPECT_EQ(r.retry_after_ms, 50);
}

TEST(RateLimiter, RefillNeverExceedsTheBurstNorRunsBackwards) {
  RateLimit limit{.per_second = 100, .burst = 2};
  TakeResult r = TakeToken(BucketRecord{0, kStartMs}, kStartMs + 3'600'000, limit);
  EXPECT_TRUE(r.taken);
  EXPECT_DOUBLE_EQ(r.bucket.tokens, 1.0);
  TakeResult back = TakeToken(BucketRecord{0, kStartMs}, kStartMs - 10'000, limit);
  EXPECT_FALSE(back.taken) << "a clock that went back refills nothing";
}

TEST(RateLimiter, RecordsRoundTripAndGarbageIsAFullBucket) {
  auto back = BucketRecord::Decode(BucketRecord{2.5, kStartMs}.Encode());
  ASSERT_TRUE(back);
  EXPECT_DOUBLE_EQ(back->tokens, 2.5);
  EXPECT_EQ(back->at_ms, kStartMs);
  for (std::string_view bad : {"", "2 1 2", "1 x 5", "1 1", "1 nan 5"})
    EXPECT_FALSE(BucketRecord::Decode(bad)) << bad;
}

TEST(RateLimiter, OffWhenTheRateIsZero) {
  MemoryLimitStore store;
  RateLimiter limiter(store, RateLimit{});
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.Take("u", kStartMs));
  EXPECT_EQ(store.size(), 0u);
}

TEST(RateLimiter, RefusalSaysWhenToComeBack) {
  MemoryLimitStore store;
  RateLimiter limiter(store, RateLimit{.per_second = 0.5, .burst = 1});
  ASSERT_TRUE(limiter.Take("u", kStartMs));
  Status refused = limiter.Take("u", kStartMs);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kRateLimited);
  EXPECT_EQ(refused.error().retry_after_seconds, 2);
  EXPECT_TRUE(limiter.Take("u", kStartMs + 2000));
}

}  // namespace
}  // namespace vmp3::auth
