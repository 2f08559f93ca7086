#include "roles/jobs.hpp"

#include <fmt/format.h>

#include "common/ids.hpp"

namespace vmp3::roles {

std::string NewId() { return RandomId(); }

nlohmann::json JobJson(const Job& job) {
  auto time = [](int64_t ms) { return ms ? nlohmann::json(ms / 1000.0) : nlohmann::json(); };
  nlohmann::json j{
      {"id", job.id},
      {"status", JobStatusName(job.status)},
      {"progress", job.progress},
      {"input",
       {{"filename", job.input_name},
        {"size", job.input_size},
        {"duration",
         job.input_duration > 0 ? nlohmann::json(job.input_duration) : nlohmann::json()}}},
      {"created_at", time(job.created_at)},
      {"updated_at", time(job.updated_at)},
      {"started_at", time(job.started_at)},
      {"finished_at", time(job.finished_at)},
      {"expires_at", time(job.expires_at)},
      {"links", {{"self", "/v1/jobs/" + job.id}, {"events", "/v1/jobs/" + job.id + "/events"}}},
  };
  if (!job.options_json.empty()) {
    auto options = nlohmann::json::parse(job.options_json, nullptr, false);
    if (!options.is_discarded()) j["options"] = options;
  }
  j["error"] = job.error_code.empty()
                   ? nlohmann::json()
                   : nlohmann::json{{"code", job.error_code}, {"message", job.error_message}};
  if (job.status == JobStatus::kDone) {
    j["output"] = {{"size", job.output_size},
                   {"duration", job.output_duration},
                   {"bitrate_kbps", job.output_bitrate_kbps}};
    j["links"]["mp3"] = "/v1/jobs/" + job.id + "/mp3";
  } else {
    j["output"] = nullptr;
  }
  return j;
}

void RetentionConfig::AddOptions(OptionList& options) {
  options.push_back({"--retention", "VMP3_RETENTION",
                     "Seconds before ended jobs and their MP3s expire", &retention_seconds});
  options.push_back({"--keep-inputs", "VMP3_KEEP_INPUTS",
                     "Keep uploaded files after their job ends", &keep_inputs});
}

Status RetentionConfig::Validate() const {
  if (retention_seconds <= 0)
    return MakeError(ErrorCode::kInvalidArgument, "--retention must be positive");
  return {};
}

void QuotaConfig::AddOptions(OptionList& options) {
  options.push_back({"--max-active-jobs", "VMP3_MAX_ACTIVE_JOBS",
                     "Unfinished jobs a user may have at once; 429 beyond (0: no limit)",
                     &max_active_jobs});
  options.push_back({"--max-user-bytes", "VMP3_MAX_USER_BYTES",
                     "Bytes a user may keep stored, uploads and MP3s; 403 beyond (0: no limit)",
                     &max_user_bytes});
}

Status QuotaConfig::Validate() const { return {}; }

std::string InputKey(std::string_view job_id) { return fmt::format("inputs/{}", job_id); }
std::string OutputKey(std::string_view job_id) { return fmt::format("outputs/{}.mp3", job_id); }

Result<Job> OwnedJob(MetadataStore& metadata, std::string_view job_id, std::string_view owner_id) {
  auto job = metadata.GetJob(job_id);
  if (!job || job->owner_id != owner_id) {
    if (!job && job.error().code != ErrorCode::kNotFound) return job;
    return MakeError(ErrorCode::kNotFound, "no such job");
  }
  return job;
}

}  // namespace vmp3::roles
