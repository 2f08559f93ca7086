#include "integration/server_process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef VMP3_BINARY
#error "VMP3_BINARY must be defined (the path of the vmp3 executable under test)"
#endif

namespace vmp3::itest {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Tail(const std::string& text, size_t bytes = 4000) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

// The port of the "vmp3 listening on http://HOST:PORT/" line, or 0 while it is not there yet.
uint16_t ListeningPort(const std::string& log) {
  constexpr std::string_view kPrefix = "vmp3 listening on http://";
  size_t at = log.find(kPrefix);
  if (at == std::string::npos) return 0;
  size_t end = log.find('\n', at);
  if (end == std::string::npos) return 0;  // the line is not complete yet
  std::string url = log.substr(at + kPrefix.size(), end - at - kPrefix.size());
  size_t colon = url.rfind(':');
  if (colon == std::string::npos) return 0;
  int port = std::atoi(url.c_str() + colon + 1);
  return port > 0 && port < 65536 ? static_cast<uint16_t>(port) : 0;
}

ExitInfo Decode(int status) {
  ExitInfo info;
  if (WIFEXITED(status)) {
    info.exited = true;
    info.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    info.signal = WTERMSIG(status);
  }
  return info;
}

}  // namespace

fs::path BinaryPath() {
  const char* override_path = std::getenv("VMP3_TEST_BINARY");
  return override_path != nullptr && *override_path != '\0' ? fs::path(override_path)
                                                            : fs::path(VMP3_BINARY);
}

std::unique_ptr<ServerProcess> ServerProcess::Start(const fs::path& data_dir,
                                                    std::vector<std::string> args,
                                                    std::chrono::milliseconds start_timeout) {
  static std::atomic<int> starts{0};
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  server->data_dir_ = data_dir;
  server->args_ = args;
  fs::create_directories(data_dir);
  server->log_path_ = data_dir.parent_path() /
                      fmt::format("{}-{}.log", data_dir.filename().string(), starts.fetch_add(1));

  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<std::string> argv_strings = {BinaryPath().string(), "serve",      "--listen",
                                           "127.0.0.1:0",         "--data-dir", data_dir.string()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  for (std::string& a : BackendArgs(data_dir)) argv_strings.push_back(std::move(a));
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  int log_fd = ::open(server->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    throw std::runtime_error(
        fmt::format("cannot create {}: {}", server->log_path_.string(), std::strerror(errno)));
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    ::close(null_fd);
    throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the test died before prctl took effect
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    // A fresh signal state: the test runner may block or ignore signals the server relies on.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  server->pid_ = pid;

  auto deadline = Clock::now() + start_timeout;
  for (;;) {
    uint16_t port = ListeningPort(server->Log());
    if (port != 0) {
      server->port_ = port;
      server->base_url_ = fmt::format("http://127.0.0.1:{}", port);
      return server;
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      server->pid_ = -1;
      ExitInfo info = Decode(status);
      throw std::runtime_error(fmt::format(
          "vmp3 serve exited before listening ({} {}):\n{}", info.exited ? "exit code" : "signal",
          info.exited ? info.exit_code : info.signal, Tail(server->Log())));
    }
    if (Clock::now() > deadline) {
      std::string log = server->Log();
      server->Kill();
      throw std::runtime_error(fmt::format("vmp3 serve did not listen within {} ms:\n{}",
                                           start_timeout.count(), Tail(log)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

ServerProcess::~ServerProcess() { Terminate(); }

ExitInfo ServerProcess::Reap(std::chrono::milliseconds timeout, Clock::time_point since) {
  auto deadline = since + timeout;
  for (;;) {
    int status = 0;
    pid_t got = ::waitpid(pid_, &status, WNOHANG);
    if (got == pid_ || (got < 0 && errno == ECHILD)) {
      exit_ = got == pid_ ? Decode(status) : ExitInfo{};
      break;
    }
    if (Clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      exit_ = Decode(status);
      exit_.forced = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  exit_.seconds = std::chrono::duration<double>(Clock::now() - since).count();
  pid_ = -1;
  return exit_;
}

ExitInfo ServerProcess::Terminate(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_;
  auto since = Clock::now();
  ::kill(pid_, SIGTERM);
  return Reap(timeout, since);
}

ExitInfo ServerProcess::Kill() {
  if (pid_ <= 0) return exit_;
  auto since = Clock::now();
  ::kill(pid_, SIGKILL);
  return Reap(std::chrono::seconds(30), since);
}

std::string ServerProcess::Log() const { return ReadFile(log_path_); }

}  // namespace vmp3::itest
