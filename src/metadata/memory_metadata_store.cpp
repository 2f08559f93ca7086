#include "metadata/memory_metadata_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
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

}  // namespace vmp3
