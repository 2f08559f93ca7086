// Base64 over libsodium: the one encoder, and strict decoding for every credential we read (JWT
// parts, HTTP Basic).
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace vmp3::auth {

// Encodes `size` bytes at `data` in one libsodium variant (sodium_base64_VARIANT_*): the one
// encoder of JWTs, JWKS, webhook secrets and signatures, and Web Push keys.
std::string Base64Encode(const void* data, size_t size, int sodium_variant);

// Decodes `text` in one libsodium variant (sodium_base64_VARIANT_*): the whole input must be
// valid and canonical (libsodium rejects non-zero trailing bits), so one byte string has exactly
// one accepted encoding. nullopt otherwise. libsodium 1.0.18 (Debian 12) takes every byte from
// 0x80 up for some base64 digit, so those are refused first: else a JWT whose signature had one
// character swapped for such a byte verified too (found by the jwt fuzzer).
std::optional<std::string> Base64DecodeStrict(std::string_view text, int sodium_variant);

}  // namespace vmp3::auth
