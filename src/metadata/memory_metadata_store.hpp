// MetadataStore (and LimitStore) in this process's memory, like leveldb's memenv: for unit tests
// (with the fault decorator of tests/support/faulty_backends.hpp in front when a test needs
// failures), demos (`vmp3 serve --metadata memory`) and tools. It passes the same contract tests
// as the SQLite and Redis stores (tests/metadata/metadata_store_contract_test.cpp and
// limit_store_contract_test.cpp).
//
// The users, jobs and limit records live in a State that every handle opened on it shares and
// that lives as long as anyone holds it: two handles on one State behave like two processes on
// one database, and a handle opened after the others were destroyed sees what a restarted process
// would. Nothing is kept on disk, so nothing survives the process.
//
// The event log and the NotificationStore's records live in the same State.
//
// Jobs are kept as Job values (copied in and out, so a caller never aliases the store) with
// indexes for listing by owner (created_at, id), for expiry, and by lowercased username; usage
// is summed over the owner's jobs by UsageOf when asked. The ListJobs cursor encodes
// (created_at, id) of the last job listed, as SQLite's does. The limit records are a
// MemoryLimitStore (so bounded by its record count, unlike the rest, which is bounded by nothing
// but memory).
//
// Threading: as MetadataStore; one mutex per State makes every method one atomic step, which is
// why UpdateJob's mutate must not call back into the store (it would deadlock) and runs once.
#pragma once

#include <memory>

#include "metadata/limit_store.hpp"
#include "metadata/metadata_store.hpp"
#include "metadata/notification_store.hpp"

namespace vmp3 {

class MemoryMetadataStore final : public MetadataStore,
                                  public LimitStore,
                                  public NotificationStore {
 public:
  // The records themselves, shared by the handles opened on them.
  class State;

  // A handle on a new, empty State.
  MemoryMetadataStore();
  // Another handle on the records of `state` (from state() of any handle).
  explicit MemoryMetadataStore(std::shared_ptr<State> state);
  ~MemoryMetadataStore() override;

  const std::shared_ptr<State>& state() const { return state_; }

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
  // Always succeeds: memory is always reachable.
  Status Ping() override;
  std::string Describe() const override;

  Result<std::string> UpdateLimit(
      std::string_view key, std::chrono::milliseconds ttl,
      const std::function<std::string(std::string_view current)>& update) override;
  Result<std::string> GetLimit(std::string_view key) override;

  Status Insert(std::string_view kind, const Record& record) override;
  Result<Record> Get(std::string_view kind, std::string_view id) override;
  Result<Record> Update(std::string_view kind, std::string_view id,
                        const std::function<Status(Record&)>& mutate) override;
  Status Remove(std::string_view kind, std::string_view id) override;
  Result<RecordPage> List(std::string_view kind, ListBy by, std::string_view key, int limit,
                          std::string_view cursor) override;
  Result<std::vector<Record>> ClaimDue(std::string_view kind, int64_t now_ms, int64_t lease_ms,
                                       int limit) override;
  Result<int> PruneRecords(std::string_view kind, int64_t before_ms, int limit) override;
  Result<std::string> GetCursor(std::string_view name) override;
  Status SetCursor(std::string_view name, std::string_view value) override;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace vmp3
