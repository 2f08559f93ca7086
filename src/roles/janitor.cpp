// The janitor of the metadata role: removes what expired (jobs past their retention, with their
// objects), writes a dead process left half done, and objects that no job owns.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <map>
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
  explicit Janitor(const MetadataRole& role)
      : role_(role),
        orphans_(role.metrics
                     .AddCounter("vmp3_janitor_orphans_removed_total",
                                 "Objects the janitor removed because no job owned them.")
                     .WithLabels()),
        failures_(role.metrics.AddCounter(
            "vmp3_cleanup_failures_total",
            "Objects or records not removed when due (the janitor retries; its orphan sweep "
            "removes objects nothing owns).")) {}

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
    if (role_.abandoned_writes) {
      auto abandoned = role_.abandoned_writes->AbortAbandonedWrites(std::chrono::hours(24));
      if (!abandoned) {
        spdlog::warn("janitor: {}", abandoned.error().message);
      } else if (*abandoned > 0) {
        spdlog::info("janitor: discarded {} abandoned write(s)", *abandoned);
      }
    }
    SweepExpired();
    for (std::string_view prefix : {"inputs/", "outputs/"}) SweepOrphans(prefix);
    // The event log keeps what GET /v1/events promises, and no more.
    if (Status s = role_.metadata.PruneEvents(role_.now_ms() - kEventRetentionMs); !s)
      spdlog::warn("janitor: cannot prune the event log yet: {}", s.error().message);
  }

  void SweepExpired() {
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
        failures_.WithLabels({"what", "object"}).Inc();
        spdlog::warn("janitor: expired job {}: cannot remove {} yet: {}", job.id, key,
                     s.error().message);
        return false;
      }
    }
    // ExpireJob also logs job.expired, for the notifier and GET /v1/events.
    if (Status s = role_.metadata.ExpireJob(job.id, role_.now_ms());
        !s && s.error().code != ErrorCode::kNotFound) {
      failures_.WithLabels({"what", "record"}).Inc();
      spdlog::warn("janitor: expired job {}: cannot delete its record yet: {}", job.id,
                   s.error().message);
      return false;
    }
    spdlog::info("janitor: removed expired job {}", job.id);
    return true;
  }

  // The orphan sweep: objects under `prefix` that no job owns any more, older than the grace
  // period, are removed — what a failed removal, a crash between two steps, or a deletion that
  // lost its record left behind. An object is owned when its job exists and still needs it: an
  // input while the job runs (or when inputs are kept), the MP3 of a done job. Pages through the
  // store a bounded number of objects per run, resuming where the last run stopped, so a big
  // bucket costs each run the same; a backend failure ends the run (nothing is removed on a
  // guess).
  void SweepOrphans(std::string_view prefix) {
    constexpr int kPage = 500;
    constexpr int kMaxPerRun = 5000;
    std::string& cursor = cursors_[std::string(prefix)];
    const int64_t now_seconds = role_.now_ms() / 1000;
    const int64_t grace = role_.config.orphan_grace_seconds;
    int seen = 0;
    while (seen < kMaxPerRun) {
      auto page = role_.storage.List(prefix, cursor, kPage);
      if (!page) {
        spdlog::warn("janitor: cannot list {}: {}", prefix, page.error().message);
        return;
      }
      for (const ObjectInfo& object : page->objects) {
        ++seen;
        if (object.modified_unix > now_seconds - grace) continue;  // young: may be being born
        if (!RemoveIfOrphan(object.key)) return;
      }
      cursor = page->next_start_after;
      if (cursor.empty()) return;  // a full pass: the next run starts over
    }
  }

  // False when a backend failed (stop this run).
  bool RemoveIfOrphan(const std::string& key) {
    const bool is_input = key.starts_with("inputs/");
    std::string id = key.substr(key.find('/') + 1);
    if (!is_input && id.ends_with(".mp3")) id.resize(id.size() - 4);
    auto job = role_.metadata.GetJob(id);
    if (!job && job.error().code != ErrorCode::kNotFound) {
      spdlog::warn("janitor: orphan sweep paused: {}", job.error().message);
      return false;
    }
    if (job) {
      if (is_input) {
        // Running or queued jobs need their input; ended ones only when inputs are kept.
        if (!IsTerminal(job->status) || role_.retention.keep_inputs) return true;
      } else {
        // A converting job's MP3 may be moments from being recorded; a done job's is its own.
        if (!IsTerminal(job->status)) return true;
        if (job->status == JobStatus::kDone && job->output_key == key) return true;
      }
    }
    if (Status removed = role_.storage.Remove(key); !removed) {
      failures_.WithLabels({"what", "object"}).Inc();
      spdlog::warn("janitor: cannot remove orphan {}: {}", key, removed.error().message);
      return true;  // one stubborn object must not stop the sweep
    }
    orphans_.Inc();
    spdlog::info(
        "janitor: removed {} ({})", key,
        job ? fmt::format("its job {} is {}", id, JobStatusName(job->status)) : "no job owns it");
    if (job && is_input && job->input_key == key) {
      // The record still named it: forget it, so usage and the record say what is stored.
      auto forgotten = role_.metadata.UpdateJob(id, [&](Job& j) -> Status {
        if (j.input_key == key) j.input_key.clear();
        return {};
      });
      if (!forgotten && forgotten.error().code != ErrorCode::kNotFound)
        spdlog::warn("janitor: {} removed, but its record still names it: {}", key,
                     forgotten.error().message);
    }
    return true;
  }

 private:
  const MetadataRole& role_;
  metrics::Counter& orphans_;
  metrics::CounterFamily& failures_;
  std::map<std::string, std::string> cursors_;  // per prefix: where the orphan sweep resumes
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
