// JobQueue on RabbitMQ (rabbitmq-c), for the distributed mode.
//
// Topology (declared at open, all durable; names prefixed by `prefix`, default "vmp3"). It does
// not depend on JobQueueOptions, so processes with different options share it:
//   exchange PREFIX.jobs (direct) ─convert─▶ quorum queue PREFIX.convert
//       x-dead-letter-exchange = PREFIX.dead (for a delivery limit an operator sets by policy)
//   classic queue PREFIX.convert.retry: each message waits there for its own TTL (the Retry
//       delay), then is dead-lettered back into PREFIX.jobs
//   exchange PREFIX.dead (direct) ─convert─▶ classic queue PREFIX.convert.dead
//   exchange PREFIX.events (topic): job lifecycle events (job.queued, job.started, job.done,
//       job.failed, job.cancelled) for roles such as the notifier (LifecycleEvents()).
//
// How the contract maps onto the broker:
// - Publish is persistent, mandatory and waits for the publisher confirm.
// - Every call is bounded by the target's timeout (AmqpTarget::timeout, the URL's timeout_ms)
//   and by the calling thread's deadline (common/deadline.hpp), reconnecting included; Take by
//   its wait plus that timeout; DeadLetters, which reads the dead letters one by one, by the
//   timeout per answer. A broker that does not answer in time makes the call fail with
//   kUnavailable; so does a resource alarm, at once (amqp_connection.hpp says how).
// - A lease is the taker's connection. Take hands a message out unacknowledged; Ack acknowledges
//   it. When the taker's connection ends (the process died, or it stayed silent for about the
//   lease: the AMQP heartbeat is half the lease) the broker makes the message ready again and
//   counts the delivery (x-delivery-count). Heartbeat sends an AMQP heartbeat. A lease never
//   expires while its connection lives, so the contract's timed-lease cases do not apply. Ack
//   and Heartbeat first read what the broker sent, so they report kConflict once it has closed
//   the connection; an Ack sent as the connection dies may still see the job delivered again.
// - The attempt number is the header x-vmp3-attempt (attempts spent before the message was
//   republished) plus x-delivery-count plus one. Retry and Release republish the job (Retry with
//   the attempt counted, Release without) and then acknowledge the delivery, so a failure in
//   between may deliver the job twice but never loses it. When the republish fails (the broker
//   is down, stalled, or blocks publishers in a resource alarm) the delivery is given back at
//   once: its consumer connection is dropped, so the broker makes it ready again, counting the
//   delivery as it does after a crash (the next attempt is one higher, for Release too: the
//   broker keeps the count, and changing the header would take the republish that failed).
//   Take dead-letters a message whose attempt would pass max_attempts: its takers kept dying.
// - A retried job waits at least its delay. The broker expires messages in queue order, so a
//   short delay queued behind a longer one waits until that one is due (with delays of seconds
//   to a couple of minutes, as the converter uses, this stays small); a zero delay requeues at
//   once.
// - Depth is the ready messages of PREFIX.convert and PREFIX.convert.retry plus the deliveries this
//   process holds (leases held by other processes are not visible to it).
// - DeadLetters browses PREFIX.convert.dead (at most 10000 ids): it takes every message
//   unacknowledged and then returns them all, so two concurrent browsers each see only part.
//
// Threading: each thread that calls Take gets its own consumer connection; deliveries it took
// can be acked, retried or released from any thread. Take reads the first ready message with
// basic.get; when there is none it consumes (prefetch 1) until a message comes, the wait ends
// or Interrupt() is called, and cancels the consumer before returning, so a thread that is not
// taking never holds a message it has not handed out. Publishing (jobs and lifecycle events)
// shares one connection with confirms; Depth, DeadLetters and Ping share another, which never
// publishes and so keeps working while a resource alarm blocks publishers. A broken connection
// is reopened on next use; the deliveries taken through it are lost (kConflict) and redelivered
// by the broker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "queue/amqp_connection.hpp"
#include "queue/job_queue.hpp"
#include "queue/lifecycle_publisher.hpp"

namespace vmp3 {

class RabbitMqJobQueue final : public JobQueue {
 public:
  // Connects and declares the topology, within the target's timeout. kUnavailable when the
  // broker cannot be reached, kPermissionDenied when it refuses the login.
  static Result<std::unique_ptr<RabbitMqJobQueue>> Open(const AmqpTarget& target,
                                                        const JobQueueOptions& options);
  // Closes the connections: deliveries still held become ready again (as after a crash).
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

  // Publishes lifecycle events to the PREFIX.events topic exchange (routing key = the event)
  // over this queue's publishing connection. May outlive the queue.
  std::shared_ptr<LifecyclePublisher> LifecycleEvents() const;

 private:
  struct Consumer;
  struct Lease;

  RabbitMqJobQueue(AmqpTarget target, JobQueueOptions options);

  // Publishes a job message with `spent_attempts` in its header (expiring after `ttl` when
  // positive) and waits for the confirm.
  Status PublishJob(const std::string& exchange, const std::string& routing_key,
                    std::string_view job_id, int spent_attempts,
                    std::chrono::milliseconds ttl = std::chrono::milliseconds(0));
  // Publishes a job message to become ready after `delay`, or at once.
  Status PublishDelayed(std::string_view job_id, int spent_attempts,
                        std::chrono::milliseconds delay);

  Consumer& ConsumerForThisThread();
  // The next message for this thread's consumer, or none by `deadline` or after Interrupt().
  Result<std::optional<AmqpMessage>> Receive(Consumer& consumer,
                                             std::chrono::steady_clock::time_point deadline,
                                             uint64_t& generation);
  // Turns a received message into a delivery, or disposes of it (dead-letters a message out of
  // attempts, gives one back after Interrupt()) and returns none.
  Result<std::optional<Delivery>> HandOut(Consumer& consumer, AmqpMessage message,
                                          uint64_t generation);
  // Finds the live lease of a delivery; with `claim`, takes it out of the held set so that no
  // concurrent call can settle it too.
  Result<Lease> FindLease(const Delivery& delivery, bool claim);
  // A claimed message that could not be moved (publishing failed: the broker is gone, stalled,
  // or blocks publishers during a resource alarm) goes back to the broker now: its consumer
  // connection is dropped, so the broker requeues it, instead of it staying unacked until the
  // connection dies or the channel times out.
  void GiveBack(const Lease& lease);
  // Runs op on the connection a lease was taken through, under its consumer's lock, after
  // reading what the broker sent meanwhile (a connection it closed, e.g. by its
  // consumer_timeout, is noticed before the lease is trusted). kConflict when that connection
  // is gone or op fails; then the connection is dropped and the broker delivers the job again.
  template <typename Op>
  Status OnLeaseConnection(const Lease& lease, Op op);

  const AmqpTarget target_;
  const JobQueueOptions options_;
  const std::string jobs_exchange_, dead_exchange_, events_exchange_;
  const std::string queue_, delay_queue_, dead_queue_;

  // Job messages and lifecycle events; shared with LifecycleEvents().
  const std::shared_ptr<AmqpSharedConnection> publisher_;
  // Depth, DeadLetters, Ping: never publishes, so a resource alarm does not block it.
  AmqpSharedConnection inspector_;

  std::mutex consumers_mu_;  // guards the map; each consumer has its own mutex
  std::map<std::thread::id, std::unique_ptr<Consumer>> consumers_;

  std::atomic<bool> interrupted_{false};
  std::atomic<int64_t> held_{0};  // deliveries handed out and not yet settled or lost
};

}  // namespace vmp3
