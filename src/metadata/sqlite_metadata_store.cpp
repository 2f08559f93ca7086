#include "metadata/sqlite_metadata_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

namespace vmp3 {
namespace {

constexpr int kPoolSize = 4;

const char* const kSchemaV1 = R"sql(
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL COLLATE NOCASE UNIQUE,
  email TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  owner_id TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX jobs_by_owner ON jobs(owner_id, created_at DESC, id DESC);
CREATE INDEX jobs_by_expiry ON jobs(expires_at) WHERE expires_at > 0;
CREATE INDEX jobs_by_status ON jobs(status, created_at);
)sql";

// Version 2: per-job usage columns (UsageOf, kept on every write; backfilled from the docs) for
// quotas, and the records of LimitStore.
const char* const kSchemaV2 = R"sql(
ALTER TABLE jobs ADD COLUMN active INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET
  active = (status IN ('queued', 'converting')),
  stored_bytes =
    (CASE WHEN json_extract(doc, '$.input_key') != '' THEN json_extract(doc, '$.input_size')
          ELSE 0 END) +
    (CASE WHEN status = 'done' AND json_extract(doc, '$.output_key') != ''
          THEN json_extract(doc, '$.output_size') ELSE 0 END);
CREATE TABLE limits (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX limits_by_expiry ON limits(expires_at);
)sql";

// Version 3: the event log (the notifier's outbox and GET /v1/events; AUTOINCREMENT, so a seq is
// never reused after a prune) and the notifier's records.
const char* const kSchemaV3 = R"sql(
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  owner_id TEXT NOT NULL,
  job_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  job TEXT NOT NULL
);
CREATE INDEX events_by_owner ON events(owner_id, seq);
CREATE INDEX events_by_time ON events(created_at);
CREATE TABLE notify_records (
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  owner_id TEXT NOT NULL,
  parent TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (kind, id)
);
CREATE INDEX notify_by_owner ON notify_records(kind, owner_id, created_at DESC, id DESC);
CREATE INDEX notify_by_parent ON notify_records(kind, parent, created_at DESC, id DESC)
  WHERE parent != '';
CREATE INDEX notify_by_due ON notify_records(kind, due_at) WHERE due_at > 0;
CREATE TABLE notify_cursors (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql";

const char* const kUserColumns = "id, username, email, password_hash, created_at";

// Schema steps: the SQL that moves version i to i + 1 (sqlite::Migrate).
const std::string_view kSchemaSteps[] = {kSchemaV1, kSchemaV2, kSchemaV3};

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status Migrate(sqlite::Connection& db) { return sqlite::Migrate(db, "metadata", kSchemaSteps); }

std::string EncodeJob(const Job& job) {
  // Replace rather than throw on invalid UTF-8 (an uploaded file's name can hold anything).
  return nlohmann::json(job).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<Job> DecodeJob(const std::string& doc) {
  try {
    return nlohmann::json::parse(doc).get<Job>();
  } catch (const nlohmann::json::exception& e) {
    return MakeError(ErrorCode::kInternal, fmt::format("a stored job is corrupt: {}", e.what()));
  }
}

User UserFromRow(const sqlite::Statement& stmt) {
  return User{.id = stmt.Text(0),
              .username = stmt.Text(1),
              .email = stmt.Text(2),
              .password_hash = stmt.Text(3),
              .created_at = stmt.Int(4)};
}

// The job `id` as stored, read within the caller's connection (and transaction).
Result<Job> ReadJob(sqlite::Connection& db, std::string_view id) {
  auto stmt = db.Prepare("SELECT doc FROM jobs WHERE id = ?1");
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->Bind(id).Step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return JobNotFound(id);
  return DecodeJob(stmt->Text(0));
}

// Reads every row's column 0 as a job document.
Result<std::vector<Job>> CollectJobs(sqlite::Statement& stmt) {
  std::vector<Job> jobs;
  for (;;) {
    auto row = stmt.Step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return jobs;
    auto job = DecodeJob(stmt.Text(0));
    if (!job) return tl::unexpected(job.error());
    jobs.push_back(std::move(*job));
  }
}

Status InsertEvent(sqlite::Connection& db, const StoredEvent& event) {
  auto stmt = db.Prepare(
      "INSERT INTO events (id, type, owner_id, job_id, created_at, job) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!stmt) return tl::unexpected(stmt.error());
  return stmt->Bind(event.id, event.type, event.owner_id, event.job_id, event.created_at, event.job)
      .Run();
}

// Logs the event a write of `after` makes (StatusEventType), inside the caller's transaction.
Status LogStatusEvent(sqlite::Connection& db, const Job* before, const Job& after) {
  auto type = StatusEventType(before, after);
  if (!type) return {};
  int64_t at = before ? after.updated_at : after.created_at;
  return InsertEvent(db, MakeStoredEvent(std::move(*type), after, at));
}

const char* const kEventColumns = "seq, id, type, owner_id, job_id, created_at, job";

Result<std::vector<StoredEvent>> CollectEvents(sqlite::Statement& stmt) {
  std::vector<StoredEvent> events;
  for (;;) {
    auto row = stmt.Step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return events;
    events.push_back(StoredEvent{.cursor = std::to_string(stmt.Int(0)),
                                 .id = stmt.Text(1),
                                 .type = stmt.Text(2),
                                 .owner_id = stmt.Text(3),
                                 .job_id = stmt.Text(4),
                                 .created_at = stmt.Int(5),
                                 .job = stmt.Text(6)});
  }
}

const char* const kRecordColumns = "id, owner_id, parent, created_at, due_at, body";

Record RecordFromRow(const sqlite::Statement& stmt) {
  return Record{.id = stmt.Text(0),
                .owner_id = stmt.Text(1),
                .parent = stmt.Text(2),
                .created_at = stmt.Int(3),
                .due_at = stmt.Int(4),
                .body = stmt.Text(5)};
}

Result<std::vector<Record>> CollectRecords(sqlite::Statement& stmt) {
  std::vector<Record> records;
  for (;;) {
    auto row = stmt.Step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return records;
    records.push_back(RecordFromRow(stmt));
  }
}

Result<std::optional<Record>> ReadRecord(sqlite::Connection& db, std::string_view kind,
                                         std::string_view id) {
  auto stmt = db.Prepare(
      fmt::format("SELECT {} FROM notify_records WHERE kind = ?1 AND id = ?2", kRecordColumns));
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->Bind(kind, id).Step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return std::nullopt;
  return RecordFromRow(*stmt);
}

tl::unexpected<Error> RecordNotFound(std::string_view kind, std::string_view id) {
  return MakeError(ErrorCode::kNotFound, fmt::format("{} {} does not exist", kind, id));
}

}  // namespace

Result<std::unique_ptr<SqliteMetadataStore>> SqliteMetadataStore::Open(
    const std::filesystem::path& path) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return tl::unexpected(ErrnoError(ec, "cannot create the directory of", path.string()));
  std::vector<std::unique_ptr<sqlite::Connection>> connections;
  for (int i = 0; i < kPoolSize; ++i) {
    auto db = sqlite::Connection::Open(path, sqlite::OpenOptions{.synchronous_full = false});
    if (!db) return tl::unexpected(db.error());
    if (i == 0) {
      if (auto migrated = Migrate(**db); !migrated) return tl::unexpected(migrated.error());
    }
    connections.push_back(std::move(*db));
  }
  return std::unique_ptr<SqliteMetadataStore>(
      new SqliteMetadataStore(path, std::move(connections)));
}

Status SqliteMetadataStore::CreateUser(const User& user) {
  if (user.id.empty() || user.username.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "a user needs an id and a username");
  }
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto tx = sqlite::Transaction::Begin(*db);
  if (!tx) return tl::unexpected(tx.error());
  {
    // The column's NOCASE collation makes this comparison case-insensitive.
    auto taken = db->Prepare("SELECT 1 FROM users WHERE username = ?1");
    if (!taken) return tl::unexpected(taken.error());
    auto row = taken->Bind(user.username).Step();
    if (!row) return tl::unexpected(row.error());
    if (*row) {
      return MakeError(ErrorCode::kAlreadyExists,
                       fmt::format("the username {} is taken", user.username));
    }
  }
  auto insert =
      db->Prepare(fmt::format("INSERT INTO users ({}) VALUES (?1, ?2, ?3, ?4, ?5)", kUserColumns));
  if (!insert) return tl::unexpected(insert.error());
  auto ran =
      insert->Bind(user.id, user.username, user.email, user.password_hash, user.created_at).Run();
  if (!ran) {
    if (ran.error().code == ErrorCode::kAlreadyExists) {
      return MakeError(ErrorCode::kAlreadyExists, fmt::format("user {} exists", user.id));
    }
    return ran;
  }
  return tx->Commit();
}

Result<User> SqliteMetadataStore::FindUserByName(std::string_view username) {
  auto db = pool_.Acquire();
  auto stmt = db->Prepare(fmt::format("SELECT {} FROM users WHERE username = ?1", kUserColumns));
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->Bind(username).Step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) {
    return MakeError(ErrorCode::kNotFound, fmt::format("no user is named {}", username));
  }
  return UserFromRow(*stmt);
}

Result<User> SqliteMetadataStore::GetUser(std::string_view id) {
  auto db = pool_.Acquire();
  auto stmt = db->Prepare(fmt::format("SELECT {} FROM users WHERE id = ?1", kUserColumns));
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->Bind(id).Step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return MakeError(ErrorCode::kNotFound, fmt::format("user {} does not exist", id));
  return UserFromRow(*stmt);
}

Status SqliteMetadataStore::CreateJobWithin(const Job& job, const UsageLimits& limits) {
  if (job.id.empty() || job.owner_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "a job needs an id and an owner");
  }
  std::string doc = EncodeJob(job);
  Usage share = UsageOf(job);
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto tx = sqlite::Transaction::Begin(*db);
  if (!tx) return tl::unexpected(tx.error());
  if (limits.max_active_jobs > 0 || limits.max_stored_bytes > 0) {
    auto usage = UsageIn(*db, job.owner_id);
    if (!usage) return tl::unexpected(usage.error());
    usage->active_jobs += share.active_jobs;
    usage->stored_bytes += share.stored_bytes;
    if (auto within = CheckUsageLimits(*usage, limits); !within) return within;
  }
  auto stmt = db->Prepare(
      "INSERT INTO jobs (id, owner_id, status, created_at, expires_at, doc, active, stored_bytes) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (!stmt) return tl::unexpected(stmt.error());
  auto ran = stmt->Bind(job.id, job.owner_id, JobStatusName(job.status), job.created_at,
                        job.expires_at, doc, static_cast<int64_t>(share.active_jobs),
                        static_cast<int64_t>(share.stored_bytes))
                 .Run();
  if (!ran && ran.error().code == ErrorCode::kAlreadyExists) {
    return MakeError(ErrorCode::kAlreadyExists, fmt::format("job {} exists", job.id));
  }
  if (!ran) return ran;
  if (auto logged = LogStatusEvent(*db, nullptr, job); !logged) return logged;
  return tx->Commit();
}

Result<Usage> SqliteMetadataStore::UsageIn(sqlite::Connection& db, std::string_view owner_id) {
  auto stmt = db.Prepare(
      "SELECT COALESCE(SUM(active), 0), COALESCE(SUM(stored_bytes), 0) FROM jobs "
      "WHERE owner_id = ?1");
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->Bind(owner_id).Step();
  if (!row) return tl::unexpected(row.error());
  Usage usage;
  if (*row) {
    usage.active_jobs = static_cast<uint64_t>(std::max<int64_t>(0, stmt->Int(0)));
    usage.stored_bytes = static_cast<uint64_t>(std::max<int64_t>(0, stmt->Int(1)));
  }
  return usage;
}

Result<Usage> SqliteMetadataStore::GetUsage(std::string_view owner_id) {
  auto db = pool_.Acquire();
  return UsageIn(*db, owner_id);
}

Result<Job> SqliteMetadataStore::GetJob(std::string_view id) {
  auto db = pool_.Acquire();
  return ReadJob(*db, id);
}

Result<Job> SqliteMetadataStore::UpdateJob(std::string_view id,
                                           const std::function<Status(Job&)>& mutate) {
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto tx = sqlite::Transaction::Begin(*db);
  if (!tx) return tl::unexpected(tx.error());
  Result<Job> current = ReadJob(*db, id);
  if (!current) return current;
  Job job = *current;
  if (auto mutated = mutate(job); !mutated) return tl::unexpected(mutated.error());
  if (job.id != current->id || job.owner_id != current->owner_id) {
    return MakeError(ErrorCode::kInternal,
                     fmt::format("an update of job {} tried to change its id or owner", id));
  }
  auto stmt = db->Prepare(
      "UPDATE jobs SET status = ?1, created_at = ?2, expires_at = ?3, doc = ?4, active = ?5, "
      "stored_bytes = ?6 WHERE id = ?7");
  if (!stmt) return tl::unexpected(stmt.error());
  Usage share = UsageOf(job);
  auto ran = stmt->Bind(JobStatusName(job.status), job.created_at, job.expires_at, EncodeJob(job),
                        static_cast<int64_t>(share.active_jobs),
                        static_cast<int64_t>(share.stored_bytes), job.id)
                 .Run();
  if (!ran) return tl::unexpected(ran.error());
  if (auto logged = LogStatusEvent(*db, &*current, job); !logged)
    return tl::unexpected(logged.error());
  if (auto committed = tx->Commit(); !committed) return tl::unexpected(committed.error());
  return job;
}

Status SqliteMetadataStore::SetProgress(std::string_view id, double progress) {
  if (std::isnan(progress)) {
    return MakeError(ErrorCode::kInvalidArgument, "job progress must be a number");
  }
  progress = std::clamp(progress, 0.0, 1.0);
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  {
    auto stmt = db->Prepare(
        "UPDATE jobs SET doc = json_set(doc, '$.progress', ?1) "
        "WHERE id = ?2 AND status NOT IN (?3, ?4, ?5)");
    if (!stmt) return tl::unexpected(stmt.error());
    auto ran = stmt->Bind(progress, id, JobStatusName(JobStatus::kDone),
                          JobStatusName(JobStatus::kFailed), JobStatusName(JobStatus::kCancelled))
                   .Run();
    if (!ran) return ran;
    if (db->Changes() > 0) return {};
  }
  // Nothing changed: a terminal job (fine) or a missing one.
  auto exists = db->Prepare("SELECT 1 FROM jobs WHERE id = ?1");
  if (!exists) return tl::unexpected(exists.error());
  auto row = exists->Bind(id).Step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return JobNotFound(id);
  return {};
}

Result<JobPage> SqliteMetadataStore::ListJobs(std::string_view owner_id, int limit,
                                              std::string_view cursor) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  JobCursor after;
  if (!cursor.empty()) {
    auto decoded = DecodeJobCursor(cursor);
    if (!decoded) return tl::unexpected(decoded.error());
    after = *decoded;
  }
  // One row more than asked tells whether another page follows.
  int64_t fetch = static_cast<int64_t>(limit) + 1;
  auto db = pool_.Acquire();
  Result<std::vector<Job>> jobs;
  if (cursor.empty()) {
    auto stmt = db->Prepare(
        "SELECT doc FROM jobs WHERE owner_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2");
    if (!stmt) return tl::unexpected(stmt.error());
    jobs = CollectJobs(stmt->Bind(owner_id, fetch));
  } else {
    auto stmt = db->Prepare(
        "SELECT doc FROM jobs WHERE owner_id = ?1 AND (created_at, id) < (?2, ?3) "
        "ORDER BY created_at DESC, id DESC LIMIT ?4");
    if (!stmt) return tl::unexpected(stmt.error());
    jobs = CollectJobs(stmt->Bind(owner_id, after.created_at, after.id, fetch));
  }
  if (!jobs) return tl::unexpected(jobs.error());
  JobPage page;
  page.jobs = std::move(*jobs);
  if (page.jobs.size() > static_cast<size_t>(limit)) {
    page.jobs.resize(static_cast<size_t>(limit));
    page.next_cursor = EncodeJobCursor(page.jobs.back());
  }
  return page;
}

Status SqliteMetadataStore::DeleteJob(std::string_view id) {
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto stmt = db->Prepare("DELETE FROM jobs WHERE id = ?1");
  if (!stmt) return tl::unexpected(stmt.error());
  if (auto ran = stmt->Bind(id).Run(); !ran) return ran;
  if (db->Changes() == 0) return JobNotFound(id);
  return {};
}

Status SqliteMetadataStore::ExpireJob(std::string_view id, int64_t now_ms) {
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto tx = sqlite::Transaction::Begin(*db);
  if (!tx) return tl::unexpected(tx.error());
  Result<Job> job = ReadJob(*db, id);
  if (!job) return tl::unexpected(job.error());
  auto stmt = db->Prepare("DELETE FROM jobs WHERE id = ?1");
  if (!stmt) return tl::unexpected(stmt.error());
  if (auto ran = stmt->Bind(id).Run(); !ran) return ran;
  if (job->status == JobStatus::kDone || job->status == JobStatus::kFailed) {
    if (auto logged = InsertEvent(*db, MakeStoredEvent("job.expired", *job, now_ms)); !logged)
      return logged;
  }
  return tx->Commit();
}

Result<EventPage> SqliteMetadataStore::ReadEvents(std::string_view owner_id, std::string_view after,
                                                  int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  auto after_seq = DecodeEventSeq(after);
  if (!after_seq) return tl::unexpected(after_seq.error());
  auto db = pool_.Acquire();
  Result<std::vector<StoredEvent>> events;
  if (owner_id.empty()) {
    auto stmt = db->Prepare(
        fmt::format("SELECT {} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2", kEventColumns));
    if (!stmt) return tl::unexpected(stmt.error());
    events = CollectEvents(stmt->Bind(*after_seq, limit));
  } else {
    auto stmt = db->Prepare(
        fmt::format("SELECT {} FROM events WHERE owner_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                    kEventColumns));
    if (!stmt) return tl::unexpected(stmt.error());
    events = CollectEvents(stmt->Bind(owner_id, *after_seq, limit));
  }
  if (!events) return tl::unexpected(events.error());
  EventPage page{std::move(*events), std::string(after)};
  if (!page.events.empty()) page.next_cursor = page.events.back().cursor;
  return page;
}

Status SqliteMetadataStore::PruneEvents(int64_t before_ms) {
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto stmt = db->Prepare("DELETE FROM events WHERE created_at < ?1");
  if (!stmt) return tl::unexpected(stmt.error());
  return stmt->Bind(before_ms).Run();
}

Result<std::vector<Job>> SqliteMetadataStore::ListExpired(int64_t now_ms, int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  auto db = pool_.Acquire();
  auto stmt = db->Prepare(
      "SELECT doc FROM jobs WHERE expires_at > 0 AND expires_at <= ?1 "
      "ORDER BY expires_at, id LIMIT ?2");
  if (!stmt) return tl::unexpected(stmt.error());
  return CollectJobs(stmt->Bind(now_ms, limit));
}

Result<std::map<JobStatus, uint64_t>> SqliteMetadataStore::CountByStatus() {
  std::map<JobStatus, uint64_t> counts;
  for (JobStatus status : {JobStatus::kQueued, JobStatus::kConverting, JobStatus::kDone,
                           JobStatus::kFailed, JobStatus::kCancelled}) {
    counts[status] = 0;
  }
  auto db = pool_.Acquire();
  auto stmt = db->Prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status");
  if (!stmt) return tl::unexpected(stmt.error());
  for (;;) {
    auto row = stmt->Step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return counts;
    if (auto status = ParseJobStatus(stmt->Text(0))) counts[*status] += stmt->Int(1);
  }
}

Status SqliteMetadataStore::Ping() {
  auto db = pool_.Acquire();
  auto stmt = db->Prepare("SELECT 1 FROM jobs LIMIT 1");
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->Step();
  if (!row) return tl::unexpected(row.error());
  return {};
}

std::string SqliteMetadataStore::Describe() const { return "sqlite://" + path_.string(); }

Result<std::string> SqliteMetadataStore::UpdateLimit(
    std::string_view key, std::chrono::milliseconds ttl,
    const std::function<std::string(std::string_view current)>& update) {
  if (auto valid = ValidateLimitKey(key); !valid) return tl::unexpected(valid.error());
  if (ttl.count() <= 0) return MakeError(ErrorCode::kInvalidArgument, "a limit TTL must be > 0");
  int64_t now = WallMs();
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto tx = sqlite::Transaction::Begin(*db);
  if (!tx) return tl::unexpected(tx.error());
  std::string current;
  {
    auto stmt = db->Prepare("SELECT value FROM limits WHERE key = ?1 AND expires_at > ?2");
    if (!stmt) return tl::unexpected(stmt.error());
    auto row = stmt->Bind(key, now).Step();
    if (!row) return tl::unexpected(row.error());
    if (*row) current = stmt->Text(0);
  }
  std::string next = update(current);
  Status written;
  if (next.empty()) {
    auto stmt = db->Prepare("DELETE FROM limits WHERE key = ?1");
    if (!stmt) return tl::unexpected(stmt.error());
    written = stmt->Bind(key).Run();
  } else {
    auto stmt = db->Prepare(
        "INSERT INTO limits (key, value, expires_at) VALUES (?1, ?2, ?3) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at");
    if (!stmt) return tl::unexpected(stmt.error());
    written = stmt->Bind(key, next, now + ttl.count()).Run();
  }
  if (!written) return tl::unexpected(written.error());
  // Now and then, drop what expired, so the table follows the current traffic.
  if (++limit_writes_ % 1024 == 0) {
    auto stmt = db->Prepare("DELETE FROM limits WHERE expires_at <= ?1");
    if (!stmt) return tl::unexpected(stmt.error());
    if (auto swept = stmt->Bind(now).Run(); !swept) return tl::unexpected(swept.error());
  }
  if (auto committed = tx->Commit(); !committed) return tl::unexpected(committed.error());
  return next;
}

Result<std::string> SqliteMetadataStore::GetLimit(std::string_view key) {
  if (auto valid = ValidateLimitKey(key); !valid) return tl::unexpected(valid.error());
  auto db = pool_.Acquire();
  auto stmt = db->Prepare("SELECT value FROM limits WHERE key = ?1 AND expires_at > ?2");
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->Bind(key, WallMs()).Step();
  if (!row) return tl::unexpected(row.error());
  return *row ? stmt->Text(0) : std::string();
}

Status SqliteMetadataStore::Insert(std::string_view kind, const Record& record) {
  if (auto valid = CheckRecord(kind, record); !valid) return valid;
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto stmt = db->Prepare(fmt::format(
      "INSERT INTO notify_records (kind, {}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", kRecordColumns));
  if (!stmt) return tl::unexpected(stmt.error());
  auto ran = stmt->Bind(kind, record.id, record.owner_id, record.parent, record.created_at,
                        record.due_at, record.body)
                 .Run();
  if (!ran && ran.error().code == ErrorCode::kAlreadyExists)
    return MakeError(ErrorCode::kAlreadyExists, fmt::format("{} {} exists", kind, record.id));
  return ran;
}

Result<Record> SqliteMetadataStore::Get(std::string_view kind, std::string_view id) {
  auto db = pool_.Acquire();
  auto record = ReadRecord(*db, kind, id);
  if (!record) return tl::unexpected(record.error());
  if (!*record) return RecordNotFound(kind, id);
  return std::move(**record);
}

Result<Record> SqliteMetadataStore::Update(std::string_view kind, std::string_view id,
                                           const std::function<Status(Record&)>& mutate) {
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto tx = sqlite::Transaction::Begin(*db);
  if (!tx) return tl::unexpected(tx.error());
  auto current = ReadRecord(*db, kind, id);
  if (!current) return tl::unexpected(current.error());
  if (!*current) return RecordNotFound(kind, id);
  Record record = **current;
  if (auto mutated = mutate(record); !mutated) return tl::unexpected(mutated.error());
  if (auto kept = CheckRecordUpdate(kind, **current, record); !kept)
    return tl::unexpected(kept.error());
  auto stmt =
      db->Prepare("UPDATE notify_records SET due_at = ?1, body = ?2 WHERE kind = ?3 AND id = ?4");
  if (!stmt) return tl::unexpected(stmt.error());
  if (auto ran = stmt->Bind(record.due_at, record.body, kind, id).Run(); !ran)
    return tl::unexpected(ran.error());
  if (auto committed = tx->Commit(); !committed) return tl::unexpected(committed.error());
  return record;
}

Status SqliteMetadataStore::Remove(std::string_view kind, std::string_view id) {
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto stmt = db->Prepare("DELETE FROM notify_records WHERE kind = ?1 AND id = ?2");
  if (!stmt) return tl::unexpected(stmt.error());
  if (auto ran = stmt->Bind(kind, id).Run(); !ran) return ran;
  if (db->Changes() == 0) return RecordNotFound(kind, id);
  return {};
}

Result<RecordPage> SqliteMetadataStore::List(std::string_view kind, ListBy by, std::string_view key,
                                             int limit, std::string_view cursor) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  JobCursor after;  // the same "created_at:id" form
  if (!cursor.empty()) {
    auto decoded = DecodeJobCursor(cursor);
    if (!decoded) return MakeError(ErrorCode::kInvalidArgument, "malformed list cursor");
    after = *decoded;
  }
  const char* column = by == ListBy::kOwner ? "owner_id" : "parent";
  int64_t fetch = static_cast<int64_t>(limit) + 1;
  auto db = pool_.Acquire();
  Result<std::vector<Record>> records;
  if (cursor.empty()) {
    auto stmt =
        db->Prepare(fmt::format("SELECT {} FROM notify_records WHERE kind = ?1 AND {} = ?2 "
                                "ORDER BY created_at DESC, id DESC LIMIT ?3",
                                kRecordColumns, column));
    if (!stmt) return tl::unexpected(stmt.error());
    records = CollectRecords(stmt->Bind(kind, key, fetch));
  } else {
    auto stmt = db->Prepare(
        fmt::format("SELECT {} FROM notify_records WHERE kind = ?1 AND {} = ?2 "
                    "AND (created_at, id) < (?3, ?4) ORDER BY created_at DESC, id DESC LIMIT ?5",
                    kRecordColumns, column));
    if (!stmt) return tl::unexpected(stmt.error());
    records = CollectRecords(stmt->Bind(kind, key, after.created_at, after.id, fetch));
  }
  if (!records) return tl::unexpected(records.error());
  RecordPage page{std::move(*records), {}};
  if (page.records.size() > static_cast<size_t>(limit)) {
    page.records.resize(static_cast<size_t>(limit));
    page.next_cursor = EncodeRecordCursor(page.records.back());
  }
  return page;
}

Result<std::vector<Record>> SqliteMetadataStore::ClaimDue(std::string_view kind, int64_t now_ms,
                                                          int64_t lease_ms, int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  if (lease_ms <= 0) return MakeError(ErrorCode::kInvalidArgument, "a lease must be > 0");
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto tx = sqlite::Transaction::Begin(*db);
  if (!tx) return tl::unexpected(tx.error());
  Result<std::vector<Record>> due;
  {
    auto stmt = db->Prepare(
        fmt::format("SELECT {} FROM notify_records WHERE kind = ?1 AND due_at > 0 AND due_at <= ?2 "
                    "ORDER BY due_at, id LIMIT ?3",
                    kRecordColumns));
    if (!stmt) return tl::unexpected(stmt.error());
    due = CollectRecords(stmt->Bind(kind, now_ms, limit));
  }
  if (!due) return tl::unexpected(due.error());
  for (Record& record : *due) {
    record.due_at = now_ms + lease_ms;
    auto stmt = db->Prepare("UPDATE notify_records SET due_at = ?1 WHERE kind = ?2 AND id = ?3");
    if (!stmt) return tl::unexpected(stmt.error());
    if (auto ran = stmt->Bind(record.due_at, kind, record.id).Run(); !ran)
      return tl::unexpected(ran.error());
  }
  if (auto committed = tx->Commit(); !committed) return tl::unexpected(committed.error());
  return due;
}

Result<int> SqliteMetadataStore::PruneRecords(std::string_view kind, int64_t before_ms, int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto stmt = db->Prepare(
      "DELETE FROM notify_records WHERE kind = ?1 AND rowid IN (SELECT rowid FROM notify_records "
      "WHERE kind = ?1 AND due_at = 0 AND created_at < ?2 ORDER BY created_at LIMIT ?3)");
  if (!stmt) return tl::unexpected(stmt.error());
  if (auto ran = stmt->Bind(kind, before_ms, limit).Run(); !ran) return tl::unexpected(ran.error());
  return static_cast<int>(db->Changes());
}

Result<std::string> SqliteMetadataStore::GetCursor(std::string_view name) {
  auto db = pool_.Acquire();
  auto stmt = db->Prepare("SELECT value FROM notify_cursors WHERE name = ?1");
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->Bind(name).Step();
  if (!row) return tl::unexpected(row.error());
  return *row ? stmt->Text(0) : std::string();
}

Status SqliteMetadataStore::SetCursor(std::string_view name, std::string_view value) {
  std::lock_guard write(write_mu_);
  auto db = pool_.Acquire();
  auto stmt = db->Prepare(
      "INSERT INTO notify_cursors (name, value) VALUES (?1, ?2) "
      "ON CONFLICT(name) DO UPDATE SET value = excluded.value");
  if (!stmt) return tl::unexpected(stmt.error());
  return stmt->Bind(name, value).Run();
}

}  // namespace vmp3
