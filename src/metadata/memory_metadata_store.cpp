#include "metadata/memory_metadata_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "common/text.hpp"
#include "metadata/memory_limit_store.hpp"

namespace vmp3 {

namespace {

// (created_at, id): the order of ListJobs (descending) and what its cursor encodes.
using ListKey = std::pair<int64_t, std::string>;
// (expires_at, id): the order of ListExpired.
using ExpiryKey = std::pair<int64_t, std::string>;

}  // namespace

class MemoryMetadataStore::State {
 public:
  std::mutex mu;
  std::map<std::string, User, std::less<>> users;            // by id
  std::map<std::string, std::string, std::less<>> user_ids;  // lowercased username → id
  std::map<std::string, Job, std::less<>> jobs;              // by id
  std::map<std::string, std::set<ListKey>, std::less<>> jobs_by_owner;
  std::set<ExpiryKey> expiring;  // jobs with expires_at > 0
  MemoryLimitStore limits;       // has its own lock
  // The event log: seq → event (cursor = seq), and each owner's seqs.
  std::map<int64_t, StoredEvent> events;
  std::map<std::string, std::set<int64_t>, std::less<>> events_by_owner;
  int64_t last_seq = 0;
  // The NotificationStore: records by (kind, id), with their indexes.
  using RecordKey = std::pair<std::string, std::string>;
  std::map<RecordKey, Record> records;
  std::map<std::tuple<std::string, ListBy, std::string>, std::set<ListKey>> records_listed;
  std::set<std::tuple<std::string, int64_t, std::string>> records_due;  // (kind, due_at, id)
  std::map<std::string, std::string, std::less<>> cursors;

  void LogEvent(StoredEvent event) {
    event.cursor = std::to_string(++last_seq);
    events_by_owner[event.owner_id].insert(last_seq);
    events.emplace(last_seq, std::move(event));
  }

  void LogStatusEvent(const Job* before, const Job& after) {
    if (auto type = StatusEventType(before, after))
      LogEvent(
          MakeStoredEvent(std::move(*type), after, before ? after.updated_at : after.created_at));
  }

  void IndexRecord(const std::string& kind, const Record& r) {
    records_listed[{kind, ListBy::kOwner, r.owner_id}].emplace(r.created_at, r.id);
    if (!r.parent.empty())
      records_listed[{kind, ListBy::kParent, r.parent}].emplace(r.created_at, r.id);
    if (r.due_at > 0) records_due.emplace(kind, r.due_at, r.id);
  }

  void UnindexRecord(const std::string& kind, const Record& r) {
    for (auto [by, key] :
         {std::pair(ListBy::kOwner, r.owner_id), std::pair(ListBy::kParent, r.parent)}) {
      auto it = records_listed.find({kind, by, key});
      if (it == records_listed.end()) continue;
      it->second.erase(ListKey(r.created_at, r.id));
      if (it->second.empty()) records_listed.erase(it);
    }
    records_due.erase({kind, r.due_at, r.id});
  }

  void Index(const Job& job) {
    jobs_by_owner[job.owner_id].emplace(job.created_at, job.id);
    if (job.expires_at > 0) expiring.emplace(job.expires_at, job.id);
  }

  void Unindex(const Job& job) {
    auto owned = jobs_by_owner.find(job.owner_id);
    owned->second.erase(ListKey(job.created_at, job.id));
    if (owned->second.empty()) jobs_by_owner.erase(owned);
    expiring.erase(ExpiryKey(job.expires_at, job.id));
  }

  Usage UsageOfOwner(std::string_view owner_id) const {
    Usage usage;
    auto owned = jobs_by_owner.find(owner_id);
    if (owned == jobs_by_owner.end()) return usage;
    for (const auto& [created_at, id] : owned->second) {
      Usage share = UsageOf(jobs.find(id)->second);
      usage.active_jobs += share.active_jobs;
      usage.stored_bytes += share.stored_bytes;
    }
    return usage;
  }
};

MemoryMetadataStore::MemoryMetadataStore() : state_(std::make_shared<State>()) {}
MemoryMetadataStore::MemoryMetadataStore(std::shared_ptr<State> state) : state_(std::move(state)) {}
MemoryMetadataStore::~MemoryMetadataStore() = default;

Status MemoryMetadataStore::CreateUser(const User& user) {
  if (user.id.empty() || user.username.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "a user needs an id and a username");
  }
  std::string name = AsciiLowerCopy(user.username);
  std::lock_guard lock(state_->mu);
  if (state_->user_ids.contains(name)) {
    return MakeError(ErrorCode::kAlreadyExists,
                     fmt::format("the username {} is taken", user.username));
  }
  if (state_->users.contains(user.id)) {
    return MakeError(ErrorCode::kAlreadyExists, fmt::format("user {} exists", user.id));
  }
  state_->users.emplace(user.id, user);
  state_->user_ids.emplace(std::move(name), user.id);
  return {};
}

Result<User> MemoryMetadataStore::FindUserByName(std::string_view username) {
  std::lock_guard lock(state_->mu);
  auto id = state_->user_ids.find(AsciiLowerCopy(username));
  if (id == state_->user_ids.end()) {
    return MakeError(ErrorCode::kNotFound, fmt::format("no user is named {}", username));
  }
  return state_->users.find(id->second)->second;
}

Result<User> MemoryMetadataStore::GetUser(std::string_view id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->users.find(id);
  if (it == state_->users.end()) {
    return MakeError(ErrorCode::kNotFound, fmt::format("user {} does not exist", id));
  }
  return it->second;
}

Status MemoryMetadataStore::CreateJobWithin(const Job& job, const UsageLimits& limits) {
  if (job.id.empty() || job.owner_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "a job needs an id and an owner");
  }
  std::lock_guard lock(state_->mu);
  if (state_->jobs.contains(job.id)) {
    return MakeError(ErrorCode::kAlreadyExists, fmt::format("job {} exists", job.id));
  }
  if (limits.max_active_jobs > 0 || limits.max_stored_bytes > 0) {
    Usage usage = state_->UsageOfOwner(job.owner_id);
    Usage share = UsageOf(job);
    usage.active_jobs += share.active_jobs;
    usage.stored_bytes += share.stored_bytes;
    if (auto within = CheckUsageLimits(usage, limits); !within) return within;
  }
  state_->jobs.emplace(job.id, job);
  state_->Index(job);
  state_->LogStatusEvent(nullptr, job);
  return {};
}

Result<Usage> MemoryMetadataStore::GetUsage(std::string_view owner_id) {
  std::lock_guard lock(state_->mu);
  return state_->UsageOfOwner(owner_id);
}

Result<Job> MemoryMetadataStore::GetJob(std::string_view id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return JobNotFound(id);
  return it->second;
}

Result<Job> MemoryMetadataStore::UpdateJob(std::string_view id,
                                           const std::function<Status(Job&)>& mutate) {
  std::lock_guard lock(state_->mu);
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return JobNotFound(id);
  Job job = it->second;
  if (auto mutated = mutate(job); !mutated) return tl::unexpected(mutated.error());
  if (job.id != it->second.id || job.owner_id != it->second.owner_id) {
    return MakeError(ErrorCode::kInternal,
                     fmt::format("an update of job {} tried to change its id or owner", id));
  }
  state_->LogStatusEvent(&it->second, job);
  state_->Unindex(it->second);
  it->second = job;
  state_->Index(job);
  return job;
}

Status MemoryMetadataStore::SetProgress(std::string_view id, double progress) {
  if (std::isnan(progress)) {
    return MakeError(ErrorCode::kInvalidArgument, "job progress must be a number");
  }
  std::lock_guard lock(state_->mu);
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return JobNotFound(id);
  if (!IsTerminal(it->second.status)) it->second.progress = std::clamp(progress, 0.0, 1.0);
  return {};
}

Result<JobPage> MemoryMetadataStore::ListJobs(std::string_view owner_id, int limit,
                                              std::string_view cursor) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  std::optional<ListKey> after;
  if (!cursor.empty()) {
    auto decoded = DecodeJobCursor(cursor);
    if (!decoded) return tl::unexpected(decoded.error());
    after = ListKey(decoded->created_at, std::string(decoded->id));
  }
  JobPage page;
  std::lock_guard lock(state_->mu);
  auto owned = state_->jobs_by_owner.find(owner_id);
  if (owned == state_->jobs_by_owner.end()) return page;
  const std::set<ListKey>& keys = owned->second;
  // Newest first: walk the ascending set backwards from just below the cursor.
  auto it = std::make_reverse_iterator(after ? keys.lower_bound(*after) : keys.end());
  for (; it != keys.rend(); ++it) {
    if (page.jobs.size() == static_cast<size_t>(limit)) {
      page.next_cursor = EncodeJobCursor(page.jobs.back());
      break;
    }
    page.jobs.push_back(state_->jobs.find(it->second)->second);
  }
  return page;
}

Status MemoryMetadataStore::DeleteJob(std::string_view id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return JobNotFound(id);
  state_->Unindex(it->second);
  state_->jobs.erase(it);
  return {};
}

Status MemoryMetadataStore::ExpireJob(std::string_view id, int64_t now_ms) {
  std::lock_guard lock(state_->mu);
  auto it = state_->jobs.find(id);
  if (it == state_->jobs.end()) return JobNotFound(id);
  if (it->second.status == JobStatus::kDone || it->second.status == JobStatus::kFailed)
    state_->LogEvent(MakeStoredEvent("job.expired", it->second, now_ms));
  state_->Unindex(it->second);
  state_->jobs.erase(it);
  return {};
}

Result<EventPage> MemoryMetadataStore::ReadEvents(std::string_view owner_id, std::string_view after,
                                                  int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  auto after_seq = DecodeEventSeq(after);
  if (!after_seq) return tl::unexpected(after_seq.error());
  EventPage page{{}, std::string(after)};
  std::lock_guard lock(state_->mu);
  if (owner_id.empty()) {
    for (auto it = state_->events.upper_bound(*after_seq);
         it != state_->events.end() && page.events.size() < static_cast<size_t>(limit); ++it)
      page.events.push_back(it->second);
  } else if (auto owned = state_->events_by_owner.find(owner_id);
             owned != state_->events_by_owner.end()) {
    for (auto it = owned->second.upper_bound(*after_seq);
         it != owned->second.end() && page.events.size() < static_cast<size_t>(limit); ++it)
      page.events.push_back(state_->events.at(*it));
  }
  if (!page.events.empty()) page.next_cursor = page.events.back().cursor;
  return page;
}

Status MemoryMetadataStore::PruneEvents(int64_t before_ms) {
  std::lock_guard lock(state_->mu);
  for (auto it = state_->events.begin(); it != state_->events.end();) {
    if (it->second.created_at >= before_ms) {
      ++it;
      continue;
    }
    auto owned = state_->events_by_owner.find(it->second.owner_id);
    owned->second.erase(it->first);
    if (owned->second.empty()) state_->events_by_owner.erase(owned);
    it = state_->events.erase(it);
  }
  return {};
}

Result<std::vector<Job>> MemoryMetadataStore::ListExpired(int64_t now_ms, int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  std::vector<Job> expired;
  std::lock_guard lock(state_->mu);
  for (const auto& [expires_at, id] : state_->expiring) {
    if (expires_at > now_ms || expired.size() == static_cast<size_t>(limit)) break;
    expired.push_back(state_->jobs.find(id)->second);
  }
  return expired;
}

Result<std::map<JobStatus, uint64_t>> MemoryMetadataStore::CountByStatus() {
  std::map<JobStatus, uint64_t> counts;
  for (JobStatus status : {JobStatus::kQueued, JobStatus::kConverting, JobStatus::kDone,
                           JobStatus::kFailed, JobStatus::kCancelled}) {
    counts[status] = 0;
  }
  std::lock_guard lock(state_->mu);
  for (const auto& [id, job] : state_->jobs) ++counts[job.status];
  return counts;
}

Status MemoryMetadataStore::Ping() { return {}; }

std::string MemoryMetadataStore::Describe() const { return "memory"; }

Result<std::string> MemoryMetadataStore::UpdateLimit(
    std::string_view key, std::chrono::milliseconds ttl,
    const std::function<std::string(std::string_view current)>& update) {
  return state_->limits.UpdateLimit(key, ttl, update);
}

Result<std::string> MemoryMetadataStore::GetLimit(std::string_view key) {
  return state_->limits.GetLimit(key);
}

Status MemoryMetadataStore::Insert(std::string_view kind, const Record& record) {
  if (auto valid = CheckRecord(kind, record); !valid) return valid;
  std::lock_guard lock(state_->mu);
  State::RecordKey key(kind, record.id);
  if (state_->records.contains(key))
    return MakeError(ErrorCode::kAlreadyExists, fmt::format("{} {} exists", kind, record.id));
  state_->records.emplace(key, record);
  state_->IndexRecord(key.first, record);
  return {};
}

Result<Record> MemoryMetadataStore::Get(std::string_view kind, std::string_view id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->records.find({std::string(kind), std::string(id)});
  if (it == state_->records.end())
    return MakeError(ErrorCode::kNotFound, fmt::format("{} {} does not exist", kind, id));
  return it->second;
}

Result<Record> MemoryMetadataStore::Update(std::string_view kind, std::string_view id,
                                           const std::function<Status(Record&)>& mutate) {
  std::lock_guard lock(state_->mu);
  auto it = state_->records.find({std::string(kind), std::string(id)});
  if (it == state_->records.end())
    return MakeError(ErrorCode::kNotFound, fmt::format("{} {} does not exist", kind, id));
  Record record = it->second;
  if (auto mutated = mutate(record); !mutated) return tl::unexpected(mutated.error());
  if (auto kept = CheckRecordUpdate(kind, it->second, record); !kept)
    return tl::unexpected(kept.error());
  state_->UnindexRecord(it->first.first, it->second);
  it->second = record;
  state_->IndexRecord(it->first.first, record);
  return record;
}

Status MemoryMetadataStore::Remove(std::string_view kind, std::string_view id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->records.find({std::string(kind), std::string(id)});
  if (it == state_->records.end())
    return MakeError(ErrorCode::kNotFound, fmt::format("{} {} does not exist", kind, id));
  state_->UnindexRecord(it->first.first, it->second);
  state_->records.erase(it);
  return {};
}

Result<RecordPage> MemoryMetadataStore::List(std::string_view kind, ListBy by, std::string_view key,
                                             int limit, std::string_view cursor) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  std::optional<ListKey> after;
  if (!cursor.empty()) {
    auto decoded = DecodeJobCursor(cursor);
    if (!decoded) return MakeError(ErrorCode::kInvalidArgument, "malformed list cursor");
    after = ListKey(decoded->created_at, std::string(decoded->id));
  }
  RecordPage page;
  std::lock_guard lock(state_->mu);
  auto listed = state_->records_listed.find({std::string(kind), by, std::string(key)});
  if (listed == state_->records_listed.end()) return page;
  const std::set<ListKey>& keys = listed->second;
  auto it = std::make_reverse_iterator(after ? keys.lower_bound(*after) : keys.end());
  for (; it != keys.rend(); ++it) {
    if (page.records.size() == static_cast<size_t>(limit)) {
      page.next_cursor = EncodeRecordCursor(page.records.back());
      break;
    }
    page.records.push_back(state_->records.at({std::string(kind), it->second}));
  }
  return page;
}

Result<std::vector<Record>> MemoryMetadataStore::ClaimDue(std::string_view kind, int64_t now_ms,
                                                          int64_t lease_ms, int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  if (lease_ms <= 0) return MakeError(ErrorCode::kInvalidArgument, "a lease must be > 0");
  std::vector<Record> claimed;
  std::lock_guard lock(state_->mu);
  auto it = state_->records_due.lower_bound({std::string(kind), 1, std::string()});
  std::vector<std::string> ids;
  for (; it != state_->records_due.end() && std::get<0>(*it) == kind &&
         std::get<1>(*it) <= now_ms && ids.size() < static_cast<size_t>(limit);
       ++it) {
    ids.push_back(std::get<2>(*it));
  }
  for (const std::string& id : ids) {
    Record& record = state_->records.at({std::string(kind), id});
    state_->UnindexRecord(std::string(kind), record);
    record.due_at = now_ms + lease_ms;
    state_->IndexRecord(std::string(kind), record);
    claimed.push_back(record);
  }
  return claimed;
}

Result<int> MemoryMetadataStore::PruneRecords(std::string_view kind, int64_t before_ms, int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  std::lock_guard lock(state_->mu);
  std::vector<std::pair<int64_t, std::string>> old;
  for (const auto& [key, record] : state_->records) {
    if (key.first == kind && record.due_at == 0 && record.created_at < before_ms)
      old.emplace_back(record.created_at, key.second);
  }
  std::sort(old.begin(), old.end());
  if (old.size() > static_cast<size_t>(limit)) old.resize(static_cast<size_t>(limit));
  for (const auto& [created_at, id] : old) {
    auto it = state_->records.find({std::string(kind), id});
    state_->UnindexRecord(it->first.first, it->second);
    state_->records.erase(it);
  }
  return static_cast<int>(old.size());
}

Result<std::string> MemoryMetadataStore::GetCursor(std::string_view name) {
  std::lock_guard lock(state_->mu);
  auto it = state_->cursors.find(name);
  return it == state_->cursors.end() ? std::string() : it->second;
}

Status MemoryMetadataStore::SetCursor(std::string_view name, std::string_view value) {
  std::lock_guard lock(state_->mu);
  state_->cursors.insert_or_assign(std::string(name), std::string(value));
  return {};
}

}  // namespace vmp3
