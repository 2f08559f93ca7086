// The notifier role's API: webhook endpoints, their deliveries, the account's signing secret and
// notification settings.
#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/ids.hpp"
#include "common/text.hpp"
#include "notify/egress_policy.hpp"
#include "notify/standard_webhooks.hpp"
#include "roles/notifier_records.hpp"
#include "roles/notifier_role.hpp"
#include "roles/route_binding.hpp"

namespace vmp3::roles {
namespace {

using http::Exchange;
using http::Response;

constexpr size_t kMaxUrlLength = 2048;
constexpr size_t kMaxDescriptionLength = 256;

Result<nlohmann::json> ParseObject(std::string_view body) {
  try {
    auto j = nlohmann::json::parse(body);
    if (j.is_object()) return j;
  } catch (const nlohmann::json::exception&) {
  }
  return MakeError(ErrorCode::kInvalidArgument, "the request body must be a JSON object");
}

Result<int> LimitParam(const Exchange& ex) {
  int limit = 20;
  if (auto text = ex.request().QueryParam("limit")) {
    auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), limit);
    if (ec != std::errc() || ptr != text->data() + text->size() || limit < 1 || limit > 100)
      return MakeError(ErrorCode::kInvalidArgument, "limit must be 1..100");
  }
  return limit;
}

class NotifierRoutes {
 public:
  explicit NotifierRoutes(const NotifierRole& role) : role_(role) {}

  // POST /v1/webhooks {"url", "events"?, "description"?}
  http::Awaitable<Response> Create(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto body = co_await ex.ReadSmallBody();
    if (!body) co_return Response::Problem(body.error());
    auto request = ParseObject(*body);
    if (!request) co_return Response::Problem(request.error());
    WebhookEndpoint endpoint;
    if (Status s = Apply(*request, endpoint, /*creating=*/true); !s)
      co_return Response::Problem(s.error());
    endpoint.secrets = {{notify::GenerateWebhookSecret(), 0}};
    Record record{.id = RandomId(),
                  .owner_id = claims->subject,
                  .created_at = role_.now_ms(),
                  .body = nlohmann::json(endpoint).dump()};
    auto created = co_await ex.Blocking<Status>([&]() -> Status {
      auto existing =
          role_.notifications.List(notice_kind::kEndpoint, ListBy::kOwner, claims->subject,
                                   role_.config.max_webhooks_per_user, "");
      if (!existing) return tl::unexpected(existing.error());
      if (!existing->next_cursor.empty() ||
          existing->records.size() >= static_cast<size_t>(role_.config.max_webhooks_per_user)) {
        return MakeError(ErrorCode::kConflict,
                         fmt::format("you have {} webhooks, the most allowed; delete one first",
                                     role_.config.max_webhooks_per_user));
      }
      return role_.notifications.Insert(notice_kind::kEndpoint, record);
    });
    if (!created) co_return Response::Problem(created.error());
    nlohmann::json out = EndpointJson(record, endpoint);
    out["secret"] = endpoint.secrets.front().secret;  // shown here only
    Response r = Response::Json(201, out.dump());
    r.Header("Location", "/v1/webhooks/" + record.id);
    co_return r;
  }

  http::Awaitable<Response> List(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto page = co_await ex.Blocking<Result<RecordPage>>([&] {
      return role_.notifications.List(notice_kind::kEndpoint, ListBy::kOwner, claims->subject, 100,
                                      "");
    });
    if (!page) co_return Response::Problem(page.error());
    nlohmann::json list = nlohmann::json::array();
    for (const Record& r : page->records)
      list.push_back(EndpointJson(r, BodyOf<WebhookEndpoint>(r)));
    co_return Response::Json(200, nlohmann::json{{"webhooks", list}}.dump());
  }

  http::Awaitable<Response> Get(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto record = co_await ex.Blocking<Result<Record>>([&] { return Owned(ex, *claims); });
    if (!record) co_return Response::Problem(record.error());
    co_return Response::Json(200, EndpointJson(*record, BodyOf<WebhookEndpoint>(*record)).dump());
  }

  // PATCH /v1/webhooks/{id}: any of url, events, description, enabled.
  http::Awaitable<Response> Patch(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto body = co_await ex.ReadSmallBody();
    if (!body) co_return Response::Problem(body.error());
    auto request = ParseObject(*body);
    if (!request) co_return Response::Problem(request.error());
    // Checked once up front (the URL check may resolve nothing, but it is not free).
    WebhookEndpoint probe;
    if (Status s = Apply(*request, probe, /*creating=*/false); !s)
      co_return Response::Problem(s.error());
    auto updated = co_await ex.Blocking<Result<Record>>([&]() -> Result<Record> {
      if (auto owned = Owned(ex, *claims); !owned) return owned;
      return role_.notifications.Update(notice_kind::kEndpoint, ex.Param("id"),
                                        [&](Record& r) -> Status {
                                          WebhookEndpoint e = BodyOf<WebhookEndpoint>(r);
                                          bool was_enabled = e.enabled;
                                          if (auto s = Apply(*request, e, false); !s) return s;
                                          if (e.enabled && !was_enabled) {
                                            e.disabled_reason.clear();
                                            e.failing_since = 0;
                                          }
                                          r.body = nlohmann::json(e).dump();
                                          return {};
                                        });
    });
    if (!updated) co_return Response::Problem(updated.error());
    co_return Response::Json(200, EndpointJson(*updated, BodyOf<WebhookEndpoint>(*updated)).dump());
  }

  http::Awaitable<Response> Delete(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto deleted = co_await ex.Blocking<Status>([&]() -> Status {
      if (auto owned = Owned(ex, *claims); !owned) return tl::unexpected(owned.error());
      // Its deliveries go with it (a page at a time; those left are skipped when due).
      auto page = role_.notifications.List(notice_kind::kDelivery, ListBy::kParent, ex.Param("id"),
                                           100, "");
      if (page) {
        for (const Record& d : page->records) {
          if (Status s = role_.notifications.Remove(notice_kind::kDelivery, d.id);
              !s && s.error().code != ErrorCode::kNotFound)
            return s;
        }
      }
      return role_.notifications.Remove(notice_kind::kEndpoint, ex.Param("id"));
    });
    if (!deleted) co_return Response::Problem(deleted.error());
    co_return Response::NoContent();
  }

  // POST /v1/webhooks/{id}/rotate-secret: a new secret; the old one keeps signing (both
  // signatures are sent) for the grace period, so a receiver can switch without a gap.
  http::Awaitable<Response> RotateSecret(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    const std::string secret = notify::GenerateWebhookSecret();
    const int64_t now = role_.now_ms();
    const int64_t grace_until = now + role_.config.secret_grace_seconds * 1000;
    auto updated = co_await ex.Blocking<Result<Record>>([&]() -> Result<Record> {
      if (auto owned = Owned(ex, *claims); !owned) return owned;
      return role_.notifications.Update(
          notice_kind::kEndpoint, ex.Param("id"), [&](Record& r) -> Status {
            WebhookEndpoint e = BodyOf<WebhookEndpoint>(r);
            e.secrets = RotatedSecrets(e.secrets, secret, grace_until);
            r.body = nlohmann::json(e).dump();
            return {};
          });
    });
    if (!updated) co_return Response::Problem(updated.error());
    co_return Response::Json(
        200,
        nlohmann::json{{"secret", secret}, {"previous_secret_expires_at", grace_until / 1000.0}}
            .dump());
  }

  // POST /v1/webhooks/{id}/test: a webhook.test event to this endpoint, enabled or not.
  http::Awaitable<Response> Test(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    const int64_t now = role_.now_ms();
    auto created = co_await ex.Blocking<Result<Record>>([&]() -> Result<Record> {
      auto owned = Owned(ex, *claims);
      if (!owned) return owned;
      WebhookEndpoint e = BodyOf<WebhookEndpoint>(*owned);
      nlohmann::json payload{
          {"type", "webhook.test"},
          {"timestamp", Rfc3339(now)},
          {"data", {{"webhook_id", owned->id}, {"message", "a test event from vmp3"}}}};
      Delivery delivery{.event_id = "evt_" + RandomId(),
                        .event_type = "webhook.test",
                        .event_at = now,
                        .channel = Channel::kWebhook,
                        .target = owned->id,
                        .url = e.url,
                        .payload = payload.dump()};
      Record record{.id = DeliveryId(delivery.event_id, delivery.channel, delivery.target),
                    .owner_id = claims->subject,
                    .parent = owned->id,
                    .created_at = now,
                    .due_at = now,
                    .body = nlohmann::json(delivery).dump()};
      if (Status s = role_.notifications.Insert(notice_kind::kDelivery, record); !s)
        return tl::unexpected(s.error());
      return record;
    });
    if (!created) co_return Response::Problem(created.error());
    co_return Response::Json(202, DeliveryJson(*created, Delivery{}).dump());
  }

  http::Awaitable<Response> Deliveries(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto limit = LimitParam(ex);
    if (!limit) co_return Response::Problem(limit.error());
    std::string cursor(ex.request().QueryParam("cursor").value_or(""));
    auto page = co_await ex.Blocking<Result<RecordPage>>([&]() -> Result<RecordPage> {
      if (auto owned = Owned(ex, *claims); !owned) return tl::unexpected(owned.error());
      return role_.notifications.List(notice_kind::kDelivery, ListBy::kParent, ex.Param("id"),
                                      *limit, cursor);
    });
    if (!page) co_return Response::Problem(page.error());
    nlohmann::json list = nlohmann::json::array();
    for (const Record& r : page->records) list.push_back(DeliveryJson(r, BodyOf<Delivery>(r)));
    nlohmann::json out{{"deliveries", list}};
    out["next_cursor"] =
        page->next_cursor.empty() ? nlohmann::json() : nlohmann::json(page->next_cursor);
    co_return Response::Json(200, out.dump());
  }

  // POST …/deliveries/{delivery_id}/redeliver: sent again as soon as possible, same webhook-id.
  http::Awaitable<Response> Redeliver(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    const int64_t now = role_.now_ms();
    auto updated = co_await ex.Blocking<Result<Record>>([&]() -> Result<Record> {
      if (auto owned = Owned(ex, *claims); !owned) return owned;
      auto delivery = role_.notifications.Get(notice_kind::kDelivery, ex.Param("delivery_id"));
      if (!delivery || delivery->parent != ex.Param("id") || delivery->owner_id != claims->subject)
        return MakeError(ErrorCode::kNotFound, "no such delivery of this webhook");
      return role_.notifications.Update(notice_kind::kDelivery, delivery->id,
                                        [&](Record& r) -> Status {
                                          Delivery d = BodyOf<Delivery>(r);
                                          d.state = "pending";
                                          r.body = nlohmann::json(d).dump();
                                          r.due_at = now;
                                          return {};
                                        });
    });
    if (!updated) co_return Response::Problem(updated.error());
    co_return Response::Json(202, DeliveryJson(*updated, BodyOf<Delivery>(*updated)).dump());
  }

  // GET /v1/account/signing-secret: the secret that signs deliveries to a job's own
  // webhook_url. Shown once per rotation: created and shown on the first call, then only
  // whether one exists; POST rotates it (the old one signs on for the grace period) and shows
  // the new one.
  http::Awaitable<Response> SigningSecret(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    co_return co_await ShowOrRotate(ex, claims->subject, /*rotate=*/false);
  }

  http::Awaitable<Response> RotateSigningSecret(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    co_return co_await ShowOrRotate(ex, claims->subject, /*rotate=*/true);
  }

  http::Awaitable<Response> GetNotifications(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto settings = co_await ex.Blocking<Result<NotificationSettings>>(
        [&] { return Settings(claims->subject); });
    if (!settings) co_return Response::Problem(settings.error());
    co_return Response::Json(200, SettingsJson(*settings).dump());
  }

  // PUT /v1/account/notifications {"email": bool, "events": [...]}
  http::Awaitable<Response> PutNotifications(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto body = co_await ex.ReadSmallBody();
    if (!body) co_return Response::Problem(body.error());
    auto request = ParseObject(*body);
    if (!request) co_return Response::Problem(request.error());
    std::optional<bool> email;
    std::optional<std::vector<std::string>> events, push_events;
    for (const auto& [name, value] : request->items()) {
      if (name == "email") {
        if (!value.is_boolean())
          co_return Response::Problem(
              Error(ErrorCode::kInvalidArgument, "email must be true or false"));
        email = value.get<bool>();
      } else if (name == "events") {
        auto parsed = ParseEventTypes(value);
        if (!parsed) co_return Response::Problem(parsed.error());
        events = *parsed;
      } else if (name == "push_events") {
        auto parsed = ParseEventTypes(value);
        if (!parsed) co_return Response::Problem(parsed.error());
        push_events = *parsed;
      } else {
        co_return Response::Problem(
            Error(ErrorCode::kInvalidArgument,
                  fmt::format("unknown field '{}': the settings are email, events and push_events",
                              name)));
      }
    }
    auto saved =
        co_await ex.Blocking<Result<NotificationSettings>>([&]() -> Result<NotificationSettings> {
          if (email.value_or(false)) {
            if (!role_.mailer)
              return MakeError(ErrorCode::kConflict,
                               "this service sends no e-mail (its operator set no mail relay)");
            auto user = role_.metadata.GetUser(claims->subject);
            if (!user) return tl::unexpected(user.error());
            if (user->email.empty())
              return MakeError(ErrorCode::kConflict,
                               "your account has no e-mail address to send to");
          }
          return UpdateSettings(claims->subject, [&](NotificationSettings& s) {
            if (email) s.email = *email;
            if (events) s.email_events = *events;
            if (push_events) s.push_events = *push_events;
          });
        });
    if (!saved) co_return Response::Problem(saved.error());
    co_return Response::Json(200, SettingsJson(*saved).dump());
  }

  // GET /v1/push/vapid-public-key: what the page passes to pushManager.subscribe().
  http::Awaitable<Response> VapidPublicKey(Exchange&) {
    co_return Response::Json(
        200, nlohmann::json{{"public_key", role_.vapid.PublicKeyBase64Url()}}.dump());
  }

  // POST /v1/push/subscriptions: the browser's PushSubscription JSON. The same browser
  // subscribing again (same endpoint) updates its keys instead of adding a second one.
  http::Awaitable<Response> Subscribe(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto body = co_await ex.ReadSmallBody();
    if (!body) co_return Response::Problem(body.error());
    auto subscription = notify::ParsePushSubscription(*body);
    if (!subscription) co_return Response::Problem(subscription.error());
    if (Status s = role_.egress.CheckUrl(subscription->endpoint); !s)
      co_return Response::Problem(s.error());
    const int64_t now = role_.now_ms();
    Record record{.id = DeliveryId(claims->subject, Channel::kPush, subscription->endpoint),
                  .owner_id = claims->subject,
                  .created_at = now,
                  .body = nlohmann::json{{"endpoint", subscription->endpoint},
                                         {"p256dh", subscription->p256dh},
                                         {"auth", subscription->auth}}
                              .dump()};
    bool created = true;
    auto saved = co_await ex.Blocking<Status>([&]() -> Status {
      Status inserted = role_.notifications.Insert(notice_kind::kSubscription, record);
      if (inserted || inserted.error().code != ErrorCode::kAlreadyExists) return inserted;
      created = false;
      auto updated = role_.notifications.Update(notice_kind::kSubscription, record.id,
                                                [&](Record& r) -> Status {
                                                  r.body = record.body;
                                                  return {};
                                                });
      if (!updated) return tl::unexpected(updated.error());
      return {};
    });
    if (!saved) co_return Response::Problem(saved.error());
    co_return Response::Json(
        created ? 201 : 200,
        nlohmann::json{
            {"id", record.id}, {"endpoint", subscription->endpoint}, {"created_at", now / 1000.0}}
            .dump());
  }

  http::Awaitable<Response> Unsubscribe(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto removed = co_await ex.Blocking<Status>([&]() -> Status {
      auto record = role_.notifications.Get(notice_kind::kSubscription, ex.Param("id"));
      if (!record || record->owner_id != claims->subject)
        return MakeError(ErrorCode::kNotFound,
                         fmt::format("push subscription {} does not exist", ex.Param("id")));
      return role_.notifications.Remove(notice_kind::kSubscription, record->id);
    });
    if (!removed) co_return Response::Problem(removed.error());
    co_return Response::NoContent();
  }

 private:
  nlohmann::json SettingsJson(const NotificationSettings& s) const {
    return {{"email", s.email}, {"events", s.email_events}, {"push_events", s.push_events}};
  }

  // The caller's endpoint {id}; kNotFound for a missing one or someone else's (never 403).
  Result<Record> Owned(const Exchange& ex, const auth::Claims& claims) {
    auto record = role_.notifications.Get(notice_kind::kEndpoint, ex.Param("id"));
    if (!record || record->owner_id != claims.subject)
      return MakeError(ErrorCode::kNotFound,
                       fmt::format("webhook {} does not exist", ex.Param("id")));
    return record;
  }

  // Sets the fields of `request` on `e`, checking each: unknown fields are an error, and a URL
  // must pass the egress policy (422 with the reason).
  Status Apply(const nlohmann::json& request, WebhookEndpoint& e, bool creating) const {
    if (creating && !request.contains("url"))
      return MakeError(ErrorCode::kInvalidArgument, "a webhook needs a url");
    for (const auto& [name, value] : request.items()) {
      if (name == "url") {
        if (!value.is_string() || value.get<std::string>().size() > kMaxUrlLength)
          return MakeError(
              ErrorCode::kInvalidArgument,
              fmt::format("url must be a string of at most {} characters", kMaxUrlLength));
        if (Status s = role_.egress.CheckUrl(value.get<std::string>()); !s) return s;
        e.url = value.get<std::string>();
      } else if (name == "events") {
        auto events = ParseEventTypes(value);
        if (!events) return tl::unexpected(events.error());
        e.events = *events;
      } else if (name == "description") {
        if (!value.is_string() || value.get<std::string>().size() > kMaxDescriptionLength)
          return MakeError(ErrorCode::kInvalidArgument,
                           fmt::format("description must be a string of at most {} bytes",
                                       kMaxDescriptionLength));
        e.description = value.get<std::string>();
      } else if (name == "enabled" && !creating) {
        if (!value.is_boolean())
          return MakeError(ErrorCode::kInvalidArgument, "enabled must be true or false");
        e.enabled = value.get<bool>();
      } else {
        return MakeError(ErrorCode::kInvalidArgument,
                         fmt::format("unknown field '{}': a webhook has url, events, "
                                     "description{}",
                                     name, creating ? "" : " and enabled"));
      }
    }
    return {};
  }

  Result<NotificationSettings> Settings(const std::string& user) {
    auto record = role_.notifications.Get(notice_kind::kSettings, user);
    if (!record && record.error().code == ErrorCode::kNotFound) return NotificationSettings{};
    if (!record) return tl::unexpected(record.error());
    return BodyOf<NotificationSettings>(*record);
  }

  // Read-modify-write of the user's settings, created when missing.
  Result<NotificationSettings> UpdateSettings(
      const std::string& user, const std::function<void(NotificationSettings&)>& change) {
    NotificationSettings result;
    auto mutate = [&](Record& r) -> Status {
      NotificationSettings s = BodyOf<NotificationSettings>(r);
      change(s);
      result = s;
      r.body = nlohmann::json(s).dump();
      return {};
    };
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto updated = role_.notifications.Update(notice_kind::kSettings, user, mutate);
      if (updated) return result;
      if (updated.error().code != ErrorCode::kNotFound) return tl::unexpected(updated.error());
      Record fresh{.id = user, .owner_id = user, .created_at = role_.now_ms(), .body = "{}"};
      Status inserted = role_.notifications.Insert(notice_kind::kSettings, fresh);
      if (!inserted && inserted.error().code != ErrorCode::kAlreadyExists)
        return tl::unexpected(inserted.error());
    }
    return MakeError(ErrorCode::kUnavailable, "the settings changed meanwhile; try again");
  }

  http::Awaitable<Response> ShowOrRotate(Exchange& ex, const std::string& user, bool rotate) {
    const int64_t now = role_.now_ms();
    const int64_t grace_until = now + role_.config.secret_grace_seconds * 1000;
    std::optional<std::string> shown;
    auto saved = co_await ex.Blocking<Result<NotificationSettings>>([&] {
      return UpdateSettings(user, [&](NotificationSettings& s) {
        shown.reset();
        bool has_current = std::any_of(s.signing_secrets.begin(), s.signing_secrets.end(),
                                       [](const WebhookSecret& w) { return w.expires_at == 0; });
        if (rotate || !has_current) {
          std::string secret = notify::GenerateWebhookSecret();
          s.signing_secrets = RotatedSecrets(s.signing_secrets, secret, grace_until);
          shown = secret;
        }
      });
    });
    if (!saved) co_return Response::Problem(saved.error());
    nlohmann::json out;
    out["secret"] = shown ? nlohmann::json(*shown) : nlohmann::json();
    if (!shown) {
      out["detail"] =
          "the signing secret was shown when it was created; POST to this URL rotates it and "
          "shows the new one";
    }
    co_return Response::Json(200, out.dump());
  }

  const NotifierRole& role_;
};

}  // namespace

void AddNotifierRoutes(http::Router& router, const NotifierRole* role) {
  auto routes = role ? std::make_shared<NotifierRoutes>(*role) : nullptr;
  auto add = [&](const char* method, const char* path, auto member, const char* summary) {
    router.Add({method, path, Bind(routes, member, "notifier"), 64 * 1024, summary});
  };
  add("POST", "/v1/webhooks", &NotifierRoutes::Create,
      "Register a webhook endpoint {url, events}; the answer shows its signing secret, once");
  add("GET", "/v1/webhooks", &NotifierRoutes::List, "The caller's webhook endpoints");
  add("GET", "/v1/webhooks/{id}", &NotifierRoutes::Get, "One webhook endpoint");
  add("PATCH", "/v1/webhooks/{id}", &NotifierRoutes::Patch,
      "Change a webhook's url, events, description or enabled");
  add("DELETE", "/v1/webhooks/{id}", &NotifierRoutes::Delete,
      "Delete a webhook endpoint and its deliveries");
  add("POST", "/v1/webhooks/{id}/rotate-secret", &NotifierRoutes::RotateSecret,
      "A new signing secret; the old one keeps signing for a grace period");
  add("POST", "/v1/webhooks/{id}/test", &NotifierRoutes::Test, "Send a webhook.test event");
  add("GET", "/v1/webhooks/{id}/deliveries", &NotifierRoutes::Deliveries,
      "A webhook's deliveries, newest first, with every attempt (limit, cursor)");
  add("POST", "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", &NotifierRoutes::Redeliver,
      "Send a delivery again, with the same webhook-id");
  add("GET", "/v1/account/signing-secret", &NotifierRoutes::SigningSecret,
      "The secret that signs a job's own webhook_url deliveries (shown once per rotation)");
  add("POST", "/v1/account/signing-secret", &NotifierRoutes::RotateSigningSecret,
      "Rotate the account's signing secret and show the new one");
  add("GET", "/v1/push/vapid-public-key", &NotifierRoutes::VapidPublicKey,
      "The VAPID public key browsers subscribe with (applicationServerKey)");
  add("POST", "/v1/push/subscriptions", &NotifierRoutes::Subscribe,
      "Register a browser's PushSubscription for job notifications");
  add("DELETE", "/v1/push/subscriptions/{id}", &NotifierRoutes::Unsubscribe,
      "Stop push notifications to one browser");
  add("GET", "/v1/account/notifications", &NotifierRoutes::GetNotifications,
      "The caller's notification settings (e-mail)");
  add("PUT", "/v1/account/notifications", &NotifierRoutes::PutNotifications,
      "Choose e-mail notifications {email, events}");
}

}  // namespace vmp3::roles
