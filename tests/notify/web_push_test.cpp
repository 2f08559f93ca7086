#include "notify/web_push.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "auth/base64.hpp"
#include "support/process.hpp"

namespace vmp3::notify {
namespace {

namespace fs = std::filesystem;

// ---- RFC 8291 Appendix A (section 5's example), every value as the RFC prints it ----------
constexpr char kRfcPlaintext[] = "When I grow up, I want to be a watermelon";
constexpr char kRfcAsPrivate[] = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
constexpr char kRfcAsPublic[] =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
constexpr char kRfcUaPublic[] =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
constexpr char kRfcUaPrivate[] = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
constexpr char kRfcSalt[] = "DGv6ra1nlYgDCS1FRnbzlw";
constexpr char kRfcAuth[] = "BTBZMqHH6r4Tts7J_aSIgg";
constexpr char kRfcEcdhSecret[] = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs";
constexpr char kRfcPrkKey[] = "Snr3JMxaHVDXHWJn5wdC52WjpCtd2EIEGBykDcZW32k";
constexpr char kRfcIkm[] = "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg";
constexpr char kRfcPrk[] = "09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc";
constexpr char kRfcCek[] = "oIhVW04MRdy2XN9CiKLxTg";
constexpr char kRfcNonce[] = "4h_95klXJ5E_qnoN";
constexpr char kRfcBody[] =
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6T"
    "lzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_"
    "Qulcy4a-fN";

// ---- RFC 8292 section 2.4's example ------------------------------------------------------
constexpr char kRfcVapidToken[] =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9."
    "eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQG"
    "V4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_"
    "HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHz"
    "voD1oA";
constexpr char kRfcVapidKey[] =
    "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs";

std::string WptDecode(std::string_view base64url) {
  auto bytes = auth::Base64DecodeStrict(base64url, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  if (!bytes) throw std::runtime_error("bad base64url in a test vector");
  return *bytes;
}

std::string WptEncode(std::string_view bytes) {
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), kVariant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

// ---- An independent receiver: the user agent's side, written apart from web_push.cpp ------
// It uses OpenSSL's own HKDF (EVP_KDF "HKDF") where web_push.cpp writes the HMACs out, parses
// the header itself and checks the padding, so a mistake in one is not mirrored in the other.

struct WptPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using WptPkey = std::unique_ptr<EVP_PKEY, WptPkeyFree>;

struct WptUaKey {
  WptPkey pkey;
  std::string public_point;  // 65 bytes
};

WptPkey WptPkeyFromParams(std::string_view point, const std::string* scalar) {
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  BIGNUM* d = scalar ? BN_bin2bn(reinterpret_cast<const unsigned char*>(scalar->data()),
                                 static_cast<int>(scalar->size()), nullptr)
                     : nullptr;
  OSSL_PARAM_BLD_push_utf8_string(builder, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(builder, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  if (d) OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_PRIV_KEY, d);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(builder);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_fromdata_init(ctx);
  EVP_PKEY_fromdata(ctx, &pkey, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  BN_free(d);
  OSSL_PARAM_BLD_free(builder);
  if (!pkey) throw std::runtime_error("cannot build a P-256 key");
  return WptPkey(pkey);
}

WptUaKey WptRfcUaKey() {
  std::string scalar = WptDecode(kRfcUaPrivate);
  std::string point = WptDecode(kRfcUaPublic);
  return {WptPkeyFromParams(point, &scalar), point};
}

WptUaKey WptGenerateUaKey() {
  WptPkey pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  std::string point(65, '\0');
  size_t length = 0;
  EVP_PKEY_get_octet_string_param(pkey.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                  reinterpret_cast<unsigned char*>(point.data()), point.size(),
                                  &length);
  if (length != 65 || point[0] != 0x04) throw std::runtime_error("unexpected public key form");
  return {std::move(pkey), point};
}

std::string WptHkdf(std::string_view salt, std::string_view ikm, std::string_view info,
                    size_t length) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(ikm.data()),
                                        ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  std::string out(length, '\0');
  const int ok =
      EVP_KDF_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (ok != 1) throw std::runtime_error("HKDF failed");
  return out;
}

// The plaintext of an aes128gcm body with one record, as the user agent decrypts it;
// a test failure (and "") when anything does not check out.
std::string WptDecrypt(std::string_view body, const WptUaKey& ua, std::string_view auth_secret) {
  if (body.size() < 21 + 65 + 17) {
    ADD_FAILURE() << "body too short: " << body.size();
    return "";
  }
  const std::string_view salt = body.substr(0, 16);
  const auto* header = reinterpret_cast<const unsigned char*>(body.data());
  const uint32_t rs = (uint32_t{header[16]} << 24) | (uint32_t{header[17]} << 16) |
                      (uint32_t{header[18]} << 8) | header[19];
  EXPECT_EQ(rs, 4096u);
  EXPECT_EQ(header[20], 65);
  const std::string_view sender_point = body.substr(21, 65);
  const std::string_view record = body.substr(86);
  EXPECT_LE(record.size(), rs) << "one record only";

  WptPkey sender = WptPkeyFromParams(sender_point, nullptr);
  EVP_PKEY_CTX* derive = EVP_PKEY_CTX_new_from_pkey(nullptr, ua.pkey.get(), nullptr);
  std::string ecdh(32, '\0');
  size_t ecdh_length = ecdh.size();
  EVP_PKEY_derive_init(derive);
  EVP_PKEY_derive_set_peer(derive, sender.get());
  const int derived =
      EVP_PKEY_derive(derive, reinterpret_cast<unsigned char*>(ecdh.data()), &ecdh_length);
  EVP_PKEY_CTX_free(derive);
  if (derived != 1 || ecdh_length != 32) {
    ADD_FAILURE() << "ECDH failed";
    return "";
  }
  std::string key_info("WebPush: info\0", 14);
  key_info += ua.public_point;
  key_info += sender_point;
  const std::string ikm = WptHkdf(auth_secret, ecdh, key_info, 32);
  const std::string cek = WptHkdf(salt, ikm, std::string("Content-Encoding: aes128gcm\0", 28), 16);
  const std::string nonce = WptHkdf(salt, ikm, std::string("Content-Encoding: nonce\0", 24), 12);

  const std::string_view ciphertext = record.substr(0, record.size() - 16);
  std::string tag(record.substr(record.size() - 16));
  std::string padded(ciphertext.size(), '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int length = 0;
  int final_length = 0;
  const bool opened =
      EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(cek.data()),
                         reinterpret_cast<const unsigned char*>(nonce.data())) == 1 &&
      EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(padded.data()), &length,
                        reinterpret_cast<const unsigned char*>(ciphertext.data()),
                        static_cast<int>(ciphertext.size())) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(padded.data()) + length,
                          &final_length) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!opened) {
    ADD_FAILURE() << "AES-GCM tag does not verify";
    return "";
  }
  // Padding: zero or more 0x00 after the last record's delimiter 0x02.
  while (!padded.empty() && padded.back() == '\0') padded.pop_back();
  if (padded.empty() || padded.back() != '\x02') {
    ADD_FAILURE() << "no last-record padding delimiter";
    return "";
  }
  padded.pop_back();
  return padded;
}

VapidKey WptRfcSenderKey() {
  auto key = VapidKey::FromPrivateBytes(WptDecode(kRfcAsPrivate));
  if (!key) throw std::runtime_error(key.error().message);
  return *key;
}

VapidKey WptNewKey() {
  auto key = VapidKey::Generate();
  if (!key) throw std::runtime_error(key.error().message);
  return *key;
}

int64_t WptNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "vapid t=<jwt>, k=<key>" into its two parameters.
std::pair<std::string, std::string> WptSplitAuthorization(std::string_view value) {
  EXPECT_TRUE(value.starts_with("vapid t=")) << value;
  const size_t comma = value.find(", k=");
  EXPECT_NE(comma, std::string_view::npos) << value;
  if (comma == std::string_view::npos) return {};
  return {std::string(value.substr(8, comma - 8)), std::string(value.substr(comma + 4))};
}

std::string WptSubscriptionJson(std::string_view endpoint, std::string_view p256dh,
                                std::string_view auth) {
  return nlohmann::json{{"endpoint", endpoint},
                        {"expirationTime", nullptr},
                        {"keys", {{"p256dh", p256dh}, {"auth", auth}}}}
      .dump();
}

// ---- RFC 8291 ------------------------------------------------------------------------------

TEST(WebPushEncryptionTest, KeyScheduleMatchesRfc8291AppendixA) {
  const VapidKey sender = WptRfcSenderKey();
  EXPECT_EQ(sender.PublicKeyBase64Url(), kRfcAsPublic);
  auto keys = DerivePushKeySchedule(sender, WptDecode(kRfcUaPublic), WptDecode(kRfcAuth),
                                    WptDecode(kRfcSalt));
  ASSERT_TRUE(keys) << keys.error().message;
  EXPECT_EQ(WptEncode(keys->ecdh_secret), kRfcEcdhSecret);
  EXPECT_EQ(WptEncode(keys->prk_key), kRfcPrkKey);
  EXPECT_EQ(WptEncode(keys->ikm), kRfcIkm);
  EXPECT_EQ(WptEncode(keys->prk), kRfcPrk);
  EXPECT_EQ(WptEncode(keys->cek), kRfcCek);
  EXPECT_EQ(WptEncode(keys->nonce), kRfcNonce);
}

TEST(WebPushEncryptionTest, BodyMatchesRfc8291AppendixAByteForByte) {
  auto body = EncryptPushMessage(kRfcUaPublic, kRfcAuth, kRfcPlaintext, WptRfcSenderKey(),
                                 WptDecode(kRfcSalt));
  ASSERT_TRUE(body) << body.error().message;
  EXPECT_EQ(body->size(), 144u);
  EXPECT_EQ(WptEncode(*body), kRfcBody);
}

TEST(WebPushEncryptionTest, IndependentDecryptionReadsTheRfcBody) {
  // The test's own receiver must agree with the RFC before it is trusted on our messages.
  EXPECT_EQ(WptDecrypt(WptDecode(kRfcBody), WptRfcUaKey(), WptDecode(kRfcAuth)), kRfcPlaintext);
}

TEST(WebPushEncryptionTest, RandomMessagesDecryptWithTheSubscriptionKeys) {
  const WptUaKey ua = WptGenerateUaKey();
  std::string auth(16, '\0');
  randombytes_buf(auth.data(), auth.size());
  std::string previous;
  for (size_t size : {size_t{0}, size_t{1}, size_t{100}, kMaxPushPlaintextBytes}) {
    std::string plaintext(size, '\0');
    randombytes_buf(plaintext.data(), plaintext.size());
    auto body = EncryptPushMessage(WptEncode(ua.public_point), WptEncode(auth), plaintext);
    ASSERT_TRUE(body) << body.error().message;
    EXPECT_EQ(body->size(), 86 + size + 1 + 16);
    EXPECT_EQ(WptDecrypt(*body, ua, auth), plaintext) << size;
    // A fresh salt and sender key every message.
    EXPECT_NE(body->substr(0, 86), previous.substr(0, std::min<size_t>(86, previous.size())));
    previous = *body;
  }
  EXPECT_EQ(previous.size(), size_t{kPushRecordSize}) << "the largest message fills 4096 bytes";
}

TEST(WebPushEncryptionTest, RefusesOversizedMessagesAndBadKeys) {
  const WptUaKey ua = WptGenerateUaKey();
  const std::string ua_public = WptEncode(ua.public_point);
  auto too_large =
      EncryptPushMessage(ua_public, kRfcAuth, std::string(kMaxPushPlaintextBytes + 1, 'x'));
  ASSERT_FALSE(too_large);
  EXPECT_EQ(too_large.error().code, ErrorCode::kTooLarge);

  auto short_auth = EncryptPushMessage(ua_public, WptEncode("0123456789abcde"), "hi");
  ASSERT_FALSE(short_auth);
  EXPECT_EQ(short_auth.error().code, ErrorCode::kInvalidArgument);

  std::string off_curve = ua.public_point;
  off_curve[64] = static_cast<char>(off_curve[64] ^ 1);
  auto bad_point = EncryptPushMessage(WptEncode(off_curve), kRfcAuth, "hi");
  ASSERT_FALSE(bad_point);
  EXPECT_EQ(bad_point.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad_point.error().message.find("not a point on the P-256 curve"), std::string::npos)
      << bad_point.error().message;

  auto bad_salt = EncryptPushMessage(ua_public, kRfcAuth, "hi", WptRfcSenderKey(), "short");
  ASSERT_FALSE(bad_salt);
  EXPECT_EQ(bad_salt.error().code, ErrorCode::kInvalidArgument);
}

// ---- RFC 8292 ------------------------------------------------------------------------------

TEST(WebPushVapidTest, Rfc8292ExampleVerifies) {
  auto claims = VerifyVapidJwt(kRfcVapidToken, kRfcVapidKey);
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->aud, "https://push.example.net");
  EXPECT_EQ(claims->exp, 1453523768);
  EXPECT_EQ(claims->sub, "mailto:push@example.com");
}

TEST(WebPushVapidTest, VerifierRefusesTamperedTokensAndOtherKeys) {
  std::string token = kRfcVapidToken;
  // One bit of the signature flipped (in its middle, so base64url stays canonical).
  const size_t at = token.rfind('.') + 20;
  token[at] = token[at] == 'A' ? 'B' : 'A';
  auto tampered = VerifyVapidJwt(token, kRfcVapidKey);
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().code, ErrorCode::kUnauthenticated);

  auto other_key = VerifyVapidJwt(kRfcVapidToken, kRfcAsPublic);
  ASSERT_FALSE(other_key);
  EXPECT_EQ(other_key.error().message, "VAPID token signature is invalid");

  // Claims swapped for others under the same signature.
  std::string forged = kRfcVapidToken;
  const size_t first = forged.find('.');
  const size_t second = forged.find('.', first + 1);
  forged.replace(first + 1, second - first - 1,
                 WptEncode(R"({"aud":"https://push.example.net","exp":9999999999,)"
                           R"("sub":"mailto:push@example.com"})"));
  EXPECT_FALSE(VerifyVapidJwt(forged, kRfcVapidKey));

  EXPECT_FALSE(VerifyVapidJwt("not-a-jwt", kRfcVapidKey));
  EXPECT_FALSE(VerifyVapidJwt(kRfcVapidToken, "AAAA"));
}

TEST(WebPushVapidTest, OurAuthorizationVerifiesWithOurPublicKey) {
  const VapidKey key = WptNewKey();
  const int64_t now = WptNow();
  auto header = VapidAuthorization(key, "https://fcm.googleapis.com/fcm/send/abc:def?x=1",
                                   "mailto:ops@example.com", now + 3600);
  ASSERT_TRUE(header) << header.error().message;
  auto [token, k] = WptSplitAuthorization(*header);
  EXPECT_EQ(k, key.PublicKeyBase64Url());
  EXPECT_EQ(WptDecode(k).size(), 65u);
  EXPECT_EQ(token.substr(0, token.find('.')), WptEncode(R"({"typ":"JWT","alg":"ES256"})"));
  EXPECT_EQ(WptDecode(token.substr(token.rfind('.') + 1)).size(), 64u) << "r || s, not DER";
  auto claims = VerifyVapidJwt(token, k);
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->aud, "https://fcm.googleapis.com");
  EXPECT_EQ(claims->exp, now + 3600);
  EXPECT_EQ(claims->sub, "mailto:ops@example.com");
  // ECDSA is randomised: two tokens for the same claims differ yet both verify.
  auto again = VapidAuthorization(key, "https://fcm.googleapis.com/fcm/send/abc:def?x=1",
                                  "mailto:ops@example.com", now + 3600);
  ASSERT_TRUE(again);
  EXPECT_NE(*again, *header);
  EXPECT_TRUE(VerifyVapidJwt(WptSplitAuthorization(*again).first, k));
}

TEST(WebPushVapidTest, RefusesBadExpiryBadSubjectAndBadEndpoint) {
  const VapidKey key = WptNewKey();
  const int64_t now = 1'700'000'000;
  const std::string endpoint = "https://push.example.net/p/1";
  EXPECT_TRUE(VapidAuthorization(key, endpoint, "mailto:a@b.c", now + 24 * 3600, now));
  EXPECT_TRUE(VapidAuthorization(key, endpoint, "https://vmp3.example/contact", now + 1, now));
  for (int64_t exp : {now, now - 1, now + 24 * 3600 + 1}) {
    auto result = VapidAuthorization(key, endpoint, "mailto:a@b.c", exp, now);
    ASSERT_FALSE(result) << exp;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  }
  for (std::string_view subject :
       {"", "ops@example.com", "mailto:", "http://vmp3.example", "mailto:a b@c.d"}) {
    auto result = VapidAuthorization(key, endpoint, subject, now + 60, now);
    ASSERT_FALSE(result) << subject;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  }
  for (std::string_view url : {"ftp://push.example.net/x", "https://user:pw@push.example.net/x",
                               "/relative/only", "https:///no-host"}) {
    auto result = VapidAuthorization(key, url, "mailto:a@b.c", now + 60, now);
    ASSERT_FALSE(result) << url;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(WebPushVapidTest, AudienceIsTheEndpointsOrigin) {
  struct Case {
    std::string_view url;
    std::string_view origin;
  };
  for (const Case& c : {
           Case{"https://push.example.net/a/b?c#d", "https://push.example.net"},
           Case{"HTTPS://Push.Example.NET:443/x", "https://push.example.net"},
           Case{"https://push.example.net:8443/x", "https://push.example.net:8443"},
           Case{"http://127.0.0.1:8080/push/s1", "http://127.0.0.1:8080"},
           Case{"http://localhost:80/", "http://localhost"},
           Case{"http://[::1]:9000/push", "http://[::1]:9000"},
       }) {
    auto origin = PushEndpointOrigin(c.url);
    ASSERT_TRUE(origin) << c.url << ": " << origin.error().message;
    EXPECT_EQ(*origin, c.origin) << c.url;
  }
  EXPECT_FALSE(PushEndpointOrigin("https://push.example.net:99999/x"));
  EXPECT_FALSE(PushEndpointOrigin("mailto:x@y.z"));
}

// ---- Keys ----------------------------------------------------------------------------------

TEST(WebPushKeyTest, PemRoundTripKeepsTheKey) {
  const VapidKey key = WptNewKey();
  const std::string pem = key.ToPem();
  EXPECT_TRUE(pem.starts_with("-----BEGIN PRIVATE KEY-----\n")) << "PKCS#8";
  auto again = VapidKey::FromPem(pem);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->PublicKeyBase64Url(), key.PublicKeyBase64Url());
  EXPECT_EQ(again->ToPem(), pem);
  // The reloaded key signs what the original's public key verifies.
  auto header =
      VapidAuthorization(*again, "https://push.example.net/x", "mailto:a@b.c", WptNow() + 60);
  ASSERT_TRUE(header);
  EXPECT_TRUE(VerifyVapidJwt(WptSplitAuthorization(*header).first, key.PublicKeyBase64Url()));
  // Two generated keys differ.
  EXPECT_NE(WptNewKey().PublicKeyBase64Url(), key.PublicKeyBase64Url());
}

TEST(WebPushKeyTest, FromPemRefusesOtherKeysAndGarbage) {
  for (std::string_view text :
       {"", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a key at all"}) {
    auto key = VapidKey::FromPem(text);
    ASSERT_FALSE(key);
    EXPECT_EQ(key.error().code, ErrorCode::kInvalidArgument);
  }
  // A valid EC key on another curve, and an Ed25519 key.
  for (auto [type, curve] : {std::pair{"EC", "P-384"}, std::pair{"ED25519", ""}}) {
    WptPkey other(*curve ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve)
                         : EVP_PKEY_Q_keygen(nullptr, nullptr, type));
    ASSERT_TRUE(other);
    BIO* bio = BIO_new(BIO_s_mem());
    ASSERT_EQ(PEM_write_bio_PrivateKey(bio, other.get(), nullptr, nullptr, 0, nullptr, nullptr), 1);
    char* data = nullptr;
    const long length = BIO_get_mem_data(bio, &data);
    const std::string pem(data, static_cast<size_t>(length));
    BIO_free(bio);
    auto key = VapidKey::FromPem(pem);
    ASSERT_FALSE(key) << type << " " << curve;
    EXPECT_NE(key.error().message.find("P-256"), std::string::npos) << key.error().message;
  }
}

TEST(WebPushKeyTest, FromPrivateBytesChecksTheScalar) {
  EXPECT_FALSE(VapidKey::FromPrivateBytes(std::string(31, '\x01')));
  EXPECT_FALSE(VapidKey::FromPrivateBytes(std::string(32, '\0')));
  EXPECT_FALSE(VapidKey::FromPrivateBytes(std::string(32, '\xff'))) << "above the group order";
  auto key = VapidKey::FromPrivateBytes(WptDecode(kRfcUaPrivate));
  ASSERT_TRUE(key);
  EXPECT_EQ(key->PublicKeyBase64Url(), kRfcUaPublic);
}

class WebPushKeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vmp3-webpush-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(std::random_device{}()));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_F(WebPushKeyFileTest, LoadOrCreateWritesA0600FileAndReloadsTheSameKey) {
  const fs::path path = dir_ / "sub" / "vapid-p256.pem";
  auto created = VapidKey::LoadOrCreate(path);
  ASSERT_TRUE(created) << created.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(path);
  const std::string contents((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(contents, created->ToPem());

  auto loaded = VapidKey::LoadOrCreate(path);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->PublicKeyBase64Url(), created->PublicKeyBase64Url());
  EXPECT_EQ(loaded->ToPem(), created->ToPem());
}

TEST_F(WebPushKeyFileTest, LoadOrCreateRefusesACorruptFileNamingIt) {
  fs::create_directories(dir_);
  const fs::path path = dir_ / "vapid-p256.pem";
  std::ofstream(path) << "garbage\n";
  auto key = VapidKey::LoadOrCreate(path);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(key.error().message.find(path.string()), std::string::npos) << key.error().message;
  std::ifstream in(path);
  const std::string contents((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(contents, "garbage\n") << "never replaced";
}

// ---- Subscriptions -------------------------------------------------------------------------

TEST(WebPushSubscriptionTest, ParsesTheBrowsersJson) {
  const std::string json = R"({"endpoint":"https://fcm.googleapis.com/fcm/send/cX:APA91b",
      "expirationTime":null,"keys":{"p256dh":")" +
                           std::string(kRfcUaPublic) + R"(","auth":")" + kRfcAuth + R"("}})";
  auto subscription = ParsePushSubscription(json);
  ASSERT_TRUE(subscription) << subscription.error().message;
  EXPECT_EQ(subscription->endpoint, "https://fcm.googleapis.com/fcm/send/cX:APA91b");
  EXPECT_EQ(subscription->p256dh, kRfcUaPublic);
  EXPECT_EQ(subscription->auth, kRfcAuth);

  // Padded keys (some libraries pad) are accepted and kept without the padding.
  auto padded = ParsePushSubscription(WptSubscriptionJson(
      "https://push.example.net/x", std::string(kRfcUaPublic) + "=", std::string(kRfcAuth) + "=="));
  ASSERT_TRUE(padded) << padded.error().message;
  EXPECT_EQ(padded->p256dh, kRfcUaPublic);
  EXPECT_EQ(padded->auth, kRfcAuth);
}

TEST(WebPushSubscriptionTest, RefusesBadKeysAndShapesWithClearMessages) {
  std::string off_curve = WptDecode(kRfcUaPublic);
  off_curve[40] = static_cast<char>(off_curve[40] ^ 0x10);
  std::string compressed = WptDecode(kRfcUaPublic).substr(0, 33);
  compressed[0] = 0x02;
  const std::string endpoint = "https://push.example.net/x";
  struct Case {
    std::string json;
    std::string_view message_part;
  };
  const Case cases[] = {
      {"[]", "JSON object"},
      {"{not json", "JSON object"},
      {R"({"keys":{"p256dh":"x","auth":"y"}})", "\"endpoint\""},
      {WptSubscriptionJson("ftp://push.example.net/x", kRfcUaPublic, kRfcAuth), "http or https"},
      {WptSubscriptionJson("https://push.example.net/x#frag", kRfcUaPublic, kRfcAuth), "fragment"},
      {WptSubscriptionJson("https://push.example.net/" + std::string(2048, 'a'), kRfcUaPublic,
                           kRfcAuth),
       "longer than"},
      {R"({"endpoint":"https://push.example.net/x"})", "\"keys\""},
      {R"({"endpoint":"https://push.example.net/x","keys":{"auth":"BTBZMqHH6r4Tts7J_aSIgg"}})",
       "keys.p256dh"},
      {WptSubscriptionJson(endpoint, WptEncode(off_curve), kRfcAuth),
       "keys.p256dh is not a point on the P-256 curve"},
      {WptSubscriptionJson(endpoint, WptEncode(compressed), kRfcAuth),
       "keys.p256dh must be an uncompressed P-256 point"},
      {WptSubscriptionJson(endpoint, WptEncode(WptDecode(kRfcUaPublic).substr(0, 64)), kRfcAuth),
       "not 64 bytes"},
      {WptSubscriptionJson(endpoint, "BCVx+r7N/eNgVRqv", kRfcAuth), "keys.p256dh is not base64url"},
      {WptSubscriptionJson(endpoint, kRfcUaPublic, WptEncode(std::string(15, 'a'))),
       "keys.auth must be 16 bytes, not 15"},
      {WptSubscriptionJson(endpoint, kRfcUaPublic, "BTBZ!qHH"), "keys.auth is not base64url"},
  };
  for (const Case& c : cases) {
    auto result = ParsePushSubscription(c.json);
    ASSERT_FALSE(result) << c.json;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(result.error().message.find(c.message_part), std::string::npos)
        << "message: " << result.error().message << "\nwanted: " << c.message_part;
  }
}

// ---- The request ---------------------------------------------------------------------------

TEST(WebPushRequestTest, CarriesTheHeadersAndAnEncryptedBody) {
  const VapidKey key = WptNewKey();
  const WptUaKey ua = WptGenerateUaKey();
  const std::string auth = "0123456789abcdef";
  const PushSubscription subscription{"https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
                                      WptEncode(ua.public_point), WptEncode(auth)};
  const int64_t now = WptNow();
  auto request =
      BuildPushRequest(key, "mailto:ops@vmp3.example", subscription, R"({"type":"job.done"})", 3600,
                       "abcdefghijklmnopqrstuvwxyz", PushUrgency::kHigh, now);
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_EQ(request->url, subscription.endpoint);
  ASSERT_EQ(request->headers.size(), 6u);
  using Header = std::pair<std::string, std::string>;
  EXPECT_EQ(request->headers[0], (Header{"TTL", "3600"}));
  EXPECT_EQ(request->headers[1], (Header{"Topic", "abcdefghijklmnopqrstuvwxyz"}));
  EXPECT_EQ(request->headers[2], (Header{"Urgency", "high"}));
  EXPECT_EQ(request->headers[3], (Header{"Content-Encoding", "aes128gcm"}));
  EXPECT_EQ(request->headers[4], (Header{"Content-Type", "application/octet-stream"}));
  EXPECT_EQ(request->headers[5].first, "Authorization");
  auto [token, k] = WptSplitAuthorization(request->headers[5].second);
  EXPECT_EQ(k, key.PublicKeyBase64Url());
  auto claims = VerifyVapidJwt(token, k);
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->aud, "https://updates.push.services.mozilla.com");
  EXPECT_EQ(claims->exp, now + kPushVapidLifetimeSeconds);
  EXPECT_EQ(claims->sub, "mailto:ops@vmp3.example");
  EXPECT_EQ(WptDecrypt(request->body, ua, auth), R"({"type":"job.done"})");

  // Without a topic there is no Topic header; urgency defaults to normal.
  auto plain = BuildPushRequest(key, "mailto:ops@vmp3.example", subscription, "x", 0, "");
  ASSERT_TRUE(plain) << plain.error().message;
  ASSERT_EQ(plain->headers.size(), 5u);
  EXPECT_EQ(plain->headers[0], (Header{"TTL", "0"}));
  EXPECT_EQ(plain->headers[1], (Header{"Urgency", "normal"}));
}

TEST(WebPushRequestTest, RefusesBadOptions) {
  const VapidKey key = WptNewKey();
  const PushSubscription subscription{"https://push.example.net/x", kRfcUaPublic, kRfcAuth};
  const std::string subject = "mailto:ops@vmp3.example";
  auto check = [&](Result<PushRequest> result, ErrorCode code, std::string_view what) {
    ASSERT_FALSE(result) << what;
    EXPECT_EQ(result.error().code, code) << what << ": " << result.error().message;
  };
  check(BuildPushRequest(key, subject, subscription, "x", -1, ""), ErrorCode::kInvalidArgument,
        "negative TTL");
  check(BuildPushRequest(key, subject, subscription, "x", kMaxPushTtlSeconds + 1, ""),
        ErrorCode::kInvalidArgument, "TTL past four weeks");
  check(BuildPushRequest(key, subject, subscription, "x", 60, std::string(33, 'a')),
        ErrorCode::kInvalidArgument, "33-character topic");
  check(BuildPushRequest(key, subject, subscription, "x", 60, "job+1"), ErrorCode::kInvalidArgument,
        "topic outside base64url");
  check(BuildPushRequest(key, "ops@vmp3.example", subscription, "x", 60, ""),
        ErrorCode::kInvalidArgument, "subject without mailto:");
  check(BuildPushRequest(key, subject, subscription, std::string(kMaxPushPlaintextBytes + 1, 'x'),
                         60, ""),
        ErrorCode::kTooLarge, "payload too large");
  EXPECT_TRUE(BuildPushRequest(key, subject, subscription, "x", 60, std::string(32, '_')));
  EXPECT_EQ(PushUrgencyName(PushUrgency::kVeryLow), "very-low");
  EXPECT_EQ(PushUrgencyName(PushUrgency::kLow), "low");
}

// ---- Against the local push service (tests/support/push_service.py) ------------------------
// The whole path a notifier takes: a subscription minted by the service (as a browser would
// hand it over), the request built here, POSTed with curl; the service checks VAPID and decrypts
// with its own Python code.

class WptPushService {
 public:
  WptPushService() {
    const fs::path script =
        fs::path(__FILE__).parent_path().parent_path() / "support" / "push_service.py";
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      ::execlp("python3", "python3", script.c_str(), "--port", "0", nullptr);
      ::_exit(127);
    }
    ::close(out[1]);
    // The first line is the port; wait for it at most 20 s.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd fd{out[0], POLLIN, 0};
      if (::poll(&fd, 1, 200) <= 0) continue;
      char buffer[64];
      const ssize_t n = ::read(out[0], buffer, sizeof buffer);
      if (n <= 0) break;
      line.append(buffer, static_cast<size_t>(n));
    }
    ::close(out[0]);
    port_ = std::atoi(line.c_str());
  }
  ~WptPushService() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  std::string Url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// Runs curl; returns the HTTP status and puts the body in `body`.
int WptCurl(std::vector<std::string> args, std::string* body) {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  const test::ProcessResult result = test::RunProcess(argv);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const size_t newline = result.out.rfind('\n');
  if (newline == std::string::npos) return 0;
  if (body) *body = result.out.substr(0, newline);
  return std::atoi(result.out.c_str() + newline + 1);
}

TEST(WebPushServiceTest, LocalPushServiceAcceptsAndDecryptsOurRequests) {
  WptPushService service;
  ASSERT_GT(service.port(), 0) << "push_service.py did not start (python3-cryptography missing?)";

  std::string minted;
  ASSERT_EQ(WptCurl({"-X", "POST", service.Url("/_control/subscribe")}, &minted), 201) << minted;
  const auto minted_json = nlohmann::json::parse(minted);
  const std::string id = minted_json.at("id");
  auto subscription = ParsePushSubscription(minted);
  ASSERT_TRUE(subscription) << subscription.error().message;
  EXPECT_EQ(subscription->endpoint, service.Url("/push/" + id));

  const VapidKey key = WptNewKey();
  const std::string payload = R"({"type":"job.done","data":{"id":"j1","name":"Ünïcödé.mp3"}})";
  auto request =
      BuildPushRequest(key, "mailto:ops@vmp3.example", *subscription, payload, 120, "j1");
  ASSERT_TRUE(request) << request.error().message;

  const fs::path body_file =
      fs::temp_directory_path() / ("vmp3-webpush-body-" + std::to_string(::getpid()));
  std::ofstream(body_file, std::ios::binary) << request->body;
  auto post = [&](const PushRequest& r, std::string* answer) {
    std::vector<std::string> args = {"-X", "POST", "--data-binary", "@" + body_file.string()};
    for (const auto& [name, value] : r.headers) {
      args.push_back("-H");
      args.push_back(name + ": " + value);
    }
    args.push_back(r.url);
    return WptCurl(args, answer);
  };
  std::string answer;
  EXPECT_EQ(post(*request, &answer), 201) << answer;

  std::string messages;
  ASSERT_EQ(WptCurl({service.Url("/_control/messages?id=" + id)}, &messages), 200);
  const auto list = nlohmann::json::parse(messages);
  ASSERT_EQ(list.size(), 1u) << messages;
  EXPECT_EQ(list[0].at("plaintext"), payload);
  EXPECT_EQ(list[0].at("headers").at("TTL"), "120");
  EXPECT_EQ(list[0].at("headers").at("Topic"), "j1");

  // A token for another origin is refused (aud is checked): 401, nothing recorded.
  PushRequest wrong_audience = *request;
  auto other = VapidAuthorization(key, "https://elsewhere.example/x", "mailto:ops@vmp3.example",
                                  WptNow() + 600);
  ASSERT_TRUE(other);
  wrong_audience.headers.back().second = *other;
  EXPECT_EQ(post(wrong_audience, &answer), 401) << answer;

  // Scripted gone: the next push gets 410.
  ASSERT_EQ(WptCurl({"-X", "POST", "--data", nlohmann::json{{"id", id}}.dump(),
                     service.Url("/_control/gone")},
                    nullptr),
            200);
  EXPECT_EQ(post(*request, &answer), 410) << answer;
  ASSERT_EQ(WptCurl({service.Url("/_control/messages?id=" + id)}, &messages), 200);
  EXPECT_EQ(nlohmann::json::parse(messages).size(), 1u);
  std::error_code ec;
  fs::remove(body_file, ec);
}

}  // namespace
}  // namespace vmp3::notify
