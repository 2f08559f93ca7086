// Password hashing (Argon2id through libsodium) and the rules for what users may choose as
// username, email and password.
//
// Stored hashes are libsodium's self-describing strings
// ("$argon2id$v=19$m=...,t=...,p=1$salt$hash"), so the cost parameters travel with each hash and
// can be raised later: after a successful VerifyPassword, PasswordNeedsRehash says whether to store
// a fresh HashPassword of the same password.
//
// Threading: every function is thread-safe (libsodium is initialised once, on first use).
// Cost: HashPassword and VerifyPassword take about as long and as much memory as the parameters
// ask (INTERACTIVE: 64 MiB, tens of milliseconds); run them off the network threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace vmp3::auth {

// Password length limits in bytes. The maximum also bounds the work one login attempt can cost.
inline constexpr size_t kMinPasswordBytes = 8;
inline constexpr size_t kMaxPasswordBytes = 1024;

// Argon2id cost. The defaults are libsodium's INTERACTIVE limits; tests use Minimum() so a hash
// takes microseconds instead of tens of milliseconds.
struct PasswordHashParams {
  uint64_t ops_limit = 2;        // crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE
  size_t mem_limit = 64u << 20;  // crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE (bytes)

  // The smallest cost libsodium allows. Never for production hashes.
  static constexpr PasswordHashParams Minimum() { return {1, 8192}; }
};

// Hashes a password with a fresh random salt. Does not apply the policy (CheckPasswordPolicy);
// fails with kInvalidArgument when the password is longer than kMaxPasswordBytes and with
// kUnavailable when the memory for the hash cannot be allocated.
Result<std::string> HashPassword(std::string_view password, const PasswordHashParams& params = {});

// True when `password` matches `stored_hash` (any libsodium Argon2 string). False for a wrong
// password and for a malformed or unsupported stored hash. The comparison is constant-time.
//
// To keep "no such user" indistinguishable from "wrong password" by timing, callers should verify
// the submitted password against a dummy hash (made once at startup with the same params) when
// the user does not exist.
bool VerifyPassword(std::string_view stored_hash, std::string_view password);

// True when `stored_hash` is not Argon2id at exactly `params` (older algorithm or other costs,
// or not a valid hash at all); the caller should then re-hash the password it just verified.
bool PasswordNeedsRehash(std::string_view stored_hash, const PasswordHashParams& params = {});

// The rules a new password must follow: kMinPasswordBytes..kMaxPasswordBytes bytes, not the
// username (ignoring ASCII case), not one character repeated. kInvalidArgument with a message
// that tells the user what to change.
Status CheckPasswordPolicy(std::string_view password, std::string_view username);

// 3..64 characters of [A-Za-z0-9._-], starting with a letter or a digit. kInvalidArgument.
Status CheckUsername(std::string_view username);

// Sanity only (the real check is delivering mail): valid UTF-8 of at most 254 bytes, exactly one
// '@' with something on both sides, no whitespace or control characters (Unicode's: NEL and
// U+2028 end lines too). kInvalidArgument.
Status CheckEmail(std::string_view email);

}  // namespace vmp3::auth
