#include "queue/rabbitmq_job_queue.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "common/deadline.hpp"

namespace vmp3 {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kRoutingKey[] = "convert";
constexpr char kSpentHeader[] = "x-vmp3-attempt";  // attempts spent before a republish
constexpr char kDeliveryCountHeader[] = "x-delivery-count";

constexpr size_t kMaxDeadLetters = 10000;
// How often a waiting Take looks at Interrupt() and lets other threads use its connection.
constexpr milliseconds kWaitSlice(50);

// Sleeps until `fd` has something to read or `timeout` passes.
void WaitReadable(int fd, milliseconds timeout) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  ::poll(&p, 1, static_cast<int>(timeout.count()));
}

struct AmqpReceipt {
  uint64_t consumer = 0, generation = 0, tag = 0;
};

// "consumer.generation.tag"
std::optional<AmqpReceipt> ParseAmqpReceipt(std::string_view text) {
  AmqpReceipt r;
  for (uint64_t* field : {&r.consumer, &r.generation, &r.tag}) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *field);
    if (ec != std::errc()) return std::nullopt;
    text.remove_prefix(end - text.data());
    if (field != &r.tag) {
      if (!text.starts_with('.')) return std::nullopt;
      text.remove_prefix(1);
    }
  }
  if (!text.empty()) return std::nullopt;
  return r;
}

std::atomic<uint64_t> next_consumer_id{1};

// The AMQP heartbeat of a consumer connection: half the lease, so that the broker drops a
// connection that went silent (a hung taker) after about a lease, as it allows one to two
// missed heartbeats.
int ConsumerHeartbeat(const JobQueueOptions& options) {
  int64_t seconds = (options.lease.count() + 1999) / 2000;
  return static_cast<int>(std::clamp<int64_t>(seconds, 1, 65535));
}

// Lifecycle events over the queue's publishing connection.
class RabbitMqLifecyclePublisher final : public LifecyclePublisher {
 public:
  RabbitMqLifecyclePublisher(std::shared_ptr<AmqpSharedConnection> publisher, std::string exchange,
                             milliseconds timeout)
      : publisher_(std::move(publisher)), exchange_(std::move(exchange)), timeout_(timeout) {}

  Status Publish(std::string_view event, std::string_view json) override {
    ScopedDeadline call(DeadlineClock::now() + timeout_);
    return publisher_->Run([&](AmqpConnection& c) {
      return c.Publish({.exchange = exchange_,
                        .routing_key = event,
                        .body = json,
                        .content_type = "application/json",
                        .mandatory = false});  // nobody listening is fine
    });
  }

 private:
  const std::shared_ptr<AmqpSharedConnection> publisher_;
  const std::string exchange_;
  const milliseconds timeout_;
};

}  // namespace

struct RabbitMqJobQueue::Consumer {
  struct Held {
    std::string job_id;
    int attempt = 0;
  };

  const uint64_t id = next_consumer_id++;
  std::mutex mu;  // guards the members below; the connection is not thread-safe
  std::unique_ptr<AmqpConnection> connection;
  uint64_t generation = 0;        // bumps when the connection is dropped: its receipts are void
  std::map<uint64_t, Held> held;  // delivery tag → what was handed out, until settled
  bool consuming = false;         // a Take has a consumer open on the connection

  // Reads what the broker sent since, to notice that it closed the connection (an operator, or
  // its consumer_timeout). Only while no Take consumes: then no delivery can come, and Take
  // notices a close itself.
  Status CheckOpen() {
    if (consuming) return {};
    return connection->Poll();
  }

  // Drops the connection and the leases taken through it: the broker redelivers them.
  void Drop(std::atomic<int64_t>& held_count) {
    if (connection) connection->MarkBroken();  // no clean close: it may be out of step
    connection.reset();
    consuming = false;
    held_count -= static_cast<int64_t>(held.size());
    held.clear();
    ++generation;
  }

  // A new connection with prefetch 1: a consumer takes one message at a time.
  Status Connect(const AmqpTarget& target, int heartbeat, std::atomic<int64_t>& held_count) {
    Drop(held_count);
    auto opened = AmqpConnection::Open(target, {.heartbeat_seconds = heartbeat, .prefetch = 1});
    if (!opened) return tl::unexpected(opened.error());
    connection = std::move(*opened);
    return {};
  }
};

struct RabbitMqJobQueue::Lease {
  Consumer* consumer = nullptr;
  uint64_t generation = 0;
  uint64_t tag = 0;
  std::string job_id;
  int attempt = 0;
};

RabbitMqJobQueue::RabbitMqJobQueue(AmqpTarget target, JobQueueOptions options)
    : target_(std::move(target)),
      options_(options),
      jobs_exchange_(target_.prefix + ".jobs"),
      dead_exchange_(target_.prefix + ".dead"),
      events_exchange_(target_.prefix + ".events"),
      queue_(target_.prefix + ".convert"),
      delay_queue_(target_.prefix + ".convert.retry"),
      dead_queue_(target_.prefix + ".convert.dead"),
      publisher_(std::make_shared<AmqpSharedConnection>(target_,
                                                        AmqpConnection::Options{.confirms = true})),
      inspector_(target_, AmqpConnection::Options{}) {}

RabbitMqJobQueue::~RabbitMqJobQueue() = default;

Result<std::unique_ptr<RabbitMqJobQueue>> RabbitMqJobQueue::Open(const AmqpTarget& target,
                                                                 const JobQueueOptions& options) {
  if (auto s = ValidateJobQueueOptions(options); !s) return tl::unexpected(s.error());
  ScopedDeadline call(DeadlineClock::now() + target.timeout);
  std::unique_ptr<RabbitMqJobQueue> q(new RabbitMqJobQueue(target, options));
  auto conn = AmqpConnection::Open(target, {});
  if (!conn) return tl::unexpected(conn.error());
  AmqpConnection& c = **conn;

  const std::string routing_key = kRoutingKey;
  Status declared = c.DeclareExchange(q->jobs_exchange_, "direct");
  if (declared) declared = c.DeclareExchange(q->dead_exchange_, "direct");
  if (declared) declared = c.DeclareExchange(q->events_exchange_, "topic");
  if (declared) {
    declared = c.DeclareQueue(q->queue_, {{"x-queue-type", "quorum"},
                                          {"x-dead-letter-exchange", q->dead_exchange_},
                                          {"x-dead-letter-routing-key", routing_key}});
  }
  if (declared) {
    declared = c.DeclareQueue(q->delay_queue_, {{"x-dead-letter-exchange", q->jobs_exchange_},
                                                {"x-dead-letter-routing-key", routing_key}});
  }
  // Classic, so that browsing it (DeadLetters) puts every message back in its place.
  if (declared) declared = c.DeclareQueue(q->dead_queue_, {});
  if (declared) declared = c.BindQueue(q->queue_, q->jobs_exchange_, routing_key);
  if (declared) declared = c.BindQueue(q->dead_queue_, q->dead_exchange_, routing_key);
  if (!declared) return tl::unexpected(declared.error());
  // The publisher opens its own connection (with confirms) on first use.
  q->inspector_.Adopt(std::move(*conn));
  return q;
}

std::shared_ptr<LifecyclePublisher> RabbitMqJobQueue::LifecycleEvents() const {
  return std::make_shared<RabbitMqLifecyclePublisher>(publisher_, events_exchange_,
                                                      target_.timeout);
}

Status RabbitMqJobQueue::PublishJob(const std::string& exchange, const std::string& routing_key,
                                    std::string_view job_id, int spent_attempts, milliseconds ttl) {
  return publisher_->Run([&](AmqpConnection& c) {
    return c.Publish({.exchange = exchange,
                      .routing_key = routing_key,
                      .body = job_id,
                      .int_header_name = spent_attempts > 0 ? kSpentHeader : "",
                      .int_header_value = spent_attempts,
                      .ttl = ttl});
  });
}

Status RabbitMqJobQueue::PublishDelayed(std::string_view job_id, int spent_attempts,
                                        milliseconds delay) {
  if (delay.count() <= 0) return PublishJob(jobs_exchange_, kRoutingKey, job_id, spent_attempts);
  // Straight into the delay queue through the default exchange.
  return PublishJob("", delay_queue_, job_id, spent_attempts, delay);
}

Status RabbitMqJobQueue::Publish(std::string_view job_id) {
  if (Status valid = CheckQueuedJobId(job_id); !valid) return valid;
  ScopedDeadline call(DeadlineClock::now() + target_.timeout);
  return PublishJob(jobs_exchange_, kRoutingKey, job_id, 0);
}

RabbitMqJobQueue::Consumer& RabbitMqJobQueue::ConsumerForThisThread() {
  std::lock_guard lock(consumers_mu_);
  auto& slot = consumers_[std::this_thread::get_id()];
  if (!slot) slot = std::make_unique<Consumer>();
  return *slot;
}

Result<std::optional<Delivery>> RabbitMqJobQueue::Take(milliseconds wait) {
  // The wait for a job ends by the thread's deadline too; the broker's answers take at most the
  // timeout beyond it.
  wait = TimeBudget(std::max(wait, milliseconds(0)));
  const auto deadline = Clock::now() + wait;
  ScopedDeadline call(DeadlineClock::now() + wait + target_.timeout);
  Consumer& consumer = ConsumerForThisThread();
  for (;;) {
    if (interrupted_) return std::nullopt;
    uint64_t generation = 0;
    auto message = Receive(consumer, deadline, generation);
    if (!message) return tl::unexpected(message.error());
    if (!*message) return std::nullopt;
    auto delivery = HandOut(consumer, std::move(**message), generation);
    if (!delivery || *delivery) return delivery;
  }
}

Result<std::optional<AmqpMessage>> RabbitMqJobQueue::Receive(Consumer& c,
                                                             Clock::time_point deadline,
                                                             uint64_t& generation) {
  std::unique_lock lock(c.mu);
  std::optional<AmqpMessage> got;
  std::string consumer_tag;
  // The first ready message, or else a consumer to wait with.
  auto start = [&]() -> Status {
    auto first = c.connection->Get(queue_);
    if (!first) return tl::unexpected(first.error());
    got = std::move(*first);
    if (got || Clock::now() >= deadline) return {};
    auto tag = c.connection->Consume(queue_);
    if (!tag) return tl::unexpected(tag.error());
    consumer_tag = std::move(*tag);
    c.consuming = true;
    return {};
  };
  const int heartbeat = ConsumerHeartbeat(options_);
  const bool reused = c.connection && !c.connection->broken();
  if (!reused) {
    if (auto s = c.Connect(target_, heartbeat, held_); !s) return tl::unexpected(s.error());
  }
  Status started = start();
  if (!started && reused && c.connection->broken() && TimeBudget(target_.timeout).count() > 0) {
    // It broke while idle (e.g. the broker restarted): once more on a new connection.
    if (auto s = c.Connect(target_, heartbeat, held_); !s) return tl::unexpected(s.error());
    started = start();
  }
  if (!started) {
    c.Drop(held_);
    return tl::unexpected(started.error());
  }
  generation = c.generation;
  auto lost = [] {
    return MakeError(ErrorCode::kUnavailable,
                     "RabbitMQ: the connection was lost while waiting for a job");
  };

  if (!consumer_tag.empty()) {
    // Wait on the socket without holding the connection, so that Ack and Heartbeat from other
    // threads are not held up, and look at Interrupt() every slice.
    while (!interrupted_) {
      auto next = c.connection->ArrivedDelivery();
      if (!next) {
        c.Drop(held_);
        return tl::unexpected(next.error());
      }
      got = std::move(*next);
      const milliseconds left = TimeLeft(deadline);
      if (got || left.count() == 0) break;
      const int fd = c.connection->fd();
      lock.unlock();
      WaitReadable(fd, std::min(kWaitSlice, left));
      lock.lock();
      if (c.generation != generation) return lost();
    }
    auto late = c.connection->Cancel(consumer_tag);
    c.consuming = false;
    if (!late) {
      c.Drop(held_);
      return tl::unexpected(late.error());
    }
    if (!got) got = std::move(*late);
  }
  return got;
}

Result<std::optional<Delivery>> RabbitMqJobQueue::HandOut(Consumer& c, AmqpMessage message,
                                                          uint64_t generation) {
  const int attempt = static_cast<int>(message.IntHeader(kSpentHeader) +
                                       message.IntHeader(kDeliveryCountHeader) + 1);
  const bool dead = attempt > options_.max_attempts;
  if (dead || interrupted_) {
    // Out of attempts: its takers kept dying (the broker counted the deliveries), so it goes
    // to the dead letters rather than loop. Interrupted: it goes back untouched.
    Status moved =
        PublishJob(dead ? dead_exchange_ : jobs_exchange_, kRoutingKey, message.body, attempt - 1);
    std::lock_guard lock(c.mu);
    if (c.generation == generation) {
      // Acknowledged once its copy is stored; else back to the queue, counting a delivery.
      Status settled = moved ? c.connection->Ack(message.delivery_tag)
                             : c.connection->Reject(message.delivery_tag);
      if (!settled) c.Drop(held_);
    }
    if (!moved) return tl::unexpected(moved.error());
    if (dead) {
      spdlog::warn("queue: job {} dead-lettered: its taker was lost on each of {} attempts",
                   message.body, attempt - 1);
    }
    return std::nullopt;
  }
  std::lock_guard lock(c.mu);
  if (c.generation != generation) {
    return MakeError(ErrorCode::kUnavailable,
                     "RabbitMQ: the connection was lost while taking a job");
  }
  c.held.emplace(message.delivery_tag, Consumer::Held{message.body, attempt});
  ++held_;
  return Delivery{.job_id = std::move(message.body),
                  .attempt = attempt,
                  .receipt = fmt::format("{}.{}.{}", c.id, c.generation, message.delivery_tag)};
}

Result<RabbitMqJobQueue::Lease> RabbitMqJobQueue::FindLease(const Delivery& delivery, bool claim) {
  auto receipt = ParseAmqpReceipt(delivery.receipt);
  if (!receipt) {
    return MalformedReceipt(delivery);
  }
  Consumer* c = nullptr;
  {
    std::lock_guard lock(consumers_mu_);
    for (auto& [thread, consumer] : consumers_) {
      if (consumer->id == receipt->consumer) c = consumer.get();
    }
  }
  if (!c) return LeaseLost(delivery.job_id, "it was not taken through this queue handle");
  std::lock_guard lock(c->mu);
  if (c->generation != receipt->generation) {
    return LeaseLost(delivery.job_id, "the connection it was taken through was lost");
  }
  auto it = c->held.find(receipt->tag);
  if (it == c->held.end()) {
    return LeaseLost(delivery.job_id, "it was acked, retried or released already");
  }
  Lease lease{.consumer = c,
              .generation = receipt->generation,
              .tag = receipt->tag,
              .job_id = it->second.job_id,
              .attempt = it->second.attempt};
  if (claim) {
    c->held.erase(it);
    --held_;
  }
  return lease;
}

void RabbitMqJobQueue::GiveBack(const Lease& lease) {
  std::lock_guard lock(lease.consumer->mu);
  if (lease.consumer->generation != lease.generation) return;  // dropped already: requeued
  spdlog::warn("job {}: could not move it in the queue; giving it back to the broker",
               lease.job_id);
  lease.consumer->Drop(held_);
}

template <typename Op>
Status RabbitMqJobQueue::OnLeaseConnection(const Lease& lease, Op op) {
  Consumer& c = *lease.consumer;
  std::lock_guard lock(c.mu);
  if (c.generation != lease.generation) {
    return LeaseLost(lease.job_id,
                     "the connection it was taken through was lost; the broker delivers it again");
  }
  Status done = c.CheckOpen();
  if (done) done = op(*c.connection);
  if (!done) {
    c.Drop(held_);
    return LeaseLost(lease.job_id,
                     fmt::format("{}; the broker delivers it again", done.error().message));
  }
  return {};
}

Status RabbitMqJobQueue::Ack(const Delivery& delivery) {
  auto lease = FindLease(delivery, /*claim=*/true);
  if (!lease) return tl::unexpected(lease.error());
  return OnLeaseConnection(*lease, [&](AmqpConnection& c) { return c.Ack(lease->tag); });
}

Result<bool> RabbitMqJobQueue::Retry(const Delivery& delivery, milliseconds delay) {
  auto lease = FindLease(delivery, /*claim=*/true);
  if (!lease) return tl::unexpected(lease.error());
  ScopedDeadline call(DeadlineClock::now() + target_.timeout);
  // The attempt count comes from the lease, not from the caller's copy of the delivery.
  const bool dead = lease->attempt >= options_.max_attempts;
  Status moved = dead ? PublishJob(dead_exchange_, kRoutingKey, lease->job_id, lease->attempt)
                      : PublishDelayed(lease->job_id, lease->attempt, delay);
  if (!moved) {
    GiveBack(*lease);
    return tl::unexpected(moved.error());
  }
  auto acked = OnLeaseConnection(*lease, [&](AmqpConnection& c) { return c.Ack(lease->tag); });
  if (!acked) return tl::unexpected(acked.error());
  return dead;
}

Status RabbitMqJobQueue::Release(const Delivery& delivery) {
  auto lease = FindLease(delivery, /*claim=*/true);
  if (!lease) return tl::unexpected(lease.error());
  ScopedDeadline call(DeadlineClock::now() + target_.timeout);
  if (auto moved = PublishJob(jobs_exchange_, kRoutingKey, lease->job_id, lease->attempt - 1);
      !moved) {
    GiveBack(*lease);
    return moved;
  }
  return OnLeaseConnection(*lease, [&](AmqpConnection& c) { return c.Ack(lease->tag); });
}

Status RabbitMqJobQueue::Heartbeat(const Delivery& delivery) {
  auto lease = FindLease(delivery, /*claim=*/false);
  if (!lease) return tl::unexpected(lease.error());
  return OnLeaseConnection(*lease, [](AmqpConnection& c) { return c.SendHeartbeat(); });
}

Result<uint64_t> RabbitMqJobQueue::Depth() {
  ScopedDeadline call(DeadlineClock::now() + target_.timeout);
  auto ready = inspector_.Run([&](AmqpConnection& c) -> Result<uint64_t> {
    auto ready = c.MessageCount(queue_);
    if (!ready) return ready;
    auto delayed = c.MessageCount(delay_queue_);
    if (!delayed) return delayed;
    return *ready + *delayed;
  });
  if (!ready) return ready;
  return *ready + static_cast<uint64_t>(std::max<int64_t>(0, held_.load()));
}

Result<std::vector<std::string>> RabbitMqJobQueue::DeadLetters() {
  // Bounded per answer rather than as a whole: a long dead-letter queue takes a round trip per
  // message, and this runs in the background (a caller's own deadline still bounds it).
  return inspector_.Run([&](AmqpConnection& c) -> Result<std::vector<std::string>> {
    std::vector<std::string> ids;
    uint64_t last_tag = 0;
    auto give_back = [&](const Error& error) -> tl::unexpected<Error> {
      // What was taken so far goes back now, not when the connection closes.
      if (last_tag != 0 && !c.RequeueAll(last_tag)) c.MarkBroken();
      return tl::unexpected(error);
    };
    while (ids.size() < kMaxDeadLetters) {
      auto message = c.Get(dead_queue_);
      if (!message) return give_back(message.error());
      if (!*message) break;
      last_tag = (*message)->delivery_tag;
      ids.push_back(std::move((*message)->body));
    }
    if (last_tag != 0) {
      if (auto s = c.RequeueAll(last_tag); !s) return tl::unexpected(s.error());
    }
    return ids;
  });
}

void RabbitMqJobQueue::Interrupt() { interrupted_ = true; }

Status RabbitMqJobQueue::Ping() {
  ScopedDeadline call(DeadlineClock::now() + target_.timeout);
  auto ready = inspector_.Run([&](AmqpConnection& c) { return c.MessageCount(queue_); });
  if (!ready) return tl::unexpected(ready.error());
  return {};
}

std::string RabbitMqJobQueue::Describe() const {
  return fmt::format("amqp://{}@{}:{}/ (queue {})", target_.user, target_.host, target_.port,
                     queue_);
}

}  // namespace vmp3
