#include "metadata/metadata_store.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/ids.hpp"

namespace vmp3 {
namespace {

constexpr std::array<std::pair<JobStatus, std::string_view>, 5> kStatusNames = {{
    {JobStatus::kQueued, "queued"},
    {JobStatus::kConverting, "converting"},
    {JobStatus::kDone, "done"},
    {JobStatus::kFailed, "failed"},
    {JobStatus::kCancelled, "cancelled"},
}};

template <typename T>
void Load(const nlohmann::json& j, const char* name, T& field) {
  if (auto it = j.find(name); it != j.end()) it->get_to(field);
}

}  // namespace

std::string_view JobStatusName(JobStatus status) {
  for (const auto& [value, name] : kStatusNames) {
    if (value == status) return name;
  }
  return "unknown";
}

std::optional<JobStatus> ParseJobStatus(std::string_view name) {
  for (const auto& [value, status_name] : kStatusNames) {
    if (status_name == name) return value;
  }
  return std::nullopt;
}

bool IsTerminal(JobStatus status) {
  return status == JobStatus::kDone || status == JobStatus::kFailed ||
         status == JobStatus::kCancelled;
}

Usage UsageOf(const Job& job) {
  Usage usage;
  usage.active_jobs = IsTerminal(job.status) ? 0 : 1;
  if (!job.input_key.empty()) usage.stored_bytes += job.input_size;
  if (job.status == JobStatus::kDone && !job.output_key.empty())
    usage.stored_bytes += job.output_size;
  return usage;
}

Status CheckUsageLimits(const Usage& usage, const UsageLimits& limits) {
  if (limits.max_active_jobs > 0 && usage.active_jobs > limits.max_active_jobs) {
    return tl::unexpected(Error(ErrorCode::kRateLimited,
                                fmt::format("you have {} unfinished jobs, the most allowed: wait "
                                            "for some to finish (or delete some) and try again",
                                            limits.max_active_jobs),
                                30));
  }
  if (limits.max_stored_bytes > 0 && usage.stored_bytes > limits.max_stored_bytes) {
    return MakeError(ErrorCode::kQuotaExceeded,
                     fmt::format("this upload would take your stored files to {} bytes, past your "
                                 "quota of {} bytes: delete some jobs first",
                                 usage.stored_bytes, limits.max_stored_bytes));
  }
  return {};
}

void to_json(nlohmann::json& j, const User& user) {
  j = nlohmann::json{{"id", user.id},
                     {"username", user.username},
                     {"email", user.email},
                     {"password_hash", user.password_hash},
                     {"created_at", user.created_at}};
}

void from_json(const nlohmann::json& j, User& user) {
  Load(j, "id", user.id);
  Load(j, "username", user.username);
  Load(j, "email", user.email);
  Load(j, "password_hash", user.password_hash);
  Load(j, "created_at", user.created_at);
}

void to_json(nlohmann::json& j, const Job& job) {
  j = nlohmann::json{{"id", job.id},
                     {"owner_id", job.owner_id},
                     {"status", JobStatusName(job.status)},
                     {"progress", job.progress},
                     {"error_code", job.error_code},
                     {"error_message", job.error_message},
                     {"input_name", job.input_name},
                     {"input_key", job.input_key},
                     {"input_size", job.input_size},
                     {"input_duration", job.input_duration},
                     {"output_key", job.output_key},
                     {"output_size", job.output_size},
                     {"output_duration", job.output_duration},
                     {"output_bitrate_kbps", job.output_bitrate_kbps},
                     {"options_json", job.options_json},
                     {"attempts", job.attempts},
                     {"created_at", job.created_at},
                     {"updated_at", job.updated_at},
                     {"started_at", job.started_at},
                     {"finished_at", job.finished_at},
                     {"expires_at", job.expires_at}};
}

void from_json(const nlohmann::json& j, Job& job) {
  Load(j, "id", job.id);
  Load(j, "owner_id", job.owner_id);
  if (auto it = j.find("status"); it != j.end()) {
    auto status = ParseJobStatus(it->get<std::string>());
    if (!status) {
      throw nlohmann::json::type_error::create(302, "unknown job status " + it->dump(), &j);
    }
    job.status = *status;
  }
  Load(j, "progress", job.progress);
  Load(j, "error_code", job.error_code);
  Load(j, "error_message", job.error_message);
  Load(j, "input_name", job.input_name);
  Load(j, "input_key", job.input_key);
  Load(j, "input_size", job.input_size);
  Load(j, "input_duration", job.input_duration);
  Load(j, "output_key", job.output_key);
  Load(j, "output_size", job.output_size);
  Load(j, "output_duration", job.output_duration);
  Load(j, "output_bitrate_kbps", job.output_bitrate_kbps);
  Load(j, "options_json", job.options_json);
  Load(j, "attempts", job.attempts);
  Load(j, "created_at", job.created_at);
  Load(j, "updated_at", job.updated_at);
  Load(j, "started_at", job.started_at);
  Load(j, "finished_at", job.finished_at);
  Load(j, "expires_at", job.expires_at);
}

tl::unexpected<Error> JobNotFound(std::string_view id) {
  return MakeError(ErrorCode::kNotFound, fmt::format("job {} does not exist", id));
}

Status CheckListLimit(int limit) {
  if (limit < 1) return MakeError(ErrorCode::kInvalidArgument, "a list limit must be at least 1");
  return {};
}

std::string EncodeJobCursor(const Job& job) { return fmt::format("{}:{}", job.created_at, job.id); }

Result<JobCursor> DecodeJobCursor(std::string_view text) {
  JobCursor cursor;
  size_t colon = text.find(':');
  if (colon != std::string_view::npos) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + colon, cursor.created_at);
    cursor.id = text.substr(colon + 1);
    if (ec == std::errc() && end == text.data() + colon && !cursor.id.empty()) return cursor;
  }
  return MakeError(ErrorCode::kInvalidArgument, "malformed job list cursor");
}

std::optional<std::string> StatusEventType(const Job* before, const Job& after) {
  if (before && before->status == after.status) return std::nullopt;
  return fmt::format("job.{}", JobStatusName(after.status));
}

Result<int64_t> DecodeEventSeq(std::string_view cursor) {
  int64_t seq = 0;
  if (cursor.empty()) return seq;
  auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), seq);
  if (ec != std::errc() || end != cursor.data() + cursor.size() || seq < 0)
    return MakeError(ErrorCode::kInvalidArgument, "malformed event cursor");
  return seq;
}

StoredEvent MakeStoredEvent(std::string type, const Job& job, int64_t at_ms) {
  return StoredEvent{
      .cursor = {},
      .id = RandomId(),
      .type = std::move(type),
      .owner_id = job.owner_id,
      .job_id = job.id,
      .created_at = at_ms,
      .job = nlohmann::json(job).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

}  // namespace vmp3
