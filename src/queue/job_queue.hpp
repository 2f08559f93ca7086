// The work queue between the upload side and the converters: a durable, at-least-once queue of
// job ids with leases. The embedded implementation is SqliteJobQueue; a distributed deployment
// uses RabbitMQ. Every implementation passes tests/queue/job_queue_contract_test.cpp.
//
// Life of a message: Publish → ready → Take → leased (invisible to other takers) → one of
//   Ack        finished (success or permanent failure): removed;
//   Retry      transient failure: ready again after a delay, or dead once attempts are used up;
//   Release    given back untouched (shutdown): ready at once, the attempt does not count;
//   expiry     the taker died or hung (no Heartbeat within the lease): ready again, or dead once
//              attempts are used up. So a job that crashes its converter cannot loop forever.
// Dead messages stay out of the way and are listed by DeadLetters() for operators.
//
// At-least-once: a job may be delivered again after its taker finished it (e.g. a lease expired
// just before the Ack), so handling a job must be idempotent; the job's metadata state decides.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace vmp3 {

struct JobQueueOptions {
  // How long a taken job stays invisible without a Heartbeat before it is delivered again.
  std::chrono::milliseconds lease{std::chrono::seconds(60)};
  // Deliveries a job gets before it is dead-lettered (Retry or lease expiry on the last one).
  int max_attempts = 3;
};

// kInvalidArgument unless the lease is positive and max_attempts >= 1.
inline Status ValidateJobQueueOptions(const JobQueueOptions& options) {
  if (options.lease.count() <= 0) {
    return MakeError(ErrorCode::kInvalidArgument, "the queue lease must be positive");
  }
  if (options.max_attempts < 1) {
    return MakeError(ErrorCode::kInvalidArgument, "the queue max attempts must be at least 1");
  }
  return {};
}

struct Delivery {
  std::string job_id;
  int attempt = 0;      // 1 on the first delivery; Release does not count one
  std::string receipt;  // opaque handle of this lease
};

// Thread-safe: every method may be called from any thread concurrently.
// Errors: kUnavailable or kIo when the backend fails; kInvalidArgument for a malformed argument.
// Ack, Retry, Release and Heartbeat fail with kConflict when the delivery no longer holds its
// lease: it was acked, retried or released already, or its lease expired and the job was taken
// again (an expired lease that nobody has taken over is still honoured).
class JobQueue {
 public:
  virtual ~JobQueue() = default;

  // Enqueues a job id (1 to 200 bytes). Durable when it returns. Publishing an id twice queues it
  // twice.
  virtual Status Publish(std::string_view job_id) = 0;
  // Takes the next visible job, waiting up to `wait` for one. An empty optional when none came in
  // time or after Interrupt(). Roughly FIFO.
  virtual Result<std::optional<Delivery>> Take(std::chrono::milliseconds wait) = 0;
  // Removes a finished job.
  virtual Status Ack(const Delivery& delivery) = 0;
  // Makes the job visible again after `delay`, unless this was its last attempt; then the job is
  // dead-lettered instead and the result is true.
  virtual Result<bool> Retry(const Delivery& delivery, std::chrono::milliseconds delay) = 0;
  // Makes the job visible again at once without counting the attempt (graceful shutdown).
  virtual Status Release(const Delivery& delivery) = 0;
  // Extends the lease by the lease duration from now. Call it well within the lease.
  virtual Status Heartbeat(const Delivery& delivery) = 0;
  // Jobs not yet finished: ready plus leased (not dead).
  virtual Result<uint64_t> Depth() = 0;
  // Ids of dead-lettered jobs, oldest first.
  virtual Result<std::vector<std::string>> DeadLetters() = 0;
  // Wakes every Take waiting in this process; from now on Take returns an empty optional at once.
  // Other methods keep working so that deliveries in hand can still be acked or released.
  virtual void Interrupt() = 0;
  // Checks that the backend is reachable.
  virtual Status Ping() = 0;
  // Where the queue is, for logs; never contains a secret.
  virtual std::string Describe() const = 0;
};

// The errors every implementation gives for a receipt it did not issue (kInvalidArgument) and
// for a delivery whose lease is gone (kConflict, `why` says how), worded alike across backends.
tl::unexpected<Error> MalformedReceipt(const Delivery& delivery);
// Publish's check of a job id: 1 to 200 bytes (kInvalidArgument otherwise).
Status CheckQueuedJobId(std::string_view job_id);
tl::unexpected<Error> LeaseLost(std::string_view job_id,
                                std::string_view why =
                                    "it was finished already, or the lease "
                                    "expired and the job was delivered again");

}  // namespace vmp3
