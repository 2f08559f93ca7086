#include "roles/notifier_records.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <random>

#include "roles/jobs.hpp"

namespace vmp3::roles {
namespace {

template <typename T>
void LoadIfPresent(const nlohmann::json& j, const char* name, T& field) {
  if (auto it = j.find(name); it != j.end() && !it->is_null()) it->get_to(field);
}

}  // namespace

const std::vector<std::string>& WebhookEventTypes() {
  static const std::vector<std::string> types = {"job.queued",  "job.converting", "job.done",
                                                 "job.failed",  "job.cancelled",  "job.expired",
                                                 "webhook.test"};
  return types;
}

bool WebhookEndpoint::Wants(std::string_view event_type) const {
  if (event_type == "webhook.test") return true;  // asked for explicitly
  return events.empty() || std::find(events.begin(), events.end(), event_type) != events.end();
}

std::vector<std::string> WebhookEndpoint::SigningSecrets(int64_t now_ms) const {
  return ActiveSecrets(secrets, now_ms);
}

std::vector<std::string> ActiveSecrets(const std::vector<WebhookSecret>& secrets, int64_t now_ms) {
  std::vector<std::string> out;
  for (const WebhookSecret& s : secrets) {
    if (s.expires_at == 0 || s.expires_at > now_ms) out.push_back(s.secret);
  }
  return out;
}

std::vector<WebhookSecret> RotatedSecrets(const std::vector<WebhookSecret>& old, std::string secret,
                                          int64_t grace_until) {
  std::vector<WebhookSecret> secrets = {{std::move(secret), 0}};
  for (const WebhookSecret& s : old) {
    if (s.expires_at == 0) secrets.push_back({s.secret, grace_until});
  }
  return secrets;
}

nlohmann::json EndpointJson(const Record& record, const WebhookEndpoint& endpoint) {
  nlohmann::json j{{"id", record.id},
                   {"url", endpoint.url},
                   {"events", endpoint.events},
                   {"description", endpoint.description},
                   {"enabled", endpoint.enabled},
                   {"created_at", record.created_at / 1000.0}};
  j["disabled_reason"] = endpoint.disabled_reason.empty()
                             ? nlohmann::json()
                             : nlohmann::json(endpoint.disabled_reason);
  j["failing_since"] =
      endpoint.failing_since ? nlohmann::json(endpoint.failing_since / 1000.0) : nlohmann::json();
  return j;
}

std::string_view ChannelName(Channel channel) {
  switch (channel) {
    case Channel::kWebhook:
      return "webhook";
    case Channel::kEmail:
      return "email";
    case Channel::kPush:
      return "push";
  }
  return "webhook";
}

namespace {
Channel ParseChannel(std::string_view name) {
  if (name == "email") return Channel::kEmail;
  if (name == "push") return Channel::kPush;
  return Channel::kWebhook;
}
}  // namespace

void to_json(nlohmann::json& j, const Delivery& d) {
  j = {{"event_id", d.event_id}, {"event_type", d.event_type},
       {"event_at", d.event_at}, {"channel", ChannelName(d.channel)},
       {"target", d.target},     {"url", d.url},
       {"payload", d.payload},   {"state", d.state},
       {"attempts", d.attempts}};
}

void from_json(const nlohmann::json& j, Delivery& d) {
  LoadIfPresent(j, "event_id", d.event_id);
  LoadIfPresent(j, "event_type", d.event_type);
  LoadIfPresent(j, "event_at", d.event_at);
  std::string channel;
  LoadIfPresent(j, "channel", channel);
  d.channel = ParseChannel(channel);
  LoadIfPresent(j, "target", d.target);
  LoadIfPresent(j, "url", d.url);
  LoadIfPresent(j, "payload", d.payload);
  LoadIfPresent(j, "state", d.state);
  LoadIfPresent(j, "attempts", d.attempts);
}

nlohmann::json DeliveryJson(const Record& record, const Delivery& delivery) {
  nlohmann::json attempts = nlohmann::json::array();
  for (const DeliveryAttempt& a : delivery.attempts) {
    nlohmann::json attempt{{"at", a.at / 1000.0}, {"latency_ms", a.latency_ms}};
    // 0: no answer (a timeout); -1: never sent (refused by the egress policy, a bad address).
    attempt["status_code"] = a.status > 0 ? nlohmann::json(a.status) : nlohmann::json();
    attempt["error"] = a.error.empty() ? nlohmann::json() : nlohmann::json(a.error);
    attempts.push_back(std::move(attempt));
  }
  nlohmann::json j{{"id", record.id},
                   {"event_id", delivery.event_id},
                   {"event_type", delivery.event_type},
                   {"state", delivery.state},
                   {"attempts", attempts},
                   {"created_at", record.created_at / 1000.0}};
  j["next_attempt_at"] = record.due_at ? nlohmann::json(record.due_at / 1000.0) : nlohmann::json();
  return j;
}

std::string DeliveryId(std::string_view event_id, Channel channel, std::string_view target) {
  std::string key = fmt::format("{}\n{}\n{}", event_id, ChannelName(channel), target);
  std::array<unsigned char, 16> hash{};
  crypto_generichash(hash.data(), hash.size(), reinterpret_cast<const unsigned char*>(key.data()),
                     key.size(), nullptr, 0);
  std::string id;
  for (unsigned char b : hash) id += fmt::format("{:02x}", b);
  return id;
}

std::optional<int64_t> NextAttemptAt(int attempts_made, int64_t now_ms,
                                     std::optional<int64_t> retry_after_ms, double scale) {
  // The delay before attempt k + 1 after k attempts (the first attempt is immediate).
  static constexpr int64_t kSeconds[] = {5,         5 * 60,    30 * 60,   2 * 3600, 5 * 3600,
                                         10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600};
  if (attempts_made < 1 || attempts_made > static_cast<int>(std::size(kSeconds))) {
    return std::nullopt;
  }
  thread_local std::minstd_rand random(std::random_device{}());
  double jitter = std::uniform_real_distribution(0.9, 1.1)(random);
  auto delay = static_cast<int64_t>(kSeconds[attempts_made - 1] * 1000 * jitter * scale);
  if (retry_after_ms) delay = std::max(delay, *retry_after_ms);
  return now_ms + std::max<int64_t>(delay, 1);
}

bool IsRetryable(int status) { return status == 0 || status == 429 || status >= 500; }

std::string Rfc3339(int64_t unix_ms) {
  auto tp = std::chrono::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(unix_ms));
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", std::chrono::floor<std::chrono::seconds>(tp),
                     ((unix_ms % 1000) + 1000) % 1000);
}

std::string WebhookPayload(std::string_view type, int64_t at_ms, const Job& job,
                           std::string_view public_url) {
  nlohmann::json data = JobJson(job);
  std::string base(public_url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (data.contains("links")) {
    for (auto& [name, link] : data["links"].items()) {
      if (link.is_string()) link = base + link.get<std::string>();
    }
  }
  nlohmann::json body{{"type", type}, {"timestamp", Rfc3339(at_ms)}, {"data", data}};
  std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() <= kMaxWebhookPayloadBytes) return text;
  // Only the user's file name and the error message can be long: shorten them.
  auto shorten = [](nlohmann::json& field) {
    if (field.is_string() && field.get<std::string>().size() > 1024)
      field = field.get<std::string>().substr(0, 1024) + "…";
  };
  if (body["data"].contains("input")) shorten(body["data"]["input"]["filename"]);
  if (body["data"]["error"].is_object()) shorten(body["data"]["error"]["message"]);
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::vector<std::string>> ParseEventTypes(const nlohmann::json& value) {
  if (!value.is_array())
    return MakeError(ErrorCode::kInvalidArgument, "events must be a list of event types");
  std::vector<std::string> types;
  for (const auto& item : value) {
    if (!item.is_string())
      return MakeError(ErrorCode::kInvalidArgument, "events must be a list of event types");
    auto name = item.get<std::string>();
    const auto& known = WebhookEventTypes();
    if (std::find(known.begin(), known.end(), name) == known.end() || name == "webhook.test") {
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("unknown event type '{}': use job.queued, job.converting, "
                                   "job.done, job.failed, job.cancelled or job.expired",
                                   name));
    }
    if (std::find(types.begin(), types.end(), name) == types.end()) types.push_back(name);
  }
  return types;
}

}  // namespace vmp3::roles
