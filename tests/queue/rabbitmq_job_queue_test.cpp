// RabbitMqJobQueue's own parts; its behaviour as a JobQueue is in job_queue_contract_test.cpp.
// Here: lifecycle events, and the queue under broker faults (a resource alarm, a frozen broker):
// every call fails within its bound, nothing taken is kept from other consumers, and everything
// works again once the broker does.
#include "queue/rabbitmq_job_queue.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <set>

#include "common/deadline.hpp"
#include "support/fixtures.hpp"
#include "support/test_servers.hpp"

namespace vmp3 {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Handles on one fresh queue (its own prefix) on the broker of VMP3_TEST_AMQP_URL.
class RabbitMqJobQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("VMP3_TEST_AMQP_URL");
    if (!url) GTEST_SKIP() << "set VMP3_TEST_AMQP_URL to test against RabbitMQ";
    auto target = AmqpTarget::Parse(url);
    ASSERT_TRUE(target) << target.error().message;
    target_ = *target;
    target_.prefix = "test-" + test::TempDir().filename().string();
  }

  std::unique_ptr<RabbitMqJobQueue> Open(const JobQueueOptions& options = {}) {
    auto queue = RabbitMqJobQueue::Open(target_, options);
    EXPECT_TRUE(queue) << queue.error().message;
    return queue ? std::move(*queue) : nullptr;
  }

  static std::optional<Delivery> Take(JobQueue& queue, std::chrono::milliseconds wait) {
    auto taken = queue.Take(wait);
    EXPECT_TRUE(taken) << taken.error().message;
    return taken ? *taken : std::nullopt;
  }

  AmqpTarget target_;
};

TEST_F(RabbitMqJobQueueTest, LifecycleEventsGoToTheEventsTopicExchange) {
  auto q = Open();
  ASSERT_TRUE(q);
  // A listener, as a notifier would bind one.
  auto listener = AmqpConnection::Open(target_, {});
  ASSERT_TRUE(listener) << listener.error().message;
  const std::string inbox = target_.prefix + ".inbox";
  ASSERT_TRUE((*listener)->DeclareQueue(inbox, {}));
  ASSERT_TRUE((*listener)->BindQueue(inbox, target_.prefix + ".events", "job.*"));

  std::shared_ptr<LifecyclePublisher> events = q->LifecycleEvents();
  ASSERT_TRUE(events);
  ASSERT_TRUE(events->Publish("job.done", R"({"id":"j1"})"));
  // Nobody listening to an event is fine: not an error.
  ASSERT_TRUE(events->Publish("other.event", "{}"));
  q.reset();  // the publisher shares the queue's connection and may outlive it
  ASSERT_TRUE(events->Publish("job.queued", R"({"id":"j2"})"));

  std::vector<std::string> bodies;
  for (;;) {
    auto got = (*listener)->Get(inbox);
    ASSERT_TRUE(got) << got.error().message;
    if (!*got) break;
    bodies.push_back((*got)->body);
  }
  EXPECT_EQ(bodies, (std::vector<std::string>{R"({"id":"j1"})", R"({"id":"j2"})"}));
}

class RabbitMqJobQueueFaultsTest : public RabbitMqJobQueueTest {
 protected:
  void SetUp() override {
    RabbitMqJobQueueTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto servers = test::TestServers::FromEnvironment();
    if (!servers) GTEST_SKIP() << "set VMP3_TEST_SERVERS_DIR to put the broker into faults";
    servers_.emplace(std::move(*servers));
  }

  std::optional<test::TestServers> servers_;
};

TEST_F(RabbitMqJobQueueFaultsTest, PublishFailsFastDuringAResourceAlarmAndWorksAfterIt) {
  auto q = Open();
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("before"));
  {
    test::MemoryAlarm alarm(*servers_);
    for (int i = 0; i < 2; ++i) {
      ScopedDeadline request(DeadlineClock::now() + 2s);
      auto start = Clock::now();
      Status published = q->Publish("during");
      const double seconds = SecondsSince(start);
      ASSERT_FALSE(published);
      EXPECT_EQ(published.error().code, ErrorCode::kUnavailable);
      EXPECT_NE(published.error().message.find(
                    "RabbitMQ refuses new messages: a resource alarm is active (memory or disk)"),
                std::string::npos)
          << published.error().message;
      EXPECT_LT(seconds, 3.0);
      std::printf("[ measured ] Publish #%d in a resource alarm failed after %.3f s\n", i + 1,
                  seconds);
    }
    // Reading the queue does not publish: it keeps working in the alarm.
    auto depth = q->Depth();
    ASSERT_TRUE(depth) << depth.error().message;
    EXPECT_GE(*depth, 1u);
    EXPECT_TRUE(q->Ping());
    alarm.End();
  }
  ASSERT_TRUE(q->Publish("after"));
  // A new handle (a new connection) publishes too.
  auto other = Open();
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->Publish("after-2"));
}

TEST_F(RabbitMqJobQueueFaultsTest, AJobThatCannotBeMovedInAnAlarmIsGivenBackAtOnce) {
  const JobQueueOptions options{.max_attempts = 5};
  auto first = Open(options);
  auto second = Open(options);
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(first->Publish("job-1"));
  auto taken = Take(*first, 5s);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->attempt, 1);
  {
    test::MemoryAlarm alarm(*servers_);
    // Release republishes the job, which the alarm blocks: the delivery goes back to the broker
    // instead of staying unacknowledged with this handle.
    auto start = Clock::now();
    Status released = first->Release(*taken);
    ASSERT_FALSE(released);
    EXPECT_EQ(released.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(released.error().message.find("resource alarm"), std::string::npos)
        << released.error().message;
    EXPECT_LT(SecondsSince(start), 1.0);
    EXPECT_EQ(first->Ack(*taken).error().code, ErrorCode::kConflict) << "the lease was given up";

    // Another consumer gets it at once, alarm or not (consuming is never blocked). The broker
    // counted the lost delivery, as after a crash.
    auto again = Take(*second, 5s);
    ASSERT_TRUE(again) << "the job was not given back";
    EXPECT_EQ(again->job_id, "job-1");
    EXPECT_EQ(again->attempt, 2);
    // Retry cannot republish either: given back again, this attempt counted.
    auto retried = second->Retry(*again, 0ms);
    ASSERT_FALSE(retried);
    EXPECT_EQ(retried.error().code, ErrorCode::kUnavailable);
    alarm.End();
  }
  // After the alarm a third consumer takes it with the right count and settles it. Copies that
  // were in flight when the alarm began arrive too once the broker reads on (at least once).
  auto third = Open(options);
  ASSERT_TRUE(third);
  auto after = Take(*third, 5s);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->job_id, "job-1");
  EXPECT_EQ(after->attempt, 3);
  ASSERT_TRUE(third->Ack(*after));
  int copies = 0;
  while (auto copy = Take(*third, 1s)) {
    EXPECT_EQ(copy->job_id, "job-1");
    ASSERT_TRUE(third->Ack(*copy));
    ++copies;
  }
  std::printf("[ measured ] %d in-flight cop%s of the job arrived after the alarm\n", copies,
              copies == 1 ? "y" : "ies");
  EXPECT_LE(copies, 2) << "at most one per blocked publishing connection";
}

TEST_F(RabbitMqJobQueueFaultsTest, AFrozenBrokerFailsEveryCallWithinItsBoundAndWorksAfter) {
  target_.timeout = 2000ms;
  auto q = Open();
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Publish("job-1"));
  auto taken = Take(*q, 5s);  // every connection of the handle is open now
  ASSERT_TRUE(taken);
  {
    test::BrokerStall stall(*servers_);
    auto start = Clock::now();
    Status published = [&] {
      ScopedDeadline request(DeadlineClock::now() + 1s);
      return q->Publish("job-2");
    }();
    const double within_deadline = SecondsSince(start);
    ASSERT_FALSE(published);
    EXPECT_EQ(published.error().code, ErrorCode::kUnavailable);
    EXPECT_LT(within_deadline, 1.5) << published.error().message;

    start = Clock::now();
    published = q->Publish("job-3");  // reconnects: the login cannot finish
    const double within_timeout = SecondsSince(start);
    ASSERT_FALSE(published);
    EXPECT_EQ(published.error().code, ErrorCode::kUnavailable);
    EXPECT_LT(within_timeout, 2.5) << published.error().message;
    std::printf("[ measured ] %s\n", published.error().message.c_str());

    // The held job cannot be released: given back, to be redelivered once the broker runs.
    start = Clock::now();
    EXPECT_FALSE(q->Release(*taken));
    const double release = SecondsSince(start);
    EXPECT_LT(release, 2.5);
    start = Clock::now();
    auto depth = q->Depth();
    const double inspect = SecondsSince(start);
    EXPECT_FALSE(depth);
    EXPECT_LT(inspect, 2.5);

    start = Clock::now();
    auto none = q->Take(500ms);
    const double take = SecondsSince(start);
    ASSERT_FALSE(none) << "a stalled broker cannot hand out a job";
    EXPECT_EQ(none.error().code, ErrorCode::kUnavailable);
    EXPECT_LT(take, 3.0) << "the wait plus the timeout: " << none.error().message;

    std::printf(
        "[ measured ] frozen broker (timeout 2 s): Publish fails after %.3f s with a 1 s "
        "deadline, %.3f s without; Take(0.5 s) after %.3f s; Depth after %.3f s; Release after "
        "%.3f s\n",
        within_deadline, within_timeout, take, inspect, release);
    stall.End();
  }
  // Running again: the next calls reconnect.
  ASSERT_TRUE(q->Publish("job-4"));
  std::set<std::string> seen;
  while (auto d = Take(*q, 2s)) {
    seen.insert(d->job_id);
    ASSERT_TRUE(q->Ack(*d));
  }
  // job-1 came back; job-4 is there; job-2 and job-3 may be (unconfirmed, maybe stored).
  EXPECT_TRUE(seen.count("job-1")) << "the job given back in the stall was lost";
  EXPECT_TRUE(seen.count("job-4"));
}

}  // namespace
}  // namespace vmp3
