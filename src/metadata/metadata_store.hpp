// Users and conversion jobs. The embedded implementation is SqliteMetadataStore; a distributed
// deployment uses Redis. Every implementation passes
// tests/metadata/metadata_store_contract_test.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace vmp3 {

struct User {
  std::string id;
  std::string username;  // unique ignoring ASCII case; stored as given
  std::string email;
  std::string password_hash;
  int64_t created_at = 0;  // unix ms
};

enum class JobStatus { kQueued, kConverting, kDone, kFailed, kCancelled };

// "queued", "converting", "done", "failed", "cancelled": the names used in JSON and storage.
std::string_view JobStatusName(JobStatus status);
std::optional<JobStatus> ParseJobStatus(std::string_view name);
// Done, failed and cancelled jobs never change status again.
bool IsTerminal(JobStatus status);

struct Job {
  std::string id;
  std::string owner_id;
  JobStatus status = JobStatus::kQueued;
  double progress = 0;     // 0 to 1
  std::string error_code;  // ErrorCodeName() of the failure, when failed
  std::string error_message;
  std::string input_name;  // the uploaded file's name: shown to its owner, never used as a path
  std::string input_key;   // object keys
  uint64_t input_size = 0;
  double input_duration = 0;  // seconds
  std::string output_key;
  uint64_t output_size = 0;
  double output_duration = 0;  // seconds
  int output_bitrate_kbps = 0;
  std::string options_json;  // conversion options, as the API received them
  int attempts = 0;
  // Unix ms; 0 when it has not happened. expires_at 0 means never.
  int64_t created_at = 0;
  int64_t updated_at = 0;
  int64_t started_at = 0;
  int64_t finished_at = 0;
  int64_t expires_at = 0;
};

// JSON with the field names above and status as its name. from_json throws
// nlohmann::json::exception for a malformed document; missing fields keep their defaults, so
// documents written before a field existed still load.
void to_json(nlohmann::json& j, const User& user);
void from_json(const nlohmann::json& j, User& user);
void to_json(nlohmann::json& j, const Job& job);
void from_json(const nlohmann::json& j, Job& job);

// What a user holds, for quotas: jobs not yet ended, and the bytes storage keeps for them
// (inputs still stored, MP3s of done jobs).
struct Usage {
  uint64_t active_jobs = 0;
  uint64_t stored_bytes = 0;
};
// The share of its owner's Usage one job accounts for: active while queued or converting; its
// input_size while input_key is set (the input is stored), plus its output_size once done with
// an output_key. Stores keep usage by this rule on every write of a job.
Usage UsageOf(const Job& job);

// Limits CreateJob enforces atomically with the write; 0 means no limit.
struct UsageLimits {
  uint64_t max_active_jobs = 0;
  uint64_t max_stored_bytes = 0;
};
// Success when `usage` (a user's, with the job to create counted) is within `limits`; else
// kRateLimited (active jobs; Retry-After 30 s) or kQuotaExceeded, with a message for the user.
Status CheckUsageLimits(const Usage& usage, const UsageLimits& limits);

// Shared by the implementations, so that every backend words its errors and its list cursor
// alike (the cursor is "created_at:id", opaque to clients).
tl::unexpected<Error> JobNotFound(std::string_view id);
Status CheckListLimit(int limit);  // kInvalidArgument below 1
struct JobCursor {
  int64_t created_at = 0;
  std::string_view id;  // a view into the decoded text
};
std::string EncodeJobCursor(const Job& job);
Result<JobCursor> DecodeJobCursor(std::string_view text);

struct JobPage {
  std::vector<Job> jobs;
  std::string next_cursor;  // empty on the last page
};

// A job's lifecycle event in the store's event log: "job.<status>" whenever a job is created or
// its status changes, and "job.expired" when a finished job expires (ExpireJob). The store
// writes it in the same transaction as the change itself, so the log is an outbox: no change
// without its event, no event without its change. The notifier reads it in order, and users read
// their own (GET /v1/events).
struct StoredEvent {
  std::string cursor;  // where it is in the log it was read from (opaque; see ReadEvents)
  std::string id;      // unique (RandomId), the same every time it is read: a webhook-id
  std::string type;    // "job.queued", "job.converting", "job.done", ...
  std::string owner_id;
  std::string job_id;
  int64_t created_at = 0;  // unix ms: the job's updated_at (created_at for job.queued)
  std::string job;         // the job as written, JSON (to_json(Job))
};
// The type of the event a write of `after` (with `before` the job it replaces, null when new)
// makes: "job.<status>" when the status is new, nullopt when it did not change.
std::optional<std::string> StatusEventType(const Job* before, const Job& after);
// The event a write makes, with a fresh id; cursor left empty (the store assigns it).
StoredEvent MakeStoredEvent(std::string type, const Job& job, int64_t at_ms);

// The event log cursor of the stores that number events (SQLite, memory): the seq, decimal;
// "" is 0, before every event. kInvalidArgument for anything else.
Result<int64_t> DecodeEventSeq(std::string_view cursor);

struct EventPage {
  std::vector<StoredEvent> events;  // oldest first
  // Where to continue: the last event's cursor, or the cursor that was given when none followed
  // it (so a poller just keeps passing it back).
  std::string next_cursor;
};

// Thread-safe: every method may be called from any thread concurrently.
// Errors: kNotFound for a missing user or job, kInvalidArgument for malformed arguments,
// kUnavailable or kIo when the backend fails. The store never invents timestamps: callers set
// created_at, updated_at and the rest.
class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // kAlreadyExists when the id, or the username ignoring ASCII case, is taken.
  virtual Status CreateUser(const User& user) = 0;
  // Case-insensitive (ASCII) lookup.
  virtual Result<User> FindUserByName(std::string_view username) = 0;
  virtual Result<User> GetUser(std::string_view id) = 0;

  // kAlreadyExists when the id is taken.
  Status CreateJob(const Job& job) { return CreateJobWithin(job, UsageLimits{}); }
  // CreateJob, unless the owner's usage with this job would pass `limits`: then kRateLimited
  // (too many unfinished jobs) or kQuotaExceeded (too many stored bytes), and nothing is
  // written. The check and the write are one atomic step, so concurrent uploads cannot both
  // squeeze under a limit.
  virtual Status CreateJobWithin(const Job& job, const UsageLimits& limits) = 0;
  // The owner's current usage (zero for a user without jobs).
  virtual Result<Usage> GetUsage(std::string_view owner_id) = 0;
  virtual Result<Job> GetJob(std::string_view id) = 0;
  // Atomic read-modify-write: mutate sees the current job and edits it in place. When it returns
  // an error, that error is returned and nothing is written. It must not change id or owner_id
  // (kInternal), must not call back into the store, and may be called more than once (stores
  // with optimistic concurrency retry it on a conflict), so it must depend only on the job it is
  // given. Returns the job as written.
  virtual Result<Job> UpdateJob(std::string_view id, const std::function<Status(Job&)>& mutate) = 0;
  // Cheap and frequent: sets progress (clamped to 0..1; kInvalidArgument for NaN) unless the job
  // is terminal, in which case nothing changes and the result is still success. Does not touch
  // updated_at.
  virtual Status SetProgress(std::string_view id, double progress) = 0;
  // The owner's jobs, newest first (created_at, then id, descending), at most limit (>= 1) per
  // page. Pass the previous page's next_cursor to continue; the cursor is opaque and stays valid
  // when jobs are added or removed: every job that existed when listing began and still exists is
  // listed exactly once. kInvalidArgument for a malformed cursor.
  virtual Result<JobPage> ListJobs(std::string_view owner_id, int limit,
                                   std::string_view cursor) = 0;
  virtual Status DeleteJob(std::string_view id) = 0;
  // Deletes the job as the janitor does when it expires, and, when it had ended done or failed
  // (a cancelled job was announced when cancelled), logs "job.expired" at now_ms in the same
  // step. kNotFound when there is no such job.
  virtual Status ExpireJob(std::string_view id, int64_t now_ms) = 0;
  // Jobs with 0 < expires_at <= now_ms, soonest expiry first, at most limit (>= 1).
  virtual Result<std::vector<Job>> ListExpired(int64_t now_ms, int limit) = 0;
  // The event log, oldest first: every owner's events when owner_id is empty (the notifier),
  // else only that owner's. `after` is a cursor of an event read the same way (owner or not;
  // the two kinds differ), or "" for the oldest kept; at most limit (>= 1) events after it, in
  // the order their transactions committed, so a reader that passes back next_cursor sees every
  // event once even while writers run. kInvalidArgument for a malformed cursor.
  virtual Result<EventPage> ReadEvents(std::string_view owner_id, std::string_view after,
                                       int limit) = 0;
  // Forgets events logged before before_ms (retention). Some backends trim lazily.
  virtual Status PruneEvents(int64_t before_ms) = 0;
  // Number of jobs in each status; every status is present, with 0 when none.
  virtual Result<std::map<JobStatus, uint64_t>> CountByStatus() = 0;
  // Checks that the backend is reachable.
  virtual Status Ping() = 0;
  // Where the data is, for logs; never contains a secret.
  virtual std::string Describe() const = 0;
};

}  // namespace vmp3
