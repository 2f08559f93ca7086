// What operators and API clients read: health, readiness, metrics, the API description, keys.
#include <gtest/gtest.h>
#include <sodium.h>

#include <map>
#include <memory>
#include <regex>
#include <set>
#include <thread>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

using nlohmann::json;

class OperationalTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = ServerProcess::Start(NewDataDir());
    client_ = std::make_unique<HttpClient>(server_->base_url());
  }
  static void TearDownTestSuite() {
    client_.reset();
    server_.reset();
  }
  // The value of an unlabelled sample in Prometheus text, or nullopt.
  static std::optional<double> Sample(const std::string& text, const std::string& name) {
    std::regex line("(^|\n)" + name + " ([-+0-9.eE]+)(\n|$)");
    std::smatch m;
    if (!std::regex_search(text, m, line)) return std::nullopt;
    return std::stod(m[2]);
  }
  // /metrics of every process of the deployment, one after the other: a Prometheus server
  // scrapes each process, and what each counts is its own.
  static HttpResponse ScrapeAll() {
    HttpResponse all;
    for (const auto& process : server_->endpoints()) {
      HttpResponse r = HttpClient(process.base_url).Get("/metrics");
      if (r.status != 200) return r;
      all.status = r.status;
      all.headers = r.headers;
      all.body += r.body;
    }
    return all;
  }
  static std::unique_ptr<ServerProcess> server_;
  static std::unique_ptr<HttpClient> client_;
};
std::unique_ptr<ServerProcess> OperationalTest::server_;
std::unique_ptr<HttpClient> OperationalTest::client_;

TEST_F(OperationalTest, Healthz) {
  HttpResponse r = client_->Get("/healthz");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Json().value("status", ""), "ok");
}

// Each process checks exactly the backends its roles use.
TEST_F(OperationalTest, ReadyzChecksEveryBackend) {
  const std::map<std::string, std::set<std::string>> backends = {
      {"all", {"storage", "queue", "metadata"}},    {"auth", {"metadata"}},
      {"upload", {"storage", "queue", "metadata"}}, {"metadata", {"storage", "metadata"}},
      {"download", {"storage", "metadata"}},        {"converter", {"storage", "queue", "metadata"}},
  };
  for (const auto& process : server_->endpoints()) {
    HttpResponse r = HttpClient(process.base_url).Get("/readyz");
    ASSERT_EQ(r.status, 200) << process.roles << ": " << r.Describe();
    json body = r.Json();
    EXPECT_EQ(body.value("status", ""), "ready");
    std::set<std::string> checked;
    for (const auto& [backend, result] : body["checks"].items()) {
      checked.insert(backend);
      EXPECT_EQ(result, "ok") << process.roles << ": " << backend << " in " << body;
    }
    EXPECT_EQ(checked, backends.at(process.roles)) << process.roles;
  }
}

TEST_F(OperationalTest, MetricsCountRequestsQueueAndJobs) {
  Account account = CreateAccount(*client_, "metrics");
  HttpResponse before = ScrapeAll();
  ASSERT_EQ(before.status, 200);
  EXPECT_EQ(before.Header("Content-Type").value_or("").rfind("text/plain", 0), 0u);
  const double done_before = Sample(before.body, "vmp3_jobs_done").value_or(-1);
  EXPECT_GE(done_before, 0) << before.body;
  json job = UploadJob(*client_, account, vmp3::test::Fixture("mp4_h264_aac"));
  ASSERT_EQ(WaitForEnd(*client_, account, job["id"]).value("status", ""), "done");

  // The converter counts its outcome just after the job's record says done: poll briefly.
  HttpResponse after;
  for (int i = 0; i < 100; ++i) {
    after = ScrapeAll();
    if (after.body.find("vmp3_conversions_total{outcome=\"done\"} 1") != std::string::npos &&
        Sample(after.body, "vmp3_queue_depth") == 0.0) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  const std::string& text = after.body;
  EXPECT_NE(text.find("# TYPE vmp3_http_requests_total counter"), std::string::npos) << text;
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(vmp3_http_requests_total\{[^}]*route="/v1/jobs"[^}]*\} [1-9])")))
      << "the upload is counted under its route pattern";
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(vmp3_http_requests_total\{[^}]*route="/v1/jobs/\{id\}"[^}]*\} [1-9])")))
      << "job ids are not labels: the pattern is";
  EXPECT_EQ(text.find(job["id"].get<std::string>()), std::string::npos)
      << "a job id leaked into a label";
  auto depth = Sample(text, "vmp3_queue_depth");
  ASSERT_TRUE(depth.has_value()) << text;
  EXPECT_EQ(*depth, 0);
  EXPECT_EQ(Sample(text, "vmp3_jobs_done").value_or(-1), done_before + 1);
  EXPECT_NE(text.find("vmp3_conversions_total{outcome=\"done\"}"), std::string::npos);
}

// Every route the API documents, with its methods (HEAD rides on GET).
const std::map<std::string, std::set<std::string>>& DocumentedRoutes() {
  static const std::map<std::string, std::set<std::string>> routes = {
      {"/v1/auth/register", {"post"}},
      {"/v1/auth/login", {"post"}},
      {"/.well-known/jwks.json", {"get"}},
      {"/v1/jobs", {"get", "post"}},
      {"/v1/jobs/{id}", {"get", "delete"}},
      {"/v1/jobs/{id}/events", {"get"}},
      {"/v1/jobs/{id}/mp3", {"get"}},
      {"/healthz", {"get"}},
      {"/readyz", {"get"}},
      {"/metrics", {"get"}},
      {"/openapi.json", {"get"}},
      {"/docs", {"get"}},
      {"/login", {"post"}},
      {"/upload", {"post"}},
      {"/download", {"get"}},
  };
  return routes;
}

TEST_F(OperationalTest, OpenApiDescribesEveryRoute) {
  HttpResponse r = client_->Get("/openapi.json");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Content-Type").value_or("").rfind("application/json", 0), 0u);
  json doc = r.Json();
  EXPECT_EQ(doc.value("openapi", ""), "3.1.0");
  ASSERT_TRUE(doc["info"].is_object());
  EXPECT_FALSE(doc["info"].value("title", "").empty());
  EXPECT_FALSE(doc["info"].value("version", "").empty());
  ASSERT_TRUE(doc["paths"].is_object());
  for (const auto& [path, methods] : DocumentedRoutes()) {
    ASSERT_TRUE(doc["paths"].contains(path)) << path << " is missing from /openapi.json";
    for (const auto& method : methods) {
      EXPECT_TRUE(doc["paths"][path].contains(method)) << method << " " << path;
      EXPECT_TRUE(doc["paths"][path][method].contains("responses")) << method << " " << path;
    }
  }
  // Path parameters are declared.
  const json& params = doc["paths"]["/v1/jobs/{id}"]["get"]["parameters"];
  ASSERT_TRUE(params.is_array());
  EXPECT_EQ(params[0].value("name", ""), "id");
  EXPECT_EQ(params[0].value("in", ""), "path");
  // Job routes say they need a bearer token; the scheme exists.
  EXPECT_TRUE(doc["paths"]["/v1/jobs"]["get"].contains("security"));
  EXPECT_TRUE(doc["components"]["securitySchemes"].contains("bearer"));

  // Every documented operation is really served: no 404 from the router, no 405.
  for (const auto& [path, item] : doc["paths"].items()) {
    std::string target = std::regex_replace(path, std::regex(R"(\{[^}]+\})"), "x");
    for (const auto& [method, op] : item.items()) {
      std::string upper = method;
      for (char& c : upper) c = static_cast<char>(std::toupper(c));
      if (target.find("/events") != std::string::npos) continue;  // would stream
      HttpRequest probe{.method = upper, .target = target};
      probe.timeout = 10s;
      HttpResponse answer = client_->Send(probe);
      EXPECT_NE(answer.status, 405) << upper << " " << path;
      EXPECT_NE(answer.status, 0) << upper << " " << path << ": " << answer.error;
      if (answer.status == 404) {
        EXPECT_EQ(answer.body.find("no such resource"), std::string::npos)
            << upper << " " << path << " is documented but not routed";
      }
    }
  }
}

TEST_F(OperationalTest, DocsIsAnHtmlPage) {
  HttpResponse r = client_->Get("/docs");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Content-Type").value_or("").rfind("text/html", 0), 0u);
  EXPECT_NE(r.body.find("<html"), std::string::npos);
  EXPECT_NE(r.body.find("/openapi.json"), std::string::npos);
  EXPECT_NE(r.body.find("/v1/jobs/{id}/mp3"), std::string::npos);
}

// A process that runs some roles still knows the whole API: a route of another role (a gateway
// routing mistake) gets 421 naming the role to route it to, 405 lists every method the API has
// for the path, and the API description is complete.
TEST(RoleProcessTest, KnowsTheWholeApiAndNamesTheRoleForOtherRoutes) {
  const auto data_dir = NewDataDir();
  auto auth = ServerProcess::Start(data_dir, {"--roles", "auth"});
  auto metadata =
      ServerProcess::Start(data_dir, {"--roles", "metadata", "--auth-url", auth->base_url()});
  Account account = CreateAccount(HttpClient(auth->base_url()), "roles");
  HttpClient client(metadata->base_url());
  EXPECT_EQ(client.Get("/v1/jobs", account.token).status, 200) << "its own route is served";

  HttpResponse upload = Upload(client, account, vmp3::test::Fixture("mp4_h264_aac"));
  ASSERT_EQ(upload.status, 421) << upload.Describe();
  EXPECT_EQ(upload.Header("Content-Type").value_or(""), "application/problem+json");
  json problem = upload.Json();
  EXPECT_EQ(problem.value("code", ""), "misdirected");
  EXPECT_NE(problem.value("detail", "").find("--roles upload"), std::string::npos) << problem;
  HttpResponse login = HttpClient(metadata->base_url()).PostJson("/v1/auth/register", json{});
  EXPECT_EQ(login.status, 421) << login.Describe();
  EXPECT_NE(login.Json().value("detail", "").find("auth role"), std::string::npos);
  HttpResponse mp3 = HttpClient(auth->base_url()).Get("/v1/jobs/x/mp3", account.token);
  EXPECT_EQ(mp3.status, 421) << mp3.Describe();
  EXPECT_NE(mp3.Json().value("detail", "").find("download role"), std::string::npos);

  HttpResponse put = client.Send(HttpRequest{.method = "PUT", .target = "/v1/jobs"});
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(put.Header("Allow").value_or(""), "GET, POST");

  json openapi = HttpClient(auth->base_url()).Get("/openapi.json").Json();
  for (const char* path : {"/v1/auth/login", "/v1/jobs", "/v1/jobs/{id}/mp3", "/upload"})
    EXPECT_TRUE(openapi["paths"].contains(path)) << path;
  // Its own routes do not change: no upload counters in a process that does not upload.
  HttpResponse metrics = client.Get("/metrics");
  EXPECT_EQ(metrics.body.find("vmp3_upload_bytes_total"), std::string::npos);
}

// POST and GET /v1/jobs share one URL, and a gateway that routes by path only (a Kubernetes
// Ingress) sends both to the upload role: it serves the list too, the same list the metadata role
// gives. Other metadata routes stay the metadata role's.
TEST(RoleProcessTest, TheUploadRoleAlsoListsJobsForPathOnlyGateways) {
  const auto data_dir = NewDataDir();
  auto auth = ServerProcess::Start(data_dir, {"--roles", "auth"});
  auto upload =
      ServerProcess::Start(data_dir, {"--roles", "upload", "--auth-url", auth->base_url()});
  auto metadata =
      ServerProcess::Start(data_dir, {"--roles", "metadata", "--auth-url", auth->base_url()});
  Account account = CreateAccount(HttpClient(auth->base_url()), "lister");
  HttpClient client(upload->base_url());
  HttpResponse created = Upload(client, account, vmp3::test::Fixture("mp4_h264_aac"));
  ASSERT_EQ(created.status, 202) << created.Describe();
  const std::string id = created.Json().value("id", "");

  HttpResponse listed = client.Get("/v1/jobs", account.token);
  ASSERT_EQ(listed.status, 200) << listed.Describe();
  ASSERT_EQ(listed.Json()["jobs"].size(), 1u) << listed.body;
  EXPECT_EQ(listed.Json()["jobs"][0].value("id", ""), id);
  EXPECT_EQ(listed.Json()["jobs"],
            HttpClient(metadata->base_url()).Get("/v1/jobs", account.token).Json()["jobs"]);
  EXPECT_EQ(client.Get("/v1/jobs", "").status, 401) << "the list is authorised like any API call";
  EXPECT_EQ(client.Get("/v1/jobs/" + id, account.token).status, 421)
      << "one job is the metadata role's";
}

TEST_F(OperationalTest, JwksPublishesTheEd25519KeyThatSignsTokens) {
  HttpResponse r = client_->Get("/.well-known/jwks.json");
  ASSERT_EQ(r.status, 200);
  json jwks = r.Json();
  ASSERT_TRUE(jwks["keys"].is_array());
  ASSERT_GE(jwks["keys"].size(), 1u);
  const json& key = jwks["keys"][0];
  EXPECT_EQ(key.value("kty", ""), "OKP");
  EXPECT_EQ(key.value("crv", ""), "Ed25519");
  EXPECT_EQ(key.value("alg", "EdDSA"), "EdDSA");
  EXPECT_FALSE(key.contains("d")) << "the private key must never be published";
  std::string x = key.value("x", "");
  unsigned char pk[64];
  size_t length = 0;
  ASSERT_EQ(sodium_base642bin(pk, sizeof(pk), x.data(), x.size(), nullptr, &length, nullptr,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING),
            0)
      << x;
  EXPECT_EQ(length, 32u);

  // A token's signature verifies with this key, and its header names the key.
  Account account = CreateAccount(*client_, "jwks");
  const std::string& t = account.token;
  size_t a = t.find('.'), b = t.rfind('.');
  unsigned char header_bytes[512], sig[128];
  size_t header_length = 0, sig_length = 0;
  ASSERT_EQ(sodium_base642bin(header_bytes, sizeof(header_bytes), t.data(), a, nullptr,
                              &header_length, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
            0);
  json header = json::parse(std::string(reinterpret_cast<char*>(header_bytes), header_length));
  EXPECT_EQ(header.value("alg", ""), "EdDSA");
  EXPECT_EQ(header.value("kid", ""), key.value("kid", "?"));
  ASSERT_EQ(sodium_base642bin(sig, sizeof(sig), t.data() + b + 1, t.size() - b - 1, nullptr,
                              &sig_length, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
            0);
  ASSERT_EQ(sig_length, 64u);
  EXPECT_EQ(
      crypto_sign_verify_detached(sig, reinterpret_cast<const unsigned char*>(t.data()), b, pk), 0);
}

}  // namespace
}  // namespace vmp3::itest
