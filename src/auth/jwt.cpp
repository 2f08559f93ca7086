#include "auth/jwt.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <system_error>
#include <unordered_map>

#include "auth/base64.hpp"
#include "auth/sodium.hpp"
#include "common/io.hpp"
#include "common/text.hpp"

namespace vmp3::auth {
namespace {

using nlohmann::json;

// Real tokens are a few hundred bytes. The cap bounds the work (base64, JSON parsing) an
// unauthenticated request can cause before the signature has been checked.
constexpr size_t kMaxTokenBytes = 8192;
constexpr size_t kMaxKeyFileBytes = 4096;
constexpr size_t kShards = 16;

tl::unexpected<Error> Unauthenticated(std::string message) {
  return MakeError(ErrorCode::kUnauthenticated, std::move(message));
}

std::string Base64Url(std::string_view bytes) {
  return Base64Encode(bytes.data(), bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  return Base64DecodeStrict(text, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

// Key files and environment variables: accept whichever base64 flavour a tool produced.
std::optional<std::string> Base64DecodeLenient(std::string_view text) {
  text = TrimWhitespace(text);
  for (int variant : {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                      sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING}) {
    if (auto bytes = Base64DecodeStrict(text, variant)) return bytes;
  }
  return std::nullopt;
}

// ---- files --------------------------------------------------------------------------------

Result<std::string> ReadSmallFile(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return tl::unexpected(ErrnoError(err, "cannot open", path.string()));
  }
  std::string data;
  char buffer[1024];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      Error e = ErrnoError(err, "cannot read", path.string());
      ::close(fd);
      return tl::unexpected(e);
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
    if (data.size() > kMaxKeyFileBytes) {
      ::close(fd);
      sodium_memzero(buffer, sizeof buffer);
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("key file {} is too large to be a key file", path.string()));
    }
  }
  ::close(fd);
  sodium_memzero(buffer, sizeof buffer);
  return data;
}

// Creates `path` holding `contents` with mode 0600, never replacing an existing file
// (kAlreadyExists). The bytes go to a temporary file first and are linked into place, so the key
// file never exists half-written or with looser permissions.
Status CreateSecretFile(const std::filesystem::path& path, std::string_view contents) {
  return WriteFileAtomically(
      path, contents,
      AtomicFileOptions{
          .overwrite = false, .mode = 0600, .exact_mode = true, .create_directories = true});
}

// ---- keys ---------------------------------------------------------------------------------

std::string DeriveKid(std::span<const unsigned char, PublicKey::kSize> key) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, key.data(), key.size());
  return Base64Encode(digest, 8, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

// ---- JSON helpers (no exceptions: every access is type-checked first) ----------------------

const json* Member(const json& object, const char* name) {
  auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

std::optional<std::string> StringMember(const json& object, const char* name) {
  const json* value = Member(object, name);
  if (value == nullptr || !value->is_string()) return std::nullopt;
  return value->get<std::string>();
}

std::optional<int64_t> IntMember(const json& object, const char* name) {
  const json* value = Member(object, name);
  if (value == nullptr) return std::nullopt;
  if (value->is_number_unsigned()) {
    auto u = value->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (value->is_number_integer()) return value->get<int64_t>();
  return std::nullopt;
}

std::string Dump(const json& value) {
  // Replace invalid UTF-8 instead of throwing: a token must never fail to serialise.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

// ---- Claims -------------------------------------------------------------------------------

Claims MakeClaims(std::string_view user_id, std::string_view username, int64_t now,
                  int64_t ttl_seconds) {
  SodiumReady();
  unsigned char random[16];
  randombytes_buf(random, sizeof random);
  Claims claims;
  claims.subject = std::string(user_id);
  claims.username = std::string(username);
  claims.issued_at = now;
  claims.expires_at = now + ttl_seconds;
  claims.id = Base64Encode(random, sizeof random, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return claims;
}

// ---- PublicKey ----------------------------------------------------------------------------

Result<PublicKey> PublicKey::FromBytes(std::span<const unsigned char> bytes) {
  if (bytes.size() != kSize) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("an Ed25519 public key is {} bytes, not {}", kSize, bytes.size()));
  }
  std::array<unsigned char, kSize> key;
  std::memcpy(key.data(), bytes.data(), kSize);
  return PublicKey(key, DeriveKid(key));
}

Result<PublicKey> PublicKey::FromBase64(std::string_view text) {
  auto bytes = Base64DecodeLenient(text);
  if (!bytes || bytes->size() != kSize) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "not an Ed25519 public key (expected 32 bytes in base64)");
  }
  return FromBytes(std::span(reinterpret_cast<const unsigned char*>(bytes->data()), kSize));
}

Result<PublicKey> PublicKey::FromFile(const std::filesystem::path& path) {
  auto text = ReadSmallFile(path);
  if (!text) return tl::unexpected(text.error());
  auto key = FromBase64(*text);
  if (!key) {
    return MakeError(ErrorCode::kInvalidArgument, fmt::format("{} is not a public key file: {}",
                                                              path.string(), key.error().message));
  }
  return key;
}

Result<std::vector<PublicKey>> PublicKey::FromJwks(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  const json* keys = doc.is_object() ? Member(doc, "keys") : nullptr;
  if (keys == nullptr || !keys->is_array()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "JWKS must be a JSON object with a \"keys\" array");
  }
  std::vector<PublicKey> result;
  for (const json& jwk : *keys) {
    if (!jwk.is_object()) continue;
    // Skip keys we cannot or must not use for verifying EdDSA signatures.
    if (StringMember(jwk, "kty") != "OKP" || StringMember(jwk, "crv") != "Ed25519") continue;
    if (auto use = StringMember(jwk, "use"); use && *use != "sig") continue;
    if (auto alg = StringMember(jwk, "alg"); alg && *alg != "EdDSA") continue;
    auto x = StringMember(jwk, "x");
    std::optional<std::string> bytes = x ? Base64UrlDecode(*x) : std::nullopt;
    if (!bytes || bytes->size() != kSize) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "JWKS has an Ed25519 key whose \"x\" is not 32 bytes of base64url");
    }
    auto key = FromBytes(std::span(reinterpret_cast<const unsigned char*>(bytes->data()), kSize));
    if (!key) return tl::unexpected(key.error());
    if (auto kid = StringMember(jwk, "kid"); kid && !kid->empty()) {
      result.push_back(PublicKey(key->bytes(), *kid));
    } else {
      result.push_back(*key);
    }
  }
  if (result.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "JWKS holds no Ed25519 signing key");
  }
  return result;
}

Status PublicKey::WriteTo(const std::filesystem::path& path) const {
  return WriteFileAtomically(path, ToBase64() + "\n", AtomicFileOptions{.overwrite = true});
}

std::string PublicKey::ToBase64() const {
  return Base64Encode(bytes_.data(), bytes_.size(), sodium_base64_VARIANT_ORIGINAL);
}

nlohmann::json PublicKey::ToJwk() const {
  return json{
      {"kty", "OKP"},
      {"crv", "Ed25519"},
      {"x", Base64Encode(bytes_.data(), bytes_.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING)},
      {"kid", kid_},
      {"alg", "EdDSA"},
      {"use", "sig"}};
}

std::string Jwks(std::span<const PublicKey> keys) {
  json list = json::array();
  for (const PublicKey& key : keys) list.push_back(key.ToJwk());
  return Dump(json{{"keys", std::move(list)}});
}

// ---- SigningKey ---------------------------------------------------------------------------

Result<SigningKey> SigningKey::FromSeed(std::span<const unsigned char, kSeedSize> seed) {
  if (!SodiumReady()) return MakeError(ErrorCode::kInternal, "libsodium failed to initialise");
  std::array<unsigned char, PublicKey::kSize> pk;
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> sk;
  crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
  SigningKey key(sk, *PublicKey::FromBytes(pk));  // 32 bytes: cannot fail
  sodium_memzero(sk.data(), sk.size());
  return key;
}

Result<SigningKey> SigningKey::Generate() {
  if (!SodiumReady()) return MakeError(ErrorCode::kInternal, "libsodium failed to initialise");
  std::array<unsigned char, kSeedSize> seed;
  randombytes_buf(seed.data(), seed.size());
  auto key = FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  return key;
}

Result<SigningKey> SigningKey::FromSeedBase64(std::string_view text) {
  auto bytes = Base64DecodeLenient(text);
  if (!bytes || bytes->size() != kSeedSize) {
    if (bytes) sodium_memzero(bytes->data(), bytes->size());
    return MakeError(ErrorCode::kInvalidArgument,
                     "not an Ed25519 signing key seed (expected 32 bytes in base64)");
  }
  auto key = FromSeed(std::span<const unsigned char, kSeedSize>(
      reinterpret_cast<const unsigned char*>(bytes->data()), kSeedSize));
  sodium_memzero(bytes->data(), bytes->size());
  return key;
}

Result<SigningKey> SigningKey::LoadOrCreate(const std::filesystem::path& path) {
  auto load = [&]() -> Result<SigningKey> {
    auto text = ReadSmallFile(path);
    if (!text) return tl::unexpected(text.error());
    auto key = FromSeedBase64(*text);
    sodium_memzero(text->data(), text->size());
    if (!key) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          fmt::format("{} is not a signing key file: {}", path.string(), key.error().message));
    }
    return key;
  };
  auto existing = load();
  if (existing || existing.error().code != ErrorCode::kNotFound) return existing;

  auto key = Generate();
  if (!key) return key;
  std::string contents = key->ExportSeedBase64() + "\n";
  Status created = CreateSecretFile(path, contents);
  sodium_memzero(contents.data(), contents.size());
  if (!created) {
    // Another process created the file first: use its key so both sign with the same one.
    if (created.error().code == ErrorCode::kAlreadyExists) return load();
    return tl::unexpected(created.error());
  }
  return key;
}

SigningKey::SigningKey(SigningKey&& other) noexcept
    : secret_(other.secret_), public_key_(other.public_key_) {
  sodium_memzero(other.secret_.data(), other.secret_.size());
}

SigningKey& SigningKey::operator=(SigningKey&& other) noexcept {
  if (this != &other) {
    secret_ = other.secret_;
    public_key_ = other.public_key_;
    sodium_memzero(other.secret_.data(), other.secret_.size());
  }
  return *this;
}

SigningKey::~SigningKey() { sodium_memzero(secret_.data(), secret_.size()); }

std::string SigningKey::ExportSeedBase64() const {
  return Base64Encode(secret_.data(), kSeedSize, sodium_base64_VARIANT_ORIGINAL);
}

std::string SigningKey::Sign(const Claims& claims) const {
  json header = {{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", public_key_.kid()}};
  json payload = {{"iss", std::string(kTokenIssuer)}, {"sub", claims.subject},
                  {"name", claims.username},          {"iat", claims.issued_at},
                  {"exp", claims.expires_at},         {"jti", claims.id}};
  if (claims.not_before) payload["nbf"] = *claims.not_before;
  std::string token = Base64Url(Dump(header)) + "." + Base64Url(Dump(payload));
  unsigned char signature[crypto_sign_BYTES];
  crypto_sign_detached(signature, nullptr, reinterpret_cast<const unsigned char*>(token.data()),
                       token.size(), secret_.data());
  token += ".";
  token += Base64Encode(signature, sizeof signature, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return token;
}

// ---- TokenVerifier ------------------------------------------------------------------------

// The cache maps a keyed BLAKE2b-256 digest of the whole token to its verified claims.
// - The digest covers every byte of the token, and BLAKE2b is collision-resistant, so a hit means
//   "this exact token string was verified before": a forged or altered token cannot hit an
//   entry. (A plain std::hash would let an attacker search for a token colliding with a cached
//   one and skip the signature check.)
// - The BLAKE2b key is random per verifier, so nobody can predict digests and aim many tokens
//   at one bucket or shard.
// - Only successfully verified tokens are stored, so garbage tokens cannot evict good entries;
//   capacity bounds memory.
struct TokenVerifier::Shard {
  struct DigestHash {
    size_t operator()(const Digest& d) const {
      size_t h;
      std::memcpy(&h, d.data(), sizeof h);  // already uniformly distributed
      return h;
    }
  };
  std::mutex mu;
  std::unordered_map<Digest, Claims, DigestHash> entries;
};

TokenVerifier::TokenVerifier(std::vector<PublicKey> keys, TokenVerifierOptions options)
    : keys_(std::move(keys)), options_(std::move(options)), shards_(new Shard[kShards]) {
  SodiumReady();
  randombytes_buf(cache_hash_key_.data(), cache_hash_key_.size());
  options_.leeway_seconds = std::clamp<int64_t>(options_.leeway_seconds, 0, 3600);
  shard_capacity_ = (options_.cache_capacity + kShards - 1) / kShards;
}

TokenVerifier::~TokenVerifier() = default;

int64_t TokenVerifier::Now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TokenVerifier::Digest TokenVerifier::CacheKey(std::string_view token) const {
  Digest digest;
  crypto_generichash(digest.data(), digest.size(),
                     reinterpret_cast<const unsigned char*>(token.data()), token.size(),
                     cache_hash_key_.data(), cache_hash_key_.size());
  return digest;
}

TokenVerifier::Shard& TokenVerifier::ShardFor(const Digest& digest) const {
  return shards_[digest[31] % kShards];
}

size_t TokenVerifier::CachedTokens() const {
  size_t total = 0;
  for (size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mu);
    total += shards_[i].entries.size();
  }
  return total;
}

Status TokenVerifier::CheckTimes(const Claims& claims, int64_t now) const {
  // Written so nothing overflows whatever the token says: only `now` (sane) is offset.
  const int64_t leeway = options_.leeway_seconds;
  if (now - leeway >= claims.expires_at) return Unauthenticated("token expired");
  if (claims.not_before && now + leeway < *claims.not_before) {
    return Unauthenticated("token is not valid yet");
  }
  if (now + leeway < claims.issued_at) return Unauthenticated("token was issued in the future");
  return {};
}

Result<Claims> TokenVerifier::Verify(std::string_view token) const {
  const int64_t now = Now();
  if (token.empty()) return Unauthenticated("token is missing");
  if (token.size() > kMaxTokenBytes) return Unauthenticated("token is too long");
  if (options_.cache_capacity == 0) return VerifyUncached(token, now);

  const Digest digest = CacheKey(token);
  Shard& shard = ShardFor(digest);
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.entries.find(digest);
    if (it != shard.entries.end()) {
      // A cached token was valid once; time may have moved on since.
      Status valid = CheckTimes(it->second, now);
      if (valid) return it->second;
      if (now - options_.leeway_seconds >= it->second.expires_at) shard.entries.erase(it);
      return tl::unexpected(valid.error());
    }
  }

  auto claims = VerifyUncached(token, now);
  if (!claims) return claims;
  std::lock_guard lock(shard.mu);
  if (shard.entries.size() >= shard_capacity_) {
    std::erase_if(shard.entries, [&](const auto& entry) {
      return now - options_.leeway_seconds >= entry.second.expires_at;
    });
    // Still full of live tokens: drop an arbitrary one (the keyed digest makes it random).
    if (shard.entries.size() >= shard_capacity_) shard.entries.erase(shard.entries.begin());
  }
  shard.entries.emplace(digest, *claims);
  return claims;
}

Result<Claims> TokenVerifier::VerifyUncached(std::string_view token, int64_t now) const {
  // Exactly three non-empty segments: header.payload.signature. (JWE has five; an unsigned JWT
  // has an empty signature; neither is accepted.)
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Unauthenticated("token is malformed");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);
  if (header_b64.empty() || payload_b64.empty()) return Unauthenticated("token is malformed");

  auto header_text = Base64UrlDecode(header_b64);
  if (!header_text) return Unauthenticated("token is malformed");
  json header = json::parse(*header_text, nullptr, /*allow_exceptions=*/false);
  if (!header.is_object()) return Unauthenticated("token is malformed");

  // The algorithm is fixed by us, not chosen by the token. Honouring the header's "alg" is the
  // classic JWT hole: "none" would skip verification, and "HS256" would make a verifier use the
  // (public!) key as an HMAC secret that anyone can compute. So anything but exactly "EdDSA" is
  // rejected before any key is touched.
  if (StringMember(header, "alg") != "EdDSA") return Unauthenticated("unsupported token algorithm");
  if (auto typ = Member(header, "typ"); typ != nullptr && *typ != "JWT") {
    return Unauthenticated("token is malformed");
  }
  // "crit" names extensions the verifier must understand; we understand none (RFC 7515 4.1.11).
  if (Member(header, "crit") != nullptr) return Unauthenticated("token is malformed");
  // Header fields that point at keys (jwk, jku, x5u, x5c) are ignored: trusting a key the token
  // brings along would let anyone sign. Only our configured keys are used.

  const PublicKey* key = nullptr;
  if (const json* kid = Member(header, "kid"); kid != nullptr) {
    if (!kid->is_string()) return Unauthenticated("token is malformed");
    for (const PublicKey& candidate : keys_) {
      if (candidate.kid() == kid->get_ref<const std::string&>()) {
        key = &candidate;
        break;
      }
    }
  } else if (keys_.size() == 1) {
    key = &keys_.front();
  }
  if (key == nullptr) return Unauthenticated("token signing key is unknown");

  auto signature = Base64UrlDecode(signature_b64);
  if (!signature || signature->size() != crypto_sign_BYTES) {
    return Unauthenticated("token signature is invalid");
  }
  // Verify over the header and payload exactly as received (never re-serialised JSON).
  // libsodium also rejects non-canonical signatures and small-order keys.
  const std::string_view signed_part = token.substr(0, dot2);
  if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature->data()),
                                  reinterpret_cast<const unsigned char*>(signed_part.data()),
                                  signed_part.size(), key->bytes().data()) != 0) {
    return Unauthenticated("token signature is invalid");
  }

  // From here on the JSON was written by a holder of our key.
  auto payload_text = Base64UrlDecode(payload_b64);
  if (!payload_text) return Unauthenticated("token is malformed");
  json payload = json::parse(*payload_text, nullptr, /*allow_exceptions=*/false);
  if (!payload.is_object()) return Unauthenticated("token is malformed");
  if (StringMember(payload, "iss") != kTokenIssuer) {
    return Unauthenticated("token issuer is not accepted");
  }
  Claims claims;
  auto sub = StringMember(payload, "sub");
  auto name = StringMember(payload, "name");
  auto iat = IntMember(payload, "iat");
  auto exp = IntMember(payload, "exp");
  auto jti = StringMember(payload, "jti");
  if (!sub || sub->empty() || !name || !iat || !exp || !jti) {
    return Unauthenticated("token is malformed");
  }
  claims.subject = std::move(*sub);
  claims.username = std::move(*name);
  claims.issued_at = *iat;
  claims.expires_at = *exp;
  claims.id = std::move(*jti);
  if (Member(payload, "nbf") != nullptr) {
    claims.not_before = IntMember(payload, "nbf");
    if (!claims.not_before) return Unauthenticated("token is malformed");
  }
  if (Status s = CheckTimes(claims, now); !s) return tl::unexpected(s.error());
  return claims;
}

}  // namespace vmp3::auth
