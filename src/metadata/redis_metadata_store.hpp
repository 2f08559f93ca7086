// MetadataStore on Redis (hiredis), for the distributed mode, and a JobEventBus on Redis pub/sub
// so every process's /events stream sees every converter's progress.
//
// Keys (PREFIX defaults to "vmp3"; a URL's ?prefix= changes it, e.g. per test):
//   PREFIX:user:ID            JSON of the user
//   PREFIX:username:LOWER     the user's id (names are unique ignoring ASCII case)
//   PREFIX:job:ID             JSON of the job
//   PREFIX:progress:ID        progress set since the job was last written (cheap, frequent
//                             writes; the next write of the job folds it into the JSON)
//   PREFIX:owner:ID           ZSET, all scores 0, members "<created_ms:013>:<job id>": newest
//                             first by ZREVRANGEBYLEX; the cursor is the last member returned
//   PREFIX:expiry             ZSET job id by expires_at (the janitor's index)
//   PREFIX:status:NAME        ZSET job id by created_at, per status (oldest first; counts)
//   PREFIX:usage:OWNER:active the owner's unfinished jobs, and
//   PREFIX:usage:OWNER:bytes  bytes stored for them (UsageOf), moved in every job transaction
//   PREFIX:limit:KEY          a LimitStore record, with its TTL (PX)
//   PREFIX:events             STREAM, the event log (fields id, type, owner, job_id, at, job),
//                             written with XADD * inside the job's MULTI/EXEC: transactions run
//                             one at a time, so entry ids follow commit order and a reader that
//                             continues after the last id it saw misses nothing. Trimmed by
//                             PruneEvents (XTRIM MINID: ids start with Redis's clock in ms).
//   PREFIX:events:OWNER       STREAM, the same events of one owner (GET /v1/events), its newest
//                             ~10000 kept
//   PREFIX:rec:KIND:ID        JSON of a NotificationStore record
//   PREFIX:recs:KIND:owner:O  ZSET of the owner's records, as PREFIX:owner (and recs:KIND:parent:P
//                             for a parent's)
//   PREFIX:due:KIND           ZSET record id by due_at (only records with one)
//   PREFIX:created:KIND       ZSET record id by created_at (PruneRecords)
//   PREFIX:cursor:NAME        a NotificationStore cursor
// Every write of a user or job is one optimistic transaction (WATCH, read, MULTI/EXEC, retried
// with a random backoff on a conflict) that changes the record and its index entries together.
// Records never expire by themselves: the janitor deletes expired jobs together with their
// objects, which a Redis TTL would leave behind.
//
// Redis must persist for production use: run it with appendonly yes (AOF); the test scripts do.
// Threading: a small pool of connections; each call takes one. Broken connections are dropped and
// reopened on the next call, and an idle one that Redis closed (it restarted) is noticed before
// it is used, so the first call after Redis is back succeeds; calls fail with kUnavailable while
// Redis is down.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "metadata/job_events.hpp"
#include "metadata/limit_store.hpp"
#include "metadata/metadata_store.hpp"
#include "metadata/notification_store.hpp"

struct redisContext;

namespace vmp3 {

struct RedisTarget {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string password;
  std::string prefix = "vmp3";
  // The longest a command (or a connect, at most 2 s) waits for Redis; less when the request
  // it runs for has less time left (common/deadline.hpp).
  std::chrono::milliseconds timeout{5000};

  // redis://[:password@]host:port/DB?prefix=NAME&timeout_ms=N
  static Result<RedisTarget> Parse(std::string_view url);
};

// One pooled connection, returned to the pool on destruction unless broken.
class RedisPool {
 public:
  explicit RedisPool(RedisTarget target) : target_(std::move(target)) {}
  ~RedisPool();
  struct Lease;
  Result<std::unique_ptr<Lease>> Acquire();
  const RedisTarget& target() const { return target_; }
  // Opens a new connection outside the pool (for SUBSCRIBE).
  Result<redisContext*> Connect() const;
  // "Redis at host:port", for messages.
  std::string Describe() const;

 private:
  friend struct Lease;
  void Return(redisContext* c);
  RedisTarget target_;
  std::mutex mu_;
  std::vector<redisContext*> idle_;
};

class RedisMetadataStore final : public MetadataStore, public LimitStore, public NotificationStore {
 public:
  static Result<std::unique_ptr<RedisMetadataStore>> Open(const RedisTarget& target);
  ~RedisMetadataStore() override;

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
  using Command = std::vector<std::string>;
  using Values = std::vector<std::optional<std::string>>;  // nullopt: no such key

  explicit RedisMetadataStore(RedisTarget target);
  std::string Key(std::string_view kind, std::string_view name = {}) const;
  std::vector<std::string> JobKeys(std::string_view id) const;  // record, progress
  // WATCHes keys, reads their values and runs the commands plan returns for them in MULTI/EXEC;
  // when another client changes a key meanwhile, starts over. plan's error is returned as is,
  // with nothing written.
  Status Transact(const std::vector<std::string>& keys,
                  const std::function<Result<std::vector<Command>>(const Values&)>& plan);
  // The commands that take a job's record and index entries from before to after (nullptr:
  // absent).
  std::vector<Command> WriteJob(const Job* before, const Job* after) const;
  // The XADDs that log an event: to the global stream and to its owner's.
  std::vector<Command> EventCommands(const StoredEvent& event) const;
  std::string RecordKey(std::string_view kind, std::string_view id) const;
  std::string RecordIndexKey(std::string_view kind, ListBy by, std::string_view key) const;
  // As WriteJob, for a NotificationStore record.
  std::vector<Command> WriteRecord(std::string_view kind, const Record* before,
                                   const Record* after) const;
  // The jobs of ids that still exist, in the order of ids, in one round trip.
  Result<std::vector<Job>> LoadJobs(const std::vector<std::string>& ids);
  RedisPool pool_;
};

// Publishes events to Redis and delivers every process's events to local subscribers.
class RedisJobEventBus final : public JobEventBus {
 public:
  static Result<std::unique_ptr<RedisJobEventBus>> Open(const RedisTarget& target);
  ~RedisJobEventBus() override;
  void Publish(const JobEvent& event) override;
  std::unique_ptr<Subscription> Subscribe(std::string job_id,
                                          std::function<void(const JobEvent&)> callback) override;

 private:
  explicit RedisJobEventBus(RedisTarget target);
  void Listen(std::stop_token stop);
  RedisPool pool_;
  std::string channel_;
  InProcessJobEventBus local_;
  std::atomic<int> listener_fd_{-1};
  std::mutex ready_mu_;
  std::condition_variable ready_cv_;
  bool subscribed_ = false;
  std::jthread listener_;
};

}  // namespace vmp3
