// What is specific to the S3 store; the shared behaviour is in object_store_contract_test.cpp.
//
// Offline: URL parsing, configuration checks, presigned URL shape, and the retry and error policy
// against a tiny local HTTP server that answers from a script (a real S3 cannot be made to fail
// on demand). Against a real server (VMP3_TEST_S3_URL and AWS_* set, as for the contract tests):
// signature and key errors, missing buckets, orphaned multipart uploads, presigned URLs, and a
// reader whose object is replaced.
#include "storage/s3_object_store.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/deadline.hpp"
#include "storage/object_store_contract.hpp"
#include "storage/object_store_factory.hpp"
#include "support/bytes.hpp"
#include "support/fixtures.hpp"

namespace vmp3 {
namespace {

using namespace std::chrono_literals;

using test::Bytes;

// Sets (or unsets) an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

S3Config OfflineConfig(std::string endpoint) {
  S3Config config;
  config.bucket = "vmp3-media";
  config.endpoint = std::move(endpoint);
  config.credentials = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  config.retry_base_delay = 5ms;
  return config;
}

// ----------------------------------------------------------------------------------- URL parsing

TEST(S3Url, PathStyleWithEndpointAndRegion) {
  auto config = ParseS3Url("s3://vmp3-media?endpoint=http://127.0.0.1:7480&region=eu-west-3");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->bucket, "vmp3-media");
  EXPECT_EQ(config->prefix, "");
  EXPECT_EQ(config->endpoint, "http://127.0.0.1:7480");
  EXPECT_EQ(config->region, "eu-west-3");
  EXPECT_FALSE(config->virtual_host);
  EXPECT_FALSE(config->presign_downloads);
  EXPECT_TRUE(config->credentials.access_key_id.empty()) << "credentials never come from a URL";
}

TEST(S3Url, PrefixVirtualHostAndPresign) {
  auto config = ParseS3Url(
      "s3://media.example/deploy/one/?endpoint=https://s3.example.com&virtual_host=true"
      "&presign=1");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->bucket, "media.example");
  EXPECT_EQ(config->prefix, "deploy/one");
  EXPECT_EQ(config->endpoint, "https://s3.example.com");
  EXPECT_EQ(config->region, "us-east-1");
  EXPECT_TRUE(config->virtual_host);
  EXPECT_TRUE(config->presign_downloads);
}

TEST(S3Url, DefaultsToAwsForTheRegion) {
  auto config = ParseS3Url("s3://vmp3-media?region=ap-south-1");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->endpoint, "https://s3.ap-south-1.amazonaws.com");
  EXPECT_EQ(ParseS3Url("s3://vmp3-media")->endpoint, "https://s3.us-east-1.amazonaws.com");
}

TEST(S3Url, RejectsMalformedUrlsWithoutEchoingThem) {
  const std::string bad_urls[] = {
      "s3://AKIDEXAMPLE:s3cr3t@vmp3-media?endpoint=http://127.0.0.1:7480",
      "s3://vmp3-media:9000",
      "s3://Upper_Case",
      "s3://ab",
      "s3://-vmp3",
      "http://vmp3-media",
      "s3://vmp3-media?endpoint=ftp://127.0.0.1",
      "s3://vmp3-media?endpoint=http://AKID:s3cr3t@127.0.0.1:7480",
      "s3://vmp3-media?endpoint=http://127.0.0.1:7480/s3cr3t",
      "s3://vmp3-media?endpoint=s3cr3t",
      "s3://vmp3-media?region=US%20EAST",
      "s3://vmp3-media?virtual_host=s3cr3t",
      "s3://vmp3-media?secret_key=s3cr3t",
      "s3://vmp3-media/a/../b",
      "s3://vmp3-media/.hidden",
      "s3:// spaces",
  };
  for (const std::string& url : bad_urls) {
    SCOPED_TRACE(url);
    auto config = ParseS3Url(url);
    ASSERT_FALSE(config);
    EXPECT_EQ(config.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(config.error().message.find("s3cr3t"), std::string::npos) << config.error().message;
  }
  EXPECT_NE(ParseS3Url("s3://vmp3-media?secret_key=x").error().message.find("secret_key"),
            std::string::npos)
      << "an unknown parameter is named, its value is not";
}

TEST(S3Url, Timeout) {
  EXPECT_EQ(ParseS3Url("s3://vmp3-media")->timeout, 5s) << "the default";
  EXPECT_EQ(ParseS3Url("s3://vmp3-media?timeout=500ms")->timeout, 500ms);
  EXPECT_EQ(ParseS3Url("s3://vmp3-media?timeout=12s")->timeout, 12s);
  EXPECT_EQ(ParseS3Url("s3://vmp3-media?timeout=10ms")->timeout, 10ms);
  EXPECT_EQ(ParseS3Url("s3://vmp3-media?timeout=600s")->timeout, 600s);
  for (std::string_view bad :
       {"5", "5m", "9ms", "601s", "-1s", "1.5s", "s", "ms", "", "5%20s", "99999999999999999999s"}) {
    auto config = ParseS3Url("s3://vmp3-media?timeout=" + std::string(bad));
    ASSERT_FALSE(config) << bad;
    EXPECT_EQ(config.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(config.error().message.find("timeout"), std::string::npos) << config.error().message;
  }
}

TEST(S3Url, FactoryTakesCredentialsFromTheEnvironment) {
  const std::string url = "s3://vmp3-media/p?endpoint=http://127.0.0.1:9";
  {
    ScopedEnv key("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE");
    ScopedEnv secret("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    auto store = MakeObjectStore(url, test::TempDir());
    ASSERT_TRUE(store) << store.error().message;
    EXPECT_EQ(store->store->Describe(), "s3://vmp3-media/p at http://127.0.0.1:9");
    EXPECT_EQ(store->store->Describe().find("EXAMPLEKEY"), std::string::npos);
  }
  {
    ScopedEnv key("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE");
    ScopedEnv secret("AWS_SECRET_ACCESS_KEY", nullptr);
    auto store = MakeObjectStore(url, test::TempDir());
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(store.error().message.find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
  }
  {
    ScopedEnv key("AWS_ACCESS_KEY_ID", nullptr);
    auto store = MakeObjectStore(url, test::TempDir());
    ASSERT_FALSE(store);
    EXPECT_NE(store.error().message.find("AWS_ACCESS_KEY_ID"), std::string::npos);
  }
}

TEST(S3Url, FactoryHandsOutPresignedUrlsOnlyWhenAskedTo) {
  ScopedEnv key("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE");
  ScopedEnv secret("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
  auto plain = MakeObjectStore("s3://vmp3-media?endpoint=http://127.0.0.1:9", test::TempDir());
  ASSERT_TRUE(plain) << plain.error().message;
  ASSERT_NE(plain->store, nullptr);
  EXPECT_EQ(plain->presigned_urls, nullptr) << "without presign=true downloads are streamed";
  EXPECT_NE(plain->abandoned_writes, nullptr) << "multipart uploads can be abandoned";

  auto presigning =
      MakeObjectStore("s3://vmp3-media?endpoint=http://127.0.0.1:9&presign=true", test::TempDir());
  ASSERT_TRUE(presigning) << presigning.error().message;
  ASSERT_NE(presigning->presigned_urls, nullptr);
  auto url = presigning->presigned_urls->PresignedGetUrl("outputs/a.mp3", 600s);
  ASSERT_TRUE(url) << url.error().message;
  EXPECT_TRUE(url->starts_with("http://127.0.0.1:9/vmp3-media/outputs/a.mp3?X-Amz-")) << *url;
  EXPECT_EQ(presigning->presigned_urls->PresignedGetUrl("../x", 600s).error().code,
            ErrorCode::kInvalidArgument);
}

TEST(S3Store, ChecksItsConfiguration) {
  S3Config no_secret = OfflineConfig("http://127.0.0.1:9");
  no_secret.credentials.secret_access_key.clear();
  EXPECT_EQ(S3ObjectStore::FromConfig(no_secret).error().code, ErrorCode::kInvalidArgument);

  S3Config tiny_parts = OfflineConfig("http://127.0.0.1:9");
  tiny_parts.part_size = 1024 * 1024;  // S3 rejects parts under 5 MiB
  EXPECT_EQ(S3ObjectStore::FromConfig(tiny_parts).error().code, ErrorCode::kInvalidArgument);

  S3Config virtual_ip = OfflineConfig("http://127.0.0.1:9");
  virtual_ip.virtual_host = true;  // "vmp3-media.127.0.0.1" is no host name
  EXPECT_EQ(S3ObjectStore::FromConfig(virtual_ip).error().code, ErrorCode::kInvalidArgument);

  S3Config bad_endpoint = OfflineConfig("127.0.0.1:9");
  EXPECT_EQ(S3ObjectStore::FromConfig(bad_endpoint).error().code, ErrorCode::kInvalidArgument);
}

// ----------------------------------------------------------------------------------- presigning

bool IsHex64(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

TEST(S3Store, PresignedUrlPathStyle) {
  S3Config config = OfflineConfig("http://127.0.0.1:9");
  config.prefix = "p";
  auto store = S3ObjectStore::FromConfig(config);
  ASSERT_TRUE(store) << store.error().message;
  auto url = (*store)->PresignedGetUrl("outputs/a.mp3", 600s);
  ASSERT_TRUE(url) << url.error().message;
  const std::string start =
      "http://127.0.0.1:9/vmp3-media/p/outputs/a.mp3?X-Amz-Algorithm=AWS4-HMAC-SHA256"
      "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F";
  EXPECT_EQ(url->substr(0, start.size()), start) << *url;
  EXPECT_NE(url->find("%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date="), std::string::npos) << *url;
  EXPECT_NE(url->find("&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature="),
            std::string::npos)
      << *url;
  EXPECT_TRUE(IsHex64(url->substr(url->size() - 64))) << *url;
  EXPECT_EQ(url->find("EXAMPLEKEY"), std::string::npos) << "the secret never appears";
}

TEST(S3Store, PresignedUrlVirtualHostAndSessionToken) {
  S3Config config = OfflineConfig("https://s3.example.com");
  config.virtual_host = true;
  config.credentials.session_token = "tok+en/";
  auto store = S3ObjectStore::FromConfig(config);
  ASSERT_TRUE(store) << store.error().message;
  auto url = (*store)->PresignedGetUrl("outputs/a.mp3", 3600s);
  ASSERT_TRUE(url) << url.error().message;
  EXPECT_TRUE(url->starts_with("https://vmp3-media.s3.example.com/outputs/a.mp3?")) << *url;
  EXPECT_NE(url->find("&X-Amz-Security-Token=tok%2Ben%2F&"), std::string::npos) << *url;
}

TEST(S3Store, PresignRejectsBadKeysAndLifetimes) {
  auto store = S3ObjectStore::FromConfig(OfflineConfig("http://127.0.0.1:9"));
  ASSERT_TRUE(store);
  EXPECT_EQ((*store)->PresignedGetUrl("../x", 60s).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ((*store)->PresignedGetUrl("x", 0s).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ((*store)->PresignedGetUrl("x", 604801s).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE((*store)->PresignedGetUrl("x", 604800s));
}

// ------------------------------------------------------------------- failures, offline

// A port on which nothing listens.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t length = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(S3Store, UnreachableServiceIsUnavailable) {
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(ClosedPort());
  S3Config config = OfflineConfig(endpoint);
  config.max_attempts = 3;
  auto store = S3ObjectStore::FromConfig(config);
  ASSERT_TRUE(store) << store.error().message;
  const std::string expected = "object storage at " + endpoint + " is unavailable";

  auto ping = (*store)->Ping();
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(ping.error().message.starts_with(expected)) << ping.error().message;

  EXPECT_EQ((*store)->Stat("k").error().code, ErrorCode::kUnavailable);
  EXPECT_EQ((*store)->Open("k").error().code, ErrorCode::kUnavailable);
  EXPECT_EQ((*store)->Remove("k").error().code, ErrorCode::kUnavailable);
  auto writer = (*store)->Create("k");
  ASSERT_TRUE(writer) << "nothing is sent before the first part or the commit";
  ASSERT_TRUE((*writer)->Write(Bytes("abc")));
  auto commit = (*writer)->Commit();
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ((*writer)->Commit().error().code, ErrorCode::kConflict) << "a failed commit aborts";
}

// An HTTP server on loopback that answers each request with the next reply of a script (the
// last one repeats), one request per connection. It stands in for S3 only where a real server
// cannot be made to fail on demand: 5xx, hangs, and the count of attempts.
class ScriptedHttpServer {
 public:
  struct Reply {
    int status = 200;
    std::string body;
    bool hang = false;    // accept the request and never answer
    std::string headers;  // extra header lines, each ending in \r\n
  };

  explicit ScriptedHttpServer(std::vector<Reply> replies) : replies_(std::move(replies)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(listener_, 16);
    socklen_t length = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }

  ~ScriptedHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }

  std::string Endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int Requests() const { return requests_; }
  std::vector<std::string> Methods() const {
    std::lock_guard lock(mutex_);
    return methods_;
  }

 private:
  void Run() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      Serve(fd);
      ::close(fd);
    }
  }

  void Serve(int fd) {
    std::string request;
    char buffer[65536];
    size_t header_end;
    while ((header_end = request.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return;
      request.append(buffer, static_cast<size_t>(n));
    }
    std::string head = request.substr(0, header_end);
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t body_length = 0;
    if (size_t at = head.find("content-length:"); at != std::string::npos) {
      body_length = std::strtoul(head.c_str() + at + 15, nullptr, 10);
    }
    while (request.size() < header_end + 4 + body_length) {
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return;
      request.append(buffer, static_cast<size_t>(n));
    }
    std::string method = request.substr(0, request.find(' '));
    int index = requests_++;
    {
      std::lock_guard lock(mutex_);
      methods_.push_back(method);
    }
    const Reply& reply = replies_[std::min<size_t>(index, replies_.size() - 1)];
    if (reply.hang) {
      while (!stop_) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) > 0) {
          if (::recv(fd, buffer, sizeof(buffer), 0) <= 0) return;  // the client gave up
        }
      }
      return;
    }
    std::string response = "HTTP/1.1 " + std::to_string(reply.status) + " Scripted\r\n" +
                           "Content-Length: " + std::to_string(reply.body.size()) +
                           "\r\nConnection: close\r\n" + reply.headers + "\r\n";
    if (method != "HEAD") response += reply.body;
    ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
  }

  std::vector<Reply> replies_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> methods_;
  std::thread thread_;
};

std::string S3ErrorXml(std::string_view code) {
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message></Message>"
      "<RequestId>tx0</RequestId></Error>",
      code);
}

TEST(S3Store, RetriesServerErrorsAFixedNumberOfTimes) {
  ScriptedHttpServer server({{503, S3ErrorXml("SlowDown")}});
  auto store = S3ObjectStore::FromConfig(OfflineConfig(server.Endpoint()));
  ASSERT_TRUE(store) << store.error().message;
  auto removed = (*store)->Remove("k");
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(removed.error().message.find("HTTP 503 SlowDown"), std::string::npos)
      << removed.error().message;
  EXPECT_EQ(server.Requests(), 4) << "four attempts in all, then give up";
}

TEST(S3Store, RecoversWhenAServerErrorPasses) {
  ScriptedHttpServer server({{500, S3ErrorXml("InternalError")}, {429, ""}, {204, ""}});
  auto store = S3ObjectStore::FromConfig(OfflineConfig(server.Endpoint()));
  ASSERT_TRUE(store);
  EXPECT_TRUE((*store)->Remove("k"));
  EXPECT_EQ(server.Requests(), 3);
}

TEST(S3Store, RetriesS3sRequestTimeout) {
  ScriptedHttpServer server({{400, S3ErrorXml("RequestTimeout")}, {204, ""}});
  auto store = S3ObjectStore::FromConfig(OfflineConfig(server.Endpoint()));
  ASSERT_TRUE(store);
  EXPECT_TRUE((*store)->Remove("k"));
  EXPECT_EQ(server.Requests(), 2);
}

TEST(S3Store, ABucketInAnotherRegionIsExplained) {
  ScriptedHttpServer server({{301, "", false, "x-amz-bucket-region: eu-west-1\r\n"}});
  auto store = S3ObjectStore::FromConfig(OfflineConfig(server.Endpoint()));
  ASSERT_TRUE(store);
  auto ping = (*store)->Ping();
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(ping.error().message.find("in eu-west-1"), std::string::npos) << ping.error().message;
  EXPECT_EQ(server.Requests(), 1);
}

TEST(S3Store, NeverRetriesClientErrors) {
  ScriptedHttpServer server({{403, S3ErrorXml("SignatureDoesNotMatch")}});
  auto store = S3ObjectStore::FromConfig(OfflineConfig(server.Endpoint()));
  ASSERT_TRUE(store);
  auto removed = (*store)->Remove("k");
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(removed.error().message,
            "S3 rejected the request signature: check AWS_SECRET_ACCESS_KEY");
  EXPECT_EQ(server.Requests(), 1);
}

TEST(S3Store, ExplainsAFailedHeadWithAGet) {
  // HEAD answers carry no body; the store asks again with a GET to learn S3's error code.
  ScriptedHttpServer server({{403, ""}, {403, S3ErrorXml("InvalidAccessKeyId")}});
  auto store = S3ObjectStore::FromConfig(OfflineConfig(server.Endpoint()));
  ASSERT_TRUE(store);
  auto stat = (*store)->Stat("k");
  ASSERT_FALSE(stat);
  EXPECT_EQ(stat.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(stat.error().message.find("AWS_ACCESS_KEY_ID"), std::string::npos)
      << stat.error().message;
  EXPECT_EQ(server.Methods(), (std::vector<std::string>{"HEAD", "GET"}));
}

TEST(S3Store, AMissingBucketIsNamed) {
  ScriptedHttpServer server({{404, ""}});
  auto store = S3ObjectStore::FromConfig(OfflineConfig(server.Endpoint()));
  ASSERT_TRUE(store);
  auto ping = (*store)->Ping();
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, ErrorCode::kNotFound);
  EXPECT_NE(ping.error().message.find("bucket vmp3-media"), std::string::npos)
      << ping.error().message;
}

TEST(S3Store, AStalledServerTimesOutAndIsRetried) {
  ScriptedHttpServer server({{0, "", true}});
  S3Config config = OfflineConfig(server.Endpoint());
  config.low_speed_time = 1s;
  config.max_attempts = 2;
  auto store = S3ObjectStore::FromConfig(config);
  ASSERT_TRUE(store);
  auto started = std::chrono::steady_clock::now();
  auto stat = (*store)->Stat("k");
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(stat);
  EXPECT_EQ(stat.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(server.Requests(), 2);
  EXPECT_LT(took, 10s);
}

// ---------------------------------------------------------------------- timeouts and deadlines

// A TCP listener on loopback that accepts connections and then neither reads nor answers: a
// service that hangs after the handshake.
class SilentListener {
 public:
  SilentListener() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(listener_, 16);
    socklen_t length = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{listener_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) continue;
        std::lock_guard lock(mutex_);
        accepted_.push_back(fd);
      }
    });
  }
  ~SilentListener() {
    stop_ = true;
    thread_.join();
    for (int fd : accepted_) ::close(fd);
    ::close(listener_);
  }
  std::string Endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  size_t Accepted() const {
    std::lock_guard lock(mutex_);
    return accepted_.size();
  }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<int> accepted_;
  std::thread thread_;
};

TEST(S3Deadline, AStatWithinADeadlineFailsByTheDeadline) {
  SilentListener silent;
  auto store = S3ObjectStore::FromConfig(OfflineConfig(silent.Endpoint()));  // timeout 5 s
  ASSERT_TRUE(store) << store.error().message;
  const auto started = std::chrono::steady_clock::now();
  Result<ObjectInfo> stat = MakeError(ErrorCode::kInternal, "not run");
  {
    ScopedDeadline deadline(DeadlineClock::now() + 300ms);
    stat = (*store)->Stat("k");
  }
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(stat);
  EXPECT_EQ(stat.error().code, ErrorCode::kUnavailable) << stat.error().message;
  EXPECT_GE(took, 250ms) << "the attempt waited for the answer until the deadline";
  EXPECT_LT(took, 1s) << "the request's deadline bounds the client's own 5 s timeout";
  EXPECT_NE(stat.error().message.find("deadline"), std::string::npos) << stat.error().message;
}

TEST(S3Deadline, NothingIsSentOnceTheDeadlineHasPassed) {
  SilentListener silent;
  auto store = S3ObjectStore::FromConfig(OfflineConfig(silent.Endpoint()));
  ASSERT_TRUE(store) << store.error().message;
  const auto started = std::chrono::steady_clock::now();
  Result<ObjectInfo> stat = MakeError(ErrorCode::kInternal, "not run");
  {
    ScopedDeadline deadline(DeadlineClock::now() - 1ms);
    stat = (*store)->Stat("k");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 100ms);
  ASSERT_FALSE(stat);
  EXPECT_EQ(stat.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(stat.error().message, "object storage at " + silent.Endpoint() +
                                      " was not asked: the request's deadline passed");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(silent.Accepted(), 0u) << "no connection was even opened";
}

TEST(S3Deadline, WithoutADeadlineTheUrlsTimeoutBoundsEachAttempt) {
  SilentListener silent;
  auto config = ParseS3Url("s3://vmp3-media?endpoint=" + silent.Endpoint() + "&timeout=300ms");
  ASSERT_TRUE(config) << config.error().message;
  config->credentials = OfflineConfig("").credentials;
  config->max_attempts = 2;
  config->retry_base_delay = 10ms;
  auto store = S3ObjectStore::FromConfig(*config);
  ASSERT_TRUE(store) << store.error().message;
  const auto started = std::chrono::steady_clock::now();
  auto stat = (*store)->Stat("k");
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(stat);
  EXPECT_EQ(stat.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(stat.error().message.find("timed out"), std::string::npos) << stat.error().message;
  EXPECT_GE(took, 600ms) << "two attempts of 300 ms each";
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(silent.Accepted(), 2u);
}

// Answers HEAD at once and GET with a 20-byte body sent one byte every 40 ms: a slow but moving
// transfer. One request per connection.
class TrickleServer {
 public:
  static constexpr std::string_view kBody = "0123456789abcdefghij";

  TrickleServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(listener_, 16);
    socklen_t length = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{listener_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) continue;
        Serve(fd);
        ::close(fd);
      }
    });
  }
  ~TrickleServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  std::string Endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void Serve(int fd) {
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return;
      request.append(buffer, static_cast<size_t>(n));
    }
    const std::string head = fmt::format(
        "HTTP/1.1 {}\r\nContent-Length: {}\r\nETag: \"e\"\r\n"
        "Last-Modified: Wed, 01 May 2024 10:20:30 GMT\r\nConnection: close\r\n\r\n",
        request.starts_with("HEAD ") ? "200 OK" : "206 Partial Content", kBody.size());
    if (::send(fd, head.data(), head.size(), MSG_NOSIGNAL) < 0) return;
    if (request.starts_with("HEAD ")) return;
    for (char c : kBody) {
      if (stop_ || ::send(fd, &c, 1, MSG_NOSIGNAL) < 0) return;
      std::this_thread::sleep_for(40ms);
    }
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(S3Deadline, TransfersOutlastTheTimeoutButNotADeadline) {
  TrickleServer server;
  auto config = ParseS3Url("s3://vmp3-media?endpoint=" + server.Endpoint() + "&timeout=300ms");
  ASSERT_TRUE(config) << config.error().message;
  config->credentials = OfflineConfig("").credentials;
  config->max_attempts = 1;
  auto store = S3ObjectStore::FromConfig(*config);
  ASSERT_TRUE(store) << store.error().message;
  std::string buffer(64, '\0');
  auto buffer_bytes = std::as_writable_bytes(std::span<char>(buffer));

  // The converter's case: no deadline; a GET that takes ~800 ms is not cut at 300 ms.
  auto reader = (*store)->Open("slow");
  ASSERT_TRUE(reader) << reader.error().message;
  auto n = (*reader)->Read(buffer_bytes);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(buffer.substr(0, *n), TrickleServer::kBody);

  // Work for an HTTP request: the same GET fails by the request's deadline.
  reader = (*store)->Open("slow");
  ASSERT_TRUE(reader) << reader.error().message;
  const auto started = std::chrono::steady_clock::now();
  Result<size_t> cut = MakeError(ErrorCode::kInternal, "not run");
  {
    ScopedDeadline deadline(DeadlineClock::now() + 200ms);
    cut = (*reader)->Read(buffer_bytes);
  }
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code, ErrorCode::kUnavailable) << cut.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 600ms);
}

// ------------------------------------------------------------------------ against a real server

class S3Live : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("VMP3_TEST_S3_URL") == nullptr) {
      GTEST_SKIP() << "set VMP3_TEST_S3_URL (and AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) to "
                      "test against a real S3";
    }
    auto store = harness_.OpenS3();
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
  }

  void Put(std::string_view key, std::string_view content) {
    auto writer = store_->Create(key);
    ASSERT_TRUE(writer) << writer.error().message;
    ASSERT_TRUE((*writer)->Write(Bytes(content)));
    auto info = (*writer)->Commit();
    ASSERT_TRUE(info) << info.error().message;
  }

  Result<std::unique_ptr<S3ObjectStore>> WithCredentials(std::string key_id, std::string secret) {
    sigv4::Credentials credentials{std::move(key_id), std::move(secret), ""};
    return harness_.OpenS3(&credentials);
  }

  test::S3ObjectStoreHarness harness_;
  std::unique_ptr<S3ObjectStore> store_;
};

// A pattern that differs at every offset, so misplaced bytes are caught.
std::string Pattern(size_t size, unsigned seed) {
  std::string s(size, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST_F(S3Live, AWrongSecretIsPermissionDeniedWithAClearMessage) {
  Put("exists", "x");
  auto wrong = WithCredentials(store_->config().credentials.access_key_id, "not-the-secret");
  ASSERT_TRUE(wrong) << wrong.error().message;
  const std::string expected = "S3 rejected the request signature: check AWS_SECRET_ACCESS_KEY";

  auto ping = (*wrong)->Ping();
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(ping.error().message, expected);

  auto stat = (*wrong)->Stat("exists");
  ASSERT_FALSE(stat);
  EXPECT_EQ(stat.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(stat.error().message, expected);

  auto writer = (*wrong)->Create("denied");
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->Write(Bytes("bytes")));
  auto commit = (*writer)->Commit();
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(commit.error().message, expected);
}

TEST_F(S3Live, AnUnknownAccessKeyIsPermissionDenied) {
  auto unknown = WithCredentials("VMP3NOSUCHKEY", "whatever");
  ASSERT_TRUE(unknown);
  auto ping = (*unknown)->Ping();
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(ping.error().message.find("AWS_ACCESS_KEY_ID"), std::string::npos)
      << ping.error().message;
}

TEST_F(S3Live, AMissingBucketIsNotFoundAndNamed) {
  S3Config config = store_->config();
  config.bucket = "vmp3-no-such-bucket-" + std::to_string(std::random_device{}());
  auto missing = S3ObjectStore::FromConfig(config);
  ASSERT_TRUE(missing);
  auto ping = (*missing)->Ping();
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, ErrorCode::kNotFound);
  EXPECT_NE(ping.error().message.find(config.bucket), std::string::npos) << ping.error().message;
}

TEST_F(S3Live, AnAbortedWriterLeavesNoMultipartUpload) {
  const size_t part = store_->config().part_size;
  const std::string chunk = Pattern(part + 1000, 1);
  {
    auto writer = store_->Create("big/aborted");
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->Write(Bytes(chunk)));
    auto uploads = store_->ListMultipartUploads();
    ASSERT_TRUE(uploads) << uploads.error().message;
    ASSERT_EQ(uploads->size(), 1u) << "one full part was sent, so an upload is in progress";
    EXPECT_EQ((*uploads)[0].key, "big/aborted");
    (*writer)->Abort();
    uploads = store_->ListMultipartUploads();
    ASSERT_TRUE(uploads) << uploads.error().message;
    EXPECT_TRUE(uploads->empty()) << uploads->size() << " upload(s) left behind";
  }
  {
    auto writer = store_->Create("big/dropped");
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->Write(Bytes(chunk)));
    ASSERT_EQ(store_->ListMultipartUploads()->size(), 1u);
  }  // destroyed without Commit
  auto uploads = store_->ListMultipartUploads();
  ASSERT_TRUE(uploads) << uploads.error().message;
  EXPECT_TRUE(uploads->empty()) << uploads->size() << " upload(s) left behind";
  EXPECT_EQ(store_->Stat("big/aborted").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->Stat("big/dropped").error().code, ErrorCode::kNotFound);
}

// The janitor's sweep for uploads a dead process left: by age, never a younger one.
TEST_F(S3Live, AbandonedUploadsAreAbortedByAge) {
  const size_t part = store_->config().part_size;
  auto writer = store_->Create("big/abandoned");
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->Write(Bytes(Pattern(part + 1000, 3))));
  auto uploads = store_->ListMultipartUploads();
  ASSERT_TRUE(uploads) << uploads.error().message;
  ASSERT_EQ(uploads->size(), 1u);
  const int64_t now = std::time(nullptr);
  EXPECT_NEAR(static_cast<double>((*uploads)[0].initiated_unix), static_cast<double>(now), 60)
      << "the start time is read from S3's listing";

  auto young = store_->AbortAbandonedWrites(std::chrono::hours(1));
  ASSERT_TRUE(young) << young.error().message;
  EXPECT_EQ(*young, 0) << "an upload started seconds ago is not abandoned";
  EXPECT_EQ(store_->ListMultipartUploads()->size(), 1u);

  auto old = store_->AbortAbandonedWrites(std::chrono::seconds(0));
  ASSERT_TRUE(old) << old.error().message;
  EXPECT_EQ(*old, 1);
  EXPECT_TRUE(store_->ListMultipartUploads()->empty());
  // The writer whose upload was swept cannot commit a partial object.
  auto committed = (*writer)->Commit();
  EXPECT_FALSE(committed);
  EXPECT_EQ(store_->Stat("big/abandoned").error().code, ErrorCode::kNotFound);
}

TEST_F(S3Live, AMultipartUploadInProgressIsNotListed) {
  const size_t part = store_->config().part_size;
  Put("listed/done", "done");
  auto writer = store_->Create("listed/uploading");
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->Write(Bytes(Pattern(part + 1000, 8))));
  ASSERT_EQ(store_->ListMultipartUploads()->size(), 1u) << "a part is on the server";
  auto listing = store_->List("listed/", "", 1000);
  ASSERT_TRUE(listing) << listing.error().message;
  ASSERT_EQ(listing->objects.size(), 1u);
  EXPECT_EQ(listing->objects[0].key, "listed/done") << "keys come without the URL's prefix";
  ASSERT_TRUE((*writer)->Commit());
  listing = store_->List("listed/", "", 1000);
  ASSERT_TRUE(listing) << listing.error().message;
  ASSERT_EQ(listing->objects.size(), 2u);
  EXPECT_EQ(listing->objects[1].key, "listed/uploading");
  EXPECT_EQ(listing->objects[1].size, part + 1000);
}

TEST_F(S3Live, AMultipartObjectIsWholeAndLeavesNoUpload) {
  const size_t part = store_->config().part_size;
  const std::string content = Pattern(2 * part + part / 2, 2);
  Put("big/whole", content);
  auto info = store_->Stat("big/whole");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->size, content.size());
  EXPECT_TRUE(store_->ListMultipartUploads()->empty());
}

// Fetches a URL with plain libcurl, as a browser following a redirect would.
struct Fetched {
  long status = 0;
  std::string body;
};
Fetched Fetch(const std::string& url, const char* range = nullptr) {
  Fetched fetched;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* user) {
        static_cast<std::string*>(user)->append(data, size * count);
        return size * count;
      });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &fetched.body);
  if (range) curl_easy_setopt(curl, CURLOPT_RANGE, range);
  curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &fetched.status);
  curl_easy_cleanup(curl);
  return fetched;
}

TEST_F(S3Live, APresignedUrlDownloadsWithoutCredentials) {
  const std::string content = Pattern(100'000, 3);
  Put("outputs/presigned.mp3", content);
  auto url = store_->PresignedGetUrl("outputs/presigned.mp3", 300s);
  ASSERT_TRUE(url) << url.error().message;

  Fetched whole = Fetch(*url);
  EXPECT_EQ(whole.status, 200);
  EXPECT_TRUE(whole.body == content) << whole.body.size() << " bytes differ";

  Fetched part = Fetch(*url, "1000-1999");
  EXPECT_EQ(part.status, 206);
  EXPECT_TRUE(part.body == content.substr(1000, 1000));

  std::string tampered = *url;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_EQ(Fetch(tampered).status, 403);
  std::string other_key = *url;
  other_key.replace(other_key.find("presigned.mp3"), 9, "presignes");
  EXPECT_EQ(Fetch(other_key).status, 403) << "the signature covers the key";
}

TEST_F(S3Live, AReaderFailsWhenItsObjectIsReplaced) {
  // Larger than one read window, so the second read is a new ranged GET.
  const size_t size = 3 * store_->config().read_window;
  Put("replaced", Pattern(size, 4));
  auto reader = store_->Open("replaced");
  ASSERT_TRUE(reader) << reader.error().message;
  std::string buffer(100, '\0');
  ASSERT_TRUE((*reader)->Read(std::as_writable_bytes(std::span<char>(buffer))));
  Put("replaced", Pattern(size, 5));
  ASSERT_TRUE((*reader)->Seek(size - 100));
  auto read = (*reader)->Read(std::as_writable_bytes(std::span<char>(buffer)));
  ASSERT_FALSE(read) << "read bytes of another version";
  EXPECT_EQ(read.error().code, ErrorCode::kConflict) << read.error().message;
}

// A window fetched ahead before the object was replaced holds the old version's bytes: the
// reader hands those out, then fails; it never mixes in the new version.
TEST_F(S3Live, AReaderWithReadAheadNeverMixesVersions) {
  const size_t size = 8 * store_->config().read_window;
  const std::string v1 = Pattern(size, 6);
  Put("replaced-ahead", v1);
  auto reader = store_->Open("replaced-ahead");
  ASSERT_TRUE(reader) << reader.error().message;
  (*reader)->ReadAhead(2 * store_->config().read_window);
  std::string buffer(1000, '\0');
  ASSERT_TRUE((*reader)->Read(std::as_writable_bytes(std::span<char>(buffer))));
  Put("replaced-ahead", Pattern(size, 7));
  std::string rest;
  Status failed;
  for (;;) {
    auto n = (*reader)->Read(std::as_writable_bytes(std::span<char>(buffer)));
    if (!n) {
      failed = tl::unexpected(n.error());
      break;
    }
    if (*n == 0) break;
    rest.append(buffer.data(), *n);
  }
  EXPECT_TRUE(rest == v1.substr(1000, rest.size())) << "read bytes of another version";
  ASSERT_FALSE(failed) << "the whole object was read: the old version outlived its replacement";
  EXPECT_EQ(failed.error().code, ErrorCode::kConflict) << failed.error().message;
}

TEST_F(S3Live, RemoveOfAMissingObjectSucceeds) { EXPECT_TRUE(store_->Remove("never/written")); }

}  // namespace
}  // namespace vmp3
