// Slows down password guessing: counts failed logins per key and locks a key out for a while
// after too many failures in a window. Callers keep two keys per attempt, one for the username
// (guessing one account's password) and one for the client address (spraying many accounts).
//
// The counts live in a LimitStore (the metadata backend), not in this process: every auth
// replica behind a gateway shares them, and a restart forgets nothing. So 5 failures for a user
// across any mix of processes lock it.
//
// Usage per login attempt:
//   if RetryAfterSeconds("user:" + name) or RetryAfterSeconds("addr:" + ip) > 0
//     -> kRateLimited, Retry-After: the larger                 (do not check the password)
//   on a wrong password: RecordFailure for both keys
//   on success:          RecordSuccess for the username key only. Clearing the address key too
//                        would let an attacker reset it by logging into their own account
//                        between guesses.
//
// Locking by username lets anyone lock a victim out for a while; max_lockout_seconds bounds that.
// Records expire by themselves once a whole quiet window has passed after the last lock or
// failure, so the store holds only current attackers.
//
// Time is passed in (seconds since the epoch) so tests control it. Thread-safe (the store is).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "metadata/limit_store.hpp"

namespace vmp3::auth {

struct LoginThrottleOptions {
  // This many failures within window_seconds lock the key.
  int max_failures = 5;
  int64_t window_seconds = 15 * 60;
  // The first lock lasts lockout_seconds; each further lock without a quiet window in between
  // lasts twice as long as the previous one, up to max_lockout_seconds.
  int64_t lockout_seconds = 15 * 60;
  int64_t max_lockout_seconds = 60 * 60;
};

// One key's state, as stored (a short text record).
struct ThrottleRecord {
  int failures = 0;  // within the window starting at window_start
  int64_t window_start = 0;
  int64_t locked_until = 0;  // no lock when <= now
  int lockouts = 0;          // locks so far, for the doubling

  std::string Encode() const;
  // A malformed record (another version, damage) reads as a fresh one.
  static ThrottleRecord Decode(std::string_view text);
};

// The state after one more failure at `now` (pure: the rule itself, tested without a store).
// Failures while locked are not counted (the caller should not have checked the password), so
// hammering a locked key does not extend the lock.
ThrottleRecord AfterFailure(ThrottleRecord record, int64_t now,
                            const LoginThrottleOptions& options);

class LoginThrottle {
 public:
  // Keys longer than this are truncated (usernames and addresses are far shorter); this bounds
  // what one record costs whatever a client sends.
  static constexpr size_t kMaxKeyBytes = 256;

  // `store` must outlive the throttle.
  explicit LoginThrottle(LimitStore& store, LoginThrottleOptions options = {});

  // Seconds until `key` may try again; 0 when allowed now.
  Result<int64_t> RetryAfterSeconds(std::string_view key, int64_t now) const;
  // Counts a failed login; may start a lock.
  Status RecordFailure(std::string_view key, int64_t now);
  // Forgets `key`'s failures and lock history.
  Status RecordSuccess(std::string_view key);

 private:
  std::string StoreKey(std::string_view key) const;

  LimitStore& store_;
  LoginThrottleOptions options_;
};

}  // namespace vmp3::auth
