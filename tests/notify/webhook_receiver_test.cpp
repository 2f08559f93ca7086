// The service's webhook signing against an independent receiver: tests/support/webhook_receiver.py
// (Python's hmac and base64, not this code) verifies deliveries that SignatureHeader signed and
// Post sent, and answers as scripted. This also checks the receiver the whole-system tests use.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/http_get.hpp"
#include "notify/outbound_http.hpp"
#include "notify/standard_webhooks.hpp"

namespace vmp3::notify {
namespace {

std::filesystem::path WebhookReceiverScript() {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "support" /
         "webhook_receiver.py";
}

bool HavePython3() {
  return std::system("command -v python3 >/dev/null 2>&1") == 0;  // NOLINT(cert-env33-c)
}

// The receiver as a child process on 127.0.0.1:<the port it printed>; SIGTERM at the end.
class WebhookReceiverProcess {
 public:
  WebhookReceiverProcess() {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    const std::string script = WebhookReceiverScript().string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      int null = ::open("/dev/null", O_RDONLY);
      ::dup2(null, STDIN_FILENO);
      ::execlp("python3", "python3", script.c_str(), "--port", "0", "--quiet", nullptr);
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char c;
    while (line.find('\n') == std::string::npos) {
      pollfd ready{out[0], POLLIN, 0};
      if (::poll(&ready, 1, 10000) <= 0 || ::read(out[0], &c, 1) != 1) break;
      line += c;
    }
    ::close(out[0]);
    port_ = std::atoi(line.c_str());
    if (port_ <= 0) throw std::runtime_error("the webhook receiver printed no port: " + line);
  }
  ~WebhookReceiverProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  std::string Url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

EgressPolicy ReceiverPolicy() {
  auto policy = EgressPolicy::Make({.allow_http = true, .allow_cidrs = {"127.0.0.1/32"}});
  EXPECT_TRUE(policy);
  return policy ? *policy : EgressPolicy();
}

void Control(const WebhookReceiverProcess& receiver, std::string_view path,
             const nlohmann::json& request) {
  auto response = Post(ReceiverPolicy(), {.url = receiver.Url(path),
                                          .headers = {{"Content-Type", "application/json"}},
                                          .body = request.dump()});
  ASSERT_TRUE(response) << response.error().message;
  ASSERT_EQ(response->status, 200) << response->body;
}

// A delivery as the notifier sends one: signed with every secret, freshly timestamped.
Result<OutboundResponse> Deliver(const WebhookReceiverProcess& receiver, std::string_view path,
                                 const std::vector<std::string>& secrets, const std::string& msg_id,
                                 const std::string& body, const std::string& sent_body) {
  const int64_t now = std::time(nullptr);
  auto signature = SignatureHeader(secrets, msg_id, now, body);
  if (!signature) return tl::unexpected(signature.error());
  return Post(ReceiverPolicy(), {.url = receiver.Url(path),
                                 .headers = {{"Content-Type", "application/json"},
                                             {"webhook-id", msg_id},
                                             {"webhook-timestamp", std::to_string(now)},
                                             {"webhook-signature", *signature}},
                                 .body = sent_body});
}

TEST(WebhookReceiver, VerifiesOurSignaturesAndAnswersAsScripted) {
  if (!HavePython3()) GTEST_SKIP() << "python3 is not installed";
  WebhookReceiverProcess receiver;
  // The receiver knows only the new secret of a rotation; the sender signs with both.
  const std::string old_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const std::string new_secret = GenerateWebhookSecret();
  Control(receiver, "/_control/secret", {{"path", "/hook1"}, {"secrets", {new_secret}}});
  Control(receiver, "/_control/script",
          {{"path", "/hook1"},
           {"responses",
            {{{"status", 500}},
             {{"status", 429}, {"retry_after", 2}},
             {{"status", 302}, {"location", "http://169.254.169.254/"}},
             {{"status", 410}}}}});

  const std::string body = R"({"type":"job.done","timestamp":"2026-12-05T12:00:00Z","data":{}})";
  const std::vector<std::string> both{old_secret, new_secret};
  std::vector<int> statuses;
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto response = Deliver(receiver, "/hook1", both, "msg_same_on_retry", body, body);
    ASSERT_TRUE(response) << response.error().message;
    statuses.push_back(response->status);
    if (attempt == 1) {
      ASSERT_TRUE(response->retry_after);
      EXPECT_EQ(*response->retry_after, std::chrono::seconds(2));
    }
    if (attempt == 2) {
      EXPECT_EQ(response->location, "http://169.254.169.254/");
    }
  }
  EXPECT_EQ(statuses, (std::vector<int>{500, 429, 302, 410, 200}));
  // Tampered with on the way: one byte of the body.
  std::string tampered = body;
  tampered[10] = 'D';
  auto forged = Deliver(receiver, "/hook1", both, "msg_forged", body, tampered);
  ASSERT_TRUE(forged) << forged.error().message;
  // Signed only with a secret the receiver does not hold.
  auto stale = Deliver(receiver, "/hook1", {old_secret}, "msg_stale", body, body);
  ASSERT_TRUE(stale) << stale.error().message;

  auto listing = HttpGet(receiver.Url("/_control/requests?path=/hook1"), std::chrono::seconds(5));
  ASSERT_TRUE(listing) << listing.error().message;
  auto requests = nlohmann::json::parse(*listing);
  ASSERT_EQ(requests.size(), 7u) << requests.dump(1);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(requests[i]["verified"].get<bool>()) << requests[i].dump(1);
    EXPECT_EQ(requests[i]["headers"]["webhook-id"], "msg_same_on_retry");
    EXPECT_EQ(requests[i]["body"], body);
    EXPECT_EQ(requests[i]["method"], "POST");
  }
  EXPECT_FALSE(requests[5]["verified"].get<bool>());
  EXPECT_EQ(requests[5]["verify_error"], "no v1 signature matches");
  EXPECT_FALSE(requests[6]["verified"].get<bool>());
  EXPECT_EQ(requests[6]["status"], 200);
}

TEST(WebhookReceiver, ScriptedDelayMeetsOurTimeout) {
  if (!HavePython3()) GTEST_SKIP() << "python3 is not installed";
  WebhookReceiverProcess receiver;
  Control(receiver, "/_control/script",
          {{"path", "/slow"}, {"responses", {{{"delay_s", 3}, {"status", 200}}}}});
  auto slow =
      Post(ReceiverPolicy(),
           {.url = receiver.Url("/slow"), .body = "{}", .timeout = std::chrono::milliseconds(300)});
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code, ErrorCode::kDeadlineExceeded);
  // The script is consumed: the next request is answered at once, unverified (no secret).
  auto next = Post(ReceiverPolicy(), {.url = receiver.Url("/slow"), .body = "{}"});
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(next->status, 200);
  auto listing = HttpGet(receiver.Url("/_control/requests?path=/slow"), std::chrono::seconds(5));
  ASSERT_TRUE(listing) << listing.error().message;
  auto requests = nlohmann::json::parse(*listing);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1]["verify_error"], "no secret registered for this path");
}

}  // namespace
}  // namespace vmp3::notify
