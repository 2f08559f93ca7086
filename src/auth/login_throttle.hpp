// Slows down password guessing: counts failed logins per key and locks a key out for a while
// after too many failures in a window. Callers keep two keys per attempt, one for the username
// (guessing one account's password) and one for the client address (spraying many accounts).
//
// Usage per login attempt:
//   if (!throttle.Allowed("user:" + name, now) || !throttle.Allowed("addr:" + ip, now))
//     -> kRateLimited, Retry-After: max of RetryAfterSeconds(...)   (do not check the password)
//   on a wrong password: RecordFailure for both keys
//   on success:          RecordSuccess for the username key only. Clearing the address key too
//                        would let an attacker reset it by logging into their own account
//                        between guesses.
//
// Locking by username lets anyone lock a victim out for a while; max_lockout_seconds bounds that.
//
// Memory is bounded by max_keys: quiet entries are forgotten and, when full, the least recently
// failed key is evicted. Evicting is no cheap way to unlock a key: each failure that pushes the
// table costs the server a password hash, so pushing a locked key out (max_keys newer failures)
// takes about as long as the lock lasts anyway.
//
// Time is passed in (seconds, any monotonic-enough epoch) so tests control it.
// Threading: all methods are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace vmp3::auth {

struct LoginThrottleOptions {
  // This many failures within window_seconds lock the key.
  int max_failures = 5;
  int64_t window_seconds = 15 * 60;
  // The first lock lasts lockout_seconds; each further lock without a quiet window in between
  // lasts twice as long as the previous one, up to max_lockout_seconds.
  int64_t lockout_seconds = 15 * 60;
  int64_t max_lockout_seconds = 60 * 60;
  // Keys remembered at most.
  size_t max_keys = 100000;
};

class LoginThrottle {
 public:
  // Keys longer than this are truncated (usernames and addresses are far shorter); this bounds
  // the memory one entry can take whatever a client sends.
  static constexpr size_t kMaxKeyBytes = 256;

  explicit LoginThrottle(LoginThrottleOptions options = {});

  // False while `key` is locked out.
  bool Allowed(std::string_view key, int64_t now) const;
  // Seconds until `key` may try again; 0 when allowed now.
  int64_t RetryAfterSeconds(std::string_view key, int64_t now) const;
  // Counts a failed login; may start a lock. Failures while locked are not counted (the caller
  // should not have checked the password), so hammering a locked key does not extend the lock.
  void RecordFailure(std::string_view key, int64_t now);
  // Forgets `key`'s failures and lock history.
  void RecordSuccess(std::string_view key);

  // Number of keys remembered.
  size_t size() const;

 private:
  struct Entry {
    std::string key;
    int failures = 0;  // within the window starting at window_start
    int64_t window_start = 0;
    int64_t locked_until = 0;  // no lock when <= now
    int lockouts = 0;          // locks so far, for the doubling
  };
  using List = std::list<Entry>;  // least recently failed first

  bool Stale(const Entry& entry, int64_t now) const;
  const Entry* Find(std::string_view key) const;

  LoginThrottleOptions options_;
  mutable std::mutex mu_;
  List entries_;
  // Views point into the keys of entries_ (list nodes never move).
  std::unordered_map<std::string_view, List::iterator> index_;
};

}  // namespace vmp3::auth
