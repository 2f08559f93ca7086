// What several roles share about jobs: how long they are kept, users' quotas, ids, and how the
// API shows a job.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/options.hpp"
#include "metadata/metadata_store.hpp"

namespace vmp3::roles {

// Retention: used by upload and converter (expiry of a job) and metadata (the janitor).
struct RetentionConfig {
  int64_t retention_seconds = 7 * 24 * 3600;  // jobs and their MP3s expire this long after ending
  bool keep_inputs = false;                   // keep uploads after their job ends

  void AddOptions(OptionList& options);
  Status Validate() const;
};

// Per-user limits: enforced by upload, shown by metadata (GET /v1/account). 0: no limit.
struct QuotaConfig {
  uint64_t max_active_jobs = 50;          // unfinished jobs per user; 429 beyond
  uint64_t max_user_bytes = 20ull << 30;  // bytes stored per user (inputs + MP3s); 403 beyond

  void AddOptions(OptionList& options);
  Status Validate() const;
  UsageLimits Limits() const { return {max_active_jobs, max_user_bytes}; }
};

// How long the event log keeps events (GET /v1/events, the notifier's source): 30 days.
inline constexpr int64_t kEventRetentionMs = 30LL * 24 * 3600 * 1000;

// A new random id: 26 lowercase base32 characters (128 bits).
std::string NewId();

// The job as the API shows it to its owner.
nlohmann::json JobJson(const Job& job);

// Reads a job for its owner: kNotFound when missing or someone else's (never 403, so ids of
// other users' jobs cannot be probed).
Result<Job> OwnedJob(MetadataStore& metadata, std::string_view job_id, std::string_view owner_id);

// The object keys of a job's input and output.
std::string InputKey(std::string_view job_id);
std::string OutputKey(std::string_view job_id);

}  // namespace vmp3::roles
