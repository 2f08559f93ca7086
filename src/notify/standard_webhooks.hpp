// Standard Webhooks (standardwebhooks.com, specification v1.0.0): the secrets, signatures and
// verification of the webhooks the notifier sends.
//
// A delivery carries three headers: `webhook-id` (the event's id, the same on every retry),
// `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`, a space-separated
// list of `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per secret in use (two
// while a secret is being rotated, so receivers holding either accept the delivery). The HMAC
// key is the base64-decoded part of a `whsec_<base64>` secret.
//
// Pure functions over libsodium; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace vmp3::notify {

// The specification's header names.
inline constexpr std::string_view kWebhookIdHeader = "webhook-id";
inline constexpr std::string_view kWebhookTimestampHeader = "webhook-timestamp";
inline constexpr std::string_view kWebhookSignatureHeader = "webhook-signature";

// How far a receiver lets a delivery's timestamp be from its own clock (the specification's
// recommended 5 minutes), which bounds how long a captured delivery can be replayed.
inline constexpr int64_t kWebhookToleranceSeconds = 300;

// A new secret: "whsec_" + standard base64 (with padding) of 32 random bytes from libsodium.
std::string GenerateWebhookSecret();

// "v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp_s}.{body}">" under `secret`, which is
// "whsec_<base64>" or, as the specification's libraries accept, the bare base64 (padded or not).
// kInvalidArgument when the secret is not base64 or decodes to nothing.
Result<std::string> SignWebhook(std::string_view secret, std::string_view msg_id,
                                int64_t timestamp_s, std::string_view body);

// The `webhook-signature` value: one SignWebhook signature per secret, in the given order,
// separated by single spaces. kInvalidArgument when `secrets` is empty or one is malformed
// (then nothing is signed: a delivery never goes out with fewer signatures than intended).
Result<std::string> SignatureHeader(const std::vector<std::string>& secrets,
                                    std::string_view msg_id, int64_t timestamp_s,
                                    std::string_view body);

// What a receiver does, for tests and documentation: succeeds when `timestamp_header` is within
// `tolerance_s` of `now_s` and some `v1` signature of `signature_header` matches the body under
// some secret (compared in constant time). Entries of other schemes (`v1a`, `v2`) and malformed
// entries are skipped. kUnauthenticated, with what was wrong, when the delivery is not
// authentic; kInvalidArgument when a secret is malformed or none is given.
Status VerifyWebhook(const std::vector<std::string>& secrets, std::string_view msg_id,
                     std::string_view timestamp_header, std::string_view signature_header,
                     std::string_view body, int64_t now_s,
                     int64_t tolerance_s = kWebhookToleranceSeconds);

}  // namespace vmp3::notify
