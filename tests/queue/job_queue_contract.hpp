// The JobQueue implementations that job_queue_contract_test.cpp runs against. To put a new backend
// under the same tests, write a harness for it and add a row to JobQueueBackends(); a backend
// that needs a server names the environment variable holding its URL, and its tests are skipped
// when that variable is unset.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "queue/memory_job_queue.hpp"
#include "queue/rabbitmq_job_queue.hpp"
#include "queue/sqlite_job_queue.hpp"
#include "support/fixtures.hpp"

namespace vmp3::test {

// The state one test runs against (a fresh database file, a fresh queue name on a broker),
// created by the harness's constructor and never shared with another test. Each Open() returns
// another handle on the same queue: two live handles behave like two processes, and a handle
// opened after the previous one was destroyed sees what a restarted process would.
class JobQueueHarness {
 public:
  virtual ~JobQueueHarness() = default;
  virtual Result<std::unique_ptr<JobQueue>> Open(const JobQueueOptions& options) = 0;
  // False when a lease is not a timer but the taker's connection (RabbitMQ): a live taker never
  // loses its job, and a dead one (its handle destroyed) loses it at once.
  virtual bool TimedLeases() const { return true; }
};

struct JobQueueBackend {
  std::string name;          // test-name suffix: letters and digits only
  std::string required_env;  // when set and the variable is unset, the tests are skipped
  // Called only when the backend is available, once per test.
  std::function<std::unique_ptr<JobQueueHarness>()> make;
};

inline void PrintTo(const JobQueueBackend& backend, std::ostream* os) { *os << backend.name; }

class SqliteJobQueueHarness final : public JobQueueHarness {
 public:
  Result<std::unique_ptr<JobQueue>> Open(const JobQueueOptions& options) override {
    // A short poll so that messages published through another handle are seen quickly.
    auto queue =
        SqliteJobQueue::Open(path_, options, {.poll_interval = std::chrono::milliseconds(20)});
    if (!queue) return tl::unexpected(queue.error());
    return std::unique_ptr<JobQueue>(std::move(*queue));
  }

 private:
  std::filesystem::path path_ = TempDir() / "queue.db";
};

// Handles on one MemoryJobQueue::State, each with its own options, as processes on one queue.
class MemoryJobQueueHarness final : public JobQueueHarness {
 public:
  Result<std::unique_ptr<JobQueue>> Open(const JobQueueOptions& options) override {
    auto queue = MemoryJobQueue::Open(options, state_);
    if (!queue) return tl::unexpected(queue.error());
    if (state_ == nullptr) state_ = (*queue)->state();
    return std::unique_ptr<JobQueue>(std::move(*queue));
  }

 private:
  std::shared_ptr<MemoryJobQueue::State> state_;  // made by the first successful Open
};

// Fresh exchanges and queues (a random name prefix) on the broker of VMP3_TEST_AMQP_URL.
class RabbitMqJobQueueHarness final : public JobQueueHarness {
 public:
  Result<std::unique_ptr<JobQueue>> Open(const JobQueueOptions& options) override {
    auto target = AmqpTarget::Parse(std::getenv("VMP3_TEST_AMQP_URL"));
    if (!target) return tl::unexpected(target.error());
    target->prefix = prefix_;
    auto queue = RabbitMqJobQueue::Open(*target, options);
    if (!queue) return tl::unexpected(queue.error());
    return std::unique_ptr<JobQueue>(std::move(*queue));
  }
  bool TimedLeases() const override { return false; }

 private:
  std::string prefix_ = "test-" + TempDir().filename().string();
};

inline std::vector<JobQueueBackend> JobQueueBackends() {
  return {
      {"Sqlite", "", [] { return std::make_unique<SqliteJobQueueHarness>(); }},
      {"Memory", "", [] { return std::make_unique<MemoryJobQueueHarness>(); }},
      {"RabbitMq", "VMP3_TEST_AMQP_URL",
       [] { return std::make_unique<RabbitMqJobQueueHarness>(); }},
  };
}

}  // namespace vmp3::test
