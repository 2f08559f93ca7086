// MetadataStore in a SQLite database file (WAL mode), safe to share between processes.
//
// Schema (PRAGMA user_version 3): users(id, username COLLATE NOCASE UNIQUE, email,
// password_hash, created_at); jobs(id, owner_id, status, created_at, expires_at, doc, active,
// stored_bytes) where doc is the whole Job as JSON (the same encoding the Redis store uses) and
// the other columns are copies kept for the indexes: (owner_id, created_at DESC, id DESC) for
// listing and usage sums, expires_at for cleanup, (status, created_at) for counts; active and
// stored_bytes are the job's UsageOf. Adding a Job field needs no migration. The ListJobs cursor
// encodes (created_at, id) of the last job listed. limits(key, value, expires_at) holds the
// LimitStore records (wall-clock ms expiry; expired rows are swept every 1024 writes).
// Version 3: events(seq AUTOINCREMENT, id, type, owner_id, job_id, created_at, job), the event
// log, written in the transaction of the job change it records (a write holds the database's
// write lock, so seq order is commit order: a reader following seq misses nothing); and the
// NotificationStore's notify_records(kind, id, owner_id, parent, created_at, due_at, body) and
// notify_cursors(name, value).
// Also a LimitStore: the login throttle and rate limits share the database with the jobs; and a
// NotificationStore: the notifier's records too.
//
// Connections: a pool of a few connections (SQLITE_OPEN_NOMUTEX, each used by one thread at a
// time), so reads run concurrently under WAL; writes in this process also take one mutex, so
// they queue in memory instead of spinning in SQLite's busy handler (which still arbitrates with
// other processes, up to the busy timeout, then kUnavailable).
//
// synchronous=NORMAL: commits survive a crash of the process; on power loss the last moments of
// changes may be lost but the database stays consistent. Progress updates are frequent and an
// fsync each would dominate; the queue, whose promise is durability, uses FULL instead.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>

#include "common/sqlite.hpp"
#include "metadata/limit_store.hpp"
#include "metadata/metadata_store.hpp"
#include "metadata/notification_store.hpp"

namespace vmp3 {

class SqliteMetadataStore final : public MetadataStore,
                                  public LimitStore,
                                  public NotificationStore {
 public:
  // Opens or creates the database (and its directory), migrating the schema when needed.
  static Result<std::unique_ptr<SqliteMetadataStore>> Open(const std::filesystem::path& path);

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
  static Result<Usage> UsageIn(sqlite::Connection& db, std::string_view owner_id);
  SqliteMetadataStore(std::filesystem::path path,
                      std::vector<std::unique_ptr<sqlite::Connection>> connections)
      : path_(std::move(path)), pool_(std::move(connections)) {}

  std::filesystem::path path_;
  std::mutex write_mu_;  // serialises this process's writers; taken before a pool connection
  sqlite::Pool pool_;
  uint64_t limit_writes_ = 0;  // under write_mu_
};

}  // namespace vmp3
