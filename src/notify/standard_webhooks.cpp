#include "notify/standard_webhooks.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <array>
#include <charconv>
#include <cstdlib>

#include "auth/base64.hpp"
#include "auth/sodium.hpp"
#include "common/text.hpp"

namespace vmp3::notify {
namespace {

constexpr std::string_view kWebhookSecretPrefix = "whsec_";
constexpr size_t kWebhookSecretBytes = 32;

std::string WebhookBase64(const unsigned char* data, size_t size) {
  return auth::Base64Encode(data, size, sodium_base64_VARIANT_ORIGINAL);
}

// The HMAC key of a secret: the base64 after the optional "whsec_" prefix, padded or not.
Result<std::string> WebhookSecretKey(std::string_view secret) {
  if (secret.starts_with(kWebhookSecretPrefix)) secret.remove_prefix(kWebhookSecretPrefix.size());
  auto key = auth::Base64DecodeStrict(secret, sodium_base64_VARIANT_ORIGINAL);
  if (!key) key = auth::Base64DecodeStrict(secret, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  if (!key || key->empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a webhook secret must be \"whsec_\" followed by standard base64");
  }
  return *key;
}

std::string WebhookSignatureWithKey(std::string_view key, std::string_view msg_id,
                                    int64_t timestamp_s, std::string_view body) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()),
                              key.size());
  auto update = [&state](std::string_view part) {
    crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(part.data()),
                                  part.size());
  };
  const std::string timestamp = std::to_string(timestamp_s);
  update(msg_id);
  update(".");
  update(timestamp);
  update(".");
  update(body);
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
  crypto_auth_hmacsha256_final(&state, mac.data());
  sodium_memzero(&state, sizeof(state));
  return "v1," + WebhookBase64(mac.data(), mac.size());
}

}  // namespace

std::string GenerateWebhookSecret() {
  if (!auth::SodiumReady()) std::abort();  // no randomness source: nothing safe to return
  std::array<unsigned char, kWebhookSecretBytes> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  std::string secret =
      std::string(kWebhookSecretPrefix) + WebhookBase64(bytes.data(), bytes.size());
  sodium_memzero(bytes.data(), bytes.size());
  return secret;
}

Result<std::string> SignWebhook(std::string_view secret, std::string_view msg_id,
                                int64_t timestamp_s, std::string_view body) {
  auto key = WebhookSecretKey(secret);
  if (!key) return tl::unexpected(key.error());
  std::string signature = WebhookSignatureWithKey(*key, msg_id, timestamp_s, body);
  sodium_memzero(key->data(), key->size());
  return signature;
}

Result<std::string> SignatureHeader(const std::vector<std::string>& secrets,
                                    std::string_view msg_id, int64_t timestamp_s,
                                    std::string_view body) {
  if (secrets.empty())
    return MakeError(ErrorCode::kInvalidArgument, "no webhook secret to sign with");
  std::string header;
  for (const std::string& secret : secrets) {
    auto signature = SignWebhook(secret, msg_id, timestamp_s, body);
    if (!signature) return tl::unexpected(signature.error());
    if (!header.empty()) header += ' ';
    header += *signature;
  }
  return header;
}

Status VerifyWebhook(const std::vector<std::string>& secrets, std::string_view msg_id,
                     std::string_view timestamp_header, std::string_view signature_header,
                     std::string_view body, int64_t now_s, int64_t tolerance_s) {
  if (secrets.empty())
    return MakeError(ErrorCode::kInvalidArgument, "no webhook secret to verify with");
  std::vector<std::string> keys;
  for (const std::string& secret : secrets) {
    auto key = WebhookSecretKey(secret);
    if (!key) return tl::unexpected(key.error());
    keys.push_back(std::move(*key));
  }

  int64_t timestamp = 0;
  const char* first = timestamp_header.data();
  const char* last = first + timestamp_header.size();
  auto [end, ec] = std::from_chars(first, last, timestamp);
  if (timestamp_header.empty() || !IsAsciiDigit(timestamp_header.front()) || ec != std::errc() ||
      end != last) {
    return MakeError(ErrorCode::kUnauthenticated,
                     "webhook-timestamp is not a number of seconds since the epoch");
  }
  if (timestamp < now_s - tolerance_s) {
    return MakeError(ErrorCode::kUnauthenticated, "webhook-timestamp is too old");
  }
  if (timestamp > now_s + tolerance_s) {
    return MakeError(ErrorCode::kUnauthenticated, "webhook-timestamp is in the future");
  }

  std::vector<std::string> expected;
  for (const std::string& key : keys) {
    expected.push_back(WebhookSignatureWithKey(key, msg_id, timestamp, body));
  }
  bool any_v1 = false;
  bool matched = false;
  std::string_view rest = signature_header;
  while (!rest.empty()) {
    size_t space = rest.find(' ');
    std::string_view entry = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    if (!entry.starts_with("v1,")) continue;  // another scheme, or not an entry at all
    any_v1 = true;
    for (const std::string& candidate : expected) {
      // Lengths are public (every v1 signature has the same); the bytes are compared in
      // constant time so a forger learns nothing from how long a comparison took.
      if (candidate.size() == entry.size() &&
          sodium_memcmp(candidate.data(), entry.data(), entry.size()) == 0) {
        matched = true;
      }
    }
  }
  for (std::string& key : keys) sodium_memzero(key.data(), key.size());
  if (!any_v1) {
    return MakeError(ErrorCode::kUnauthenticated, "webhook-signature holds no v1 signature");
  }
  if (!matched) {
    return MakeError(ErrorCode::kUnauthenticated,
                     "no v1 signature of webhook-signature matches the body under the secrets");
  }
  return {};
}

}  // namespace vmp3::notify
