#include "auth/login_throttle.hpp"

#include <algorithm>

namespace vmp3::auth {
namespace {

std::string_view Truncate(std::string_view key) {
  return key.substr(0, LoginThrottle::kMaxKeyBytes);
}

}  // namespace

LoginThrottle::LoginThrottle(LoginThrottleOptions options) : options_(options) {
  options_.max_failures = std::max(options_.max_failures, 1);
  options_.window_seconds = std::max<int64_t>(options_.window_seconds, 1);
  options_.lockout_seconds = std::max<int64_t>(options_.lockout_seconds, 1);
  options_.max_lockout_seconds = std::max(options_.max_lockout_seconds, options_.lockout_seconds);
  options_.max_keys = std::max<size_t>(options_.max_keys, 1);
}

// An entry whose lock has ended and which then saw a whole quiet window carries no information
// worth keeping: its failure count would reset anyway, and its lock history is forgiven.
bool LoginThrottle::Stale(const Entry& entry, int64_t now) const {
  return now >= std::max(entry.locked_until, entry.window_start) + options_.window_seconds;
}

const LoginThrottle::Entry* LoginThrottle::Find(std::string_view key) const {
  auto it = index_.find(Truncate(key));
  return it == index_.end() ? nullptr : &*it->second;
}

bool LoginThrottle::Allowed(std::string_view key, int64_t now) const {
  return RetryAfterSeconds(key, now) == 0;
}

int64_t LoginThrottle::RetryAfterSeconds(std::string_view key, int64_t now) const {
  std::lock_guard lock(mu_);
  const Entry* entry = Find(key);
  if (entry == nullptr || entry->locked_until <= now) return 0;
  return entry->locked_until - now;
}

void LoginThrottle::RecordFailure(std::string_view key, int64_t now) {
  key = Truncate(key);
  std::lock_guard lock(mu_);

  // Forget quiet entries from the old end first, so memory follows the current attack volume.
  while (!entries_.empty() && Stale(entries_.front(), now)) {
    index_.erase(entries_.front().key);
    entries_.pop_front();
  }

  auto found = index_.find(key);
  List::iterator it;
  if (found == index_.end()) {
    if (entries_.size() >= options_.max_keys) {
      index_.erase(entries_.front().key);
      entries_.pop_front();
    }
    entries_.push_back(Entry{.key = std::string(key), .window_start = now});
    it = std::prev(entries_.end());
    index_.emplace(it->key, it);
  } else {
    it = found->second;
    entries_.splice(entries_.end(), entries_, it);  // most recently failed goes last
  }

  Entry& entry = *it;
  if (entry.locked_until > now) return;
  if (now - entry.window_start >= options_.window_seconds) {
    if (Stale(entry, now)) entry.lockouts = 0;  // a quiet window forgives earlier locks
    entry.failures = 0;
    entry.window_start = now;
  }
  if (++entry.failures < options_.max_failures) return;

  // Lock: lockout_seconds doubled once per earlier lock, capped (the shift is bounded too).
  int64_t duration = options_.lockout_seconds;
  for (int i = 0; i < entry.lockouts && duration < options_.max_lockout_seconds; ++i) duration *= 2;
  duration = std::min(duration, options_.max_lockout_seconds);
  entry.locked_until = now + duration;
  entry.lockouts += 1;
  entry.failures = 0;
  entry.window_start = now;
}

void LoginThrottle::RecordSuccess(std::string_view key) {
  std::lock_guard lock(mu_);
  auto found = index_.find(Truncate(key));
  if (found == index_.end()) return;
  List::iterator it = found->second;
  index_.erase(found);
  entries_.erase(it);
}

size_t LoginThrottle::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace vmp3::auth
