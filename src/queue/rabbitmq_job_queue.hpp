// JobQueue on RabbitMQ (rabbitmq-c), for the distributed mode.
//
// Topology (declared at open, all durable; names prefixed by `prefix`, default "vmp3"):
//   exchange PREFIX.jobs (direct) ─convert─▶ quorum queue PREFIX.convert
//       x-delivery-limit = max_attempts (a consumer that keeps dying dead-letters the job)
//       x-dead-letter-exchange = PREFIX.dead
//   exchange PREFIX.retry (direct) ─▶ queue PREFIX.convert.retry (per-message TTL = the delay,
//       then dead-lettered back into PREFIX.jobs)
//   exchange PREFIX.dead (direct) ─▶ queue PREFIX.convert.dead
//   exchange PREFIX.events (topic): job lifecycle events (job.queued, job.started, job.done,
//       job.failed) for roles such as the notifier (PublishEvent).
//
// Semantics match the JobQueue contract: messages are persistent and published with publisher
// confirms (Publish returns only after the broker confirmed); a delivery is acked only by Ack.
// The attempt number is the header x-vmp3-attempt (attempts spent before this message was
// republished) plus the broker's x-delivery-count plus one, so Retry (republish to the delay
// queue, counted) and Release (republish at once, not counted) keep exact counts. A lease is the
// consumer's connection: a converter that dies loses its channel and the broker redelivers.
// Heartbeat is therefore a no-op. Depth is the ready count plus the deliveries this process holds.
//
// Threading: each thread that calls Take gets its own connection (prefetch 1); publishing uses
// one shared connection under a mutex. Broken connections are reopened on next use.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "queue/job_queue.hpp"

namespace vmp3 {

struct AmqpTarget {
  std::string host = "127.0.0.1";
  int port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  std::string prefix = "vmp3";

  // amqp://user:pass@host:port/vhost?prefix=NAME (vhost percent-encoded; "%2f" is "/").
  static Result<AmqpTarget> Parse(std::string_view url);
};

class RabbitMqJobQueue final : public JobQueue {
 public:
  static Result<std::unique_ptr<RabbitMqJobQueue>> Open(const AmqpTarget& target,
                                                        const JobQueueOptions& options);
  ~RabbitMqJobQueue() override;

  Status Publish(std::string_view job_id) override;
  Result<std::optional<Delivery>> Take(std::chrono::milliseconds wait) override;
  Status Ack(const Delivery& delivery) override;
  Result<bool> Retry(const Delivery& delivery, std::chrono::milliseconds delay) override;
  Status Release(const Delivery& delivery) override;
  Status Heartbeat(const Delivery& delivery) override;
  Result<uint64_t> Depth() override;
  Result<std::vector<std::string>> DeadLetters() override;
  void Interrupt() override;
  Status Ping() override;
  std::string Describe() const override;

  // Publishes to the PREFIX.events topic exchange, routing key = the event name.
  void PublishLifecycle(std::string_view event, std::string_view json) override;

 private:
  class Connection;
  struct Consumer;
  RabbitMqJobQueue(AmqpTarget target, JobQueueOptions options);
  Status Republish(const std::string& exchange, std::string_view job_id, int spent_attempts,
                   std::optional<std::chrono::milliseconds> ttl);
  Result<Consumer*> ConsumerForThisThread();
  Result<Consumer*> ConsumerFor(const Delivery& delivery, uint64_t* tag);
  Status Settle(const Delivery& delivery, bool ack);

  AmqpTarget target_;
  JobQueueOptions options_;
  std::mutex publish_mu_;
  std::unique_ptr<Connection> publisher_;
  std::mutex consumers_mu_;
  std::map<std::thread::id, std::unique_ptr<Consumer>> consumers_;
  std::atomic<bool> interrupted_{false};
  std::atomic<int64_t> held_{0};
};

}  // namespace vmp3
