#include "auth/login_throttle.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace vmp3::auth {
namespace {

LoginThrottleOptions Sane(LoginThrottleOptions options) {
  options.max_failures = std::max(options.max_failures, 1);
  options.window_seconds = std::max<int64_t>(options.window_seconds, 1);
  options.lockout_seconds = std::max<int64_t>(options.lockout_seconds, 1);
  options.max_lockout_seconds = std::max(options.max_lockout_seconds, options.lockout_seconds);
  return options;
}

// A record whose lock has ended and which then saw a whole quiet window carries no information
// worth keeping: its failure count would reset anyway, and its lock history is forgiven.
bool Stale(const ThrottleRecord& record, int64_t now, const LoginThrottleOptions& options) {
  return now >= std::max(record.locked_until, record.window_start) + options.window_seconds;
}

}  // namespace

std::string ThrottleRecord::Encode() const {
  return fmt::format("1 {} {} {} {}", failures, window_start, locked_until, lockouts);
}

ThrottleRecord ThrottleRecord::Decode(std::string_view text) {
  ThrottleRecord record;
  int64_t fields[5] = {0, 0, 0, 0, 0};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int64_t& field : fields) {
    while (p < end && *p == ' ') ++p;
    auto [next, ec] = std::from_chars(p, end, field);
    if (ec != std::errc()) return ThrottleRecord{};
    p = next;
  }
  if (fields[0] != 1 || fields[1] < 0 || fields[4] < 0) return ThrottleRecord{};
  record.failures = static_cast<int>(std::min<int64_t>(fields[1], 1 << 20));
  record.window_start = fields[2];
  record.locked_until = fields[3];
  record.lockouts = static_cast<int>(std::min<int64_t>(fields[4], 64));
  return record;
}

ThrottleRecord AfterFailure(ThrottleRecord record, int64_t now,
                            const LoginThrottleOptions& raw_options) {
  const LoginThrottleOptions options = Sane(raw_options);
  if (record.locked_until > now) return record;
  if (record.failures == 0 && record.lockouts == 0) record.window_start = now;  // fresh
  if (now - record.window_start >= options.window_seconds) {
    if (Stale(record, now, options)) record.lockouts = 0;  // a quiet window forgives
    record.failures = 0;
    record.window_start = now;
  }
  if (++record.failures < options.max_failures) return record;

  // Lock: lockout_seconds doubled once per earlier lock, capped (the shift is bounded too).
  int64_t duration = options.lockout_seconds;
  for (int i = 0; i < record.lockouts && duration < options.max_lockout_seconds; ++i) duration *= 2;
  duration = std::min(duration, options.max_lockout_seconds);
  record.locked_until = now + duration;
  record.lockouts += 1;
  record.failures = 0;
  record.window_start = now;
  return record;
}

LoginThrottle::LoginThrottle(LimitStore& store, LoginThrottleOptions options)
    : store_(store), options_(Sane(options)) {}

std::string LoginThrottle::StoreKey(std::string_view key) const {
  return "login:" + std::string(key.substr(0, kMaxKeyBytes));
}

Result<int64_t> LoginThrottle::RetryAfterSeconds(std::string_view key, int64_t now) const {
  auto text = store_.GetLimit(StoreKey(key));
  if (!text) return tl::unexpected(text.error());
  ThrottleRecord record = ThrottleRecord::Decode(*text);
  return std::max<int64_t>(0, record.locked_until - now);
}

Status LoginThrottle::RecordFailure(std::string_view key, int64_t now) {
  // Kept until a whole quiet window after the longest lock could end: by then it is stale.
  auto ttl = std::chrono::seconds(options_.max_lockout_seconds + options_.window_seconds);
  auto written = store_.UpdateLimit(StoreKey(key), ttl, [&](std::string_view current) {
    return AfterFailure(ThrottleRecord::Decode(current), now, options_).Encode();
  });
  if (!written) return tl::unexpected(written.error());
  return {};
}

Status LoginThrottle::RecordSuccess(std::string_view key) {
  auto written = store_.UpdateLimit(StoreKey(key), std::chrono::seconds(1),
                                    [](std::string_view) { return std::string(); });
  if (!written) return tl::unexpected(written.error());
  return {};
}

}  // namespace vmp3::auth
