// The converter role: worker threads that take jobs from the queue and convert them.
//
// Delivery is at least once; a job is acknowledged only after its MP3 is stored and its record
// updated. A failure that retrying cannot fix (bad media) is recorded and acknowledged; a
// transient one (a backend down) is retried later with backoff; when the queue gives up on a job
// (attempts exhausted) it is recorded as failed with the last error. A backend outage (S3 or
// Redis down) is not the job's fault: the worker waits until the backend answers again and hands
// the job back without spending an attempt, so a restart of a backend fails no job.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <thread>
#include <vector>

#include "common/stoppable.hpp"
#include "media/converter.hpp"
#include "roles/converter_role.hpp"
#include "roles/upload_options.hpp"

namespace vmp3::roles {
namespace {

constexpr size_t kCopyChunk = 256 * 1024;
// How far ahead of the demuxer a remote input is fetched (two such windows in memory at most).
constexpr size_t kInputReadAhead = 8 * 1024 * 1024;

// Encoder threads for a conversion starting while `others` run: the cores nobody else uses (a
// lone job gets them all, a full converter one each), at most kMaxThreadsPerJob (memory: each
// thread beyond the first holds a few MB of PCM).
constexpr int kMaxThreadsPerJob = 8;
int ThreadsForJob(const ConverterConfig& config, int others) {
  if (config.threads_per_job > 0) return config.threads_per_job;
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::clamp(cores - others, 1, kMaxThreadsPerJob);
}

class Converter final : public Worker {
 public:
  explicit Converter(const ConverterRole& role)
      : role_(role),
        seconds_(role.metrics
                     .AddHistogram("vmp3_conversion_seconds", "Time spent converting one job.",
                                   {0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800})
                     .WithLabels()),
        outcomes_(role.metrics.AddCounter("vmp3_conversions_total", "Conversions by outcome.")),
        bytes_out_(
            role.metrics.AddCounter("vmp3_output_bytes_total", "MP3 bytes stored.").WithLabels()),
        queue_failures_(role.metrics.AddCounter(
            "vmp3_queue_operation_failures_total",
            "Acks, retries, releases and heartbeats the queue refused or could not take.")),
        cleanup_failures_(role.metrics.AddCounter(
            "vmp3_cleanup_failures_total",
            "Objects or records not removed when due (the janitor retries; its orphan sweep "
            "removes objects nothing owns).")) {}

  void Start() override {
    std::filesystem::create_directories(SpoolDir());
    int workers = role_.config.workers > 0
                      ? role_.config.workers
                      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 0; i < workers; ++i)
      threads_.emplace_back([this](std::stop_token stop) { Loop(stop); });
    threads_.emplace_back([this](std::stop_token stop) { SweepDeadLetters(stop); });
    spdlog::info("converter: {} worker threads", workers);
  }

  void Stop() override {
    for (auto& t : threads_) t.request_stop();
    role_.queue.Interrupt();
    threads_.clear();  // joins; running conversions stop and hand their jobs back
  }

 private:
  std::filesystem::path SpoolDir() const { return role_.config.spool_dir; }

  void Loop(std::stop_token stop) {
    int backoff_ms = 100;
    while (!stop.stop_requested()) {
      auto delivery = role_.queue.Take(std::chrono::seconds(1));
      if (!delivery) {
        spdlog::warn("converter: queue unavailable: {}", delivery.error().message);
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
        backoff_ms = std::min(backoff_ms * 2, 5000);
        continue;
      }
      backoff_ms = 100;
      if (!*delivery) continue;
      Process(**delivery, stop);
    }
  }

  // A job the queue gave up on without a converter recording why (its converter died on every
  // attempt, e.g. an input that crashes a decoder) would stay "converting" forever: record it
  // as failed. Runs at start and every few seconds; idempotent.
  void SweepDeadLetters(std::stop_token stop) {
    while (!stop.stop_requested()) {
      auto dead = role_.queue.DeadLetters();
      if (dead) {
        for (const std::string& id : *dead) {
          auto job = role_.metadata.GetJob(id);
          if (!job || IsTerminal(job->status)) continue;
          Fail(*job, Error(ErrorCode::kInternal,
                           fmt::format("the conversion was attempted {} times and never finished; "
                                       "the file may be damaged in a way that stops the converter",
                                       role_.job_attempts)));
        }
      }
      SleepUnlessStopped(stop, std::chrono::seconds(5));
    }
  }

  void Publish(const Job& job, const char* type, nlohmann::json data) {
    if (std::string_view(type) == "status") {
      static constexpr std::pair<JobStatus, const char*> kLifecycle[] = {
          {JobStatus::kConverting, "job.started"},
          {JobStatus::kDone, "job.done"},
          {JobStatus::kFailed, "job.failed"},
          {JobStatus::kCancelled, "job.cancelled"}};
      for (auto [status, name] : kLifecycle) {
        if (job.status != status || !role_.lifecycle) continue;
        if (Status s = role_.lifecycle->Publish(name, data.dump()); !s)
          spdlog::warn("job {}: lifecycle event {} not published: {}", job.id, name,
                       s.error().message);
      }
    }
    role_.events.Publish({job.id, job.owner_id, type, std::move(data)});
  }

  Result<Job> MarkStarted(const Delivery& delivery) {
    return role_.metadata.UpdateJob(delivery.job_id, [&](Job& job) -> Status {
      if (IsTerminal(job.status)) return MakeError(ErrorCode::kConflict, "job already ended");
      job.status = JobStatus::kConverting;
      job.attempts = delivery.attempt;
      job.progress = 0;
      job.started_at = job.updated_at = role_.now_ms();
      return {};
    });
  }

  // True when storage or metadata is unreachable: then waits, keeping the job's lease alive,
  // until both answer again or the worker is stopped. False (at once) when both answer, i.e. the
  // failure was about this job, not an outage.
  bool WaitOutOutage(const Delivery& delivery, std::stop_token stop) {
    auto reachable = [&] {
      return role_.storage.Ping().has_value() && role_.metadata.Ping().has_value();
    };
    if (reachable()) return false;
    spdlog::warn("job {}: a backend is unavailable; waiting for it to come back", delivery.job_id);
    auto last_heartbeat = std::chrono::steady_clock::now();
    do {
      SleepUnlessStopped(stop, std::chrono::seconds(1));
      if (std::chrono::steady_clock::now() - last_heartbeat >= HeartbeatEvery()) {
        last_heartbeat = std::chrono::steady_clock::now();
        Heartbeat(delivery);
      }
    } while (!stop.stop_requested() && !reachable());
    return true;
  }

  // Every queue operation on a delivery goes through here: a failure is logged with the job and
  // counted, never silently dropped. Returns whether it succeeded.
  bool Settle(std::string_view operation, const Delivery& delivery, const Status& status) {
    if (status) return true;
    queue_failures_.WithLabels({"operation", operation}).Inc();
    spdlog::warn("job {}: queue {} failed: {}", delivery.job_id, operation, status.error().message);
    return false;
  }
  bool Ack(const Delivery& d) { return Settle("ack", d, role_.queue.Ack(d)); }
  bool Release(const Delivery& d) { return Settle("release", d, role_.queue.Release(d)); }
  bool Heartbeat(const Delivery& d) { return Settle("heartbeat", d, role_.queue.Heartbeat(d)); }

  // Removes an object of a job that ended. A failure is logged and counted; the janitor's
  // orphan sweep removes the object later (nothing owns it, or its job has ended).
  bool RemoveObject(std::string_view job_id, const std::string& key) {
    if (key.empty()) return true;
    Status removed = role_.storage.Remove(key);
    if (removed) return true;
    cleanup_failures_.WithLabels({"what", "object"}).Inc();
    spdlog::warn("job {}: could not remove {} (the janitor will): {}", job_id, key,
                 removed.error().message);
    return false;
  }

  // Removes an ended job's input unless inputs are kept, then forgets its key in the record, so
  // the record says what storage still holds.
  void RemoveInput(const Job& job) {
    if (role_.retention.keep_inputs || job.input_key.empty()) return;
    if (!RemoveObject(job.id, job.input_key)) return;
    auto forgotten = role_.metadata.UpdateJob(job.id, [&](Job& j) -> Status {
      if (j.input_key == job.input_key) j.input_key.clear();
      return {};
    });
    if (!forgotten && forgotten.error().code != ErrorCode::kNotFound) {
      cleanup_failures_.WithLabels({"what", "record"}).Inc();
      spdlog::warn("job {}: input removed, but the record still names it: {}", job.id,
                   forgotten.error().message);
    }
  }

  // How often a converter renews its lease: well within it.
  std::chrono::seconds HeartbeatEvery() const {
    return std::chrono::seconds(std::max<int64_t>(1, role_.lease.count() / 3));
  }

  // Shows a job that goes back to the queue as queued again (unless it ended meanwhile).
  void MarkRequeued(const std::string& job_id) {
    auto updated = role_.metadata.UpdateJob(job_id, [&](Job& j) -> Status {
      if (j.status == JobStatus::kConverting) j.status = JobStatus::kQueued;
      j.progress = 0;
      return {};
    });
    // Only what the user sees: the next delivery marks the job converting again anyway.
    if (!updated && updated.error().code != ErrorCode::kNotFound)
      spdlog::warn("job {}: could not show it queued again: {}", job_id, updated.error().message);
  }

  // Gives the job back to the queue untouched, without counting the attempt.
  void HandBack(const std::string& job_id, const Delivery& delivery, std::string_view why) {
    MarkRequeued(job_id);
    if (Release(delivery)) spdlog::info("job {}: handed back to the queue ({})", job_id, why);
  }

  void Process(const Delivery& delivery, std::stop_token worker_stop) {
    auto job = MarkStarted(delivery);
    if (!job) {
      // Deleted, cancelled or already finished (a redelivery): nothing to do.
      if (job.error().code == ErrorCode::kNotFound || job.error().code == ErrorCode::kConflict) {
        Ack(delivery);
      } else if (IsTransient(job.error().code) && WaitOutOutage(delivery, worker_stop)) {
        Release(delivery);
      } else {
        auto retried = role_.queue.Retry(delivery, std::chrono::seconds(2));
        Settle("retry", delivery, retried ? Status{} : Status(tl::unexpected(retried.error())));
      }
      return;
    }
    Publish(*job, "status", JobJson(*job));
    spdlog::info("job {}: converting (attempt {})", job->id, delivery.attempt);

    auto started = std::chrono::steady_clock::now();
    std::stop_source cancel;
    std::stop_callback on_worker_stop(worker_stop, [&] { cancel.request_stop(); });
    std::atomic<bool> cancelled_by_user{false};
    auto result = Convert(*job, delivery, cancel, cancelled_by_user);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    if (result) seconds_.Observe(seconds);
    Status outcome =
        result ? Finish(*job, delivery, *result) : Status(tl::unexpected(result.error()));
    if (outcome) return;
    const Error& error = outcome.error();
    if (error.code == ErrorCode::kCancelled && !cancelled_by_user) {
      // Shutting down: hand the job back untouched so another converter (or we, after a
      // restart) picks it up without counting an attempt.
      HandBack(job->id, delivery, "shutdown");
      return;
    }
    if (error.code == ErrorCode::kCancelled || cancelled_by_user) {
      outcomes_.WithLabels({"outcome", "cancelled"}).Inc();
      RemoveInput(*job);
      Ack(delivery);
      spdlog::info("job {}: cancelled", job->id);
      return;
    }
    if (IsTransient(error.code)) {
      if (WaitOutOutage(delivery, worker_stop)) {
        HandBack(job->id, delivery, worker_stop.stop_requested() ? "shutdown" : "backend outage");
        return;
      }
      auto dead =
          role_.queue.Retry(delivery, std::chrono::seconds(2 << std::min(delivery.attempt, 6)));
      if (!dead) {
        // The queue could not take the retry: it is down too, or the lease moved on to another
        // converter. The delivery is not acked, so the queue delivers it again (RabbitMQ gets it
        // back at once, SQLite when the lease expires): recording the job failed would lose it.
        spdlog::warn(
            "job {}: transient failure ({}); the queue could not schedule the retry "
            "({}): it will be delivered again",
            job->id, error.message, dead.error().message);
        Settle("retry", delivery, Status(tl::unexpected(dead.error())));
        if (dead.error().code != ErrorCode::kConflict) MarkRequeued(job->id);
        return;
      }
      if (!*dead) {
        spdlog::warn("job {}: transient failure, will retry: {}", job->id, error.message);
        MarkRequeued(job->id);
        return;
      }
      // Dead-lettered: the queue holds it no more; record why.
      Fail(*job, error);
      return;
    }
    // A failure retrying cannot fix (bad media): record it first, then acknowledge; if the
    // record cannot be written (the metadata backend is down), the job is not acknowledged and
    // comes back rather than being lost in "converting".
    if (!Fail(*job, error)) {
      WaitOutOutage(delivery, worker_stop);
      HandBack(job->id, delivery, "backend outage while recording the failure");
      return;
    }
    Ack(delivery);
  }

  Result<media::ConvertResult> Convert(const Job& job, const Delivery& delivery,
                                       std::stop_source& cancel,
                                       std::atomic<bool>& cancelled_by_user) {
    auto options = ConvertOptionsFromJson(job.options_json);
    if (!options) return tl::unexpected(options.error());
    options->max_input_seconds = role_.config.max_input_seconds;
    options->max_output_bytes = role_.config.max_output_bytes;
    struct Running {
      std::atomic<int>& count;
      int others;
      explicit Running(std::atomic<int>& c) : count(c), others(c.fetch_add(1)) {}
      ~Running() { count.fetch_sub(1); }
    } running(converting_);
    options->threads = ThreadsForJob(role_.config, running.others);

    auto input = role_.storage.Open(job.input_key);
    if (!input) {
      if (input.error().code == ErrorCode::kNotFound)
        return MakeError(ErrorCode::kNotFound, "the uploaded file is gone (deleted or expired)");
      return tl::unexpected(input.error());
    }
    // The demuxer reads the input front to back (it skips video packets, but they interleave
    // with the audio at a finer grain than a ranged GET): overlap fetching with converting.
    (*input)->ReadAhead(kInputReadAhead);
    // The MP3 muxer completes its Xing header by seeking back, which an object writer cannot
    // do: spool to a local file (disk, not memory), then stream it into storage.
    std::filesystem::path spool = SpoolDir() / (job.id + ".mp3");
    auto sink = AtomicFileSink::Create(spool, /*overwrite=*/true);
    if (!sink) return tl::unexpected(sink.error());

    auto last_progress_write = std::chrono::steady_clock::now();
    auto last_heartbeat = last_progress_write;
    double last_published = -1;
    media::ConvertControl control;
    control.stop = cancel.get_token();
    control.on_progress = [&](double fraction) {
      auto now = std::chrono::steady_clock::now();
      if (fraction - last_published >= 0.01 || fraction >= 1.0) {
        last_published = fraction;
        Publish(job, "progress", {{"id", job.id}, {"progress", fraction}});
      }
      if (now - last_progress_write > std::chrono::milliseconds(500)) {
        last_progress_write = now;
        // Best effort: the next write catches up; an outage shows in the record's updates.
        if (Status s = role_.metadata.SetProgress(job.id, fraction); !s)
          spdlog::debug("job {}: progress not recorded: {}", job.id, s.error().message);
        // Cancellation by DELETE, seen from any process through the record.
        auto current = role_.metadata.GetJob(job.id);
        if ((!current && current.error().code == ErrorCode::kNotFound) ||
            (current && current->status == JobStatus::kCancelled)) {
          cancelled_by_user = true;
          cancel.request_stop();
        }
      }
      if (now - last_heartbeat > HeartbeatEvery()) {
        last_heartbeat = now;
        Heartbeat(delivery);
      }
    };
    auto result = media::Convert(**input, **sink, *options, control);
    if (!result) return result;
    if (auto s = (*sink)->Commit(); !s) return tl::unexpected(s.error());
    sink->reset();

    Status stored = Store(spool, OutputKey(job.id));
    std::filesystem::remove(spool);
    if (!stored) return tl::unexpected(stored.error());
    return result;
  }

  Status Store(const std::filesystem::path& file, const std::string& key) {
    auto source = FileSource::Open(file);
    if (!source) return tl::unexpected(source.error());
    auto writer = role_.storage.Create(key);
    if (!writer) return tl::unexpected(writer.error());
    std::vector<std::byte> buffer(kCopyChunk);
    for (;;) {
      auto n = (*source)->Read(buffer);
      if (!n) return tl::unexpected(n.error());
      if (*n == 0) break;
      if (auto s = (*writer)->Write(std::span(buffer.data(), *n)); !s) return s;
    }
    auto info = (*writer)->Commit();
    if (!info) return tl::unexpected(info.error());
    bytes_out_.Inc(static_cast<double>(info->size));
    return {};
  }

  // Records the stored MP3 and acknowledges. Fails (without acknowledging) only when the record
  // could not be written for a transient reason (Redis down); the job is then not finished.
  Status Finish(const Job& job, const Delivery& delivery, const media::ConvertResult& result) {
    int64_t now = role_.now_ms();
    auto updated = role_.metadata.UpdateJob(job.id, [&](Job& j) -> Status {
      if (j.status == JobStatus::kCancelled) return MakeError(ErrorCode::kConflict, "cancelled");
      j.status = JobStatus::kDone;
      j.progress = 1;
      j.output_key = OutputKey(job.id);
      j.output_size = result.output_bytes;
      j.output_duration = result.duration_seconds;
      j.output_bitrate_kbps = result.bit_rate_kbps;
      j.input_duration = result.duration_seconds;
      j.error_code.clear();
      j.error_message.clear();
      j.finished_at = j.updated_at = now;
      j.expires_at = now + role_.retention.retention_seconds * 1000;
      return {};
    });
    if (!updated && IsTransient(updated.error().code)) {
      return tl::unexpected(updated.error());  // e.g. Redis down: the job is not finished yet
    }
    if (!updated) {
      // Deleted or cancelled meanwhile: do not leave the output behind.
      RemoveObject(job.id, OutputKey(job.id));
      Ack(delivery);
      return {};
    }
    RemoveInput(*updated);
    Ack(delivery);
    outcomes_.WithLabels({"outcome", "done"}).Inc();
    Publish(*updated, "status", JobJson(*updated));
    spdlog::info("job {}: done ({} bytes, {:.1f} s of audio)", job.id, result.output_bytes,
                 result.duration_seconds);
    return {};
  }

  // Records the job failed with `error`. False when the record could not be written for a
  // transient reason (the metadata backend is down); true when it was written or the job had
  // already ended.
  bool Fail(const Job& job, const Error& error) {
    int64_t now = role_.now_ms();
    auto updated = role_.metadata.UpdateJob(job.id, [&](Job& j) -> Status {
      if (IsTerminal(j.status)) return MakeError(ErrorCode::kConflict, "already ended");
      j.status = JobStatus::kFailed;
      j.error_code = std::string(ErrorCodeName(error.code));
      j.error_message = error.message;
      j.finished_at = j.updated_at = now;
      j.expires_at = now + role_.retention.retention_seconds * 1000;
      return {};
    });
    if (!updated) {
      if (updated.error().code == ErrorCode::kConflict ||
          updated.error().code == ErrorCode::kNotFound)
        return true;  // ended or deleted meanwhile
      spdlog::warn("job {}: could not record the failure ({}): {}", job.id, error.message,
                   updated.error().message);
      return false;
    }
    RemoveInput(*updated);
    outcomes_.WithLabels({"outcome", "failed"}).Inc();
    Publish(*updated, "status", JobJson(*updated));
    spdlog::info("job {}: failed: {}", job.id, error.message);
    return true;
  }

  const ConverterRole& role_;
  metrics::Histogram& seconds_;
  metrics::CounterFamily& outcomes_;
  metrics::Counter& bytes_out_;
  metrics::CounterFamily& queue_failures_;
  metrics::CounterFamily& cleanup_failures_;
  std::vector<std::jthread> threads_;
  std::atomic<int> converting_{0};  // conversions running now, for sharing the cores
};

}  // namespace

void ConverterConfig::AddOptions(OptionList& options) {
  options.push_back(
      {"--workers", "VMP3_WORKERS", "Conversions at once (0: one per core)", &workers});
  options.push_back({"--threads-per-job", "VMP3_THREADS_PER_JOB",
                     "Encoder threads per conversion; a long input is encoded in segments on "
                     "them (0: the cores no other conversion uses, up to 8)",
                     &threads_per_job});
  options.push_back({"--max-input-seconds", "VMP3_MAX_INPUT_SECONDS", "Longest input converted",
                     &max_input_seconds});
  options.push_back(
      {"--max-output-bytes", "VMP3_MAX_OUTPUT_BYTES", "Largest MP3 produced", &max_output_bytes});
}

Status ConverterConfig::Validate() const {
  if (workers < 0 || workers > 256)
    return MakeError(ErrorCode::kInvalidArgument, "--workers must be 0..256");
  if (threads_per_job < 0 || threads_per_job > 256)
    return MakeError(ErrorCode::kInvalidArgument, "--threads-per-job must be 0..256");
  if (!(max_input_seconds > 0))
    return MakeError(ErrorCode::kInvalidArgument, "--max-input-seconds must be positive");
  if (max_output_bytes == 0)
    return MakeError(ErrorCode::kInvalidArgument, "--max-output-bytes must be positive");
  return {};
}

std::unique_ptr<Worker> MakeConverter(const ConverterRole& role) {
  return std::make_unique<Converter>(role);
}

}  // namespace vmp3::roles
