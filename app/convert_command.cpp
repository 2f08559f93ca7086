// `vmp3 convert INPUT...`: files to MP3s, several at once, with progress and clean cancellation.
//
// Threads: up to --jobs workers each take the next file and run media::Convert; the main thread
// only reports (progress bars, plain lines or JSON) and turns SIGINT/SIGTERM into a stop request.
// A cancelled or failed conversion never leaves a file under the output name: AtomicFileSink
// removes its temporary file when destroyed uncommitted.
#include <fmt/format.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "commands.hpp"
#include "common/error.hpp"
#include "common/io.hpp"
#include "format.hpp"
#include "media/converter.hpp"

namespace vmp3::app {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct ConvertArgs {
  std::vector<std::string> inputs;
  std::string output;
  std::string output_dir;
  std::string quality;
  int bitrate_kbps = 0;
  int stream = 0;
  int sample_rate = 0;
  bool mono = false;
  std::string copy = "auto";
  bool reencode = false;
  bool overwrite = false;
  bool json = false;
  int jobs = 0;
  int threads = 0;
  double max_duration = 0;
  uint64_t max_output_size = 0;

  // Which optional options were given (set by AddConvertOptions).
  CLI::Option* quality_option = nullptr;
  CLI::Option* bitrate_option = nullptr;
  CLI::Option* stream_option = nullptr;
  CLI::Option* sample_rate_option = nullptr;
};

ConvertArgs& TheConvertArgs() {
  static ConvertArgs args;
  return args;
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "vmp3: convert: %s\nRun 'vmp3 convert --help' for more information.\n",
               message.c_str());
  return kExitUsage;
}

// ---- Signals -----------------------------------------------------------------------------

// Set by the handler, polled by the main thread (a handler may do little more).
volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_signal_count = 0;

// The first signals only request a clean cancel: tools like timeout(1) deliver the same signal
// twice (to the process and to its group), and that must not leave temporary files behind. A
// third signal means the user wants out now: die the default way.
extern "C" void OnConvertSignal(int signo) {
  if (g_signal == 0) g_signal = signo;
  g_signal_count = g_signal_count + 1;
  if (g_signal_count >= 3) {
    std::signal(signo, SIG_DFL);
    std::raise(signo);
  }
}

// Catches SIGINT and SIGTERM (see OnConvertSignal) and ignores SIGPIPE so `vmp3 convert --json ...
// | head` cannot kill us between creating a temporary file and removing it.
class SignalGuard {
 public:
  SignalGuard() {
    struct sigaction action {};
    action.sa_handler = OnConvertSignal;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGINT);  // the handler is not re-entrant
    sigaddset(&action.sa_mask, SIGTERM);
    // A shell starts background jobs with SIGINT ignored; keep it so (the usual convention).
    sigaction(SIGINT, nullptr, &old_int_);
    if (old_int_.sa_handler != SIG_IGN) sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, nullptr, &old_term_);
    if (old_term_.sa_handler != SIG_IGN) sigaction(SIGTERM, &action, nullptr);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, &old_pipe_);
  }
  ~SignalGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGPIPE, &old_pipe_, nullptr);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  struct sigaction old_pipe_ {};
};

// ---- Planning ----------------------------------------------------------------------------

struct FileJob {
  std::string input_arg;  // as typed; names the file in every message
  fs::path input;
  fs::path output;
  std::optional<Error> plan_error;  // the file cannot start (e.g. it would overwrite an input)
};

// What makes two paths the same file: the (device, inode) pair when the file exists (this also
// catches hard links and bind mounts), else the normalised absolute path.
std::string FileIdentity(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return fmt::format("inode:{}:{}", st.st_dev, st.st_ino);
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(path, ec);
  if (ec) canonical = fs::absolute(path, ec).lexically_normal();
  return "path:" + canonical.string();
}

std::vector<FileJob> PlanJobs(const ConvertArgs& args) {
  std::vector<FileJob> jobs;
  std::unordered_map<std::string, size_t> input_ids;  // identity -> first job with that input
  for (const std::string& arg : args.inputs) {
    FileJob job;
    job.input_arg = arg;
    job.input = arg;
    if (!args.output.empty()) {
      job.output = args.output;
    } else {
      fs::path name = job.input.filename();
      name.replace_extension(".mp3");
      job.output =
          (args.output_dir.empty() ? job.input.parent_path() : fs::path(args.output_dir)) / name;
    }
    input_ids.emplace(FileIdentity(job.input), jobs.size());
    jobs.push_back(std::move(job));
  }
  std::unordered_map<std::string, size_t> output_ids;  // identity -> job writing it
  for (size_t i = 0; i < jobs.size(); ++i) {
    FileJob& job = jobs[i];
    std::string id = FileIdentity(job.output);
    if (auto input = input_ids.find(id); input != input_ids.end()) {
      std::string victim =
          input->second == i ? "the input" : "input " + jobs[input->second].input_arg;
      job.plan_error = Error(ErrorCode::kInvalidArgument,
                             fmt::format("output {} would overwrite {} (choose another name with "
                                         "-o or a directory with -d)",
                                         job.output.string(), victim));
    } else if (auto [other, inserted] = output_ids.emplace(id, i); !inserted) {
      job.plan_error = Error(ErrorCode::kInvalidArgument,
                             fmt::format("output {} is also the output of {} (convert one of them "
                                         "with -o or into another directory with -d)",
                                         job.output.string(), jobs[other->second].input_arg));
    }
  }
  return jobs;
}

// ---- Running -----------------------------------------------------------------------------

enum Phase : int { kPending, kRunning, kDone };

struct FileState {
  std::atomic<int> phase{kPending};
  std::atomic<double> progress{0};
  // Written by the worker before `phase` becomes kDone (release); read after (acquire).
  Result<media::ConvertResult> outcome;
};

Result<media::ConvertResult> ConvertOne(const FileJob& job, const media::ConvertOptions& options,
                                        bool overwrite, std::atomic<double>& progress,
                                        std::stop_token stop) {
  if (job.plan_error) return tl::unexpected(*job.plan_error);
  if (stop.stop_requested()) return MakeError(ErrorCode::kCancelled, "cancelled before it started");
  auto source = FileSource::Open(job.input);
  if (!source) return tl::unexpected(source.error());
  auto sink = AtomicFileSink::Create(job.output, overwrite);
  if (!sink) {
    Error error = sink.error();
    if (error.code == ErrorCode::kAlreadyExists)
      error.message += " (use --overwrite to replace it)";
    return tl::unexpected(std::move(error));
  }
  media::ConvertControl control;
  control.on_progress = [&progress](double fraction) {
    if (fraction >= 0) progress.store(std::min(fraction, 1.0), std::memory_order_relaxed);
  };
  control.stop = std::move(stop);
  Result<media::ConvertResult> result = media::Convert(**source, **sink, options, control);
  if (!result) return result;  // the sink's destructor removes the temporary file
  if (Status committed = (*sink)->Commit(); !committed) return tl::unexpected(committed.error());
  progress.store(1, std::memory_order_relaxed);
  return result;
}

// Hands out files to workers and collects finished ones for the main thread.
class Batch {
 public:
  Batch(const std::vector<FileJob>& jobs, const media::ConvertOptions& options, bool overwrite)
      : jobs_(jobs), options_(options), overwrite_(overwrite), states_(jobs.size()) {}

  void Start(size_t threads, std::stop_token stop) {
    for (size_t t = 0; t < threads; ++t) workers_.emplace_back([this, stop] { Work(stop); });
  }

  // Waits until a file finishes (when `wake_on_finish`), everything is done, or `timeout` passes;
  // returns the files finished since the last call, in finishing order.
  std::vector<size_t> Wait(std::chrono::milliseconds timeout, bool wake_on_finish) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] {
      return done_count_ == jobs_.size() || (wake_on_finish && !finished_.empty());
    });
    std::vector<size_t> out;
    out.swap(finished_);
    return out;
  }

  bool AllDone() {
    std::lock_guard lock(mutex_);
    return done_count_ == jobs_.size() && finished_.empty();
  }

  void Join() { workers_.clear(); }  // jthread joins on destruction

  const FileState& state(size_t i) const { return states_[i]; }
  const FileJob& job(size_t i) const { return jobs_[i]; }
  size_t size() const { return jobs_.size(); }

 private:
  void Work(std::stop_token stop) {
    for (;;) {
      size_t i = next_.fetch_add(1);
      if (i >= jobs_.size()) return;
      FileState& state = states_[i];
      state.phase.store(kRunning, std::memory_order_release);
      try {
        state.outcome = ConvertOne(jobs_[i], options_, overwrite_, state.progress, stop);
      } catch (const std::exception& e) {
        // The engine does not throw; this guards against std::bad_alloc and the like.
        state.outcome = MakeError(ErrorCode::kInternal, e.what());
      }
      state.phase.store(kDone, std::memory_order_release);
      {
        std::lock_guard lock(mutex_);
        finished_.push_back(i);
        ++done_count_;
      }
      cv_.notify_one();
    }
  }

  const std::vector<FileJob>& jobs_;
  const media::ConvertOptions& options_;
  const bool overwrite_;
  std::vector<FileState> states_;
  std::atomic<size_t> next_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<size_t> finished_;
  size_t done_count_ = 0;
  std::vector<std::jthread> workers_;  // last: joined before the state above is destroyed
};

// ---- Reporting ---------------------------------------------------------------------------

std::string SuccessLine(const FileJob& job, const media::ConvertResult& r) {
  std::string line = fmt::format("{} -> {} ({}, {}, {} kbps, {}", Printable(job.input_arg),
                                 Printable(job.output.string()), FormatClock(r.duration_seconds),
                                 FormatBytes(r.output_bytes), r.bit_rate_kbps,
                                 r.stream_copied ? "copied" : "encoded");
  if (r.damaged_packets > 0) {
    line += fmt::format(", {} damaged packet{} skipped", r.damaged_packets,
                        r.damaged_packets == 1 ? "" : "s");
  }
  return line + ")";
}

std::string ErrorLine(const FileJob& job, const Error& e) {
  return fmt::format("vmp3: {}: {}", Printable(job.input_arg), Printable(e.message));
}

void WriteStderr(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

class Reporter {
 public:
  virtual ~Reporter() = default;
  // Whether the main thread should wake as soon as a file finishes, or only on its tick.
  virtual bool WakeOnFinish() const { return true; }
  virtual void Finished(size_t i) = 0;
  // Called about ten times a second and once at the end, after any Finished calls.
  virtual void Tick() {}
};

// --json: one object per file per line on stdout; errors also go to stderr for people.
class JsonReporter final : public Reporter {
 public:
  explicit JsonReporter(const Batch& batch) : batch_(batch) {}
  void Finished(size_t i) override {
    const FileJob& job = batch_.job(i);
    const auto& outcome = batch_.state(i).outcome;
    nlohmann::json j;
    if (outcome) j = *outcome;  // the ConvertResult fields
    j["input"] = job.input_arg;
    j["output"] = job.output.string();
    j["ok"] = outcome.has_value();
    if (!outcome) {
      j["error"] = {{"code", ErrorCodeName(outcome.error().code)},
                    {"message", outcome.error().message}};
      WriteStderr(ErrorLine(job, outcome.error()) + "\n");
    }
    // Invalid UTF-8 in a file name must not abort the report.
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }

 private:
  const Batch& batch_;
};

// Not a terminal (a log, CI): "name: 10%" lines at most every 10%, then the result.
class PlainReporter final : public Reporter {
 public:
  explicit PlainReporter(const Batch& batch) : batch_(batch), printed_decile_(batch.size(), 0) {}
  void Finished(size_t i) override {
    const auto& outcome = batch_.state(i).outcome;
    WriteStderr((outcome ? SuccessLine(batch_.job(i), *outcome)
                         : ErrorLine(batch_.job(i), outcome.error())) +
                "\n");
    printed_decile_[i] = 10;
  }
  void Tick() override {
    std::string text;
    for (size_t i = 0; i < batch_.size(); ++i) {
      if (batch_.state(i).phase.load(std::memory_order_acquire) != kRunning) continue;
      int decile = static_cast<int>(batch_.state(i).progress.load(std::memory_order_relaxed) * 10);
      if (decile > printed_decile_[i] && decile < 10) {
        printed_decile_[i] = decile;
        text += fmt::format("{}: {}%\n", Printable(batch_.job(i).input_arg), decile * 10);
      }
    }
    if (!text.empty()) WriteStderr(text);
  }

 private:
  const Batch& batch_;
  std::vector<int> printed_decile_;
};

// A terminal: finished files scroll up as result lines; below them one live bar per running file
// is redrawn in place. Only running files are live, so the redrawn block stays as small as
// --jobs whatever the number of inputs, and never taller than the screen.
class TtyReporter final : public Reporter {
 public:
  explicit TtyReporter(const Batch& batch) : batch_(batch) {}
  bool WakeOnFinish() const override { return false; }  // redraw at most ~10 times a second

  void Finished(size_t i) override {
    const auto& outcome = batch_.state(i).outcome;
    finished_lines_.push_back(outcome ? SuccessLine(batch_.job(i), *outcome)
                                      : ErrorLine(batch_.job(i), outcome.error()));
  }

  void Tick() override {
    auto [columns, rows] = TerminalSize();
    std::string frame;
    if (live_lines_ > 0) frame += fmt::format("\r\x1b[{}A", live_lines_);
    // Result lines are printed once and scroll away, so they may wrap (the outcome is at their
    // end); clear the old live block first so a wrapped line cannot leave pieces of a bar.
    if (!finished_lines_.empty()) frame += "\x1b[J";
    for (const std::string& line : finished_lines_) frame += line + "\n";
    finished_lines_.clear();

    std::vector<size_t> running;
    for (size_t i = 0; i < batch_.size(); ++i) {
      if (batch_.state(i).phase.load(std::memory_order_acquire) == kRunning) running.push_back(i);
    }
    size_t max_live = rows > 2 ? rows - 2 : 1;
    size_t shown = std::min(running.size(), max_live);
    // One name column for all bars, so they line up.
    size_t name_width = 0;
    for (size_t k = 0; k < shown; ++k) {
      name_width = std::max(name_width, CountColumns(Printable(batch_.job(running[k]).input_arg)));
    }
    name_width = std::min(name_width, std::max<size_t>(10, (columns - 1) / 2));
    for (size_t k = 0; k < shown; ++k) {
      frame += "\x1b[2K" + BarLine(running[k], columns, name_width) + "\n";
    }
    live_lines_ = shown;
    if (running.size() > shown) {
      frame += fmt::format("\x1b[2K... and {} more running\n", running.size() - shown);
      ++live_lines_;
    }
    frame += "\x1b[J";  // clear what is left of a taller previous frame
    WriteStderr(frame);
  }

 private:
  static std::pair<size_t, size_t> TerminalSize() {
    struct winsize ws {};
    size_t columns = 80, rows = 24;  // when the terminal does not say
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0) {
      if (ws.ws_col > 0) columns = std::max<size_t>(ws.ws_col, 20);
      if (ws.ws_row > 0) rows = ws.ws_row;
    }
    return {columns, rows};
  }

  std::string BarLine(size_t i, size_t columns, size_t name_width) const {
    double fraction = batch_.state(i).progress.load(std::memory_order_relaxed);
    // "<name>  [=====>    ] 100%" must fit in columns - 1 so the terminal never wraps.
    std::string name = TruncateToColumns(Printable(batch_.job(i).input_arg), name_width);
    name += std::string(name_width - CountColumns(name), ' ');
    size_t room = columns - 1 > name_width + 9 ? columns - 1 - name_width - 9 : 0;
    size_t bar_width = std::min<size_t>(room, 40);
    std::string bar(bar_width, ' ');
    auto filled = static_cast<size_t>(fraction * static_cast<double>(bar_width));
    for (size_t k = 0; k < filled; ++k) bar[k] = '=';
    if (filled < bar_width && filled > 0) bar[filled] = '>';
    std::string line = fmt::format("{}  [{}] {:3}%", name, bar, static_cast<int>(fraction * 100));
    return TruncateToColumns(line, columns - 1);
  }

  const Batch& batch_;
  std::vector<std::string> finished_lines_;
  size_t live_lines_ = 0;
};

}  // namespace

void AddConvertOptions(CLI::App& sub) {
  ConvertArgs& a = TheConvertArgs();
  sub.footer(
      "Exit status: 0 every file converted; 1 some file failed (each failure is named on stderr; "
      "the other files are converted); 2 bad command line, nothing done; 130 (SIGINT) or 143 "
      "(SIGTERM) interrupted, no partial output left.");
  sub.add_option("INPUT", a.inputs, "Video or audio files to convert")->required();
  auto* output = sub.add_option("-o,--output", a.output,
                                "Output file (only with one input; default: INPUT with .mp3)")
                     ->type_name("OUT.mp3");
  auto* dir = sub.add_option("-d,--output-dir", a.output_dir,
                             "Write outputs into this directory, created if missing (default: "
                             "beside each input)")
                  ->type_name("DIR");
  output->excludes(dir);
  a.quality_option =
      sub.add_option("-q,--quality", a.quality, "LAME VBR quality, V0 (best) .. V9 (default V2)")
          ->type_name("V0..V9");
  a.bitrate_option = sub.add_option("-b,--bitrate", a.bitrate_kbps,
                                    "Constant bit rate in kbps (32..320) instead of VBR")
                         ->type_name("KBPS");
  a.quality_option->excludes(a.bitrate_option);
  a.stream_option =
      sub.add_option("--stream", a.stream, "Container index of the audio stream (see vmp3 probe)")
          ->type_name("N")
          ->check(CLI::NonNegativeNumber);
  a.sample_rate_option =
      sub.add_option("--sample-rate", a.sample_rate, "Output sample rate (default: the source's)")
          ->type_name("HZ")
          ->check(CLI::PositiveNumber);
  sub.add_flag("--mono", a.mono, "Downmix to one channel");
  auto* copy = sub.add_option("--copy", a.copy,
                              "Copy MP3 audio as is when no option asks for a change (auto), or "
                              "always re-encode (never)")
                   ->type_name("MODE")
                   ->capture_default_str()
                   ->check(CLI::IsMember({"never", "auto"}));
  auto* reencode = sub.add_flag("--reencode", a.reencode, "Same as --copy never");
  copy->excludes(reencode);
  sub.add_flag("--overwrite", a.overwrite, "Replace existing output files");
  sub.add_flag("--json", a.json, "Print one JSON object per file on stdout instead of progress");
  sub.add_option("-j,--jobs", a.jobs, "Files converted at once (default: number of CPUs)")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  sub.add_option("-t,--threads", a.threads,
                 "Encoder threads per file: a long input is encoded in segments on this many "
                 "cores, into one stream identical to a single pass (default: the CPUs shared "
                 "among the files converted at once; 1 = single pass)")
      ->type_name("N")
      ->check(CLI::Range(1, 256));
  sub.add_option("--max-duration", a.max_duration, "Refuse inputs longer than this")
      ->type_name("SEC")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--max-output-size", a.max_output_size,
                 "Fail when the output would pass this size (kB, MB, GB suffixes allowed)")
      ->type_name("BYTES")
      ->transform(CLI::AsSizeValue(/*kb_is_1000=*/true));
}

int RunConvert() {
  const ConvertArgs& a = TheConvertArgs();
  if (!a.output.empty() && a.inputs.size() > 1) {
    return UsageError("-o takes one input; use -d DIR to convert several");
  }
  if (std::error_code ec; !a.output_dir.empty() && fs::exists(a.output_dir, ec) &&
                          !fs::is_directory(a.output_dir, ec)) {
    return UsageError(fmt::format("{} is not a directory", Printable(a.output_dir)));
  }

  media::ConvertOptions options;
  if (a.quality_option->count() > 0) {
    Result<int> quality = media::ParseVbrQuality(a.quality);
    if (!quality) return UsageError(quality.error().message);
    options.vbr_quality = *quality;
  }
  if (a.bitrate_option->count() > 0) options.cbr_kbps = a.bitrate_kbps;
  if (a.stream_option->count() > 0) options.stream_index = a.stream;
  if (a.sample_rate_option->count() > 0) options.sample_rate = a.sample_rate;
  options.mono = a.mono;
  options.force_reencode = a.reencode || a.copy == "never";
  options.max_input_seconds = a.max_duration;
  options.max_output_bytes = a.max_output_size;
  if (Status valid = options.Validate(); !valid) return UsageError(valid.error().message);

  // -d DIR is created when missing (with its parents, like mkdir -p), but only once the command
  // line is known to be good: a usage error leaves no trace.
  if (std::error_code ec;
      !a.output_dir.empty() && !fs::create_directories(a.output_dir, ec) && ec) {
    WriteStderr(fmt::format(
        "vmp3: convert: {}\n",
        ErrnoError(ec, "cannot create output directory", Printable(a.output_dir)).message));
    return kExitFailure;
  }

  std::vector<FileJob> jobs = PlanJobs(a);
  size_t hardware = std::max(1u, std::thread::hardware_concurrency());
  size_t wanted = a.jobs > 0 ? static_cast<size_t>(a.jobs) : hardware;
  size_t threads = std::min({wanted, hardware, jobs.size()});
  // Files at once share the cores: one file gets them all, as many files as cores get one each.
  options.threads =
      a.threads > 0
          ? a.threads
          : static_cast<int>(std::max<size_t>(1, hardware / std::max<size_t>(1, threads)));

  SignalGuard signals;
  g_signal = 0;
  g_signal_count = 0;
  std::stop_source cancel;
  Batch batch(jobs, options, a.overwrite);

  std::unique_ptr<Reporter> reporter;
  const char* term = std::getenv("TERM");
  bool terminal = isatty(STDERR_FILENO) && !(term != nullptr && std::string_view(term) == "dumb");
  if (a.json) {
    reporter = std::make_unique<JsonReporter>(batch);
  } else if (terminal) {
    reporter = std::make_unique<TtyReporter>(batch);
  } else {
    reporter = std::make_unique<PlainReporter>(batch);
  }

  batch.Start(threads, cancel.get_token());
  for (;;) {
    std::vector<size_t> finished = batch.Wait(100ms, reporter->WakeOnFinish());
    if (g_signal != 0 && !cancel.stop_requested()) cancel.request_stop();
    for (size_t i : finished) reporter->Finished(i);
    bool done = batch.AllDone();
    reporter->Tick();
    if (done) break;
  }
  batch.Join();

  if (g_signal == SIGINT) return kExitInterrupted;
  if (g_signal != 0) return 128 + g_signal;  // the shell convention, e.g. 143 for SIGTERM
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!batch.state(i).outcome) return kExitFailure;
  }
  return kExitOk;
}

}  // namespace vmp3::app
