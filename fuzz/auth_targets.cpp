// Entry point for the access-token code (auth/jwt.hpp): token verification, JWKS and key files.
#include <openssl/evp.h>
#include <sodium.h>

#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwt.hpp"
#include "fuzz_check.hpp"
#include "fuzz_targets.hpp"

namespace vmp3::fuzz {
namespace {

// The verifiers' clock. Seed tokens are issued at kNow - 60 and expire at kNow + 3600.
constexpr int64_t kNow = 1'700'000'000;
constexpr int64_t kLeeway = 30;

// The fixed test key that signed the seed tokens in corpus/jwt/ (fuzz/make_seeds.py). Public
// knowledge: it signs nothing but fuzz inputs.
constexpr std::string_view kFixedSeed = "vmp3-fuzz-fixed-test-key-seed-01";

std::string Base64(std::string_view bytes, int variant) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.resize(out.find('\0'));
  return out;
}

std::string Base64Url(std::string_view bytes) {
  return Base64(bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

// Strict base64url without padding, written independently of jwt.cpp (which uses libsodium):
// every character from the alphabet, no impossible length, zero trailing bits.
std::optional<std::string> DecodeBase64Url(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
    }
  }
  if ((bits & ((1u << count) - 1)) != 0) return std::nullopt;
  return out;
}

// Ed25519 verification by OpenSSL, a second implementation beside libsodium. libsodium is the
// stricter of the two (it also refuses small-order points), so whatever it accepts OpenSSL must.
bool OpenSslVerifies(const std::array<unsigned char, 32>& public_key, std::string_view message,
                     std::string_view signature) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()),
      &EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!key || !ctx) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

struct Keys {
  auth::SigningKey fixed;
  auth::SigningKey random;  // made at startup, never signs anything: nothing may verify with it
  // The random key under the fixed key's kid, so that tokens naming the fixed key reach the
  // signature check against the random one.
  auth::PublicKey random_as_fixed;
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> fixed_secret;
  std::unique_ptr<auth::TokenVerifier> verifier;         // the fixed key, no cache
  std::unique_ptr<auth::TokenVerifier> cached_verifier;  // the fixed key, with a cache
  std::unique_ptr<auth::TokenVerifier> random_verifier;  // random_as_fixed and the random key
};

auth::TokenVerifierOptions Options(size_t cache_capacity) {
  auth::TokenVerifierOptions options;
  options.clock = [] { return kNow; };
  options.leeway_seconds = kLeeway;
  options.cache_capacity = cache_capacity;
  return options;
}

const Keys& TheKeys() {
  static const Keys* keys = [] {
    auto fixed =
        auth::SigningKey::FromSeedBase64(Base64(kFixedSeed, sodium_base64_VARIANT_ORIGINAL));
    auto random = auth::SigningKey::Generate();
    FUZZ_CHECK(fixed && random, "cannot make the test keys");
    const std::string jwks =
        R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":")" +
        Base64Url(std::string_view(
            reinterpret_cast<const char*>(random->public_key().bytes().data()), 32)) +
        R"(","kid":")" + fixed->public_key().kid() + R"("}]})";
    auto random_as_fixed = auth::PublicKey::FromJwks(jwks);
    FUZZ_CHECK(random_as_fixed && random_as_fixed->size() == 1, jwks);
    auto* k =
        new Keys{std::move(*fixed), std::move(*random), random_as_fixed->front(), {}, {}, {}, {}};
    std::array<unsigned char, 32> public_key;
    crypto_sign_seed_keypair(public_key.data(), k->fixed_secret.data(),
                             reinterpret_cast<const unsigned char*>(kFixedSeed.data()));
    FUZZ_CHECK(public_key == k->fixed.public_key().bytes(), "the fixed key differs");
    k->verifier = std::make_unique<auth::TokenVerifier>(
        std::vector<auth::PublicKey>{k->fixed.public_key()}, Options(0));
    k->cached_verifier = std::make_unique<auth::TokenVerifier>(
        std::vector<auth::PublicKey>{k->fixed.public_key()}, Options(64));
    k->random_verifier = std::make_unique<auth::TokenVerifier>(
        std::vector<auth::PublicKey>{k->random_as_fixed, k->random.public_key()}, Options(0));
    return k;
  }();
  return *keys;
}

// Verifies `token` every way there is and checks that the verdicts agree with each other and
// with an independent check of the signature.
void CheckToken(std::string_view token) {
  const Keys& keys = TheKeys();
  const std::string shown(token.substr(0, 200));

  auto forged = keys.random_verifier->Verify(token);
  FUZZ_CHECK(!forged, "verified against a key that never signed anything: " + shown);
  FUZZ_CHECK(forged.error().code == ErrorCode::kUnauthenticated, forged.error().message);

  auto claims = keys.verifier->Verify(token);
  auto cached = keys.cached_verifier->Verify(token);
  auto again = keys.cached_verifier->Verify(token);  // from the cache when valid
  for (const auto* other : {&cached, &again}) {
    FUZZ_CHECK(other->has_value() == claims.has_value(), shown);
    if (claims) {
      FUZZ_CHECK(**other == *claims, shown);
    } else {
      FUZZ_CHECK(other->error().message == claims.error().message, shown);
    }
  }
  if (!claims) {
    FUZZ_CHECK(claims.error().code == ErrorCode::kUnauthenticated, claims.error().message);
    FUZZ_CHECK(!claims.error().message.empty(), shown);
    return;
  }

  // A valid token is three canonical base64url segments whose signature OpenSSL accepts too.
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.find('.', dot1 + 1);
  FUZZ_CHECK(dot1 != std::string_view::npos && dot2 != std::string_view::npos &&
                 token.find('.', dot2 + 1) == std::string_view::npos,
             shown);
  for (std::string_view segment :
       {token.substr(0, dot1), token.substr(dot1 + 1, dot2 - dot1 - 1), token.substr(dot2 + 1)}) {
    auto decoded = DecodeBase64Url(segment);
    FUZZ_CHECK(decoded.has_value(), shown);
    FUZZ_CHECK(Base64Url(*decoded) == segment, shown);  // one encoding per byte string
  }
  auto signature = DecodeBase64Url(token.substr(dot2 + 1));
  FUZZ_CHECK(signature->size() == 64, shown);
  FUZZ_CHECK(OpenSslVerifies(keys.fixed.public_key().bytes(), token.substr(0, dot2), *signature),
             shown);

  // The claims are usable and within their times.
  FUZZ_CHECK(!claims->subject.empty(), shown);
  FUZZ_CHECK(kNow - kLeeway < claims->expires_at, shown);
  FUZZ_CHECK(claims->issued_at <= kNow + kLeeway, shown);
  FUZZ_CHECK(!claims->not_before || *claims->not_before <= kNow + kLeeway, shown);
  // Signing the same claims again gives a token with the same claims.
  auto resigned = keys.verifier->Verify(keys.fixed.Sign(*claims));
  FUZZ_CHECK(resigned.has_value() && *resigned == *claims, shown);
}

// "header JSON \0 payload JSON", encoded and signed with the fixed key: reaches the claims parser,
// which only runs after the signature has been checked.
void CheckSignedJson(std::string_view input) {
  const size_t cut = input.find('\0');
  if (cut == std::string_view::npos) return;
  const std::string signed_part =
      Base64Url(input.substr(0, cut)) + "." + Base64Url(input.substr(cut + 1));
  unsigned char signature[crypto_sign_BYTES];
  crypto_sign_detached(signature, nullptr,
                       reinterpret_cast<const unsigned char*>(signed_part.data()),
                       signed_part.size(), TheKeys().fixed_secret.data());
  CheckToken(
      signed_part + "." +
      Base64Url(std::string_view(reinterpret_cast<const char*>(signature), sizeof signature)));
}

void CheckJwks(std::string_view document) {
  auto keys = auth::PublicKey::FromJwks(document);
  if (!keys) {
    FUZZ_CHECK(keys.error().code == ErrorCode::kInvalidArgument, keys.error().message);
    return;
  }
  FUZZ_CHECK(!keys->empty(), "an empty key set was accepted");
  for (const auth::PublicKey& key : *keys) FUZZ_CHECK(!key.kid().empty(), "a key without kid");
  // What we publish (the auth role's /.well-known/jwks.json) reads back as the same keys.
  const std::string published = auth::Jwks(*keys);
  auto again = auth::PublicKey::FromJwks(published);
  FUZZ_CHECK(again.has_value() && *again == *keys, published);
  // No token verifies against keys that never signed anything (unless the document holds the
  // fixed test key, whose seed is public).
  bool holds_fixed = false;
  for (const auth::PublicKey& key : *keys) {
    holds_fixed = holds_fixed || key.bytes() == TheKeys().fixed.public_key().bytes();
  }
  if (!holds_fixed) {
    auth::TokenVerifier verifier(*keys, Options(0));
    auto claims = verifier.Verify(TheKeys().fixed.Sign(auth::MakeClaims("u1", "ann", kNow, 60)));
    FUZZ_CHECK(!claims, published);
  }
}

void CheckKeyText(std::string_view text) {
  if (auto key = auth::PublicKey::FromBase64(text)) {
    auto again = auth::PublicKey::FromBase64(key->ToBase64());
    FUZZ_CHECK(again.has_value() && *again == *key, key->ToBase64());
  } else {
    // One message for every bad text: it cannot repeat any of it.
    FUZZ_CHECK(key.error().code == ErrorCode::kInvalidArgument, key.error().message);
    FUZZ_CHECK(key.error().message == auth::PublicKey::FromBase64("!").error().message,
               key.error().message);
  }
  if (auto key = auth::SigningKey::FromSeedBase64(text)) {
    auto again = auth::SigningKey::FromSeedBase64(key->ExportSeedBase64());
    FUZZ_CHECK(again.has_value() && again->public_key() == key->public_key(), "seed round trip");
    // Any key signs tokens that its public key, and only it, verifies.
    const std::string token = key->Sign(auth::MakeClaims("u1", "ann", kNow, 60));
    auth::TokenVerifier verifier({key->public_key()}, Options(0));
    FUZZ_CHECK(verifier.Verify(token).has_value(), token);
    if (key->public_key().bytes() != TheKeys().fixed.public_key().bytes()) {
      FUZZ_CHECK(!TheKeys().verifier->Verify(token), token);
    }
  } else {
    // A secret must never be echoed: one message for every bad text.
    FUZZ_CHECK(key.error().code == ErrorCode::kInvalidArgument, key.error().message);
    FUZZ_CHECK(key.error().message == auth::SigningKey::FromSeedBase64("!").error().message,
               key.error().message);
  }
}

}  // namespace

int FuzzJwt(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view input = AsText(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      CheckToken(input);
      break;
    case 1:
      CheckSignedJson(input);
      break;
    case 2:
      CheckJwks(input);
      break;
    default:
      CheckKeyText(input);
      break;
  }
  return 0;
}

}  // namespace vmp3::fuzz
