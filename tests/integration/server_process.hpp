// Runs the real `vmp3 serve` binary as a child process for whole-system tests.
//
// The child listens on 127.0.0.1 with an ephemeral port; its stdout and stderr go to a log file
// beside the data directory (one file per start), which is also where the harness reads the
// "vmp3 listening on http://HOST:PORT/" line from. The child gets PR_SET_PDEATHSIG(SIGKILL), so a
// crashed test process never leaves a server behind; that signal follows the thread that started
// the server, so start servers from the test's own thread, not from short-lived helper threads.
//
// Errors: starting throws std::runtime_error (with the tail of the server's log) when the binary
// exits early or does not announce itself in time; GoogleTest reports it as a test failure.
// Threading: one ServerProcess is driven by one thread; base_url() may be read from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace vmp3::itest {

// The vmp3 executable under test: $VMP3_TEST_BINARY when set, else the one CMake built
// (VMP3_BINARY).
std::filesystem::path BinaryPath();

// How a stopped server ended.
struct ExitInfo {
  bool exited = false;  // true: exit_code is valid; false: killed by `signal`
  int exit_code = -1;
  int signal = 0;
  double seconds = 0;   // from the stop request until the process was reaped
  bool forced = false;  // the harness had to SIGKILL it after the timeout
};

class ServerProcess {
 public:
  // Starts `vmp3 serve --listen 127.0.0.1:0 --data-dir DATA_DIR ARGS...` and waits until it
  // listens. The data directory is created if missing and may hold an earlier run's state.
  static std::unique_ptr<ServerProcess> Start(
      const std::filesystem::path& data_dir, std::vector<std::string> args = {},
      std::chrono::milliseconds start_timeout = std::chrono::seconds(30));

  // Stops the server (SIGTERM, SIGKILL after 30 s) if it still runs.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // "http://127.0.0.1:PORT", without a trailing slash.
  const std::string& base_url() const { return base_url_; }
  uint16_t port() const { return port_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::vector<std::string>& args() const { return args_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // SIGTERM, then waits up to `timeout` for the process to exit; SIGKILLs it past that
  // (ExitInfo::forced). Returns how it ended; idempotent (a second call returns the first result).
  ExitInfo Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL now and reap: a crash, as far as the server's state on disk is concerned.
  ExitInfo Kill();

  // Everything the server has written to stdout and stderr so far in this run.
  std::string Log() const;
  const std::filesystem::path& log_path() const { return log_path_; }

 private:
  ServerProcess() = default;
  ExitInfo Reap(std::chrono::milliseconds timeout, std::chrono::steady_clock::time_point since);

  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string base_url_;
  std::filesystem::path data_dir_;
  std::filesystem::path log_path_;
  std::vector<std::string> args_;
  ExitInfo exit_;
};

// Extra `vmp3 serve` arguments for the backends under test (harness.cpp): none when embedded,
// the real servers' URLs when VMP3_IT_BACKENDS=distributed.
std::vector<std::string> BackendArgs(const std::filesystem::path& data_dir);

}  // namespace vmp3::itest
