// Small shared records for abuse limits (the login throttle, per-user request rates), kept in
// the metadata backend so that every replica of a role counts together and a restart forgets
// nothing: SQLite embedded, Redis distributed, memory in unit tests. Every implementation passes
// tests/metadata/limit_store_contract_test.cpp.
//
// A record is a short opaque string with an expiry; what it means is the caller's business
// (auth/login_throttle, auth/rate_limiter). Expired records read as absent and are dropped
// lazily.
//
// Thread-safe: every method may be called from any thread concurrently.
// Errors: kInvalidArgument for an empty key or one over kMaxLimitKeyBytes; kUnavailable or kIo
// when the backend fails.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace vmp3 {

inline constexpr size_t kMaxLimitKeyBytes = 512;

class LimitStore {
 public:
  virtual ~LimitStore() = default;

  // Atomically replaces the record under `key` with update(current) and keeps it for `ttl`
  // (> 0) from now; `current` is empty when there is no live record. An empty result deletes
  // the record. Returns what was written. `update` may run more than once (optimistic stores
  // retry on a conflict), so it must depend only on its argument and must not call the store.
  virtual Result<std::string> UpdateLimit(
      std::string_view key, std::chrono::milliseconds ttl,
      const std::function<std::string(std::string_view current)>& update) = 0;
  // The live record under `key`, or empty.
  virtual Result<std::string> GetLimit(std::string_view key) = 0;
};

// kInvalidArgument unless 1..kMaxLimitKeyBytes bytes.
Status ValidateLimitKey(std::string_view key);

}  // namespace vmp3
