// Runs the real `vmp3 serve` binary as child processes for whole-system tests: the system under
// test, as a client sees it through base_url().
//
// Two topologies, chosen by the environment (ctest sets it per label):
//  - one process with every role asked for (the default);
//  - VMP3_IT_TOPOLOGY=per-role (with VMP3_IT_BACKENDS=distributed): one process per role (auth,
//    upload, metadata, download, two converters and the notifier) behind nginx configured from the
//    shipped deploy/nginx/vmp3.conf.template, the way docs/deploy.md runs it; base_url() is
//    nginx's. A test that names its own --roles still gets the one process it asked for.
// Stopping and killing act on every process of the deployment at once.
//
// Each child listens on 127.0.0.1 with an ephemeral port; its stdout and stderr go to a log file
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

// True when VMP3_IT_TOPOLOGY=per-role: ServerProcess::Start deploys one process per role.
bool PerRoleTopology();

class ServerProcess {
 public:
  // Starts `vmp3 serve --listen 127.0.0.1:0 --data-dir DATA_DIR ARGS...` (per role, with
  // --roles ROLE and the auth process's --auth-url, when PerRoleTopology()) and waits until it
  // listens. The data directory is created if missing and may hold an earlier run's state; the
  // processes of a deployment share it.
  static std::unique_ptr<ServerProcess> Start(
      const std::filesystem::path& data_dir, std::vector<std::string> args = {},
      std::chrono::milliseconds start_timeout = std::chrono::seconds(30));

  // Stops the deployment (SIGTERM, SIGKILL after 30 s) if it still runs.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // "http://127.0.0.1:PORT", without a trailing slash: the server, or the gateway in front.
  const std::string& base_url() const { return base_url_; }
  uint16_t port() const { return port_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::vector<std::string>& args() const { return args_; }
  // The first process's pid (the only one unless per role).
  pid_t pid() const { return processes_.empty() ? -1 : processes_.front().pid; }
  bool running() const { return pid() > 0; }
  // True when this is a per-role deployment behind nginx.
  bool per_role() const { return processes_.size() > 1; }

  // A vmp3 process of the deployment: its --roles ("all" when none was given) and its own URL,
  // not the gateway's, for what is per process (/readyz, /metrics).
  struct Endpoint {
    std::string roles;
    std::string base_url;
  };
  std::vector<Endpoint> endpoints() const;
  // How many of those processes run converters.
  int converter_processes() const;

  // SIGTERM to every process, then waits up to `timeout` for them to exit; SIGKILLs what is left
  // past that (ExitInfo::forced). Returns how it ended (per role: exited only if all exited, the
  // worst exit code, the slowest time); idempotent (a second call returns the first result).
  ExitInfo Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL now and reap: a crash, as far as the state on disk and in the backends is concerned.
  ExitInfo Kill();

  // Everything the deployment has written to stdout and stderr so far in this run (per role:
  // each process's log under a "--- NAME" line).
  std::string Log() const;
  // The first process's log file.
  const std::filesystem::path& log_path() const { return processes_.front().log_path; }

 private:
  struct Process {
    std::string name;  // the role, "all", or "nginx"
    pid_t pid = -1;
    uint16_t port = 0;
    std::filesystem::path log_path;
  };

  ServerProcess() = default;
  void StartVmp3(std::string name, std::vector<std::string> extra_args,
                 std::chrono::milliseconds start_timeout);
  void StartGateway(std::chrono::milliseconds start_timeout);
  // Sends `signal` to every process still running and reaps them all (SIGKILL past `timeout`).
  ExitInfo StopAll(int signal, std::chrono::milliseconds timeout);

  std::vector<Process> processes_;
  uint16_t port_ = 0;
  std::string base_url_;
  std::filesystem::path data_dir_;
  std::vector<std::string> args_;
  bool stopped_ = false;
  ExitInfo exit_;
};

}  // namespace vmp3::itest
