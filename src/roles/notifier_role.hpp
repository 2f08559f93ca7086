// The notifier role: tells users when their jobs change, through signed webhooks (Standard
// Webhooks), e-mail and browser push, at least once, surviving restarts.
//   POST/GET /v1/webhooks, GET/PATCH/DELETE /v1/webhooks/{id},
//   POST /v1/webhooks/{id}/rotate-secret, POST /v1/webhooks/{id}/test,
//   GET /v1/webhooks/{id}/deliveries, POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver,
//   GET/POST /v1/account/signing-secret, GET/PUT /v1/account/notifications,
//   GET /v1/push/vapid-public-key, POST /v1/push/subscriptions, DELETE /v1/push/subscriptions/{id}
//
// How it works (docs/architecture.md, "Notifications"): the metadata store logs every job status
// change in the same transaction as the change (MetadataStore::ReadEvents, the outbox). The
// fan-out worker reads that log from its cursor, turns each event into one delivery record per
// destination (webhook endpoint, the job's one-off webhook_url, e-mail, each push subscription),
// with an id derived from the event and destination so that reading an event twice creates
// nothing twice, and only then moves its cursor. Sender threads claim due deliveries with a lease
// (NotificationStore::ClaimDue), send them, and record the attempt and the next one. Everything is
// in the metadata backend: a notifier killed at any point resends, after its restart, what was
// not recorded as delivered, with the same webhook-id.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/options.hpp"
#include "http/router.hpp"
#include "metadata/metadata_store.hpp"
#include "metadata/notification_store.hpp"
#include "metrics/registry.hpp"
#include "notify/egress_policy.hpp"
#include "notify/smtp_mailer.hpp"
#include "notify/web_push.hpp"
#include "roles/api.hpp"
#include "roles/worker.hpp"

namespace vmp3::roles {

struct NotifierConfig {
  // The address users reach the service at: links in payloads and mails are absolute.
  std::string public_url = "http://127.0.0.1:8080";
  int sender_threads = 4;      // deliveries in flight at once per process
  int per_endpoint_limit = 2;  // of which to one endpoint, so a slow one cannot take them all
  double webhook_timeout_seconds = 10;
  int max_webhooks_per_user = 20;
  // Testing: seconds between the retry schedule's steps are multiplied by this.
  double retry_scale = 1;
  // The VAPID key pair browsers' push subscriptions are tied to (PEM, created on first start):
  // every notifier replica must use the same one (a shared file or a Kubernetes Secret).
  std::filesystem::path vapid_key;  // empty: DATA_DIR/vapid-p256.pem
  // VAPID "sub": how a push service reaches the operator (mailto: or https:); empty: derived
  // from --public-url when it is https, else mailto:postmaster@localhost.
  std::string vapid_subject;
  // E-mail through an SMTP relay (notify/smtp_mailer.hpp); none without smtp_url.
  std::string smtp_url;  // smtp://host:587 (STARTTLS) or smtps://host:465
  std::string smtp_user;
  std::string smtp_password;  // from VMP3_SMTP_PASSWORD rather than the command line
  std::string smtp_from = "vmp3 <noreply@localhost>";
  std::filesystem::path smtp_ca_file;
  bool smtp_allow_plaintext = false;  // send even when the relay offers no STARTTLS
  // Where rotated secrets keep signing, so receivers can switch without losing deliveries.
  int64_t secret_grace_seconds = 24 * 3600;

  void AddOptions(OptionList& options);
  Status Validate() const;
  std::string VapidSubject() const;
  // The mailer's settings; nullopt without smtp_url.
  std::optional<notify::SmtpConfig> Smtp() const;
};

struct NotifierRole {
  const NotifierConfig& config;
  const notify::EgressPolicy& egress;  // every URL it calls, checked again at connect time
  const notify::VapidKey& vapid;       // signs Web Push requests
  const notify::SmtpMailer* mailer;    // null: no e-mail (no --smtp-url)
  const Api& api;
  MetadataStore& metadata;
  NotificationStore& notifications;
  metrics::Registry& metrics;
  std::function<int64_t()> now_ms;
};

void AddNotifierRoutes(http::Router& router, const NotifierRole* role);
// The fan-out and the senders.
std::unique_ptr<Worker> MakeNotifier(const NotifierRole& role);

}  // namespace vmp3::roles
