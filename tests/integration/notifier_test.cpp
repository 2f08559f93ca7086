// The notifier from the outside: a user registers webhooks and receives signed deliveries that
// survive receiver failures and a kill -9 of the service; refused URLs are refused; the event
// log shows the same events. The receiver (tests/support/webhook_receiver.py) checks every
// signature with its own code and answers as each test scripts it.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/fixtures.hpp"

#ifndef VMP3_PUSH_SERVICE
#error "VMP3_PUSH_SERVICE must name tests/support/push_service.py"
#endif
#ifndef VMP3_WEBHOOK_RECEIVER
#error "VMP3_WEBHOOK_RECEIVER must name tests/support/webhook_receiver.py"
#endif

namespace vmp3::itest {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// The receiver script, started for one test and killed with it.
class Receiver {
 public:
  explicit Receiver(const char* script = VMP3_WEBHOOK_RECEIVER, bool quiet = true) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      int null = open("/dev/null", O_RDONLY);
      dup2(null, 0);
      if (quiet) {
        execlp("python3", "python3", script, "--port", "0", "--quiet", static_cast<char*>(nullptr));
      } else {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        execlp("python3", "python3", script, "--port", "0", static_cast<char*>(nullptr));
      }
      _exit(127);
    }
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    port_ = std::stoi(line.empty() ? "0" : line);
    if (port_ == 0) throw std::runtime_error("the webhook receiver did not start");
    control_ = std::make_unique<HttpClient>(fmt::format("http://127.0.0.1:{}", port_));
  }
  ~Receiver() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

  const HttpClient& control() const { return *control_; }
  std::string Url(std::string_view path) const {
    return fmt::format("http://127.0.0.1:{}{}", port_, path);
  }
  void Secrets(std::string_view path, const std::vector<std::string>& secrets) const {
    auto r = control_->PostJson("/_control/secret", {{"path", path}, {"secrets", secrets}});
    ASSERT_EQ(r.status, 200) << r.Describe();
  }
  void Script(std::string_view path, const json& responses) const {
    auto r = control_->PostJson("/_control/script", {{"path", path}, {"responses", responses}});
    ASSERT_EQ(r.status, 200) << r.Describe();
  }
  json Requests(std::string_view path) const {
    auto r = control_->Get(fmt::format("/_control/requests?path={}", path));
    return r.status == 200 ? r.Json() : json::array();
  }
  // Waits until `path` received requests for which `done` holds; returns them.
  json WaitFor(std::string_view path, const std::function<bool(const json&)>& done,
               std::chrono::seconds timeout = std::chrono::seconds(60)) const {
    auto deadline = Clock::now() + timeout;
    json requests;
    for (;;) {
      requests = Requests(path);
      if (done(requests)) return requests;
      if (Clock::now() > deadline) {
        ADD_FAILURE() << "the receiver's " << path << " got only: " << requests.dump(1);
        return requests;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::unique_ptr<HttpClient> control_;
};

// The test SMTP server of scripts/test-servers (STARTTLS and a login), when it runs.
bool HaveSmtp() { return std::getenv("VMP3_TEST_SMTP_URL") != nullptr; }

// What a test's server needs to reach the receiver on loopback, quick retries, and the mail
// relay when there is one.
std::vector<std::string> NotifierArgs() {
  std::vector<std::string> args = {
      "--egress-allow-cidr",   "127.0.0.1/32", "--egress-allow-http", "true",
      "--webhook-retry-scale", "0.001",        "--public-url",        "https://vmp3.example"};
  if (HaveSmtp()) {
    for (auto [flag, variable] : {std::pair{"--smtp-url", "VMP3_TEST_SMTP_URL"},
                                  std::pair{"--smtp-ca-file", "VMP3_TEST_SMTP_CA_FILE"},
                                  std::pair{"--smtp-user", "VMP3_TEST_SMTP_USER"},
                                  std::pair{"--smtp-password", "VMP3_TEST_SMTP_PASSWORD"}}) {
      const char* value = std::getenv(variable);
      if (value == nullptr) continue;
      args.insert(args.end(), {flag, value});
    }
    args.insert(args.end(), {"--smtp-from", "vmp3 tests <vmp3@example.org>"});
  }
  return args;
}

HttpResponse Send(const HttpClient& client, std::string method, std::string target,
                  const std::string& token, std::optional<json> body = std::nullopt) {
  HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.bearer = token;
  if (body) {
    r.body = body->dump();
    r.headers.push_back("Content-Type: application/json");
  }
  return client.Send(r);
}

json Body(const json& request) { return json::parse(request.at("body").get<std::string>()); }

size_t CountVerified(const json& requests) {
  size_t n = 0;
  for (const json& r : requests) n += r.at("verified").get<bool>() ? 1 : 0;
  return n;
}

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = NewDataDir();
    server_ = ServerProcess::Start(data_dir_, NotifierArgs());
    client_ = std::make_unique<HttpClient>(server_->base_url());
    account_ = CreateAccount(*client_, "hooks");
  }

  // Registers a webhook for `path` and tells the receiver its secret.
  json Register(std::string_view path, json events = json::array({"job.done", "job.failed"})) {
    auto r = Send(*client_, "POST", "/v1/webhooks", account_.token,
                  json{{"url", receiver_.Url(path)}, {"events", events}});
    EXPECT_EQ(r.status, 201) << r.Describe();
    json hook = r.Json();
    EXPECT_TRUE(hook.at("secret").get<std::string>().starts_with("whsec_"));
    receiver_.Secrets(path, {hook.at("secret").get<std::string>()});
    return hook;
  }

  Receiver receiver_;
  std::filesystem::path data_dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
  Account account_;
};

TEST_F(NotifierTest, ADoneJobIsDeliveredSignedAndRetriedWithTheSameId) {
  receiver_.Script("/hook", json::array({{{"status", 500}}, {{"status", 503}}}));
  json hook = Register("/hook");
  json job = UploadJob(*client_, account_, test::Fixture("mp4_h264_aac"));
  WaitForEnd(*client_, account_, job["id"]);
  json requests = receiver_.WaitFor("/hook", [](const json& r) { return r.size() >= 3; });
  ASSERT_EQ(requests.size(), 3u) << requests.dump(1);
  std::set<std::string> ids;
  for (const json& r : requests) {
    EXPECT_TRUE(r["verified"].get<bool>()) << r.dump();
    ids.insert(r["headers"]["webhook-id"].get<std::string>());
    json body = Body(r);
    EXPECT_EQ(body["type"], "job.done");
    EXPECT_EQ(body["data"]["id"], job["id"]);
    EXPECT_EQ(body["data"]["status"], "done");
    EXPECT_EQ(body["data"]["links"]["mp3"],
              "https://vmp3.example/v1/jobs/" + job["id"].get<std::string>() + "/mp3")
        << "links are absolute, under --public-url";
    EXPECT_TRUE(body["timestamp"].get<std::string>().ends_with("Z"));
  }
  EXPECT_EQ(ids.size(), 1u) << "one event, one webhook-id on every attempt";
  // The delivery log shows each attempt.
  auto deliveries = client_->Get(
      fmt::format("/v1/webhooks/{}/deliveries", hook["id"].get<std::string>()), account_.token);
  ASSERT_EQ(deliveries.status, 200) << deliveries.Describe();
  json list = deliveries.Json()["deliveries"];
  ASSERT_EQ(list.size(), 1u) << list.dump(1);
  EXPECT_EQ(list[0]["event_type"], "job.done");
  EXPECT_EQ(list[0]["event_id"], *ids.begin());
  EXPECT_EQ(list[0]["state"], "succeeded");
  std::vector<int> statuses;
  for (const json& a : list[0]["attempts"]) statuses.push_back(a["status_code"].get<int>());
  EXPECT_EQ(statuses, (std::vector<int>{500, 503, 200}));
  // Nothing more arrives once it succeeded.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(receiver_.Requests("/hook").size(), 3u);
}

TEST_F(NotifierTest, AFailedJobIsDeliveredAndTheEventLogShowsTheLifecycle) {
  Register("/failed");
  json job = UploadJob(*client_, account_, test::Fixture("broken_html"));
  WaitForEnd(*client_, account_, job["id"]);
  json requests = receiver_.WaitFor("/failed", [](const json& r) { return !r.empty(); });
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(Body(requests[0])["type"], "job.failed");
  EXPECT_EQ(Body(requests[0])["data"]["error"]["code"], "not_media");
  EXPECT_EQ(CountVerified(requests), requests.size());
  // GET /v1/events: the same event (same id) after job.queued, and nothing after the cursor.
  auto events = client_->Get("/v1/events", account_.token);
  ASSERT_EQ(events.status, 200) << events.Describe();
  std::vector<std::string> types;
  std::string failed_id;
  const json log = events.Json();  // (a temporary's member would dangle in the loop)
  for (const json& e : log["events"]) {
    EXPECT_EQ(e["data"]["id"], job["id"]);
    types.push_back(e["type"]);
    if (e["type"] == "job.failed") failed_id = e["id"];
  }
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(types.front(), "job.queued");
  EXPECT_EQ(types.back(), "job.failed");
  EXPECT_EQ(failed_id, requests[0]["headers"]["webhook-id"]);
  auto after = client_->Get("/v1/events?after=" + events.Json()["next_cursor"].get<std::string>(),
                            account_.token);
  ASSERT_EQ(after.status, 200);
  EXPECT_TRUE(after.Json()["events"].empty());
  // Another user sees none of it.
  Account other = CreateAccount(*client_, "other");
  EXPECT_TRUE(client_->Get("/v1/events", other.token).Json()["events"].empty());
}

TEST_F(NotifierTest, UrlsOutsideTheEgressPolicyAreRefusedWithTheReason) {
  for (std::string url : {"http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/hook",
                          "http://user:pw@127.0.0.1/hook", "ftp://127.0.0.1/hook",
                          "http://[::ffff:169.254.169.254]/"}) {
    auto r = Send(*client_, "POST", "/v1/webhooks", account_.token, json{{"url", url}});
    EXPECT_EQ(r.status, 422) << url << ": " << r.Describe();
    EXPECT_EQ(r.Json().value("code", ""), "url_refused") << r.Describe();
    EXPECT_FALSE(r.Json().value("detail", "").empty());
  }
  auto unknown = Send(*client_, "POST", "/v1/webhooks", account_.token,
                      json{{"url", receiver_.Url("/x")}, {"events", {"job.exploded"}}});
  EXPECT_EQ(unknown.status, 400) << unknown.Describe();
  // A job's own webhook_url passes the same policy, before the upload is stored.
  HttpRequest upload;
  upload.method = "POST";
  upload.target = "/v1/jobs?filename=a.mp4&webhook_url=http%3A%2F%2F10.0.0.1%2Fhook";
  upload.bearer = account_.token;
  upload.body = std::string(1024, 'x');
  auto refused = client_->Send(upload);
  EXPECT_EQ(refused.status, 422) << refused.Describe();
}

TEST_F(NotifierTest, RedirectsAreNotFollowedAndGoneDisablesTheEndpoint) {
  receiver_.Script("/redirect",
                   json::array({{{"status", 302}, {"location", "http://169.254.169.254/"}}}));
  receiver_.Script("/gone", json::array({{{"status", 410}}}));
  json redirect = Register("/redirect");
  json gone = Register("/gone");
  json job = UploadJob(*client_, account_, test::Fixture("mp4_h264_aac"));
  WaitForEnd(*client_, account_, job["id"]);
  receiver_.WaitFor("/redirect", [](const json& r) { return !r.empty(); });
  receiver_.WaitFor("/gone", [](const json& r) { return !r.empty(); });
  // The gone endpoint is disabled, with the reason.
  json endpoint;
  for (int i = 0; i < 100; ++i) {
    endpoint = client_->Get("/v1/webhooks/" + gone["id"].get<std::string>(), account_.token).Json();
    if (!endpoint["enabled"].get<bool>()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(endpoint["enabled"].get<bool>()) << endpoint.dump();
  EXPECT_NE(endpoint["disabled_reason"].get<std::string>().find("410"), std::string::npos);
  // The redirect was an answer like any other: a 3xx is a failure, not followed, not retried.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(receiver_.Requests("/redirect").size(), 1u);
  json deliveries =
      client_
          ->Get(fmt::format("/v1/webhooks/{}/deliveries", redirect["id"].get<std::string>()),
                account_.token)
          .Json()["deliveries"];
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0]["state"], "failed");
  EXPECT_EQ(deliveries[0]["attempts"][0]["status_code"], 302);
  // Redeliver: the same webhook-id again; the receiver now answers 200.
  auto again =
      Send(*client_, "POST",
           fmt::format("/v1/webhooks/{}/deliveries/{}/redeliver", redirect["id"].get<std::string>(),
                       deliveries[0]["id"].get<std::string>()),
           account_.token);
  ASSERT_EQ(again.status, 202) << again.Describe();
  json requests = receiver_.WaitFor("/redirect", [](const json& r) { return r.size() >= 2; });
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1]["headers"]["webhook-id"], requests[0]["headers"]["webhook-id"]);
  EXPECT_EQ(requests[1]["status"], 200);
}

TEST_F(NotifierTest, RetryAfterIsHonoured) {
  receiver_.Script("/busy", json::array({{{"status", 429}, {"retry_after", 2}}}));
  Register("/busy");
  json job = UploadJob(*client_, account_, test::Fixture("mp4_h264_aac"));
  WaitForEnd(*client_, account_, job["id"]);
  json requests = receiver_.WaitFor("/busy", [](const json& r) { return r.size() >= 2; });
  ASSERT_EQ(requests.size(), 2u);
  double waited = requests[1]["time"].get<double>() - requests[0]["time"].get<double>();
  EXPECT_GE(waited, 1.9) << "Retry-After: 2 (the schedule alone would retry after ~5 ms)";
}

TEST_F(NotifierTest, WebhooksAreTheirOwnersOnly) {
  json hook = Register("/mine");
  const std::string path = "/v1/webhooks/" + hook["id"].get<std::string>();
  Account other = CreateAccount(*client_, "intruder");
  EXPECT_EQ(client_->Get(path, other.token).status, 404);
  EXPECT_EQ(Send(*client_, "PATCH", path, other.token, json{{"enabled", false}}).status, 404);
  EXPECT_EQ(Send(*client_, "DELETE", path, other.token).status, 404);
  EXPECT_EQ(client_->Get(path + "/deliveries", other.token).status, 404);
  EXPECT_EQ(Send(*client_, "POST", path + "/test", other.token).status, 404);
  EXPECT_EQ(Send(*client_, "POST", path + "/rotate-secret", other.token).status, 404);
  EXPECT_TRUE(client_->Get("/v1/webhooks", other.token).Json()["webhooks"].empty());
  EXPECT_EQ(client_->Get("/v1/webhooks", account_.token).Json()["webhooks"].size(), 1u);
  EXPECT_EQ(client_->Get(path).status, 401);
  // The owner can.
  auto patched = Send(*client_, "PATCH", path, account_.token, json{{"description", "mine"}});
  ASSERT_EQ(patched.status, 200) << patched.Describe();
  EXPECT_EQ(patched.Json()["description"], "mine");
  EXPECT_FALSE(patched.Json().contains("secret")) << "the secret is shown once";
  EXPECT_EQ(Send(*client_, "DELETE", path, account_.token).status, 204);
  EXPECT_EQ(client_->Get(path, account_.token).status, 404);
}

TEST_F(NotifierTest, RotatedSecretsSignTogetherDuringTheGracePeriod) {
  json hook = Register("/rotate");
  const std::string old_secret = hook["secret"];
  auto rotated = Send(*client_, "POST",
                      fmt::format("/v1/webhooks/{}/rotate-secret", hook["id"].get<std::string>()),
                      account_.token);
  ASSERT_EQ(rotated.status, 200) << rotated.Describe();
  const std::string new_secret = rotated.Json()["secret"];
  EXPECT_NE(new_secret, old_secret);
  // A receiver that knows only the new secret, then one that knows only the old one.
  receiver_.Secrets("/rotate", {new_secret});
  auto test =
      Send(*client_, "POST", fmt::format("/v1/webhooks/{}/test", hook["id"].get<std::string>()),
           account_.token);
  ASSERT_EQ(test.status, 202) << test.Describe();
  json first = receiver_.WaitFor("/rotate", [](const json& r) { return !r.empty(); });
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0]["verified"].get<bool>()) << first[0].dump();
  EXPECT_EQ(Body(first[0])["type"], "webhook.test");
  receiver_.Secrets("/rotate", {old_secret});
  ASSERT_EQ(Send(*client_, "POST",
                 fmt::format("/v1/webhooks/{}/test", hook["id"].get<std::string>()), account_.token)
                .status,
            202);
  json both = receiver_.WaitFor("/rotate", [](const json& r) { return r.size() >= 2; });
  ASSERT_EQ(both.size(), 2u);
  EXPECT_TRUE(both[1]["verified"].get<bool>()) << both[1].dump();
  EXPECT_NE(both[1]["headers"]["webhook-id"], both[0]["headers"]["webhook-id"]);
}

TEST_F(NotifierTest, AJobsOwnWebhookUrlIsSignedWithTheAccountSecret) {
  auto shown = client_->Get("/v1/account/signing-secret", account_.token);
  ASSERT_EQ(shown.status, 200) << shown.Describe();
  const std::string secret = shown.Json()["secret"];
  ASSERT_TRUE(secret.starts_with("whsec_"));
  auto again = client_->Get("/v1/account/signing-secret", account_.token);
  EXPECT_TRUE(again.Json()["secret"].is_null()) << "shown once per rotation";
  receiver_.Secrets("/oneoff", {secret});
  HttpRequest r;
  r.method = "POST";
  r.target = "/v1/jobs";
  r.bearer = account_.token;
  r.form.push_back(FormPart::Field("webhook_url", receiver_.Url("/oneoff")));
  r.form.push_back(FormPart::File("file", test::Fixture("mp4_h264_aac"), "talk.mp4"));
  auto accepted = client_->Send(r);
  ASSERT_EQ(accepted.status, 202) << accepted.Describe();
  json requests = receiver_.WaitFor("/oneoff", [](const json& reqs) {
    return std::any_of(reqs.begin(), reqs.end(),
                       [](const json& q) { return Body(q)["type"] == "job.done"; });
  });
  EXPECT_EQ(CountVerified(requests), requests.size()) << requests.dump(1);
  EXPECT_EQ(Body(requests.back())["data"]["id"], accepted.Json()["id"]);
}

TEST_F(NotifierTest, DeliveriesPendingWhenTheServiceIsKilledArriveAfterTheRestart) {
  // The receiver fails everything until told otherwise.
  receiver_.Script("/down", json::array({{{"status", 503}},
                                         {{"status", 503}},
                                         {{"status", 503}},
                                         {{"status", 503}},
                                         {{"status", 503}}}));
  Register("/down");
  json job = UploadJob(*client_, account_, test::Fixture("mp4_h264_aac"));
  WaitForEnd(*client_, account_, job["id"]);
  json failed = receiver_.WaitFor("/down", [](const json& r) { return r.size() >= 2; });
  ASSERT_GE(failed.size(), 2u);
  const std::string id = failed[0]["headers"]["webhook-id"];
  server_->Kill();                           // kill -9, every process of the deployment
  receiver_.Script("/down", json::array());  // from now on: 200
  const size_t before = receiver_.Requests("/down").size();
  server_ = ServerProcess::Start(data_dir_, NotifierArgs());
  json requests = receiver_.WaitFor(
      "/down", [&](const json& r) { return r.size() > before && r.back()["status"] == 200; });
  ASSERT_GT(requests.size(), before);
  EXPECT_EQ(requests.back()["headers"]["webhook-id"], id) << "the same event, redelivered";
  EXPECT_TRUE(requests.back()["verified"].get<bool>());
  for (const json& r : requests)
    EXPECT_EQ(r["headers"]["webhook-id"], id) << "one event only: nothing duplicated";
}

TEST_F(NotifierTest, AnEmailTellsTheOwnerWhenAsked) {
  if (!HaveSmtp()) GTEST_SKIP() << "needs the test SMTP server (scripts/test-servers)";
  const std::string name = UniqueName("mail");
  const std::string address = name + "@example.org";
  auto registered = client_->PostJson(
      "/v1/auth/register",
      {{"username", name}, {"password", "correct horse battery"}, {"email", address}});
  ASSERT_EQ(registered.status, 201) << registered.Describe();
  Account user{name, "correct horse battery", ""};
  user.token = Login(*client_, user);
  // Nothing is sent until asked for; then job.done only.
  auto settings = Send(*client_, "PUT", "/v1/account/notifications", user.token,
                       json{{"email", true}, {"events", {"job.done"}}});
  ASSERT_EQ(settings.status, 200) << settings.Describe();
  EXPECT_EQ(client_->Get("/v1/account/notifications", user.token).Json()["email"], true);
  json job = UploadJob(*client_, user, test::Fixture("mp4_h264_aac"), "Café talk.mp4");
  WaitForEnd(*client_, user, job["id"]);
  const std::filesystem::path maildir = std::getenv("VMP3_TEST_SMTP_MAILDIR");
  std::string mail;
  for (int i = 0; i < 600 && mail.empty(); ++i) {
    for (const char* sub : {"new", "cur"}) {
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(maildir / sub, ec)) {
        std::string text = ReadFile(entry.path());
        if (text.find("X-RcptTo: " + address) != std::string::npos) mail = text;
      }
    }
    if (mail.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(mail.empty()) << "no mail to " << address << " in " << maildir;
  EXPECT_NE(mail.find("X-Test-TLS: TLSv1."), std::string::npos) << "sent over STARTTLS";
  EXPECT_NE(mail.find("X-Test-Auth: vmp3"), std::string::npos) << "logged in";
  EXPECT_NE(mail.find("Message-ID: <"), std::string::npos);
  EXPECT_NE(mail.find("Subject: =?UTF-8?B?"), std::string::npos) << "a non-ASCII file name";
  // The download link, quoted-printable soft breaks undone.
  std::string body = mail;
  for (size_t at; (at = body.find("=\r\n")) != std::string::npos;) body.erase(at, 3);
  EXPECT_NE(body.find("https://vmp3.example/v1/jobs/" + job["id"].get<std::string>() + "/mp3"),
            std::string::npos)
      << body;
  // A user without an address cannot turn mail on.
  auto refused =
      Send(*client_, "PUT", "/v1/account/notifications", account_.token, json{{"email", true}});
  EXPECT_EQ(refused.status, 409) << refused.Describe();
}

TEST_F(NotifierTest, BrowserPushArrivesEncryptedAtThePushService) {
  Receiver push(VMP3_PUSH_SERVICE, /*quiet=*/false);
  auto key = client_->Get("/v1/push/vapid-public-key");
  ASSERT_EQ(key.status, 200) << key.Describe();
  EXPECT_EQ(key.Json()["public_key"].get<std::string>().size(), 87u) << "65 bytes, base64url";
  auto minted = push.control().PostJson("/_control/subscribe", json::object());
  ASSERT_EQ(minted.status, 201) << minted.Describe();
  json subscription = minted.Json();
  const std::string push_id = subscription["id"];
  subscription.erase("id");
  auto subscribed = Send(*client_, "POST", "/v1/push/subscriptions", account_.token, subscription);
  ASSERT_EQ(subscribed.status, 201) << subscribed.Describe();
  auto again = Send(*client_, "POST", "/v1/push/subscriptions", account_.token, subscription);
  EXPECT_EQ(again.status, 200) << "the same browser again: updated, not added";
  json job = UploadJob(*client_, account_, test::Fixture("mp4_h264_aac"), "talk.mp4");
  WaitForEnd(*client_, account_, job["id"]);
  json messages;
  for (int i = 0; i < 600; ++i) {
    messages = push.control().Get("/_control/messages?id=" + push_id).Json();
    if (!messages.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(messages.size(), 1u) << messages.dump(1);
  json message = json::parse(messages[0]["plaintext"].get<std::string>());
  EXPECT_EQ(message["type"], "job.done");
  EXPECT_EQ(message["job_id"], job["id"]);
  EXPECT_NE(message["body"].get<std::string>().find("talk.mp4"), std::string::npos);
  EXPECT_EQ(messages[0]["headers"]["Topic"], job["id"]) << messages[0].dump();
  // The browser's subscription expires: the push service answers 410 and it is forgotten.
  ASSERT_EQ(push.control().PostJson("/_control/gone", {{"id", push_id}}).status, 200);
  json second = UploadJob(*client_, account_, test::Fixture("mp4_h264_aac"), "talk.mp4");
  WaitForEnd(*client_, account_, second["id"]);
  const std::string sub_id = subscribed.Json()["id"];
  for (int i = 0; i < 600; ++i) {
    json attempts = push.control().Get("/_control/attempts?id=" + push_id).Json();
    if (!attempts.empty() && attempts.back()["status"] == 410) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the answer, then the removal
  int status = Send(*client_, "DELETE", "/v1/push/subscriptions/" + sub_id, account_.token).status;
  EXPECT_EQ(status, 404) << "a 410 from the push service removes the subscription";
}

TEST_F(NotifierTest, AnEndpointFailingForFiveDaysIsDisabled) {
  receiver_.Script("/dying", json::array({{{"status", 500}},
                                          {{"status", 500}},
                                          {{"status", 500}},
                                          {{"status", 500}},
                                          {{"status", 500}}}));
  json hook = Register("/dying");
  json job = UploadJob(*client_, account_, test::Fixture("mp4_h264_aac"));
  WaitForEnd(*client_, account_, job["id"]);
  receiver_.WaitFor("/dying", [](const json& r) { return !r.empty(); });
  const std::string path = "/v1/webhooks/" + hook["id"].get<std::string>();
  auto failing = client_->Get(path, account_.token).Json();
  EXPECT_TRUE(failing["enabled"].get<bool>()) << "one failure does not disable";
  // Five days and a bit later, the next attempt fails too.
  server_->Terminate();
  std::vector<std::string> args = NotifierArgs();
  args.insert(args.end(), {"--clock-offset", std::to_string(5 * 24 * 3600 + 600)});
  server_ = ServerProcess::Start(data_dir_, args);
  client_ = std::make_unique<HttpClient>(server_->base_url());
  account_.token = Login(*client_, account_);  // the old token expired in those days
  json endpoint;
  for (int i = 0; i < 600; ++i) {
    endpoint = client_->Get(path, account_.token).Json();
    if (!endpoint["enabled"].get<bool>()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(endpoint["enabled"].get<bool>()) << endpoint.dump();
  EXPECT_NE(endpoint["disabled_reason"].get<std::string>().find("5 days"), std::string::npos)
      << endpoint.dump();
}

}  // namespace
}  // namespace vmp3::itest
