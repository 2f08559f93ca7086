// AmqpConnection: the URL, and the bounded waits against something that does not answer (a
// socket that never speaks AMQP) or a real broker put into a fault: a resource alarm, SIGSTOP.
#include "queue/amqp_connection.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common/deadline.hpp"
#include "support/fixtures.hpp"
#include "support/test_servers.hpp"

namespace vmp3 {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using test::SecondsSince;

TEST(AmqpTargetTest, DefaultsAndOverrides) {
  auto bare = AmqpTarget::Parse("amqp://");
  ASSERT_TRUE(bare) << bare.error().message;
  EXPECT_EQ(bare->host, "127.0.0.1");
  EXPECT_EQ(bare->port, 5672);
  EXPECT_EQ(bare->user, "guest");
  EXPECT_EQ(bare->password, "guest");
  EXPECT_EQ(bare->vhost, "/");
  EXPECT_EQ(bare->prefix, "vmp3");
  EXPECT_EQ(bare->timeout, 5000ms);

  auto full = AmqpTarget::Parse("amqp://vmp3:s3cret@rabbit:5671/%2f?prefix=staging&timeout_ms=250");
  ASSERT_TRUE(full) << full.error().message;
  EXPECT_EQ(full->host, "rabbit");
  EXPECT_EQ(full->port, 5671);
  EXPECT_EQ(full->user, "vmp3");
  EXPECT_EQ(full->password, "s3cret");
  EXPECT_EQ(full->vhost, "/");
  EXPECT_EQ(full->prefix, "staging");
  EXPECT_EQ(full->timeout, 250ms);

  EXPECT_EQ(AmqpTarget::Parse("amqp://h/tenant")->vhost, "tenant");
  EXPECT_FALSE(AmqpTarget::Parse("amqp://h/?prefix="));
}

TEST(AmqpTargetTest, RejectsABadTimeoutWithoutEchoingTheUrl) {
  for (const char* url : {"amqp://u:hunter2@h/?timeout_ms=0", "amqp://u:hunter2@h/?timeout_ms=-5",
                          "amqp://u:hunter2@h/?timeout_ms=5s", "amqp://u:hunter2@h/?timeout_ms=",
                          "amqp://u:hunter2@h/?timeout_ms=3600001"}) {
    auto target = AmqpTarget::Parse(url);
    ASSERT_FALSE(target) << url;
    EXPECT_EQ(target.error().code, ErrorCode::kInvalidArgument) << url;
    EXPECT_NE(target.error().message.find("timeout_ms"), std::string::npos)
        << target.error().message;
    EXPECT_EQ(target.error().message.find("hunter2"), std::string::npos) << target.error().message;
  }
  EXPECT_EQ(AmqpTarget::Parse("amqp://h/?timeout_ms=3600000")->timeout, 3600000ms);
}

// A TCP socket on 127.0.0.1 that accepts connections (the kernel completes them into the
// backlog) but never says a word: a broker that hangs before the AMQP handshake.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(fd_, 16) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len)) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(AmqpConnectionTest, ABrokerThatNeverAnswersFailsTheOpenWithinTheTimeout) {
  SilentListener silent;
  AmqpTarget target{.port = silent.port(), .timeout = 300ms};
  auto start = Clock::now();
  auto opened = AmqpConnection::Open(target, {});
  const double seconds = SecondsSince(start);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(opened.error().message.find("did not complete the login within 300 ms"),
            std::string::npos)
      << opened.error().message;
  EXPECT_GE(seconds, 0.25);
  EXPECT_LT(seconds, 1.0);
}

TEST(AmqpConnectionTest, TheThreadsDeadlineBoundsTheOpenBelowTheTimeout) {
  SilentListener silent;
  AmqpTarget target{.port = silent.port(), .timeout = 5000ms};
  ScopedDeadline request(DeadlineClock::now() + 200ms);
  auto start = Clock::now();
  auto opened = AmqpConnection::Open(target, {});
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_LT(SecondsSince(start), 0.8) << opened.error().message;
}

TEST(AmqpConnectionTest, APassedDeadlineFailsWithoutConnecting) {
  SilentListener silent;
  AmqpTarget target{.port = silent.port()};
  ScopedDeadline request(DeadlineClock::now() - 1ms);
  auto opened = AmqpConnection::Open(target, {});
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(opened.error().message.find("deadline passed"), std::string::npos)
      << opened.error().message;
}

// A connection to the broker of VMP3_TEST_AMQP_URL with `timeout`, and a classic queue of its own.
class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("VMP3_TEST_AMQP_URL");
    if (!url) GTEST_SKIP() << "set VMP3_TEST_AMQP_URL to test against RabbitMQ";
    auto target = AmqpTarget::Parse(url);
    ASSERT_TRUE(target) << target.error().message;
    target_ = *target;
    target_.timeout = 1000ms;
    queue_ = "test-" + test::TempDir().filename().string() + ".amqp";
    auto admin = Open({});
    ASSERT_TRUE(admin);
    ASSERT_TRUE(admin->DeclareQueue(queue_, {}));
  }

  std::unique_ptr<AmqpConnection> Open(const AmqpConnection::Options& options) {
    auto opened = AmqpConnection::Open(target_, options);
    EXPECT_TRUE(opened) << opened.error().message;
    return opened ? std::move(*opened) : nullptr;
  }

  // Publishes `body` into the test queue through the default exchange.
  Status Publish(AmqpConnection& c, std::string_view body) {
    return c.Publish({.exchange = "", .routing_key = queue_, .body = body});
  }

  uint64_t Count() {
    auto c = Open({});
    if (!c) return ~uint64_t{0};
    auto count = c->MessageCount(queue_);
    EXPECT_TRUE(count) << count.error().message;
    return count ? *count : ~uint64_t{0};
  }

  AmqpTarget target_;
  std::string queue_;
};

TEST_F(BrokerTest, PublishesWaitForTheConfirmAndAnUnroutableOneFails) {
  auto c = Open({.confirms = true});
  ASSERT_TRUE(c);
  ASSERT_TRUE(Publish(*c, "one"));
  auto lost = c->Publish({.exchange = "", .routing_key = queue_ + ".missing", .body = "two"});
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(lost.error().message.find("has no queue"), std::string::npos) << lost.error().message;
  EXPECT_FALSE(c->broken()) << "a returned message leaves the connection in step";
  ASSERT_TRUE(Publish(*c, "three"));
  EXPECT_EQ(Count(), 2u);

  auto taker = Open({});
  ASSERT_TRUE(taker);
  auto first = taker->Get(queue_);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_TRUE(*first);
  EXPECT_EQ((*first)->body, "one");
}

class AmqpConnectionFaultsTest : public BrokerTest {
 protected:
  void SetUp() override {
    BrokerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto servers = test::TestServers::FromEnvironment();
    if (!servers) GTEST_SKIP() << "set VMP3_TEST_SERVERS_DIR to put the broker into faults";
    servers_.emplace(std::move(*servers));
  }

  std::optional<test::TestServers> servers_;
};

TEST_F(AmqpConnectionFaultsTest, ABlockedPublisherFailsAtOnceAndWorksWhenTheAlarmClears) {
  auto c = Open({.confirms = true});
  ASSERT_TRUE(c);
  ASSERT_TRUE(Publish(*c, "before"));
  {
    test::MemoryAlarm alarm(*servers_);
    // The broker answers the first publish with connection.blocked, holding the message.
    auto start = Clock::now();
    auto held = Publish(*c, "held");
    const double first = SecondsSince(start);
    ASSERT_FALSE(held);
    EXPECT_EQ(held.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(held.error().message.find(
                  "RabbitMQ refuses new messages: a resource alarm is active (memory or disk)"),
              std::string::npos)
        << held.error().message;
    EXPECT_TRUE(c->blocked());
    EXPECT_FALSE(c->broken());
    EXPECT_LT(first, 0.5) << "the broker said it is blocked: no need to wait for the timeout";
    // Known blocked: refused without sending.
    start = Clock::now();
    auto refused = Publish(*c, "refused");
    const double second = SecondsSince(start);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("resource alarm"), std::string::npos);
    EXPECT_LT(second, 0.05);
    std::printf("[ measured ] publish in an alarm fails after %.3f s (first), %.4f s (next)\n",
                first, second);
    // A connection that only reads is not blocked.
    EXPECT_EQ(Count(), 1u);
    alarm.End();
  }
  // connection.unblocked: the same connection publishes again. The held message was stored
  // once the broker read on: it was never refused.
  ASSERT_TRUE(Publish(*c, "after"));
  EXPECT_FALSE(c->blocked());
  EXPECT_EQ(Count(), 3u) << "before, held, after";
}

TEST_F(AmqpConnectionFaultsTest, AStalledBrokerFailsEveryWaitWithinTheTimeout) {
  auto publisher = Open({.confirms = true});
  auto reader = Open({});
  ASSERT_TRUE(publisher && reader);
  ASSERT_TRUE(Publish(*publisher, "before"));
  {
    test::BrokerStall stall(*servers_);
    auto start = Clock::now();
    auto unconfirmed = Publish(*publisher, "stalled");
    const double publish = SecondsSince(start);
    ASSERT_FALSE(unconfirmed);
    EXPECT_EQ(unconfirmed.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(unconfirmed.error().message.find("did not confirm a message within 1000 ms"),
              std::string::npos)
        << unconfirmed.error().message;
    EXPECT_TRUE(publisher->broken()) << "its state is unknown: it must not be used again";
    EXPECT_GE(publish, 0.9);
    EXPECT_LT(publish, 1.5);

    start = Clock::now();
    auto count = reader->MessageCount(queue_);
    const double rpc = SecondsSince(start);
    ASSERT_FALSE(count);
    EXPECT_NE(count.error().message.find("no answer within 1000 ms"), std::string::npos)
        << count.error().message;
    EXPECT_LT(rpc, 1.5);

    start = Clock::now();
    auto opened = AmqpConnection::Open(target_, {});
    const double open = SecondsSince(start);
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
    EXPECT_LT(open, 1.5) << opened.error().message;
    std::printf(
        "[ measured ] stalled broker: publish fails after %.3f s, queue.declare after %.3f s, "
        "connect+login after %.3f s (timeout 1 s)\n",
        publish, rpc, open);
  }
  // Resumed: a new connection works.
  auto again = Open({.confirms = true});
  ASSERT_TRUE(again);
  ASSERT_TRUE(Publish(*again, "after"));
}

}  // namespace
}  // namespace vmp3
