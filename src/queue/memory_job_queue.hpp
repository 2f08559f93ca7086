// JobQueue in this process's memory, like leveldb's memenv: for unit tests (with the fault
// decorator of tests/support/faulty_backends.hpp in front when a test needs failures), demos
// (`vmp3 serve --queue memory`) and tools. It passes the same contract tests as the SQLite and
// RabbitMQ queues (tests/queue/job_queue_contract_test.cpp).
//
// The messages live in a State that every handle opened on it shares and that lives as long as
// anyone holds it. Each handle has its own JobQueueOptions and its own Interrupt(), so two
// handles on one State behave like two processes on one queue, and a handle opened after the
// others were destroyed sees what a restarted process would: the leases its predecessors held
// run out on their timer, as with SQLite. Nothing is kept on disk, so "durable" means "while the
// State lives".
//
// The semantics are SqliteJobQueue's, on the steady clock: a message is ready, leased or dead;
// Take leases the ready message (or expired lease) that became visible first, oldest published
// first among equals, after dead-lettering expired leases on their last attempt (by the taking
// handle's max_attempts). Receipts name the message and the lease, so a stale delivery fails
// with kConflict once the message was taken again. Operations scan the messages: meant for
// thousands of messages, not millions.
//
// Threading: as JobQueue; one mutex per State, and Take waits on the State's condition
// variable, which every change that makes a message visible signals.
#pragma once

#include <memory>

#include "queue/job_queue.hpp"

namespace vmp3 {

class MemoryJobQueue final : public JobQueue {
 public:
  // The messages themselves, shared by the handles opened on them.
  class State;

  // A handle on `state` (from state() of another handle), or on a new, empty queue when null.
  // kInvalidArgument for invalid options (ValidateJobQueueOptions).
  static Result<std::unique_ptr<MemoryJobQueue>> Open(const JobQueueOptions& options,
                                                      std::shared_ptr<State> state = nullptr);
  ~MemoryJobQueue() override;

  const std::shared_ptr<State>& state() const { return state_; }

  Status Publish(std::string_view job_id) override;
  Result<std::optional<Delivery>> Take(std::chrono::milliseconds wait) override;
  Status Ack(const Delivery& delivery) override;
  Result<bool> Retry(const Delivery& delivery, std::chrono::milliseconds delay) override;
  Status Release(const Delivery& delivery) override;
  Status Heartbeat(const Delivery& delivery) override;
  Result<uint64_t> Depth() override;
  Result<std::vector<std::string>> DeadLetters() override;
  void Interrupt() override;
  // Always succeeds: memory is always reachable.
  Status Ping() override;
  std::string Describe() const override;

 private:
  MemoryJobQueue(const JobQueueOptions& options, std::shared_ptr<State> state)
      : options_(options), state_(std::move(state)) {}

  const JobQueueOptions options_;
  std::shared_ptr<State> state_;
  bool interrupted_ = false;  // guarded by the State's mutex, so Interrupt cannot miss a waiter
};

}  // namespace vmp3
