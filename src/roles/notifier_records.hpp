// The notifier's records as the NotificationStore keeps them (JSON bodies of Records), the retry
// schedule, and the payloads. Pure functions and plain structs: the routes and the worker share
// them, the unit tests check them without a server.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "metadata/metadata_store.hpp"
#include "metadata/notification_store.hpp"

namespace vmp3::roles {

// The events a webhook may subscribe to (the job statuses, expiry, and the test event).
const std::vector<std::string>& WebhookEventTypes();

struct WebhookSecret {
  std::string secret;      // "whsec_…"
  int64_t expires_at = 0;  // unix ms; 0: the current one
};

struct WebhookEndpoint {
  std::string url;
  std::vector<std::string> events;  // empty: every event
  std::string description;
  bool enabled = true;
  std::string disabled_reason;         // why it was disabled automatically (410, failing for days)
  std::vector<WebhookSecret> secrets;  // the current one first, then any still in their grace
  int64_t failing_since = 0;           // unix ms of the first failure since the last success

  bool Wants(std::string_view event_type) const;
  // The secrets that sign at now_ms: the current one and those still in their grace period.
  std::vector<std::string> SigningSecrets(int64_t now_ms) const;
};
// Stored as JSON with the field names; a field missing from an older record keeps its default.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(WebhookSecret, secret, expires_at)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(WebhookEndpoint, url, events, description, enabled,
                                                disabled_reason, secrets, failing_since)
// The endpoint as its owner sees it (no secret).
nlohmann::json EndpointJson(const Record& record, const WebhookEndpoint& endpoint);

// Per user: the account signing secret (for one-off webhook_url jobs) and what else to notify.
struct NotificationSettings {
  std::vector<WebhookSecret> signing_secrets;  // as WebhookEndpoint::secrets
  bool email = false;
  std::vector<std::string> email_events = {"job.done", "job.failed"};
  std::vector<std::string> push_events = {"job.done", "job.failed"};
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(NotificationSettings, signing_secrets, email,
                                                email_events, push_events)

enum class Channel { kWebhook, kEmail, kPush };
std::string_view ChannelName(Channel channel);

// DeliveryAttempt::status of an attempt that was never sent and is not retried (a URL the egress
// policy refuses, a destination that is gone, a recipient the mail relay refuses for good).
inline constexpr int kNotSent = -1;

struct DeliveryAttempt {
  int64_t at = 0;  // unix ms
  int status = 0;  // HTTP status (0: no answer, e.g. a timeout; kNotSent)
  int64_t latency_ms = 0;
  std::string error;  // empty on success
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DeliveryAttempt, at, status, latency_ms, error)

struct Delivery {
  std::string event_id;  // the webhook-id
  std::string event_type;
  int64_t event_at = 0;
  Channel channel = Channel::kWebhook;
  std::string target;   // endpoint id, "job" (the job's webhook_url), subscription id or address
  std::string url;      // webhook: where it goes
  std::string payload;  // the body as sent (JSON)
  std::string state = "pending";  // pending, succeeded, failed
  std::vector<DeliveryAttempt> attempts;
};
void to_json(nlohmann::json& j, const Delivery& d);
void from_json(const nlohmann::json& j, Delivery& d);
nlohmann::json DeliveryJson(const Record& record, const Delivery& delivery);

// A record's body as T; T{} when the body is not a T, so a corrupt record reads as empty
// instead of failing a request or throwing on a worker's thread.
template <typename T>
T BodyOf(const Record& record) {
  try {
    return nlohmann::json::parse(record.body).get<T>();
  } catch (const nlohmann::json::exception&) {
    return T{};
  }
}

// The secrets of `secrets` that sign at now_ms: the current one (expires_at 0) and those still in
// their grace period.
std::vector<std::string> ActiveSecrets(const std::vector<WebhookSecret>& secrets, int64_t now_ms);
// After a rotation: `secret` is the current one, the previous current one signs on until
// grace_until; older ones still in grace are dropped (two rotations in a row end the first grace).
std::vector<WebhookSecret> RotatedSecrets(const std::vector<WebhookSecret>& old, std::string secret,
                                          int64_t grace_until);

// The record id of the delivery of `event_id` over `channel` to `target`: the same every time,
// so a fan-out that runs twice for one event creates each delivery once.
std::string DeliveryId(std::string_view event_id, Channel channel, std::string_view target);

// When attempt number `attempts_made + 1` is due after a failure at now_ms: immediately, then
// ~5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h (each ±10 % jitter, times `scale`), or
// later when the receiver asked (Retry-After). nullopt when the schedule is used up.
std::optional<int64_t> NextAttemptAt(int attempts_made, int64_t now_ms,
                                     std::optional<int64_t> retry_after_ms, double scale);
// Whether an answer (status, or 0 for no answer: timeout, network) is worth retrying.
bool IsRetryable(int status);

// The Standard Webhooks body: {"type", "timestamp" (RFC 3339, ms), "data": {the job as the API
// shows it, links absolute under public_url}}, at most kMaxWebhookPayloadBytes (a long file name
// or error message is shortened to get there; UTF-8 may be cut mid-character and then replaced).
inline constexpr size_t kMaxWebhookPayloadBytes = 20 * 1024;
std::string WebhookPayload(std::string_view type, int64_t at_ms, const Job& job,
                           std::string_view public_url);
std::string Rfc3339(int64_t unix_ms);

// Unknown fields are errors: a typo in a request must not pass silently.
Result<std::vector<std::string>> ParseEventTypes(const nlohmann::json& value);

}  // namespace vmp3::roles
