// The notifier's workers: the fan-out (event log → delivery records) and the senders (due
// deliveries → webhooks). See notifier_role.hpp for the design.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <stop_token>
#include <string_view>
#include <thread>

#include "common/stoppable.hpp"
#include "common/text.hpp"
#include "notify/egress_policy.hpp"
#include "notify/mail_message.hpp"
#include "notify/outbound_http.hpp"
#include "notify/standard_webhooks.hpp"
#include "roles/jobs.hpp"
#include "roles/notifier_records.hpp"
#include "roles/notifier_role.hpp"

namespace vmp3::roles {
namespace {

constexpr std::string_view kFanoutCursor = "notifier-fanout";
constexpr int kFanoutBatch = 100;
// A claimed delivery is the claimer's for this long: longer than an attempt can take (timeout
// 10 s), so only a dead sender's deliveries come back.
constexpr int64_t kDeliveryLeaseMs = 60'000;
// An endpoint that failed every delivery this long is disabled.
constexpr int64_t kDisableAfterMs = 5LL * 24 * 3600 * 1000;

class Notifier final : public Worker {
 public:
  explicit Notifier(const NotifierRole& role)
      : role_(role),
        deliveries_(role.metrics.AddCounter("vmp3_notifier_deliveries_total",
                                            "Delivery attempts by channel and outcome "
                                            "(succeeded, retrying, failed).")),
        latency_(role.metrics.AddHistogram("vmp3_notifier_attempt_seconds",
                                           "Time an outbound delivery attempt took.",
                                           {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
        lag_(role.metrics
                 .AddGauge("vmp3_notifier_lag_seconds",
                           "Age of the oldest event the fan-out has not read yet (0 when "
                           "it is caught up).")
                 .WithLabels()),
        errors_(role.metrics.AddCounter("vmp3_notifier_errors_total",
                                        "Fan-out or scheduling steps that failed and will be "
                                        "retried (backend unavailable).")) {}

  void Start() override {
    fanout_ = std::jthread([this](std::stop_token stop) { FanoutLoop(stop); });
    for (int i = 0; i < role_.config.sender_threads; ++i)
      senders_.emplace_back([this](std::stop_token stop) { SenderLoop(stop); });
  }

  void Stop() override {
    fanout_ = {};
    senders_.clear();  // each in-flight attempt ends within its timeout
  }

 private:
  // ---- fan-out ----

  void FanoutLoop(std::stop_token stop) {
    auto last_prune = std::chrono::steady_clock::time_point();
    while (!stop.stop_requested()) {
      if (std::chrono::steady_clock::now() - last_prune > std::chrono::hours(1)) {
        last_prune = std::chrono::steady_clock::now();
        PruneDeliveries();
      }
      bool more = FanoutOnce();
      if (!more) SleepUnlessStopped(stop, std::chrono::milliseconds(250));
    }
  }

  // The delivery log keeps finished deliveries as long as the event log keeps events.
  void PruneDeliveries() {
    const int64_t before = role_.now_ms() - kEventRetentionMs;
    for (int batch = 0; batch < 100; ++batch) {
      auto removed = role_.notifications.PruneRecords(notice_kind::kDelivery, before, 500);
      if (!removed) {
        errors_.WithLabels({"step", "prune"}).Inc();
        spdlog::warn("notifier: cannot prune old deliveries yet: {}", removed.error().message);
        return;
      }
      if (*removed < 500) return;
    }
  }

  // Reads a batch after the cursor, creates its deliveries, then moves the cursor. True when a
  // full batch was read (more may follow at once).
  bool FanoutOnce() {
    auto cursor = role_.notifications.GetCursor(kFanoutCursor);
    if (!cursor) return Failed("reading the fan-out cursor", cursor.error());
    auto page = role_.metadata.ReadEvents("", *cursor, kFanoutBatch);
    if (!page) return Failed("reading the event log", page.error());
    for (const StoredEvent& event : page->events) {
      if (Status s = FanOut(event); !s) return Failed("fanning out an event", s.error());
    }
    // How far behind the fan-out is: the age of the oldest event it had not read yet.
    lag_.Set(
        page->events.empty()
            ? 0.0
            : std::max<double>(0, (role_.now_ms() - page->events.front().created_at) / 1000.0));
    if (page->next_cursor != *cursor) {
      if (Status s = role_.notifications.SetCursor(kFanoutCursor, page->next_cursor); !s)
        return Failed("moving the fan-out cursor", s.error());
    }
    return page->events.size() == static_cast<size_t>(kFanoutBatch);
  }

  bool Failed(std::string_view what, const Error& error) {
    errors_.WithLabels({"step", "fanout"}).Inc();
    spdlog::warn("notifier: {} failed, will retry: {}", what, error.message);
    return false;
  }

  Status FanOut(const StoredEvent& event) {
    Job job;
    try {
      job = nlohmann::json::parse(event.job).get<Job>();
    } catch (const nlohmann::json::exception& e) {
      spdlog::error("notifier: event {} has a corrupt job, skipped: {}", event.id, e.what());
      return {};
    }
    const std::string payload =
        WebhookPayload(event.type, event.created_at, job, role_.config.public_url);
    // Every endpoint of the owner that wants this event.
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
      auto endpoints = role_.notifications.List(notice_kind::kEndpoint, ListBy::kOwner,
                                                event.owner_id, 100, cursor);
      if (!endpoints) return tl::unexpected(endpoints.error());
      for (const Record& record : endpoints->records) {
        WebhookEndpoint endpoint = BodyOf<WebhookEndpoint>(record);
        if (!endpoint.enabled || !endpoint.Wants(event.type)) continue;
        Delivery delivery{.event_id = event.id,
                          .event_type = event.type,
                          .event_at = event.created_at,
                          .channel = Channel::kWebhook,
                          .target = record.id,
                          .url = endpoint.url,
                          .payload = payload};
        if (Status s = Schedule(delivery, event.owner_id, record.id); !s) return s;
      }
      if (endpoints->next_cursor.empty()) break;
      cursor = endpoints->next_cursor;
    }
    // Browser push and e-mail, as the owner's settings ask.
    NotificationSettings settings;
    if (auto record = role_.notifications.Get(notice_kind::kSettings, event.owner_id)) {
      settings = BodyOf<NotificationSettings>(*record);
    } else if (record.error().code != ErrorCode::kNotFound) {
      return tl::unexpected(record.error());
    }
    auto wants = [&](const std::vector<std::string>& types) {
      return std::find(types.begin(), types.end(), event.type) != types.end();
    };
    if (wants(settings.push_events)) {
      auto subscriptions = role_.notifications.List(notice_kind::kSubscription, ListBy::kOwner,
                                                    event.owner_id, 100, "");
      if (!subscriptions) return tl::unexpected(subscriptions.error());
      const std::string message = PushMessage(event.type, job);
      for (const Record& record : subscriptions->records) {
        Delivery delivery{.event_id = event.id,
                          .event_type = event.type,
                          .event_at = event.created_at,
                          .channel = Channel::kPush,
                          .target = record.id,
                          .payload = message};
        if (Status s = Schedule(delivery, event.owner_id, ""); !s) return s;
      }
    }
    if (settings.email && role_.mailer && wants(settings.email_events)) {
      auto user = role_.metadata.GetUser(event.owner_id);
      if (!user && user.error().code != ErrorCode::kNotFound) return tl::unexpected(user.error());
      if (user && !user->email.empty()) {
        Delivery delivery{.event_id = event.id,
                          .event_type = event.type,
                          .event_at = event.created_at,
                          .channel = Channel::kEmail,
                          .target = user->email,
                          .payload = event.job};
        if (Status s = Schedule(delivery, event.owner_id, ""); !s) return s;
      }
    }
    // The job's own webhook_url (given at upload), signed with the account's signing secret.
    if (auto url = JobWebhookUrl(job); !url.empty()) {
      Delivery delivery{.event_id = event.id,
                        .event_type = event.type,
                        .event_at = event.created_at,
                        .channel = Channel::kWebhook,
                        .target = "job",
                        .url = url,
                        .payload = payload};
      if (Status s = Schedule(delivery, event.owner_id, ""); !s) return s;
    }
    return {};
  }

  // What the page's service worker shows: small (a push message holds < 4 KB).
  std::string PushMessage(std::string_view type, const Job& job) const {
    std::string name = job.input_name.substr(0, 200);
    std::string title = type == "job.done"     ? "Your MP3 is ready"
                        : type == "job.failed" ? "A conversion failed"
                                               : "Conversion update";
    std::string body = type == "job.done"     ? fmt::format("{} is ready to download.", name)
                       : type == "job.failed" ? fmt::format("{} could not be converted: {}", name,
                                                            job.error_message.substr(0, 300))
                                              : fmt::format("{}: {}", name, type);
    std::string base = role_.config.public_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return nlohmann::json{
        {"type", type}, {"job_id", job.id}, {"title", title}, {"body", body}, {"url", base + "/"}}
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  static std::string JobWebhookUrl(const Job& job) {
    try {
      auto options = nlohmann::json::parse(job.options_json.empty() ? "{}" : job.options_json);
      if (auto it = options.find("webhook_url"); it != options.end() && it->is_string())
        return it->get<std::string>();
    } catch (const nlohmann::json::exception&) {
    }
    return {};
  }

  // Creates the delivery, due now; one that exists already (the event was fanned out before a
  // crash) is left as it is.
  Status Schedule(const Delivery& delivery, const std::string& owner, const std::string& parent) {
    int64_t now = role_.now_ms();
    Record record{.id = DeliveryId(delivery.event_id, delivery.channel, delivery.target),
                  .owner_id = owner,
                  .parent = parent,
                  .created_at = now,
                  .due_at = now,
                  .body = nlohmann::json(delivery).dump()};
    Status inserted = role_.notifications.Insert(notice_kind::kDelivery, record);
    if (!inserted && inserted.error().code == ErrorCode::kAlreadyExists) return {};
    if (inserted) Wake();
    return inserted;
  }

  // ---- senders ----

  void Wake() { wake_.notify_all(); }

  void SenderLoop(std::stop_token stop) {
    while (!stop.stop_requested()) {
      if (!SendOne()) {
        std::unique_lock lock(wake_mu_);
        wake_.wait_for(lock, stop, std::chrono::milliseconds(250), [] { return false; });
      }
    }
  }

  // Claims one due delivery and makes one attempt. False when nothing was due.
  bool SendOne() {
    auto claimed =
        role_.notifications.ClaimDue(notice_kind::kDelivery, role_.now_ms(), kDeliveryLeaseMs, 1);
    if (!claimed) {
      errors_.WithLabels({"step", "claim"}).Inc();
      spdlog::warn("notifier: cannot claim deliveries, will retry: {}", claimed.error().message);
      return false;
    }
    if (claimed->empty()) return false;
    Attempt(claimed->front());
    return true;
  }

  // Holds one of an endpoint's in-flight slots while alive; empty when none was free.
  class Slot {
   public:
    Slot(Notifier& n, std::string key) : n_(&n), key_(std::move(key)) {
      std::lock_guard lock(n_->slots_mu_);
      int& used = n_->in_flight_[key_];
      if (used >= n_->role_.config.per_endpoint_limit) {
        n_ = nullptr;
        return;
      }
      ++used;
    }
    ~Slot() {
      if (!n_) return;
      std::lock_guard lock(n_->slots_mu_);
      if (--n_->in_flight_[key_] == 0) n_->in_flight_.erase(key_);
    }
    explicit operator bool() const { return n_ != nullptr; }

   private:
    Notifier* n_;
    std::string key_;
  };

  void Attempt(const Record& record) {
    Delivery delivery = BodyOf<Delivery>(record);
    const int64_t now = role_.now_ms();
    Slot slot(*this, delivery.target == "job" ? delivery.url : delivery.target);
    if (!slot) {
      // This endpoint already has its share of senders: come back shortly, no attempt counted.
      Reschedule(record.id, now + 2'000);
      return;
    }
    if (delivery.channel == Channel::kPush) return AttemptPush(record, delivery, now);
    if (delivery.channel == Channel::kEmail) return AttemptEmail(record, delivery, now);
    if (delivery.channel != Channel::kWebhook) {
      GiveUp(record, delivery, now, "this channel is not available");
      return;
    }
    // The signing secrets: the endpoint's, or the account's for a job's own webhook_url.
    std::vector<std::string> secrets;
    std::optional<WebhookEndpoint> endpoint;
    if (delivery.target == "job") {
      auto settings = role_.notifications.Get(notice_kind::kSettings, record.owner_id);
      if (!settings && settings.error().code != ErrorCode::kNotFound)
        return Retry(record, settings.error());
      if (settings)
        secrets = ActiveSecrets(BodyOf<NotificationSettings>(*settings).signing_secrets, now);
    } else {
      auto found = role_.notifications.Get(notice_kind::kEndpoint, delivery.target);
      if (!found && found.error().code != ErrorCode::kNotFound) return Retry(record, found.error());
      if (!found) {
        // The endpoint was deleted: nothing to deliver to any more.
        GiveUp(record, delivery, now, "the webhook was deleted");
        return;
      }
      endpoint = BodyOf<WebhookEndpoint>(*found);
      if (!endpoint->enabled && delivery.event_type != "webhook.test") {
        GiveUp(record, delivery, now, "the webhook is disabled");
        return;
      }
      secrets = endpoint->SigningSecrets(now);
    }
    if (secrets.empty()) {
      GiveUp(record, delivery, now, "no signing secret");
      return;
    }
    const int64_t timestamp = now / 1000;
    auto signature =
        notify::SignatureHeader(secrets, delivery.event_id, timestamp, delivery.payload);
    if (!signature) {
      GiveUp(record, delivery, now, signature.error().message);
      return;
    }
    notify::OutboundRequest request;
    request.url = delivery.url;
    request.body = delivery.payload;
    request.timeout = std::chrono::milliseconds(
        static_cast<int64_t>(role_.config.webhook_timeout_seconds * 1000));
    request.headers = {{"Content-Type", "application/json"},
                       {"User-Agent", "vmp3-webhooks/1"},
                       {"webhook-id", delivery.event_id},
                       {"webhook-timestamp", std::to_string(timestamp)},
                       {"webhook-signature", *signature}};
    Answer answer = PostAndRecord("webhook", "the receiver", request, now);
    if (answer.attempt.status >= 300 && answer.attempt.status < 400)
      answer.attempt.error += " (redirects are not followed)";
    const bool gone = answer.attempt.status == 410;
    Finish(record, delivery, answer.attempt, answer.retry_after, gone, endpoint.has_value());
  }

  std::string PublicUrl() const {
    std::string base = role_.config.public_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base;
  }

  // One mail to the job's owner through the relay. A relay that is down is retried on the
  // schedule; one that refuses the recipient for good (5xx) is not.
  void AttemptEmail(const Record& record, const Delivery& delivery, int64_t now) {
    if (!role_.mailer) {
      GiveUp(record, delivery, now, "this service sends no e-mail");
      return;
    }
    Job job;
    try {
      job = nlohmann::json::parse(delivery.payload).get<Job>();
    } catch (const nlohmann::json::exception& e) {
      GiveUp(record, delivery, now, "the event's job is unreadable");
      return;
    }
    const std::string base = PublicUrl();
    notify::JobMailFacts facts{.event_type = delivery.event_type,
                               .file_name = job.input_name,
                               .error_message = job.error_message,
                               .download_url = base + "/v1/jobs/" + job.id + "/mp3",
                               .job_url = base + "/v1/jobs/" + job.id,
                               .settings_url = base + "/v1/account/notifications"};
    notify::MailMessage mail = notify::JobMail(facts, role_.mailer->config().from, delivery.target);
    auto rendered = notify::RenderMail(mail, now, "");
    DeliveryAttempt attempt{.at = now};
    auto started = std::chrono::steady_clock::now();
    Status sent = rendered ? role_.mailer->Send(delivery.target, *rendered)
                           : Status(tl::unexpected(rendered.error()));
    attempt.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started)
                             .count();
    latency_.WithLabels({"channel", "email"}).Observe(attempt.latency_ms / 1000.0);
    if (!sent) {
      attempt.error = sent.error().message;
      // kInvalidArgument: refused for good (a bad address, the relay's 5xx): no retry.
      if (sent.error().code == ErrorCode::kInvalidArgument) attempt.status = kNotSent;
    }
    Finish(record, delivery, attempt, std::nullopt, false);
  }

  // One Web Push message (RFC 8030/8291/8292) to one browser's push service.
  void AttemptPush(const Record& record, const Delivery& delivery, int64_t now) {
    auto found = role_.notifications.Get(notice_kind::kSubscription, delivery.target);
    if (!found && found.error().code != ErrorCode::kNotFound) return Retry(record, found.error());
    if (!found) {
      GiveUp(record, delivery, now, "the browser unsubscribed");
      return;
    }
    auto keys = BodyOf<std::map<std::string, std::string>>(*found);
    notify::PushSubscription subscription{keys["endpoint"], keys["p256dh"], keys["auth"]};
    // The job id as Topic: a newer message about the job replaces one still undelivered.
    std::string topic;
    if (auto payload = nlohmann::json::parse(delivery.payload, nullptr, false); payload.is_object())
      topic = payload.value("job_id", "");
    // A day: a notification about a conversion is stale after that.
    auto built = notify::BuildPushRequest(role_.vapid, role_.config.VapidSubject(), subscription,
                                          delivery.payload, 24 * 3600, topic,
                                          notify::PushUrgency::kNormal, now / 1000);
    if (!built) {
      GiveUp(record, delivery, now, built.error().message);
      return;
    }
    notify::OutboundRequest request{.url = built->url,
                                    .headers = built->headers,
                                    .body = built->body,
                                    .timeout = std::chrono::milliseconds(static_cast<int64_t>(
                                        role_.config.webhook_timeout_seconds * 1000))};
    Answer answer = PostAndRecord("push", "the push service", request, now);
    // The subscription expired or the user revoked it: forget it (RFC 8030 §7.3).
    const bool gone = answer.attempt.status == 404 || answer.attempt.status == 410;
    if (gone) {
      Status removed = role_.notifications.Remove(notice_kind::kSubscription, delivery.target);
      if (!removed && removed.error().code != ErrorCode::kNotFound)
        spdlog::warn("notifier: cannot remove push subscription {}: {}", delivery.target,
                     removed.error().message);
    }
    Finish(record, delivery, answer.attempt, answer.retry_after, gone);
  }

  struct Answer {
    DeliveryAttempt attempt;
    std::optional<int64_t> retry_after;  // ms, when the answer asked for it
  };
  // POSTs `request` under the egress policy and records it as an attempt: status, latency, and
  // why it failed ("`who` answered 500", or the transport's error).
  Answer PostAndRecord(std::string_view channel, std::string_view who,
                       const notify::OutboundRequest& request, int64_t now) {
    Answer answer{DeliveryAttempt{.at = now}, std::nullopt};
    auto response = notify::Post(role_.egress, request);
    if (!response) {
      answer.attempt.error = response.error().message;
      // A URL the policy refuses will be refused next time too.
      if (response.error().code == ErrorCode::kUrlRefused) answer.attempt.status = kNotSent;
      return answer;
    }
    answer.attempt.status = response->status;
    answer.attempt.latency_ms = response->latency.count();
    latency_.WithLabels({"channel", std::string(channel)})
        .Observe(answer.attempt.latency_ms / 1000.0);
    if (response->status < 200 || response->status > 299)
      answer.attempt.error = fmt::format("{} answered {}", who, response->status);
    if (response->retry_after) answer.retry_after = response->retry_after->count() * 1000;
    return answer;
  }

  // Ends a delivery that was not, and will not be, sent (its destination is gone or refuses).
  void GiveUp(const Record& record, const Delivery& delivery, int64_t now, std::string reason) {
    Finish(record, delivery, DeliveryAttempt{now, kNotSent, 0, std::move(reason)}, std::nullopt,
           false);
  }

  void Retry(const Record& record, const Error& error) {
    errors_.WithLabels({"step", "send"}).Inc();
    spdlog::warn("notifier: delivery {} waits for the backend: {}", record.id, error.message);
    // The lease brings it back.
  }

  void Reschedule(const std::string& id, int64_t due_at) {
    auto moved = role_.notifications.Update(notice_kind::kDelivery, id, [&](Record& r) -> Status {
      r.due_at = due_at;
      return {};
    });
    if (!moved) spdlog::warn("notifier: cannot reschedule {}: {}", id, moved.error().message);
  }

  // Records the attempt and what follows: done, another attempt later, or given up.
  void Finish(const Record& record, Delivery delivery, const DeliveryAttempt& attempt,
              std::optional<int64_t> retry_after, bool gone, bool to_endpoint = false) {
    const bool ok = attempt.error.empty();
    const int64_t now = role_.now_ms();
    std::optional<int64_t> next;
    if (!ok && !gone && attempt.status != kNotSent && IsRetryable(attempt.status)) {
      next = NextAttemptAt(static_cast<int>(delivery.attempts.size()) + 1, now, retry_after,
                           role_.config.retry_scale);
    }
    delivery.attempts.push_back(attempt);
    if (delivery.attempts.size() > 20) delivery.attempts.erase(delivery.attempts.begin());
    delivery.state = ok ? "succeeded" : next ? "pending" : "failed";
    std::string outcome = ok ? "succeeded" : next ? "retrying" : "failed";
    deliveries_
        .WithLabels({"channel", std::string(ChannelName(delivery.channel))}, {"outcome", outcome})
        .Inc();
    auto written =
        role_.notifications.Update(notice_kind::kDelivery, record.id, [&](Record& r) -> Status {
          r.body = nlohmann::json(delivery).dump();
          r.due_at = next.value_or(0);
          return {};
        });
    if (!written) {
      // The lease brings it back, and it is sent again: at least once.
      spdlog::warn("notifier: cannot record the attempt of {}: {}", record.id,
                   written.error().message);
      return;
    }
    if (ok) {
      spdlog::debug("notifier: delivered {} ({}) to {}", delivery.event_id, delivery.event_type,
                    delivery.target);
    } else {
      spdlog::info("notifier: delivery of {} ({}) to {} {}: {}", delivery.event_id,
                   delivery.event_type, delivery.target, next ? "will be retried" : "failed",
                   attempt.error);
    }
    if (to_endpoint) UpdateEndpointHealth(delivery.target, ok, gone, now);
  }

  // 410 Gone disables an endpoint at once; failing every delivery for 5 days does too.
  void UpdateEndpointHealth(const std::string& endpoint_id, bool ok, bool gone, int64_t now) {
    bool disabled_now = false;
    auto updated =
        role_.notifications.Update(notice_kind::kEndpoint, endpoint_id, [&](Record& r) -> Status {
          WebhookEndpoint e = BodyOf<WebhookEndpoint>(r);
          disabled_now = false;
          if (ok) {
            if (e.failing_since == 0) return {};
            e.failing_since = 0;
          } else {
            if (e.failing_since == 0) e.failing_since = now;
            if (e.enabled && gone) {
              e.enabled = false;
              e.disabled_reason = "the receiver answered 410 Gone";
              disabled_now = true;
            } else if (e.enabled && now - e.failing_since >= kDisableAfterMs) {
              e.enabled = false;
              e.disabled_reason = "every delivery failed for 5 days";
              disabled_now = true;
            }
          }
          r.body = nlohmann::json(e).dump();
          return {};
        });
    if (!updated && updated.error().code != ErrorCode::kNotFound) {
      spdlog::warn("notifier: cannot update webhook {}: {}", endpoint_id, updated.error().message);
    }
    if (updated && disabled_now) {
      WebhookEndpoint e = BodyOf<WebhookEndpoint>(*updated);
      spdlog::warn("notifier: webhook {} of user {} disabled: {}", endpoint_id, updated->owner_id,
                   e.disabled_reason);
      TellOwnerOfDisabledEndpoint(updated->owner_id, endpoint_id, e, now);
    }
  }

  // Best effort, once: a mail when the owner has an address and the service a relay (the
  // endpoint's own page shows the reason in any case).
  void TellOwnerOfDisabledEndpoint(const std::string& owner, const std::string& endpoint_id,
                                   const WebhookEndpoint& e, int64_t now) {
    if (!role_.mailer) return;
    auto user = role_.metadata.GetUser(owner);
    if (!user || user->email.empty()) return;
    notify::MailMessage mail{
        .from = role_.mailer->config().from,
        .to = user->email,
        .subject = "A webhook of your vmp3 account was disabled",
        .text_body = fmt::format(
            "Hello {},\r\n\r\nvmp3 stopped sending events to your webhook {} ({}): {}.\r\n\r\n"
            "Fix the receiver, then enable it again with PATCH {}/v1/webhooks/{} "
            "{{\"enabled\": true}}; its deliveries are listed at {}/v1/webhooks/{}/deliveries.\r\n",
            user->username, endpoint_id, e.url, e.disabled_reason, PublicUrl(), endpoint_id,
            PublicUrl(), endpoint_id)};
    auto rendered = notify::RenderMail(mail, now, "");
    Status sent = rendered ? role_.mailer->Send(user->email, *rendered)
                           : Status(tl::unexpected(rendered.error()));
    if (!sent)
      spdlog::warn("notifier: cannot tell user {} about webhook {}: {}", owner, endpoint_id,
                   sent.error().message);
  }

  const NotifierRole& role_;
  metrics::CounterFamily& deliveries_;
  metrics::HistogramFamily& latency_;
  metrics::Gauge& lag_;
  metrics::CounterFamily& errors_;
  std::mutex slots_mu_;
  std::map<std::string, int> in_flight_;  // per endpoint (or URL)
  std::mutex wake_mu_;
  std::condition_variable_any wake_;
  std::jthread fanout_;
  std::vector<std::jthread> senders_;
};

}  // namespace

std::unique_ptr<Worker> MakeNotifier(const NotifierRole& role) {
  return std::make_unique<Notifier>(role);
}

}  // namespace vmp3::roles

namespace vmp3::roles {

void NotifierConfig::AddOptions(OptionList& options) {
  options.push_back({"--public-url", "VMP3_PUBLIC_URL",
                     "The address users reach the service at (links in webhooks and mails)",
                     &public_url});
  options.push_back({"--notifier-threads", "VMP3_NOTIFIER_THREADS",
                     "Deliveries sent at once by this process", &sender_threads});
  options.push_back({"--webhook-timeout", "VMP3_WEBHOOK_TIMEOUT",
                     "Seconds a webhook receiver has to answer", &webhook_timeout_seconds});
  options.push_back({"--max-webhooks", "VMP3_MAX_WEBHOOKS", "Webhook endpoints per user",
                     &max_webhooks_per_user});
  options.push_back({"--vapid-key", "VMP3_VAPID_KEY",
                     "Web Push VAPID private key (PEM; created if missing; default "
                     "DATA_DIR/vapid-p256.pem): the same for every notifier replica",
                     &vapid_key});
  options.push_back({"--vapid-subject", "VMP3_VAPID_SUBJECT",
                     "How push services reach you: mailto:you@example.org or an https URL "
                     "(default: --public-url when https)",
                     &vapid_subject});
  options.push_back({"--smtp-url", "VMP3_SMTP_URL",
                     "Mail relay for e-mail notifications: smtp://host:587 (STARTTLS) or "
                     "smtps://host:465; none: no e-mail",
                     &smtp_url});
  options.push_back({"--smtp-user", "VMP3_SMTP_USER", "Login at the mail relay", &smtp_user});
  options.push_back({"--smtp-password", "VMP3_SMTP_PASSWORD",
                     "Password at the mail relay (prefer the variable to the flag)",
                     &smtp_password});
  options.push_back({"--smtp-from", "VMP3_SMTP_FROM", "Sender of notification mails", &smtp_from});
  options.push_back({"--smtp-ca-file", "VMP3_SMTP_CA_FILE",
                     "PEM CA certificates to trust for the relay (e.g. an internal one's)",
                     &smtp_ca_file});
  options.push_back({"--smtp-allow-plaintext", "VMP3_SMTP_ALLOW_PLAINTEXT",
                     "Send mail even when the relay offers no STARTTLS (default: refuse)",
                     &smtp_allow_plaintext});
  options.push_back({"--webhook-retry-scale", "VMP3_WEBHOOK_RETRY_SCALE",
                     "Testing only: multiplies the retry schedule's delays", &retry_scale, true});
}

Status NotifierConfig::Validate() const {
  if (!public_url.starts_with("http://") && !public_url.starts_with("https://"))
    return MakeError(ErrorCode::kInvalidArgument, "--public-url must be an http(s) URL");
  if (sender_threads < 1 || sender_threads > 256)
    return MakeError(ErrorCode::kInvalidArgument, "--notifier-threads must be 1..256");
  if (per_endpoint_limit < 1)
    return MakeError(ErrorCode::kInvalidArgument, "the per-endpoint limit must be at least 1");
  if (!(webhook_timeout_seconds >= 1 && webhook_timeout_seconds <= 60))
    return MakeError(ErrorCode::kInvalidArgument, "--webhook-timeout must be 1..60 s");
  if (max_webhooks_per_user < 1 || max_webhooks_per_user > 1000)
    return MakeError(ErrorCode::kInvalidArgument, "--max-webhooks must be 1..1000");
  if (!vapid_subject.empty() && !vapid_subject.starts_with("mailto:") &&
      !vapid_subject.starts_with("https://"))
    return MakeError(ErrorCode::kInvalidArgument,
                     "--vapid-subject must be a mailto: or https:// URL");
  if (auto smtp = Smtp()) {
    if (Status s = smtp->Validate(); !s)
      return MakeError(ErrorCode::kInvalidArgument, fmt::format("--smtp-*: {}", s.error().message));
  }
  if (!(retry_scale > 0 && retry_scale <= 1))
    return MakeError(ErrorCode::kInvalidArgument, "--webhook-retry-scale must be in (0, 1]");
  return {};
}

std::string NotifierConfig::VapidSubject() const {
  if (!vapid_subject.empty()) return vapid_subject;
  if (public_url.starts_with("https://")) return public_url;
  return "mailto:postmaster@localhost";
}

std::optional<notify::SmtpConfig> NotifierConfig::Smtp() const {
  if (smtp_url.empty()) return std::nullopt;
  notify::SmtpConfig smtp;
  smtp.url = smtp_url;
  smtp.user = smtp_user;
  smtp.password = smtp_password;
  smtp.from = smtp_from;
  smtp.ca_file = smtp_ca_file.string();
  smtp.require_tls = !smtp_allow_plaintext;
  return smtp;
}

}  // namespace vmp3::roles
