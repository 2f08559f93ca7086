// Fault injection for unit tests, after leveldb's fault-injection Env: a decorator per backend
// interface (ObjectStore, JobQueue, MetadataStore) that passes every call to the store it wraps,
// except the calls its FaultPlan picks, which fail with a chosen ErrorCode, are delayed, or stall
// until the test opens a gate. Wrap an in-memory backend (storage/memory_object_store.hpp,
// queue/memory_job_queue.hpp, metadata/memory_metadata_store.hpp) or a real one; write no
// hand-made fake per test.
//
//   auto store = std::make_shared<FaultyObjectStore>(std::make_shared<MemoryObjectStore>());
//   store->plan().On("Open").Fail(ErrorCode::kUnavailable);   // every Open from now on
//   store->plan().On("Commit").Nth(2).Fail(ErrorCode::kIo);  // only the 2nd Commit from now
//   store->plan().On("Stat").Delay(200ms);
//   auto gate = store->plan().On("Remove").Stall();           // until gate->Open()
//   ...
//   store->plan().Clear("Open");                              // Open works again
//   EXPECT_EQ(store->plan().Failures("Open"), 3);
//
// Operations are named after the interface's fallible methods (those returning Result or
// Status); the ObjectStore decorator also wraps its readers ("Read", "Seek") and writers
// ("Write", "Commit"). MetadataStore::CreateJob is "CreateJobWithin", which it calls. Void
// methods (Abort, Interrupt) and Describe pass through untouched. Naming an operation the
// interface lacks throws std::invalid_argument, so a typo cannot make a test pass vacuously.
//
// Threading: a plan and its decorator may be used from any thread, as the interfaces promise.
// A delayed or stalled call waits without holding any lock of the plan.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metadata/metadata_store.hpp"
#include "queue/job_queue.hpp"
#include "storage/object_store.hpp"

namespace vmp3::test {

// Holds stalled calls until opened; once open, it lets every call through, then and later.
class Gate {
 public:
  // A stalled call proceeds after `max_stall` even when the gate stays closed, so a test that
  // fails before opening its gate cannot hang the run.
  explicit Gate(std::chrono::milliseconds max_stall = std::chrono::seconds(60))
      : max_stall_(max_stall) {}

  void Open();
  bool is_open() const;
  // Calls waiting at the gate now.
  int waiting() const;
  // Waits until at least `n` calls wait at the gate (the code under test reached the stall);
  // false after `timeout`.
  bool WaitForWaiting(int n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  // Called by the plan on a stalled call.
  void Pass();

 private:
  const std::chrono::milliseconds max_stall_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  bool open_ = false;
  int waiting_ = 0;
};

class FaultPlan {
 public:
  // A plan for the operations named (the decorators make their own plan).
  explicit FaultPlan(std::initializer_list<std::string_view> operations);

  // Builds one rule for an operation; the rule takes effect when Fail, Delay or Stall is called.
  class RuleBuilder {
   public:
    // Only the nth call of the operation counted from now (1 = the next); every call by default.
    RuleBuilder& Nth(int n);
    // The call fails with `code` (after any delay or stall another rule adds).
    void Fail(ErrorCode code);
    // The call waits `delay`, then goes on (to the wrapped store, or to an injected failure).
    void Delay(std::chrono::milliseconds delay);
    // The call waits until the returned gate opens, then goes on.
    std::shared_ptr<Gate> Stall(std::chrono::milliseconds max_stall = std::chrono::seconds(60));

   private:
    friend class FaultPlan;
    RuleBuilder(FaultPlan& plan, std::string operation) : plan_(plan), op_(std::move(operation)) {}
    FaultPlan& plan_;
    std::string op_;
    int nth_ = 0;
  };

  // Throws std::invalid_argument for an operation the plan does not know.
  RuleBuilder On(std::string_view operation);
  // Removes the operation's rules (calls already delayed or stalled keep waiting).
  void Clear(std::string_view operation);
  void ClearAll();

  // Calls of the operation so far, and how many of them failed by injection.
  int Calls(std::string_view operation) const;
  int Failures(std::string_view operation) const;

  // For the decorators: counts a call of `operation`, waits as its rules say, and returns the
  // failure to inject, if any.
  std::optional<Error> Before(std::string_view operation);

 private:
  struct Rule {
    int64_t only_call = 0;  // the call number it applies to; 0 = every call
    std::optional<ErrorCode> fail;
    std::chrono::milliseconds delay{0};
    std::shared_ptr<Gate> gate;
  };
  struct Operation {
    int64_t calls = 0;
    int64_t failures = 0;
    std::vector<Rule> rules;
  };
  void Add(const std::string& operation, int nth, Rule rule);
  Operation& Find(std::string_view operation);
  const Operation& Find(std::string_view operation) const;

  mutable std::mutex mu_;
  std::map<std::string, Operation, std::less<>> operations_;
};

// Each decorator forwards to `inner` what its plan lets through. Describe() says it is faulty.
class FaultyObjectStore final : public ObjectStore {
 public:
  explicit FaultyObjectStore(std::shared_ptr<ObjectStore> inner);
  FaultPlan& plan() { return *plan_; }

  Result<std::unique_ptr<ObjectWriter>> Create(std::string_view key) override;
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view key) override;
  Result<ObjectInfo> Stat(std::string_view key) override;
  Status Remove(std::string_view key) override;
  Result<ObjectListing> List(std::string_view prefix, std::string_view start_after,
                             int limit) override;
  Status Ping() override;
  std::string Describe() const override;

 private:
  std::shared_ptr<ObjectStore> inner_;
  std::shared_ptr<FaultPlan> plan_;  // shared with the readers and writers it hands out
};

class FaultyJobQueue final : public JobQueue {
 public:
  explicit FaultyJobQueue(std::shared_ptr<JobQueue> inner);
  FaultPlan& plan() { return plan_; }

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
  std::shared_ptr<JobQueue> inner_;
  FaultPlan plan_;
};

class FaultyMetadataStore final : public MetadataStore {
 public:
  explicit FaultyMetadataStore(std::shared_ptr<MetadataStore> inner);
  FaultPlan& plan() { return plan_; }

  Status CreateUser(const User& user) override;
  Result<User> FindUserByName(std::string_view username) override;
  Result<User> GetUser(std::string_view id) override;
  Status CreateJobWithin(const Job& job, const UsageLimits& limits) override;
  Result<Usage> GetUsage(std::string_view owner_id) override;
  Result<Job> GetJob(std::string_view id) override;
  Result<Job> UpdateJob(std::string_view id, const std::function<Status(Job&)>& mutate) override;
  Status SetProgress(std::string_view id, double progress) override;
  Result<JobPage> ListJobs(std::string_view owner_id, int limit, std::string_view cursor) override;
  Status DeleteJob(std::string_view id) override;
  Status ExpireJob(std::string_view id, int64_t now_ms) override;
  Result<EventPage> ReadEvents(std::string_view owner_id, std::string_view after,
                               int limit) override;
  Status PruneEvents(int64_t before_ms) override;
  Result<std::vector<Job>> ListExpired(int64_t now_ms, int limit) override;
  Result<std::map<JobStatus, uint64_t>> CountByStatus() override;
  Status Ping() override;
  std::string Describe() const override;

 private:
  std::shared_ptr<MetadataStore> inner_;
  FaultPlan plan_;
};

}  // namespace vmp3::test
