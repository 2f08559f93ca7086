// The janitor of the metadata role: removes what expired (jobs past their retention, with their
// objects), writes a dead process left half done, and objects that no job owns.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>

#include "common/stoppable.hpp"
#include "roles/metadata_role.hpp"

namespace vmp3::roles {
namespace {

// Removes what expired: jobs past their retention with their objects. Runs at start (so a
// restart catches up) and then periodically.
class Janitor final : public Worker {
 public:
  explicit Janitor(const MetadataRole& role) : role_(role) {}

  void Start() override {
    thread_ = std::jthread([this](std::stop_token stop) {
      while (!stop.stop_requested()) {
        RunOnce();
        SleepUnlessStopped(stop, std::chrono::seconds(role_.config.janitor_interval_seconds));
      }
    });
  }
  void Stop() override { thread_ = {}; }

  void RunOnce() {
    // Writes a dead process left half done (S3 multipart uploads): a day is longer than any
    // upload or conversion within the limits.
    auto abandoned = role_.storage.AbortAbandonedWrites(std::chrono::hours(24));
    if (!abandoned) {
      spdlog::warn("janitor: {}", abandoned.error().message);
    } else if (*abandoned > 0) {
      spdlog::info("janitor: discarded {} abandoned upload(s)", *abandoned);
    }
    // Bounded: a run removes at most kMaxBatches batches. A job whose objects cannot be removed
    // keeps its record (the deletion is retried next run) and, expiring soonest, would come back
    // first in the next batch: the run stops there instead of spinning on it.
    constexpr int kMaxBatches = 100;
    for (int batch = 0; batch < kMaxBatches; ++batch) {
      auto expired = role_.metadata.ListExpired(role_.now_ms(), 100);
      if (!expired) {
        spdlog::warn("janitor: {}", expired.error().message);
        return;
      }
      if (expired->empty()) return;
      for (const Job& job : *expired) {
        if (!RemoveExpired(job)) return;
      }
    }
  }

  // The record names the objects, so it goes last: objects first, then the record.
  bool RemoveExpired(const Job& job) {
    for (const std::string& key : {job.input_key, job.output_key}) {
      if (key.empty()) continue;
      if (Status s = role_.storage.Remove(key); !s) {
        spdlog::warn("janitor: expired job {}: cannot remove {} yet: {}", job.id, key,
                     s.error().message);
        return false;
      }
    }
    if (Status s = role_.metadata.DeleteJob(job.id); !s && s.error().code != ErrorCode::kNotFound) {
      spdlog::warn("janitor: expired job {}: cannot delete its record yet: {}", job.id,
                   s.error().message);
      return false;
    }
    spdlog::info("janitor: removed expired job {}", job.id);
    return true;
  }

 private:
  const MetadataRole& role_;
  std::jthread thread_;
};

}  // namespace

void MetadataConfig::AddOptions(OptionList& options) {
  options.push_back({"--janitor-interval", "VMP3_JANITOR_INTERVAL",
                     "Seconds between janitor runs (expiry, orphaned objects)",
                     &janitor_interval_seconds});
  options.push_back({"--orphan-grace", "VMP3_ORPHAN_GRACE",
                     "Seconds before an object no job owns is removed by the janitor",
                     &orphan_grace_seconds});
}

Status MetadataConfig::Validate() const {
  if (janitor_interval_seconds < 1)
    return MakeError(ErrorCode::kInvalidArgument, "--janitor-interval must be at least 1 s");
  if (orphan_grace_seconds < 60)
    return MakeError(ErrorCode::kInvalidArgument, "--orphan-grace must be at least 60 s");
  return {};
}

std::unique_ptr<Worker> MakeJanitor(const MetadataRole& role) {
  return std::make_unique<Janitor>(role);
}

}  // namespace vmp3::roles
