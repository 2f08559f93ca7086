// JobQueue in a SQLite database file. Several processes may open the same file (for instance
// `serve` and separate converter processes on one host); every state change is one transaction.
//
// One row per message: (seq, job_id, state ready|leased|dead, attempt, visible_at, receipt).
// visible_at is the wall-clock time (unix ms) at which a ready message may be taken or a leased
// message's lease runs out, so leases survive restarts: nothing happens on open, an expired
// lease is simply taken again by the next Take. Take is one BEGIN IMMEDIATE transaction that
// dead-letters expired leases on their last attempt and then leases the oldest visible message.
//
// Waiting: Take sleeps on a condition variable that Publish/Retry/Release in this process signal,
// waking at least every poll_interval to see other processes' messages, and exactly when the
// next delayed message or lease expiry is due.
//
// synchronous=FULL: Publish promises durability when it returns, so each commit fsyncs the WAL.
// That costs one fsync per state change, negligible at conversion rates (jobs take seconds).
// The queue lives in its own file so these fsyncs and its writes never contend with the
// metadata database's lock, and so no caller can assume queue and metadata changes are atomic
// together, which the distributed backends could not honour.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>

#include "common/sqlite.hpp"
#include "queue/job_queue.hpp"

namespace vmp3 {

struct SqliteJobQueueTuning {
  // How often a waiting Take looks for messages other processes published.
  std::chrono::milliseconds poll_interval{200};
  // Wall clock in unix milliseconds; tests inject a fake one. Defaults to the system clock.
  std::function<int64_t()> now_ms;
};

class SqliteJobQueue final : public JobQueue {
 public:
  using Tuning = SqliteJobQueueTuning;

  // Opens or creates the queue database; its directory is created when missing.
  static Result<std::unique_ptr<SqliteJobQueue>> Open(const std::filesystem::path& path,
                                                      const JobQueueOptions& options,
                                                      Tuning tuning = {});

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

 private:
  SqliteJobQueue(std::unique_ptr<sqlite::Connection> db, const JobQueueOptions& options,
                 Tuning tuning)
      : db_(std::move(db)), options_(options), tuning_(std::move(tuning)) {}

  // One attempt at taking a message. When none is visible, *next_visible_ms is set to the
  // earliest time one will be (or -1 when the queue holds nothing takeable).
  Result<std::optional<Delivery>> TryTake(int64_t* next_visible_ms);
  // Wakes waiting Takes in this process.
  void Signal();

  std::mutex db_mu_;  // guards db_ (one connection; every operation writes anyway)
  std::unique_ptr<sqlite::Connection> db_;
  const JobQueueOptions options_;
  const Tuning tuning_;

  std::mutex wait_mu_;  // guards signal_ and interrupted_
  std::condition_variable wait_cv_;
  uint64_t signal_ = 0;
  bool interrupted_ = false;
};

}  // namespace vmp3
