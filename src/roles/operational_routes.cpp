// Health, readiness, metrics and the API description: served by every HTTP process.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "common/markup.hpp"
#include "common/text.hpp"
#include "roles/operational.hpp"

namespace vmp3::roles {
namespace {

using http::Exchange;
using http::Response;

// The OpenAPI 3.1 document of the router's routes: the whole API, whichever roles this process
// runs (service.cpp declares the others' routes too).
nlohmann::json OpenApi(const http::Router& router) {
  nlohmann::json paths = nlohmann::json::object();
  for (const http::Route& route : router.routes()) {
    const std::string method = AsciiLowerCopy(route.method);
    nlohmann::json op{
        {"summary", route.summary},
        {"responses",
         {{"default", {{"description", "See docs/api.md; errors are application/problem+json"}}}}}};
    nlohmann::json params = nlohmann::json::array();
    for (size_t open = route.pattern.find('{'); open != std::string::npos;
         open = route.pattern.find('{', open + 1)) {
      size_t close = route.pattern.find('}', open);
      params.push_back({{"name", route.pattern.substr(open + 1, close - open - 1)},
                        {"in", "path"},
                        {"required", true},
                        {"schema", {{"type", "string"}}}});
    }
    if (!params.empty()) op["parameters"] = params;
    bool is_public =
        !(route.pattern.starts_with("/v1/") && !route.pattern.starts_with("/v1/auth/")) &&
        route.pattern != "/upload" && route.pattern != "/download";
    if (!is_public) op["security"] = nlohmann::json::array({{{"bearer", nlohmann::json::array()}}});
    if (route.pattern == "/v1/auth/login" || route.pattern == "/login")
      op["security"] = nlohmann::json::array({{{"basic", nlohmann::json::array()}}});
    paths[route.pattern][method] = op;
  }
  return {
      {"openapi", "3.1.0"},
      {"info",
       {{"title", "vmp3"}, {"version", "1"}, {"description", "Turns uploaded videos into MP3s."}}},
      {"components",
       {{"securitySchemes",
         {{"bearer", {{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}},
          {"basic", {{"type", "http"}, {"scheme", "basic"}}}}}}},
      {"paths", paths}};
}

std::string DocsPage(const http::Router& router) {
  std::string rows;
  for (const http::Route& route : router.routes()) {
    rows += fmt::format("<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>\n",
                        route.method, EscapeMarkup(route.pattern), EscapeMarkup(route.summary));
  }
  return fmt::format(R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vmp3 API</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ccc;padding:.4rem;text-align:left;vertical-align:top}}
code{{background:#f3f3f3;padding:0 .2rem}}</style></head>
<body><h1>vmp3 API, version 1</h1>
<p>Errors are <code>application/problem+json</code>. Job routes need <code>Authorization: Bearer TOKEN</code>
from <code>POST /v1/auth/login</code> (HTTP Basic). The machine-readable description is
<a href="/openapi.json">/openapi.json</a>.</p>
<table><thead><tr><th>Method</th><th>Path</th><th>What</th></tr></thead><tbody>
{}</tbody></table>
<h2>A session with curl</h2>
<pre>curl -s -X POST localhost:8080/v1/auth/register -H 'Content-Type: application/json' \
     -d '{{"username":"ada","password":"correct horse battery"}}'
TOKEN=$(curl -s -X POST -u ada:'correct horse battery' localhost:8080/v1/auth/login | jq -r .access_token)
JOB=$(curl -s -H "Authorization: Bearer $TOKEN" -F file=@talk.mp4 localhost:8080/v1/jobs | jq -r .id)
curl -N -H "Authorization: Bearer $TOKEN" localhost:8080/v1/jobs/$JOB/events
curl -OJ -H "Authorization: Bearer $TOKEN" localhost:8080/v1/jobs/$JOB/mp3</pre>
<h2>Webhooks, e-mail, browser push</h2>
<p>Register an endpoint with <code>POST /v1/webhooks {{"url":"https://…","events":["job.done","job.failed"]}}</code>;
the answer shows its <code>secret</code> (<code>whsec_…</code>) once. Every job event (<code>job.queued</code>,
<code>job.converting</code>, <code>job.done</code>, <code>job.failed</code>, <code>job.cancelled</code>,
<code>job.expired</code>, <code>webhook.test</code>) is delivered at least once, as a
<a href="https://www.standardwebhooks.com/">Standard Webhooks</a> POST: headers <code>webhook-id</code> (the same on
every retry: act on each once), <code>webhook-timestamp</code> and <code>webhook-signature: v1,BASE64</code>, the
HMAC-SHA256 keyed with the base64-decoded secret after <code>whsec_</code> of
<code>{{webhook-id}}.{{webhook-timestamp}}.{{body}}</code>; body <code>{{"type","timestamp","data":job}}</code>. Verify it:</p>
<pre>import base64, hashlib, hmac, time
def verify(secret, headers, body: bytes, tolerance=300):
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(ts)) &gt; tolerance: raise ValueError("stale")
    mac = base64.b64encode(hmac.new(key, f"{{msg_id}}.{{ts}}.".encode() + body, hashlib.sha256).digest())
    if not any(s.startswith("v1,") and hmac.compare_digest(s[3:].encode(), mac)
               for s in headers["webhook-signature"].split(" ")):
        raise ValueError("bad signature")</pre>
<p>Answer 2xx within 10 s. 5xx, 429 (its <code>Retry-After</code> honoured), timeouts and network errors are
retried at once, then after ~5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h; <code>410 Gone</code>
disables the endpoint; redirects are not followed. <code>GET /v1/webhooks/{{id}}/deliveries</code> shows every
attempt. URLs must be public <code>https</code> (422 <code>url_refused</code> otherwise). A job may carry its own
<code>webhook_url</code> form field, signed with the account's secret (<code>GET /v1/account/signing-secret</code>).
E-mail: <code>PUT /v1/account/notifications {{"email":true}}</code>. Browser push: the web page's switch. Polling
instead: <code>GET /v1/events?after=CURSOR</code>.</p>
</body></html>
)",
                     rows);
}

}  // namespace

void AddOperationalRoutes(http::Router& router, metrics::Registry& registry,
                          const BackendHealth* health) {
  const http::Router* routes = &router;
  router.Add({"GET", "/healthz",
              [](Exchange&) -> http::Awaitable<Response> {
                co_return Response::Json(200, R"({"status":"ok"})");
              },
              0, "Liveness"});
  router.Add({"GET", "/readyz",
              [health](Exchange&) -> http::Awaitable<Response> {
                // The background checker's last answers: never waits for a backend.
                nlohmann::json checks = nlohmann::json::object();
                bool ready = true;
                if (health) {
                  for (const auto& [name, check] : health->Snapshot()) {
                    checks[name] = check.detail;
                    ready = ready && check.ok;
                  }
                }
                nlohmann::json out{{"status", ready ? "ready" : "unavailable"}, {"checks", checks}};
                co_return Response::Json(ready ? 200 : 503, out.dump());
              },
              0, "Readiness: every backend this process uses answered its last check"});
  router.Add({"GET", "/metrics",
              [&registry](Exchange& ex) -> http::Awaitable<Response> {
                // Some gauges ask backends (queue depth, jobs by status): off the I/O thread.
                auto text = co_await ex.Blocking<Result<std::string>>(
                    [&]() -> Result<std::string> { return registry.Render(); });
                if (!text) co_return Response::Problem(text.error());
                co_return Response::Text(200, std::move(*text),
                                         std::string(metrics::Registry::kContentType));
              },
              0, "Prometheus metrics"});
  router.Add({"GET", "/openapi.json",
              [routes](Exchange&) -> http::Awaitable<Response> {
                co_return Response::Json(200, OpenApi(*routes).dump(2));
              },
              0, "This API's OpenAPI 3.1 description"});
  router.Add({"GET", "/docs",
              [routes](Exchange&) -> http::Awaitable<Response> {
                co_return Response::Text(200, DocsPage(*routes), "text/html; charset=utf-8");
              },
              0, "A readable page of the API"});
}

}  // namespace vmp3::roles
