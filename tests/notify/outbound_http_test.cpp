// Post against a small HTTP server on 127.0.0.1 run by the test (a thread answering canned
// responses), through an egress policy opened for 127.0.0.1 and http; then the same server
// refused by the default policy, by address and by name.
#include "notify/outbound_http.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <mutex>
#include <thread>

#include "common/deadline.hpp"

namespace vmp3::notify {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// What the server received.
struct ReceivedRequest {
  std::string head;  // request line and headers
  std::string body;
};

// A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1:<ephemeral>. `answer` gets each
// request and returns the raw bytes to send back (or sleeps first, for the slow cases); every
// answer closes the connection.
class CannedHttpServer {
 public:
  explicit CannedHttpServer(std::function<std::string(const ReceivedRequest&)> answer)
      : answer_(std::move(answer)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CannedHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }

  int port() const { return port_; }
  std::string Url(std::string_view path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  std::vector<ReceivedRequest> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  // Sleeps up to `duration`, less when the server is stopping.
  void Nap(milliseconds duration) const {
    for (auto end = std::chrono::steady_clock::now() + duration;
         !stop_ && std::chrono::steady_clock::now() < end;) {
      std::this_thread::sleep_for(milliseconds(10));
    }
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd ready{listener_, POLLIN, 0};
      if (::poll(&ready, 1, 50) <= 0) continue;
      int connection = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) continue;
      ReceivedRequest request;
      if (ReadRequest(connection, request)) {
        {
          std::lock_guard lock(mutex_);
          received_.push_back(request);
        }
        std::string reply = answer_(request);
        for (size_t sent = 0; sent < reply.size() && !stop_;) {
          ssize_t n = ::send(connection, reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += static_cast<size_t>(n);
        }
      }
      ::close(connection);
    }
  }

  bool ReadRequest(int connection, ReceivedRequest& request) {
    std::string data;
    char buffer[4096];
    size_t head_end = std::string::npos;
    size_t content_length = 0;
    while (!stop_) {
      pollfd ready{connection, POLLIN, 0};
      if (::poll(&ready, 1, 50) <= 0) continue;
      ssize_t n = ::recv(connection, buffer, sizeof(buffer), 0);
      if (n <= 0) return false;
      data.append(buffer, static_cast<size_t>(n));
      // A TLS ClientHello (a record of type 22): answered in plain HTTP, which the client's TLS
      // layer must reject.
      if (data[0] == 0x16) {
        request.head = "(TLS handshake)";
        return true;
      }
      if (head_end == std::string::npos &&
          (head_end = data.find("\r\n\r\n")) != std::string::npos) {
        request.head = data.substr(0, head_end);
        std::string lower = request.head;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        size_t at = lower.find("\r\ncontent-length:");
        if (at != std::string::npos) content_length = std::stoul(lower.substr(at + 17));
      }
      if (head_end != std::string::npos && data.size() >= head_end + 4 + content_length) {
        request.body = data.substr(head_end + 4, content_length);
        return true;
      }
    }
    return false;
  }

  std::function<std::string(const ReceivedRequest&)> answer_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<ReceivedRequest> received_;
};

std::string Reply(std::string_view status_line, std::string_view extra_headers,
                  std::string_view body) {
  return fmt::format("HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{}",
                     status_line, body.size(), extra_headers, body);
}

EgressPolicy LoopbackPolicy() {
  auto policy = EgressPolicy::Make({.allow_http = true, .allow_cidrs = {"127.0.0.1/32"}});
  EXPECT_TRUE(policy);
  return policy ? *policy : EgressPolicy();
}

TEST(OutboundHttp, PostsAndReadsA200) {
  CannedHttpServer server([](const ReceivedRequest&) {
    return Reply("200 OK", "Content-Type: text/plain\r\n", "thanks");
  });
  OutboundRequest request{
      .url = server.Url("/hook?token=abc"),
      .headers = {{"Content-Type", "application/json"}, {"webhook-id", "msg_1"}, {"X-Empty", ""}},
      .body = R"({"type":"job.done"})"};
  auto response = Post(LoopbackPolicy(), request);
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "thanks");
  EXPECT_FALSE(response->body_truncated);
  EXPECT_FALSE(response->retry_after);
  EXPECT_TRUE(response->location.empty());
  EXPECT_GE(response->latency, milliseconds(0));
  EXPECT_LT(response->latency, seconds(5));

  auto received = server.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_TRUE(received[0].head.starts_with("POST /hook?token=abc HTTP/1.1\r\n"))
      << received[0].head;
  EXPECT_NE(received[0].head.find("\r\nwebhook-id: msg_1"), std::string::npos);
  EXPECT_NE(received[0].head.find("\r\nContent-Type: application/json"), std::string::npos);
  EXPECT_NE(received[0].head.find("\r\nX-Empty:"), std::string::npos);
  EXPECT_NE(received[0].head.find("\r\nUser-Agent: vmp3"), std::string::npos);
  EXPECT_EQ(received[0].head.find("Expect:"), std::string::npos);
  EXPECT_EQ(received[0].body, R"({"type":"job.done"})");
}

TEST(OutboundHttp, SendsNoInventedContentType) {
  CannedHttpServer server([](const ReceivedRequest&) { return Reply("204 No Content", "", ""); });
  auto response = Post(LoopbackPolicy(), {.url = server.Url(), .body = "x=1"});
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 204);
  ASSERT_EQ(server.received().size(), 1u);
  EXPECT_EQ(server.received()[0].head.find("Content-Type"), std::string::npos);
}

TEST(OutboundHttp, A500IsAnAnswer) {
  CannedHttpServer server(
      [](const ReceivedRequest&) { return Reply("500 Internal Server Error", "", "oops"); });
  auto response = Post(LoopbackPolicy(), {.url = server.Url(), .body = "{}"});
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 500);
  EXPECT_EQ(response->body, "oops");
}

TEST(OutboundHttp, ReadsRetryAfterInSecondsAndAsADate) {
  CannedHttpServer seconds_server([](const ReceivedRequest&) {
    return Reply("429 Too Many Requests", "Retry-After: 7\r\n", "");
  });
  auto in_seconds = Post(LoopbackPolicy(), {.url = seconds_server.Url(), .body = "{}"});
  ASSERT_TRUE(in_seconds) << in_seconds.error().message;
  EXPECT_EQ(in_seconds->status, 429);
  ASSERT_TRUE(in_seconds->retry_after);
  EXPECT_EQ(*in_seconds->retry_after, seconds(7));

  // An HTTP-date two minutes ahead.
  const time_t later = std::time(nullptr) + 120;
  char date[64];
  tm parts{};
  gmtime_r(&later, &parts);
  strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &parts);
  CannedHttpServer date_server([&date](const ReceivedRequest&) {
    return Reply("503 Service Unavailable", fmt::format("Retry-After: {}\r\n", date), "");
  });
  auto as_date = Post(LoopbackPolicy(), {.url = date_server.Url(), .body = "{}"});
  ASSERT_TRUE(as_date) << as_date.error().message;
  EXPECT_EQ(as_date->status, 503);
  ASSERT_TRUE(as_date->retry_after);
  EXPECT_GE(*as_date->retry_after, seconds(115));
  EXPECT_LE(*as_date->retry_after, seconds(121));
}

TEST(OutboundHttp, ParsesRetryAfterValues) {
  const auto now = std::chrono::system_clock::from_time_t(1445412480);  // Wed, 21 Oct 2015 07:28:00
  EXPECT_EQ(ParseRetryAfter("120", now), seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), seconds(0));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:30:00 GMT", now), seconds(120));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now), seconds(0));  // past
  EXPECT_FALSE(ParseRetryAfter("", now));
  EXPECT_FALSE(ParseRetryAfter("-5", now));
  EXPECT_FALSE(ParseRetryAfter("soon", now));
  EXPECT_FALSE(ParseRetryAfter("99999999999999999999999", now));
}

TEST(OutboundHttp, DoesNotFollowRedirects) {
  CannedHttpServer server([](const ReceivedRequest&) {
    return Reply("302 Found", "Location: http://169.254.169.254/latest/meta-data/\r\n", "");
  });
  auto response = Post(LoopbackPolicy(), {.url = server.Url(), .body = "{}"});
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 302);
  EXPECT_EQ(response->location, "http://169.254.169.254/latest/meta-data/");
  EXPECT_EQ(server.received().size(), 1u);
}

// A proxy would connect on our behalf, out of the connect-time check's reach: the environment's
// proxy variables must change nothing.
TEST(OutboundHttp, IgnoresEnvironmentProxies) {
  CannedHttpServer server([](const ReceivedRequest&) { return Reply("200 OK", "", "direct"); });
  const char* names[] = {"http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"};
  for (const char* name : names) ::setenv(name, "http://127.0.0.1:1", 1);
  auto response = Post(LoopbackPolicy(), {.url = server.Url(), .body = "{}"});
  for (const char* name : names) ::unsetenv(name);
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->body, "direct");
  ASSERT_EQ(server.received().size(), 1u);
  EXPECT_TRUE(server.received()[0].head.starts_with("POST /hook HTTP/1.1"));
}

TEST(OutboundHttp, ASlowServerHitsTheTimeout) {
  CannedHttpServer* self = nullptr;
  CannedHttpServer server([&self](const ReceivedRequest&) {
    self->Nap(seconds(5));
    return Reply("200 OK", "", "late");
  });
  self = &server;
  auto response =
      Post(LoopbackPolicy(), {.url = server.Url(), .body = "{}", .timeout = milliseconds(300)});
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_NE(response.error().message.find("no complete answer from 127.0.0.1 within 300 ms"),
            std::string::npos)
      << response.error().message;
}

TEST(OutboundHttp, TheThreadsDeadlineBoundsTheTimeout) {
  CannedHttpServer* self = nullptr;
  CannedHttpServer server([&self](const ReceivedRequest&) {
    self->Nap(seconds(5));
    return Reply("200 OK", "", "late");
  });
  self = &server;
  const auto start = std::chrono::steady_clock::now();
  {
    ScopedDeadline deadline(DeadlineClock::now() + milliseconds(300));
    auto response = Post(LoopbackPolicy(), {.url = server.Url(), .body = "{}"});
    ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, ErrorCode::kDeadlineExceeded);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(3));
  {
    ScopedDeadline passed(DeadlineClock::now() - milliseconds(1));
    auto response = Post(LoopbackPolicy(), {.url = server.Url(), .body = "{}"});
    ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, ErrorCode::kUnavailable);
  }
}

TEST(OutboundHttp, CapsTheResponseBody) {
  const std::string big(200 * 1024, 'x');
  CannedHttpServer server([&big](const ReceivedRequest&) { return Reply("200 OK", "", big); });
  auto response =
      Post(LoopbackPolicy(), {.url = server.Url(), .body = "{}", .max_response_bytes = 1000});
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, std::string(1000, 'x'));
  EXPECT_TRUE(response->body_truncated);
}

TEST(OutboundHttp, TheDefaultPolicyRefusesLoopback) {
  CannedHttpServer server([](const ReceivedRequest&) { return Reply("200 OK", "", ""); });
  const std::string port = std::to_string(server.port());

  // http itself, first.
  auto http = Post(EgressPolicy(), {.url = server.Url(), .body = "{}"});
  ASSERT_FALSE(http);
  EXPECT_EQ(http.error().code, ErrorCode::kUrlRefused);

  // The address, before connecting; and the same through a name, when connecting.
  auto http_only = EgressPolicy::Make({.allow_http = true});
  ASSERT_TRUE(http_only);
  auto literal = Post(*http_only, {.url = server.Url(), .body = "{}"});
  ASSERT_FALSE(literal);
  EXPECT_EQ(literal.error().code, ErrorCode::kUrlRefused);
  EXPECT_EQ(literal.error().message, "address 127.0.0.1 is loopback (127.0.0.0/8)");
  for (const std::string& url :
       {"http://localhost:" + port + "/hook", "http://2130706433:" + port + "/hook"}) {
    auto refused = Post(*http_only, {.url = url, .body = "{}"});
    ASSERT_FALSE(refused) << url;
    EXPECT_EQ(refused.error().code, ErrorCode::kUrlRefused) << refused.error().message;
    EXPECT_NE(refused.error().message.find("is loopback"), std::string::npos)
        << refused.error().message;
  }
  auto by_name = Post(*http_only, {.url = "http://localhost:" + port + "/hook", .body = "{}"});
  ASSERT_FALSE(by_name);
  EXPECT_TRUE(by_name.error().message.starts_with("refused to connect to localhost: address "))
      << by_name.error().message;
  // The default policy over https: refused by address when connecting, before any TLS.
  auto https = Post(EgressPolicy(), {.url = "https://localhost:" + port + "/hook", .body = "{}"});
  ASSERT_FALSE(https);
  EXPECT_EQ(https.error().code, ErrorCode::kUrlRefused);
  EXPECT_NE(https.error().message.find("is loopback"), std::string::npos);

  EXPECT_TRUE(server.received().empty());
}

TEST(OutboundHttp, NamesNetworkFailures) {
  // Connection refused: a port nothing listens on.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int closed_port = ntohs(address.sin_port);
  ::close(probe);
  auto refused = Post(LoopbackPolicy(),
                      {.url = fmt::format("http://127.0.0.1:{}/hook", closed_port), .body = "{}"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().message.find("could not connect to 127.0.0.1"), std::string::npos)
      << refused.error().message;

  // DNS: .invalid never resolves (RFC 6761).
  auto dns = Post(LoopbackPolicy(),
                  {.url = "http://no-such-host.invalid/hook", .body = "{}", .timeout = seconds(5)});
  ASSERT_FALSE(dns);
  EXPECT_EQ(dns.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(dns.error().message.find("DNS lookup of no-such-host.invalid failed"),
            std::string::npos)
      << dns.error().message;

  // TLS: https to a server that speaks plain HTTP.
  CannedHttpServer plain([](const ReceivedRequest&) { return Reply("200 OK", "", ""); });
  auto tls = Post(LoopbackPolicy(), {.url = fmt::format("https://127.0.0.1:{}/hook", plain.port()),
                                     .body = "{}",
                                     .timeout = seconds(5)});
  ASSERT_FALSE(tls);
  EXPECT_EQ(tls.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(tls.error().message.find("TLS error with 127.0.0.1"), std::string::npos)
      << tls.error().message;
}

TEST(OutboundHttp, RefusesMalformedHeaders) {
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"X-Bad", "a\r\nInjected: yes"}, {"X Bad", "v"}, {"", "v"}, {"X-Bad:", "v"}}) {
    auto response =
        Post(LoopbackPolicy(),
             {.url = "http://127.0.0.1:9/hook", .headers = {{name, value}}, .body = ""});
    ASSERT_FALSE(response) << name;
    EXPECT_EQ(response.error().code, ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace vmp3::notify
