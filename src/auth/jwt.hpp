// Access tokens: compact JWTs (RFC 7519) signed with Ed25519 ("alg":"EdDSA", RFC 8037).
//
// One process (the auth role) holds a SigningKey and issues tokens; every role that serves
// requests holds a TokenVerifier built from the public keys alone (from a file or the JWKS the
// auth role publishes), so a compromised non-auth role cannot mint tokens.
//
// Key files hold one line: the 32 bytes (seed or public key) in standard base64 with padding.
// Readers also accept unpadded and URL-safe base64 and surrounding whitespace.
//
// Tokens are stateless: they stay valid until "exp" and cannot be revoked one by one; keep their
// lifetime short. Rotating keys means building a new TokenVerifier with the new key set.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace vmp3::auth {

// The "iss" of every token we issue, and the only one TokenVerifier accepts.
inline constexpr std::string_view kTokenIssuer = "vmp3";

// The claims vmp3 puts in a token. Times are seconds since the Unix epoch.
struct Claims {
  std::string subject;                // "sub": the user id
  std::string username;               // "name"
  int64_t issued_at = 0;              // "iat"
  int64_t expires_at = 0;             // "exp": not accepted at or after this time
  std::optional<int64_t> not_before;  // "nbf": not accepted before this time
  std::string id;                     // "jti": random, unique per token

  bool operator==(const Claims&) const = default;
};

// Claims for a token issued at `now` and valid for `ttl_seconds`, with a fresh random id.
Claims MakeClaims(std::string_view user_id, std::string_view username, int64_t now,
                  int64_t ttl_seconds);

// An Ed25519 public key and its key id ("kid"). Keys we generate get a kid derived from the
// key itself: base64url of the first 8 bytes of its SHA-256. Keys read from a JWKS keep the
// kid the JWKS gives them. Copyable value; immutable.
class PublicKey {
 public:
  static constexpr size_t kSize = 32;

  // kInvalidArgument unless exactly kSize bytes.
  static Result<PublicKey> FromBytes(std::span<const unsigned char> bytes);
  // The key-file format (base64 of 32 bytes). kInvalidArgument otherwise.
  static Result<PublicKey> FromBase64(std::string_view text);
  // Reads a file written by WriteTo. kNotFound / kIo / kInvalidArgument naming the file.
  static Result<PublicKey> FromFile(const std::filesystem::path& path);
  // Every OKP/Ed25519 signing key of a JWKS document ({"keys":[...]}); keys of other types are
  // skipped. kInvalidArgument when the document is malformed or holds no usable key.
  static Result<std::vector<PublicKey>> FromJwks(std::string_view json);

  // Writes the key file atomically (readable by all: it is public). Replaces an existing file.
  Status WriteTo(const std::filesystem::path& path) const;

  std::string ToBase64() const;
  // {"kty":"OKP","crv":"Ed25519","x":...,"kid":...,"alg":"EdDSA","use":"sig"}
  nlohmann::json ToJwk() const;

  const std::array<unsigned char, kSize>& bytes() const { return bytes_; }
  const std::string& kid() const { return kid_; }

  bool operator==(const PublicKey&) const = default;

 private:
  PublicKey(const std::array<unsigned char, kSize>& bytes, std::string kid)
      : bytes_(bytes), kid_(std::move(kid)) {}
  std::array<unsigned char, kSize> bytes_;
  std::string kid_;
};

// {"keys":[<ToJwk() of each key>]}, the document served at /.well-known/jwks.json.
std::string Jwks(std::span<const PublicKey> keys);

// An Ed25519 private key. Move-only so the secret is not copied around; the secret bytes are
// wiped when the object is destroyed or moved from. Sign is const and thread-safe.
class SigningKey {
 public:
  static constexpr size_t kSeedSize = 32;

  // A new random key. kInternal only if libsodium cannot initialise.
  static Result<SigningKey> Generate();
  // The key from its 32-byte seed in base64 (the key-file format; meant for an environment
  // variable). kInvalidArgument otherwise; the message never contains the input.
  static Result<SigningKey> FromSeedBase64(std::string_view text);
  // Loads the seed file at `path`, or when there is none generates a key and writes it there:
  // mode 0600, written to a temporary file and linked into place, so a reader never sees a
  // partial file and two processes racing to create it end up with the same key. Creates
  // missing parent directories. kIo / kPermissionDenied / kInvalidArgument naming the file.
  static Result<SigningKey> LoadOrCreate(const std::filesystem::path& path);

  SigningKey(SigningKey&& other) noexcept;
  SigningKey& operator=(SigningKey&& other) noexcept;
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;
  ~SigningKey();

  const PublicKey& public_key() const { return public_key_; }
  // The secret seed in the key-file format, for exporting a key (e.g. into a secret store).
  std::string ExportSeedBase64() const;
  // A compact JWS: base64url(header).base64url(payload).base64url(signature), with
  // header {"alg":"EdDSA","typ":"JWT","kid":...} and payload iss/sub/name/iat/exp/[nbf]/jti.
  std::string Sign(const Claims& claims) const;

 private:
  SigningKey(const std::array<unsigned char, 64>& secret, PublicKey public_key)
      : secret_(secret), public_key_(std::move(public_key)) {}
  static Result<SigningKey> FromSeed(std::span<const unsigned char, kSeedSize> seed);

  std::array<unsigned char, 64> secret_;  // libsodium layout: seed || public key
  PublicKey public_key_;
};

struct TokenVerifierOptions {
  // Seconds since the Unix epoch. Empty: the system clock.
  std::function<int64_t()> clock;
  // Tolerated clock skew between issuer and verifier, applied to exp, nbf and iat (0..3600).
  int64_t leeway_seconds = 30;
  // How many verified tokens to remember (so a token seen before costs a hash, not an Ed25519
  // verification). Rounded up to a multiple of the 16 cache shards; 0 disables the cache.
  size_t cache_capacity = 10000;
};

// Checks tokens. Verify is thread-safe; the object is neither copyable nor movable.
class TokenVerifier {
 public:
  explicit TokenVerifier(std::vector<PublicKey> keys, TokenVerifierOptions options = {});
  ~TokenVerifier();
  TokenVerifier(const TokenVerifier&) = delete;
  TokenVerifier& operator=(const TokenVerifier&) = delete;

  // The claims of a valid token. Every failure is kUnauthenticated, with a message such as
  // "token expired", "token signature is invalid", "unsupported token algorithm",
  // "token is malformed", "token signing key is unknown".
  Result<Claims> Verify(std::string_view token) const;

  // Number of tokens in the cache (for tests and metrics).
  size_t CachedTokens() const;

 private:
  struct Shard;
  using Digest = std::array<unsigned char, 32>;

  int64_t Now() const;
  Result<Claims> VerifyUncached(std::string_view token, int64_t now) const;
  Status CheckTimes(const Claims& claims, int64_t now) const;
  Digest CacheKey(std::string_view token) const;
  Shard& ShardFor(const Digest& digest) const;

  std::vector<PublicKey> keys_;
  TokenVerifierOptions options_;
  std::array<unsigned char, 32> cache_hash_key_;
  size_t shard_capacity_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace vmp3::auth
