#include "auth/rate_limiter.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace vmp3::auth {

std::string BucketRecord::Encode() const { return fmt::format("1 {:.4f} {}", tokens, at_ms); }

std::optional<BucketRecord> BucketRecord::Decode(std::string_view text) {
  if (!text.starts_with("1 ")) return std::nullopt;
  text.remove_prefix(2);
  size_t space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  BucketRecord record;
  auto [p1, e1] = std::from_chars(text.data(), text.data() + space, record.tokens);
  auto [p2, e2] = std::from_chars(text.data() + space + 1, text.data() + text.size(), record.at_ms);
  if (e1 != std::errc() || e2 != std::errc() || !std::isfinite(record.tokens)) return std::nullopt;
  return record;
}

TakeResult TakeToken(std::optional<BucketRecord> bucket, int64_t now_ms, const RateLimit& limit) {
  const double burst = std::max(1.0, limit.burst);
  TakeResult result;
  if (!bucket) {
    result.bucket = BucketRecord{burst, now_ms};
  } else {
    // Refill for the time passed (a clock that went back refills nothing).
    double elapsed = std::max<int64_t>(0, now_ms - bucket->at_ms) / 1000.0;
    result.bucket.tokens = std::min(burst, bucket->tokens + elapsed * limit.per_second);
    result.bucket.at_ms = std::max(now_ms, bucket->at_ms);
  }
  if (result.bucket.tokens >= 1.0) {
    result.bucket.tokens -= 1.0;
    result.taken = true;
    return result;
  }
  result.retry_after_ms =
      static_cast<int64_t>(std::ceil((1.0 - result.bucket.tokens) / limit.per_second * 1000.0));
  return result;
}

RateLimiter::RateLimiter(LimitStore& store, RateLimit limit) : store_(store), limit_(limit) {}

Status RateLimiter::Take(std::string_view key, int64_t now_ms) {
  if (!limit_.enabled()) return {};
  TakeResult outcome;
  // A full bucket refills in burst / rate seconds: after that the record says nothing.
  auto ttl = std::chrono::milliseconds(
      static_cast<int64_t>(std::max(1.0, limit_.burst) / limit_.per_second * 1000.0) + 1000);
  auto written = store_.UpdateLimit("rate:" + std::string(key), ttl, [&](std::string_view text) {
    outcome = TakeToken(BucketRecord::Decode(text), now_ms, limit_);
    return outcome.bucket.Encode();
  });
  if (!written) return tl::unexpected(written.error());
  if (outcome.taken) return {};
  int64_t seconds = std::max<int64_t>(1, (outcome.retry_after_ms + 999) / 1000);
  return tl::unexpected(Error(ErrorCode::kRateLimited,
                              fmt::format("too many requests: at most {:g} per second (bursts of "
                                          "{:g}); slow down",
                                          limit_.per_second, std::max(1.0, limit_.burst)),
                              seconds));
}

}  // namespace vmp3::auth
