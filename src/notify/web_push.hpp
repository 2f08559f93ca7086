// Web Push messages as an application server sends them: VAPID identification (RFC 8292),
// message encryption with the aes128gcm content coding (RFC 8291 over RFC 8188), the browser's
// PushSubscription JSON, and the request that carries one message (RFC 8030). Only building the
// request lives here; sending it (through the egress policy) and reacting to the push service's
// answer (201 done, 404/410 subscription gone, 413, 429) is the notifier's job.
//
// All cryptography is OpenSSL 3's libcrypto (P-256 ECDH and ECDSA, HMAC-SHA-256, AES-128-GCM);
// the key schedule around it is checked byte for byte against RFC 8291 Appendix A, and VAPID
// against RFC 8292's example (tests/notify/web_push_test.cpp).
//
// Every function is thread-safe; a VapidKey is immutable once built and may be shared.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept opaque so this header needs no OpenSSL header

namespace vmp3::notify {

// The application server's VAPID key pair: ECDSA on P-256. Cheap to copy (the key is shared and
// never modified); signing with one key from several threads at once is safe.
class VapidKey {
 public:
  // A new random key. kInternal when OpenSSL fails.
  static Result<VapidKey> Generate();
  // A key from an unencrypted PEM private key (PKCS#8 "PRIVATE KEY", or SEC 1 "EC PRIVATE KEY")
  // on P-256. kInvalidArgument for anything else; the message never contains the input.
  static Result<VapidKey> FromPem(std::string_view pem);
  // The key from its 32-byte private scalar (big-endian), as JWKs ("d") and the RFCs' examples
  // give it. kInvalidArgument unless it is a valid P-256 private key (0 < d < n).
  static Result<VapidKey> FromPrivateBytes(std::string_view scalar);
  // Loads the PEM file at `path`, or when there is none generates a key and writes it there:
  // mode 0600, written to a temporary file and linked into place, so a reader never sees a
  // partial file and two processes racing to create it end up with the same key (as
  // auth::SigningKey::LoadOrCreate does for the JWT key). Creates missing parent directories.
  // kIo / kPermissionDenied / kInvalidArgument naming the file.
  static Result<VapidKey> LoadOrCreate(const std::filesystem::path& path);

  // The private key as PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). A secret. Throws
  // std::bad_alloc when out of memory, like any std::string.
  std::string ToPem() const;
  // The public key as the uncompressed point (0x04 || X || Y, 65 bytes).
  const std::string& PublicKeyBytes() const { return public_key_; }
  // PublicKeyBytes() in base64url without padding: the "k" of the Authorization header, what
  // GET /v1/push/vapid-public-key returns and what a browser takes as applicationServerKey.
  std::string PublicKeyBase64Url() const;
  // An ES256 signature (ECDSA P-256 over SHA-256) of `data` in the JOSE form: r || s, each 32
  // bytes big-endian (RFC 7518 §3.4), not DER. kInternal when OpenSSL fails.
  Result<std::string> SignEs256(std::string_view data) const;

 private:
  friend struct WebPushKeyAccess;  // web_push.cpp: the ECDH of the message encryption
  VapidKey(std::shared_ptr<evp_pkey_st> pkey, std::string public_key)
      : pkey_(std::move(pkey)), public_key_(std::move(public_key)) {}
  static Result<VapidKey> FromPkey(std::shared_ptr<evp_pkey_st> pkey);

  std::shared_ptr<evp_pkey_st> pkey_;
  std::string public_key_;
};

// ---- VAPID (RFC 8292) ---------------------------------------------------------------------

// The longest lifetime RFC 8292 §2 lets a token have: exp at most 24 hours after it is sent.
inline constexpr int64_t kMaxVapidLifetimeSeconds = 24 * 3600;

// The origin of an absolute http(s) URL as RFC 6454 serialises it and VAPID's "aud" wants it:
// scheme://host[:port], scheme and host in lower case, the port only when not the scheme's
// default ("https://push.example.net", "http://127.0.0.1:8080"). kInvalidArgument for anything
// that is not an http or https URL with a host, or that has user info.
Result<std::string> PushEndpointOrigin(std::string_view endpoint_url);

// The Authorization header value for a push to `endpoint_url`:
// "vapid t=<JWT>, k=<PublicKeyBase64Url()>", the JWT having header {"typ":"JWT","alg":"ES256"}
// and claims {"aud": origin of the endpoint, "exp": expires_at_s, "sub": subject}.
// `subject` is the operator's contact: a "mailto:" or "https:" URI. `expires_at_s` (Unix seconds)
// must lie in (now, now + 24 h]: kInvalidArgument otherwise, as for a bad URL or subject.
// `now_s` is the current time; omitted, the system clock.
Result<std::string> VapidAuthorization(const VapidKey& key, std::string_view endpoint_url,
                                       std::string_view subject, int64_t expires_at_s);
Result<std::string> VapidAuthorization(const VapidKey& key, std::string_view endpoint_url,
                                       std::string_view subject, int64_t expires_at_s,
                                       int64_t now_s);

struct VapidClaims {
  std::string aud;
  int64_t exp = 0;
  std::string sub;
};

// Checks a VAPID JWT as a push service would, except for the times and the audience (the
// caller compares them): compact form, header alg "ES256", an r || s signature valid for
// `public_key_base64url` (65-byte uncompressed P-256 point), claims aud (string), exp (integer)
// and sub (string) present. kUnauthenticated naming what is wrong. For tests and tools.
Result<VapidClaims> VerifyVapidJwt(std::string_view jwt, std::string_view public_key_base64url);

// ---- Message encryption (RFC 8291, aes128gcm of RFC 8188) --------------------------------

// The record size every message states (one record carries the whole message).
inline constexpr uint32_t kPushRecordSize = 4096;
// The longest plaintext EncryptPushMessage takes: 4096 - 86 (header: salt 16, rs 4, idlen 1,
// key 65) - 16 (GCM tag) - 1 (padding delimiter) = 3993, so that the whole body fits in the
// 4096 bytes every push service must accept (RFC 8030 §7.2, RFC 8291 §4).
inline constexpr size_t kMaxPushPlaintextBytes = 3993;

// The encrypted body of one push message for the subscription whose keys are `ua_public_base64url`
// (the "p256dh" key: 65-byte uncompressed P-256 point) and `auth_secret_base64url` (16 bytes),
// both base64url with or without padding. A fresh ephemeral key pair and a random 16-byte salt
// each call. The body is salt || rs (4096) || idlen (65) || sender public key || one record
// (plaintext || 0x02, sealed with AES-128-GCM). kTooLarge past kMaxPushPlaintextBytes;
// kInvalidArgument for bad keys.
Result<std::string> EncryptPushMessage(std::string_view ua_public_base64url,
                                       std::string_view auth_secret_base64url,
                                       std::string_view plaintext);
// The same with the sender's ephemeral key and the salt (16 bytes) given: deterministic, so tests
// can reproduce RFC 8291 Appendix A. Never reuse a key and salt pair for real messages.
Result<std::string> EncryptPushMessage(std::string_view ua_public_base64url,
                                       std::string_view auth_secret_base64url,
                                       std::string_view plaintext, const VapidKey& ephemeral_key,
                                       std::string_view salt);

// The intermediate values of RFC 8291's key schedule (raw bytes), named as in its Appendix A.
// Exposed so the tests can compare each one with the RFC; EncryptPushMessage uses the same code.
struct PushKeySchedule {
  std::string ecdh_secret;  // 32: ECDH(as_private, ua_public)
  std::string prk_key;      // 32: HMAC-SHA-256(auth_secret, ecdh_secret)
  std::string ikm;          // 32: HMAC-SHA-256(PRK_key, "WebPush: info\0" || ua || as || 0x01)
  std::string prk;          // 32: HMAC-SHA-256(salt, IKM)
  std::string cek;          // 16: HMAC-SHA-256(PRK, "Content-Encoding: aes128gcm\0" || 0x01)
  std::string nonce;        // 12: HMAC-SHA-256(PRK, "Content-Encoding: nonce\0" || 0x01)
};
// `ua_public` is the raw 65-byte point, `auth_secret` 16 bytes, `salt` 16 bytes.
Result<PushKeySchedule> DerivePushKeySchedule(const VapidKey& ephemeral_key,
                                              std::string_view ua_public,
                                              std::string_view auth_secret, std::string_view salt);

// ---- Subscriptions ------------------------------------------------------------------------

// What a browser's PushSubscription gives the application server. The keys stay in the
// base64url form the browser sent (validated); the endpoint is the push service's URL.
struct PushSubscription {
  std::string endpoint;
  std::string p256dh;  // the user agent's public key: 65-byte uncompressed P-256 point
  std::string auth;    // the authentication secret: 16 bytes

  bool operator==(const PushSubscription&) const = default;
};

// The longest endpoint URL accepted (real ones are a few hundred bytes).
inline constexpr size_t kMaxPushEndpointBytes = 2048;

// Parses PushSubscription.toJSON():
//   {"endpoint": "https://...", "expirationTime": null, "keys": {"p256dh": "...", "auth": "..."}}
// Other members are ignored. The endpoint must be an absolute http(s) URL with a host and no
// user info, at most kMaxPushEndpointBytes (whether its address may be reached is the egress
// policy's decision, at send time); p256dh must decode (base64url, padding optional) to a point
// on P-256 in uncompressed form; auth to exactly 16 bytes. kInvalidArgument with a message
// naming the field otherwise. The keys are returned as given (padding removed).
Result<PushSubscription> ParsePushSubscription(std::string_view json);

// ---- The request --------------------------------------------------------------------------

// RFC 8030 §5.3: how urgently the user agent wants the message (affects battery use).
enum class PushUrgency { kVeryLow, kLow, kNormal, kHigh };
std::string_view PushUrgencyName(PushUrgency urgency);  // "very-low", "low", "normal", "high"

// The longest TTL accepted: four weeks, the most any large push service (FCM) keeps a message.
inline constexpr int64_t kMaxPushTtlSeconds = 28 * 24 * 3600;
// RFC 8030 §5.4: a topic is at most 32 characters of the base64url alphabet.
inline constexpr size_t kMaxPushTopicLength = 32;

// The VAPID token lifetime BuildPushRequest uses (exp = now + this): half of RFC 8292's 24 hours,
// so a push service whose clock differs from ours by up to 12 hours still accepts the token.
inline constexpr int64_t kPushVapidLifetimeSeconds = 12 * 3600;

// One push message ready to POST to `url` (the subscription's endpoint).
struct PushRequest {
  std::string url;
  // In this order: TTL, Topic (only when one is given), Urgency, Content-Encoding: aes128gcm,
  // Content-Type: application/octet-stream, Authorization: vapid t=..., k=...
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // the aes128gcm-encrypted payload
};

// Builds the request delivering `payload` to `subscription`, signed by `key` for `subject`
// (VAPID "sub": "mailto:..." or "https://..."), with a VAPID token valid for
// kPushVapidLifetimeSeconds from `now_s` (Unix seconds; 0: the system clock). `ttl_s` is how long
// the push service may keep an undelivered message (0..kMaxPushTtlSeconds); `topic` (e.g. the
// job id; empty: none) lets a newer message replace a pending one. kInvalidArgument for a bad
// subject, TTL, topic or subscription; kTooLarge for a payload past kMaxPushPlaintextBytes.
Result<PushRequest> BuildPushRequest(const VapidKey& key, std::string_view subject,
                                     const PushSubscription& subscription, std::string_view payload,
                                     int64_t ttl_s, std::string_view topic,
                                     PushUrgency urgency = PushUrgency::kNormal, int64_t now_s = 0);

}  // namespace vmp3::notify
