// A per-key request rate limit (a token bucket: `burst` requests at once, refilled at
// `per_second`), with its state in a LimitStore so that every replica of a role shares one
// bucket per user.
//
// Thread-safe (the store is). Time is passed in (Unix ms) so tests control it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "metadata/limit_store.hpp"

namespace vmp3::auth {

struct RateLimit {
  double per_second = 0;  // 0: no limit
  double burst = 0;       // bucket size; at least 1 when limiting
  bool enabled() const { return per_second > 0; }
};

// One bucket as stored: tokens left at `at_ms`.
struct BucketRecord {
  double tokens = 0;
  int64_t at_ms = 0;

  std::string Encode() const;
  // Nothing (or a malformed record) reads as a full bucket.
  static std::optional<BucketRecord> Decode(std::string_view text);
};

// The bucket after trying to take a token at `now_ms`, and whether one was taken (pure).
struct TakeResult {
  BucketRecord bucket;
  bool taken = false;
  int64_t retry_after_ms = 0;  // when not taken: until a token is there
};
TakeResult TakeToken(std::optional<BucketRecord> bucket, int64_t now_ms, const RateLimit& limit);

class RateLimiter {
 public:
  // `store` must outlive the limiter.
  RateLimiter(LimitStore& store, RateLimit limit);

  // Takes a token from `key`'s bucket. kRateLimited (with retry_after_seconds) when empty.
  Status Take(std::string_view key, int64_t now_ms);
  const RateLimit& limit() const { return limit_; }

 private:
  LimitStore& store_;
  RateLimit limit_;
};

}  // namespace vmp3::auth
