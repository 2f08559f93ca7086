#include "notify/web_push.hpp"

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <charconv>
#include <chrono>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>

#include "auth/base64.hpp"
#include "common/io.hpp"
#include "common/text.hpp"

namespace vmp3::notify {
namespace {

// Helper names carry a WebPush prefix: the library is a unity build, and other files of
// vmp3::notify have anonymous namespaces of their own.

constexpr size_t kWebPushPointSize = 65;   // uncompressed P-256 point: 0x04 || X || Y
constexpr size_t kWebPushScalarSize = 32;  // a P-256 coordinate, scalar or ECDH secret
constexpr size_t kWebPushAuthSize = 16;
constexpr size_t kWebPushSaltSize = 16;
constexpr size_t kWebPushTagSize = 16;
constexpr size_t kWebPushHeaderSize = kWebPushSaltSize + 4 + 1 + kWebPushPointSize;  // 86
constexpr size_t kWebPushMaxPemBytes = 4096;
constexpr size_t kWebPushMaxJwtBytes = 4096;
constexpr size_t kWebPushMaxSubjectBytes = 512;
constexpr char kWebPushCurve[] = "prime256v1";  // OpenSSL's name for P-256

// ---- OpenSSL ownership --------------------------------------------------------------------

struct WebPushFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_clear_free(p); }
  void operator()(BN_CTX* p) const { BN_CTX_free(p); }
  void operator()(EC_GROUP* p) const { EC_GROUP_free(p); }
  void operator()(EC_POINT* p) const { EC_POINT_clear_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
template <typename T>
using WebPushPtr = std::unique_ptr<T, WebPushFree>;

std::shared_ptr<EVP_PKEY> WebPushShare(WebPushPtr<EVP_PKEY> pkey) {
  return std::shared_ptr<EVP_PKEY>(pkey.release(), WebPushFree{});
}

tl::unexpected<Error> WebPushInternal(std::string_view what) {
  return MakeError(ErrorCode::kInternal, fmt::format("OpenSSL failed to {}", what));
}

tl::unexpected<Error> WebPushInvalid(std::string message) {
  return MakeError(ErrorCode::kInvalidArgument, std::move(message));
}

// Wipes a secret held in a std::string.
void WebPushWipe(std::string& secret) { OPENSSL_cleanse(secret.data(), secret.size()); }

// ---- base64url ----------------------------------------------------------------------------

std::string WebPushBase64Url(std::string_view bytes) {
  return auth::Base64Encode(bytes.data(), bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

// Strict base64url; trailing '=' padding is accepted and ignored (some libraries pad the keys).
std::optional<std::string> WebPushBase64UrlDecode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  return auth::Base64DecodeStrict(text, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

std::string_view WebPushNoPadding(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  return text;
}

// ---- keys ---------------------------------------------------------------------------------

// The uncompressed public point of an EC key, whatever point format the key was stored with.
Result<std::string> WebPushPublicPoint(const EVP_PKEY* pkey) {
  BIGNUM* x_raw = nullptr;
  BIGNUM* y_raw = nullptr;
  const bool ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x_raw) == 1 &&
                  EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y_raw) == 1;
  WebPushPtr<BIGNUM> x(x_raw), y(y_raw);
  if (!ok) return WebPushInternal("read an EC public key");
  std::string point(kWebPushPointSize, '\0');
  point[0] = 0x04;
  auto* out = reinterpret_cast<unsigned char*>(point.data());
  if (BN_bn2binpad(x.get(), out + 1, kWebPushScalarSize) != kWebPushScalarSize ||
      BN_bn2binpad(y.get(), out + 1 + kWebPushScalarSize, kWebPushScalarSize) !=
          kWebPushScalarSize) {
    return WebPushInternal("encode an EC public key");
  }
  return point;
}

bool WebPushIsP256(const EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "EC") != 1) return false;
  char group[64] = {};
  size_t length = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                     &length) != 1) {
    return false;
  }
  return std::string_view(group, length) == kWebPushCurve;
}

// An EVP_PKEY from OpenSSL parameters (group name, public point, optionally the private scalar).
WebPushPtr<EVP_PKEY> WebPushFromParams(std::string_view point, const BIGNUM* private_scalar) {
  WebPushPtr<OSSL_PARAM_BLD> builder(OSSL_PARAM_BLD_new());
  if (!builder) return nullptr;
  if (OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, kWebPushCurve,
                                      0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return nullptr;
  }
  if (private_scalar != nullptr &&
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_PRIV_KEY, private_scalar) != 1) {
    return nullptr;
  }
  WebPushPtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(builder.get()));
  WebPushPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  EVP_PKEY* pkey = nullptr;
  const int selection = private_scalar != nullptr ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;
  if (EVP_PKEY_fromdata(ctx.get(), &pkey, selection, params.get()) != 1) return nullptr;
  return WebPushPtr<EVP_PKEY>(pkey);
}

// A public key from a 65-byte uncompressed point, checked to lie on P-256 (an invalid point
// would leak the private key through the ECDH: the invalid-curve attack).
Result<WebPushPtr<EVP_PKEY>> WebPushPublicKeyFromPoint(std::string_view point,
                                                       std::string_view what) {
  if (point.size() != kWebPushPointSize || point[0] != 0x04) {
    return WebPushInvalid(
        fmt::format("{} must be an uncompressed P-256 point (65 bytes starting "
                    "with 0x04), not {} bytes",
                    what, point.size()));
  }
  WebPushPtr<EVP_PKEY> pkey = WebPushFromParams(point, nullptr);
  WebPushPtr<EVP_PKEY_CTX> check(pkey ? EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr)
                                      : nullptr);
  if (!pkey || !check || EVP_PKEY_public_check(check.get()) != 1) {
    return WebPushInvalid(fmt::format("{} is not a point on the P-256 curve", what));
  }
  return pkey;
}

Result<WebPushPtr<EVP_PKEY>> WebPushPublicKeyFromBase64Url(std::string_view text,
                                                           std::string_view what) {
  auto bytes = WebPushBase64UrlDecode(text);
  if (!bytes) return WebPushInvalid(fmt::format("{} is not base64url", what));
  return WebPushPublicKeyFromPoint(*bytes, what);
}

// ---- primitives ---------------------------------------------------------------------------

std::string WebPushHmacSha256(std::string_view key, std::string_view data) {
  std::string mac(32, '\0');
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       reinterpret_cast<unsigned char*>(mac.data()), &length);
  mac.resize(length);
  return mac;
}

Result<std::string> WebPushEcdh(EVP_PKEY* own, EVP_PKEY* peer) {
  WebPushPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, own, nullptr));
  size_t length = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &length) != 1 || length != kWebPushScalarSize) {
    return WebPushInternal("compute an ECDH secret");
  }
  std::string secret(length, '\0');
  if (EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(secret.data()), &length) != 1) {
    return WebPushInternal("compute an ECDH secret");
  }
  return secret;
}

// AES-128-GCM: ciphertext || 16-byte tag. No associated data (RFC 8188 uses none).
Result<std::string> WebPushSealAes128Gcm(std::string_view key, std::string_view nonce,
                                         std::string_view plaintext) {
  WebPushPtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  std::string out(plaintext.size() + kWebPushTagSize, '\0');
  auto* data = reinterpret_cast<unsigned char*>(out.data());
  int length = 0;
  int final_length = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key.data()),
                         reinterpret_cast<const unsigned char*>(nonce.data())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), data, &length,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), data + length, &final_length) != 1 ||
      static_cast<size_t>(length + final_length) != plaintext.size() ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kWebPushTagSize,
                          data + plaintext.size()) != 1) {
    return WebPushInternal("encrypt with AES-128-GCM");
  }
  return out;
}

// ---- JSON Web Tokens ----------------------------------------------------------------------

// Splits "a.b.c" into its three parts; nullopt for any other number of dots.
std::optional<std::array<std::string_view, 3>> WebPushSplitJwt(std::string_view jwt) {
  const size_t first = jwt.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = jwt.find('.', first + 1);
  if (second == std::string_view::npos || jwt.find('.', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  return std::array<std::string_view, 3>{
      jwt.substr(0, first), jwt.substr(first + 1, second - first - 1), jwt.substr(second + 1)};
}

Status WebPushCheckSubject(std::string_view subject) {
  const bool mailto = subject.starts_with("mailto:") && subject.size() > 7;
  const bool https = subject.starts_with("https://") && subject.size() > 8;
  if (!mailto && !https) {
    return WebPushInvalid("the VAPID subject must be a mailto: or https: URI");
  }
  if (subject.size() > kWebPushMaxSubjectBytes ||
      std::any_of(subject.begin(), subject.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
      })) {
    return WebPushInvalid(fmt::format(
        "the VAPID subject must be at most {} bytes without spaces or control characters",
        kWebPushMaxSubjectBytes));
  }
  return {};
}

int64_t WebPushNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// Gives this file's functions the OpenSSL key inside a VapidKey (a friend of the class).
struct WebPushKeyAccess {
  static EVP_PKEY* Get(const VapidKey& key) { return key.pkey_.get(); }
};

// ---- VapidKey -----------------------------------------------------------------------------

Result<VapidKey> VapidKey::FromPkey(std::shared_ptr<evp_pkey_st> pkey) {
  if (!pkey || !WebPushIsP256(pkey.get())) {
    return WebPushInvalid("the VAPID key must be an EC key on the P-256 curve");
  }
  auto point = WebPushPublicPoint(pkey.get());
  if (!point) return tl::unexpected(point.error());
  return VapidKey(std::move(pkey), std::move(*point));
}

Result<VapidKey> VapidKey::Generate() {
  WebPushPtr<EVP_PKEY> pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", kWebPushCurve));
  if (!pkey) return WebPushInternal("generate a P-256 key");
  return FromPkey(WebPushShare(std::move(pkey)));
}

Result<VapidKey> VapidKey::FromPem(std::string_view pem) {
  if (pem.size() > kWebPushMaxPemBytes) {
    return WebPushInvalid("the VAPID key PEM is too large to be a P-256 key");
  }
  WebPushPtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return WebPushInternal("read a PEM key");
  // No passphrase callback would make OpenSSL prompt on the terminal for an encrypted key;
  // this one refuses instead.
  auto no_passphrase = [](char*, int, int, void*) -> int { return 0; };
  WebPushPtr<EVP_PKEY> pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!pkey) {
    return WebPushInvalid("not an unencrypted PEM private key");
  }
  WebPushPtr<EVP_PKEY_CTX> check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!WebPushIsP256(pkey.get())) {
    return WebPushInvalid("the VAPID key must be an EC key on the P-256 curve");
  }
  if (!check || EVP_PKEY_check(check.get()) != 1) {
    return WebPushInvalid("the PEM key is not a consistent P-256 key pair");
  }
  return FromPkey(WebPushShare(std::move(pkey)));
}

Result<VapidKey> VapidKey::FromPrivateBytes(std::string_view scalar) {
  if (scalar.size() != kWebPushScalarSize) {
    return WebPushInvalid(
        fmt::format("a P-256 private key is {} bytes, not {}", kWebPushScalarSize, scalar.size()));
  }
  WebPushPtr<EC_GROUP> group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  WebPushPtr<BIGNUM> d(BN_bin2bn(reinterpret_cast<const unsigned char*>(scalar.data()),
                                 static_cast<int>(scalar.size()), nullptr));
  WebPushPtr<BN_CTX> bn_ctx(BN_CTX_new());
  if (!group || !d || !bn_ctx) return WebPushInternal("read a P-256 private key");
  if (BN_is_zero(d.get()) || BN_cmp(d.get(), EC_GROUP_get0_order(group.get())) >= 0) {
    return WebPushInvalid("not a P-256 private key (the scalar must lie in 1..n-1)");
  }
  WebPushPtr<EC_POINT> public_point(EC_POINT_new(group.get()));
  std::string point(kWebPushPointSize, '\0');
  if (!public_point ||
      EC_POINT_mul(group.get(), public_point.get(), d.get(), nullptr, nullptr, bn_ctx.get()) != 1 ||
      EC_POINT_point2oct(group.get(), public_point.get(), POINT_CONVERSION_UNCOMPRESSED,
                         reinterpret_cast<unsigned char*>(point.data()), point.size(),
                         bn_ctx.get()) != kWebPushPointSize) {
    return WebPushInternal("compute a P-256 public key");
  }
  WebPushPtr<EVP_PKEY> pkey = WebPushFromParams(point, d.get());
  if (!pkey) return WebPushInternal("build a P-256 key");
  return FromPkey(WebPushShare(std::move(pkey)));
}

Result<VapidKey> VapidKey::LoadOrCreate(const std::filesystem::path& path) {
  auto load = [&]() -> Result<VapidKey> {
    auto file = FileSource::Open(path);
    if (!file) return tl::unexpected(file.error());
    std::string pem(kWebPushMaxPemBytes + 1, '\0');
    size_t filled = 0;
    while (filled < pem.size()) {
      auto n = (*file)->Read(std::as_writable_bytes(std::span(pem).subspan(filled)));
      if (!n) {
        WebPushWipe(pem);
        return tl::unexpected(n.error());
      }
      if (*n == 0) break;
      filled += *n;
    }
    pem.resize(filled);
    auto key = FromPem(pem);
    WebPushWipe(pem);
    if (!key) {
      return WebPushInvalid(
          fmt::format("{} is not a VAPID key file: {}", path.string(), key.error().message));
    }
    return key;
  };
  auto existing = load();
  if (existing || existing.error().code != ErrorCode::kNotFound) return existing;

  auto key = Generate();
  if (!key) return key;
  std::string pem = key->ToPem();
  Status created = WriteFileAtomically(
      path, pem,
      AtomicFileOptions{
          .overwrite = false, .mode = 0600, .exact_mode = true, .create_directories = true});
  WebPushWipe(pem);
  if (!created) {
    // Another process created the file first: use its key so both sign with the same one.
    if (created.error().code == ErrorCode::kAlreadyExists) return load();
    return tl::unexpected(created.error());
  }
  return key;
}

std::string VapidKey::ToPem() const {
  WebPushPtr<BIO> bio(BIO_new(BIO_s_mem()));
  // PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in OpenSSL 3. Writing to
  // memory fails only when memory runs out.
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    throw std::bad_alloc();
  }
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  std::string pem(data, static_cast<size_t>(length));
  OPENSSL_cleanse(data, static_cast<size_t>(length));
  return pem;
}

std::string VapidKey::PublicKeyBase64Url() const { return WebPushBase64Url(public_key_); }

Result<std::string> VapidKey::SignEs256(std::string_view data) const {
  WebPushPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  size_t der_length = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &der_length,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return WebPushInternal("sign with ECDSA");
  }
  std::string der(der_length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &der_length,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return WebPushInternal("sign with ECDSA");
  }
  // OpenSSL gives the DER SEQUENCE { r INTEGER, s INTEGER }; JOSE wants r || s, 32 bytes each.
  const auto* cursor = reinterpret_cast<const unsigned char*>(der.data());
  WebPushPtr<ECDSA_SIG> sig(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der_length)));
  if (!sig) return WebPushInternal("decode an ECDSA signature");
  std::string raw(2 * kWebPushScalarSize, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, kWebPushScalarSize) != kWebPushScalarSize ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + kWebPushScalarSize, kWebPushScalarSize) !=
          kWebPushScalarSize) {
    return WebPushInternal("encode an ECDSA signature");
  }
  return raw;
}

// ---- VAPID --------------------------------------------------------------------------------

Result<std::string> PushEndpointOrigin(std::string_view endpoint_url) {
  auto parsed = boost::urls::parse_uri(endpoint_url);
  if (!parsed) return WebPushInvalid("the push endpoint is not an absolute URL");
  const boost::urls::url_view& url = *parsed;
  std::string scheme = AsciiLowerCopy(url.scheme());
  uint16_t default_port = 0;
  if (scheme == "https") {
    default_port = 443;
  } else if (scheme == "http") {
    default_port = 80;
  } else {
    return WebPushInvalid("the push endpoint must be an http or https URL");
  }
  if (url.has_userinfo()) return WebPushInvalid("the push endpoint must not contain user info");
  const std::string_view host = url.encoded_host();
  if (host.empty() || host.find('%') != std::string_view::npos) {
    return WebPushInvalid("the push endpoint must name a host (without percent-encoding)");
  }
  std::string origin = fmt::format("{}://{}", scheme, AsciiLowerCopy(host));
  if (url.has_port() && !url.port().empty()) {
    // Parsed here: Boost.URL's port_number() wraps numbers past 65535 instead of refusing them.
    const std::string_view digits = url.port();
    unsigned port = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (error != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535) {
      return WebPushInvalid("the push endpoint's port is out of range");
    }
    if (port != default_port) origin += fmt::format(":{}", port);
  }
  return origin;
}

Result<std::string> VapidAuthorization(const VapidKey& key, std::string_view endpoint_url,
                                       std::string_view subject, int64_t expires_at_s) {
  return VapidAuthorization(key, endpoint_url, subject, expires_at_s, WebPushNow());
}

Result<std::string> VapidAuthorization(const VapidKey& key, std::string_view endpoint_url,
                                       std::string_view subject, int64_t expires_at_s,
                                       int64_t now_s) {
  auto audience = PushEndpointOrigin(endpoint_url);
  if (!audience) return tl::unexpected(audience.error());
  if (Status ok = WebPushCheckSubject(subject); !ok) return tl::unexpected(ok.error());
  if (expires_at_s <= now_s || expires_at_s > now_s + kMaxVapidLifetimeSeconds) {
    return WebPushInvalid(
        fmt::format("the VAPID token must expire within 24 hours from now ({} s from now asked)",
                    expires_at_s - now_s));
  }
  // Member order as in RFC 8292's example; nlohmann::ordered_json keeps it and escapes strings.
  const std::string header = R"({"typ":"JWT","alg":"ES256"})";
  const std::string claims =
      nlohmann::ordered_json{{"aud", *audience}, {"exp", expires_at_s}, {"sub", subject}}.dump();
  std::string signing_input = WebPushBase64Url(header) + "." + WebPushBase64Url(claims);
  auto signature = key.SignEs256(signing_input);
  if (!signature) return tl::unexpected(signature.error());
  return fmt::format("vapid t={}.{}, k={}", signing_input, WebPushBase64Url(*signature),
                     key.PublicKeyBase64Url());
}

Result<VapidClaims> VerifyVapidJwt(std::string_view jwt, std::string_view public_key_base64url) {
  auto fail = [](std::string_view why) {
    return MakeError(ErrorCode::kUnauthenticated, fmt::format("VAPID token {}", why));
  };
  auto public_key = WebPushPublicKeyFromBase64Url(public_key_base64url, "the VAPID public key");
  if (!public_key) return fail("key is not a P-256 public key");
  if (jwt.size() > kWebPushMaxJwtBytes) return fail("is too long");
  auto parts = WebPushSplitJwt(jwt);
  if (!parts) return fail("is not a compact JWT");
  auto header_text = WebPushBase64UrlDecode((*parts)[0]);
  auto claims_text = WebPushBase64UrlDecode((*parts)[1]);
  auto signature = WebPushBase64UrlDecode((*parts)[2]);
  if (!header_text || !claims_text || !signature) return fail("is not base64url");
  const auto header = nlohmann::json::parse(*header_text, nullptr, false);
  if (!header.is_object() || !header.contains("alg") || header["alg"] != "ES256") {
    return fail("is not signed with ES256");
  }
  if (signature->size() != 2 * kWebPushScalarSize) return fail("signature is not 64 bytes");

  // r || s back into the DER form OpenSSL verifies.
  const auto* raw = reinterpret_cast<const unsigned char*>(signature->data());
  WebPushPtr<ECDSA_SIG> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw, kWebPushScalarSize, nullptr);
  BIGNUM* s = BN_bin2bn(raw + kWebPushScalarSize, kWebPushScalarSize, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return WebPushInternal("decode an ECDSA signature");
  }
  unsigned char* der = nullptr;
  const int der_length = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_length <= 0) return WebPushInternal("encode an ECDSA signature");
  const std::string_view signing_input = jwt.substr(0, (*parts)[0].size() + 1 + (*parts)[1].size());
  WebPushPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  const bool valid =
      ctx &&
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, public_key->get()) == 1 &&
      EVP_DigestVerify(ctx.get(), der, static_cast<size_t>(der_length),
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) == 1;
  OPENSSL_free(der);
  if (!valid) return fail("signature is invalid");

  const auto claims = nlohmann::json::parse(*claims_text, nullptr, false);
  if (!claims.is_object()) return fail("claims are not a JSON object");
  VapidClaims result;
  auto aud = claims.find("aud");
  auto exp = claims.find("exp");
  auto sub = claims.find("sub");
  if (aud == claims.end() || !aud->is_string()) return fail("has no \"aud\" string");
  if (exp == claims.end() || !exp->is_number_integer()) return fail("has no integer \"exp\"");
  if (sub == claims.end() || !sub->is_string()) return fail("has no \"sub\" string");
  result.aud = aud->get<std::string>();
  result.exp = exp->get<int64_t>();
  result.sub = sub->get<std::string>();
  return result;
}

// ---- Message encryption -------------------------------------------------------------------

Result<PushKeySchedule> DerivePushKeySchedule(const VapidKey& ephemeral_key,
                                              std::string_view ua_public,
                                              std::string_view auth_secret, std::string_view salt) {
  if (auth_secret.size() != kWebPushAuthSize) {
    return WebPushInvalid(fmt::format("the subscription's auth secret must be {} bytes, not {}",
                                      kWebPushAuthSize, auth_secret.size()));
  }
  if (salt.size() != kWebPushSaltSize) {
    return WebPushInvalid(
        fmt::format("the salt must be {} bytes, not {}", kWebPushSaltSize, salt.size()));
  }
  auto peer = WebPushPublicKeyFromPoint(ua_public, "the subscription's p256dh key");
  if (!peer) return tl::unexpected(peer.error());
  auto ecdh = WebPushEcdh(WebPushKeyAccess::Get(ephemeral_key), peer->get());
  if (!ecdh) return tl::unexpected(ecdh.error());

  PushKeySchedule keys;
  keys.ecdh_secret = std::move(*ecdh);
  // RFC 8291 §3.3 and §3.4: HKDF-SHA-256 written out as its HMACs, each expansion one block.
  keys.prk_key = WebPushHmacSha256(auth_secret, keys.ecdh_secret);
  std::string key_info("WebPush: info\0", 14);
  key_info += ua_public;
  key_info += ephemeral_key.PublicKeyBytes();
  keys.ikm = WebPushHmacSha256(keys.prk_key, key_info + '\x01');
  keys.prk = WebPushHmacSha256(salt, keys.ikm);
  keys.cek = WebPushHmacSha256(keys.prk, std::string("Content-Encoding: aes128gcm\0\x01", 29))
                 .substr(0, 16);
  keys.nonce =
      WebPushHmacSha256(keys.prk, std::string("Content-Encoding: nonce\0\x01", 25)).substr(0, 12);
  return keys;
}

Result<std::string> EncryptPushMessage(std::string_view ua_public_base64url,
                                       std::string_view auth_secret_base64url,
                                       std::string_view plaintext, const VapidKey& ephemeral_key,
                                       std::string_view salt) {
  if (plaintext.size() > kMaxPushPlaintextBytes) {
    return MakeError(ErrorCode::kTooLarge,
                     fmt::format("a push message holds at most {} bytes, not {}",
                                 kMaxPushPlaintextBytes, plaintext.size()));
  }
  auto ua_public = WebPushBase64UrlDecode(ua_public_base64url);
  if (!ua_public) return WebPushInvalid("the subscription's p256dh key is not base64url");
  auto auth_secret = WebPushBase64UrlDecode(auth_secret_base64url);
  if (!auth_secret) return WebPushInvalid("the subscription's auth secret is not base64url");
  auto keys = DerivePushKeySchedule(ephemeral_key, *ua_public, *auth_secret, salt);
  if (!keys) return tl::unexpected(keys.error());

  // One record: the plaintext and the last-record padding delimiter, no further padding.
  std::string padded(plaintext);
  padded += '\x02';
  auto sealed = WebPushSealAes128Gcm(keys->cek, keys->nonce, padded);
  WebPushWipe(padded);
  for (std::string* secret :
       {&keys->ecdh_secret, &keys->prk_key, &keys->ikm, &keys->prk, &keys->cek, &keys->nonce}) {
    WebPushWipe(*secret);
  }
  if (!sealed) return tl::unexpected(sealed.error());

  std::string body;
  body.reserve(kWebPushHeaderSize + sealed->size());
  body += salt;
  body += static_cast<char>((kPushRecordSize >> 24) & 0xff);
  body += static_cast<char>((kPushRecordSize >> 16) & 0xff);
  body += static_cast<char>((kPushRecordSize >> 8) & 0xff);
  body += static_cast<char>(kPushRecordSize & 0xff);
  body += static_cast<char>(kWebPushPointSize);
  body += ephemeral_key.PublicKeyBytes();
  body += *sealed;
  return body;
}

Result<std::string> EncryptPushMessage(std::string_view ua_public_base64url,
                                       std::string_view auth_secret_base64url,
                                       std::string_view plaintext) {
  // Checked first so an oversized message costs no key generation.
  if (plaintext.size() > kMaxPushPlaintextBytes) {
    return MakeError(ErrorCode::kTooLarge,
                     fmt::format("a push message holds at most {} bytes, not {}",
                                 kMaxPushPlaintextBytes, plaintext.size()));
  }
  auto ephemeral = VapidKey::Generate();
  if (!ephemeral) return tl::unexpected(ephemeral.error());
  std::string salt(kWebPushSaltSize, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) !=
      1) {
    return WebPushInternal("generate random bytes");
  }
  return EncryptPushMessage(ua_public_base64url, auth_secret_base64url, plaintext, *ephemeral,
                            salt);
}

// ---- Subscriptions ------------------------------------------------------------------------

Result<PushSubscription> ParsePushSubscription(std::string_view text) {
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object()) return WebPushInvalid("a push subscription must be a JSON object");
  auto endpoint = doc.find("endpoint");
  if (endpoint == doc.end() || !endpoint->is_string()) {
    return WebPushInvalid("the push subscription needs an \"endpoint\" string");
  }
  PushSubscription subscription;
  subscription.endpoint = endpoint->get<std::string>();
  if (subscription.endpoint.size() > kMaxPushEndpointBytes) {
    return WebPushInvalid(
        fmt::format("the push endpoint is longer than {} bytes", kMaxPushEndpointBytes));
  }
  if (auto origin = PushEndpointOrigin(subscription.endpoint); !origin) {
    return tl::unexpected(origin.error());
  }
  if (auto parsed = boost::urls::parse_uri(subscription.endpoint);
      parsed && parsed->has_fragment()) {
    return WebPushInvalid("the push endpoint must not have a fragment");
  }

  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_object()) {
    return WebPushInvalid("the push subscription needs a \"keys\" object");
  }
  auto p256dh = keys->find("p256dh");
  auto auth = keys->find("auth");
  if (p256dh == keys->end() || !p256dh->is_string()) {
    return WebPushInvalid("the push subscription needs a \"keys.p256dh\" string");
  }
  if (auth == keys->end() || !auth->is_string()) {
    return WebPushInvalid("the push subscription needs a \"keys.auth\" string");
  }
  subscription.p256dh = std::string(WebPushNoPadding(p256dh->get<std::string>()));
  subscription.auth = std::string(WebPushNoPadding(auth->get<std::string>()));
  if (auto key = WebPushPublicKeyFromBase64Url(subscription.p256dh, "keys.p256dh"); !key) {
    return tl::unexpected(key.error());
  }
  auto auth_bytes = WebPushBase64UrlDecode(subscription.auth);
  if (!auth_bytes) return WebPushInvalid("keys.auth is not base64url");
  if (auth_bytes->size() != kWebPushAuthSize) {
    return WebPushInvalid(
        fmt::format("keys.auth must be {} bytes, not {}", kWebPushAuthSize, auth_bytes->size()));
  }
  return subscription;
}

// ---- The request --------------------------------------------------------------------------

std::string_view PushUrgencyName(PushUrgency urgency) {
  switch (urgency) {
    case PushUrgency::kVeryLow:
      return "very-low";
    case PushUrgency::kLow:
      return "low";
    case PushUrgency::kNormal:
      return "normal";
    case PushUrgency::kHigh:
      return "high";
  }
  return "normal";
}

Result<PushRequest> BuildPushRequest(const VapidKey& key, std::string_view subject,
                                     const PushSubscription& subscription, std::string_view payload,
                                     int64_t ttl_s, std::string_view topic, PushUrgency urgency,
                                     int64_t now_s) {
  if (ttl_s < 0 || ttl_s > kMaxPushTtlSeconds) {
    return WebPushInvalid(
        fmt::format("the push TTL must be 0..{} seconds, not {}", kMaxPushTtlSeconds, ttl_s));
  }
  if (topic.size() > kMaxPushTopicLength || !std::all_of(topic.begin(), topic.end(), [](char c) {
        return IsAsciiAlnum(c) || c == '-' || c == '_';
      })) {
    return WebPushInvalid(fmt::format(
        "a push topic is at most {} characters of the base64url alphabet", kMaxPushTopicLength));
  }
  if (now_s == 0) now_s = WebPushNow();
  auto authorization = VapidAuthorization(key, subscription.endpoint, subject,
                                          now_s + kPushVapidLifetimeSeconds, now_s);
  if (!authorization) return tl::unexpected(authorization.error());
  auto body = EncryptPushMessage(subscription.p256dh, subscription.auth, payload);
  if (!body) return tl::unexpected(body.error());

  PushRequest request;
  request.url = subscription.endpoint;
  request.headers.emplace_back("TTL", std::to_string(ttl_s));
  if (!topic.empty()) request.headers.emplace_back("Topic", std::string(topic));
  request.headers.emplace_back("Urgency", std::string(PushUrgencyName(urgency)));
  request.headers.emplace_back("Content-Encoding", "aes128gcm");
  request.headers.emplace_back("Content-Type", "application/octet-stream");
  request.headers.emplace_back("Authorization", std::move(*authorization));
  request.body = std::move(*body);
  return request;
}

}  // namespace vmp3::notify
