#include "integration/server_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "integration/harness.hpp"

#ifndef VMP3_BINARY
#error "VMP3_BINARY must be defined (the path of the vmp3 executable under test)"
#endif
#ifndef VMP3_NGINX_TEMPLATE
#error "VMP3_NGINX_TEMPLATE must be defined (deploy/nginx/vmp3.conf.template of this tree)"
#endif

namespace vmp3::itest {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The file's bytes, or "" while it does not exist yet (logs and pid files being written).
std::string ReadIfPresent(const fs::path& path) {
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

bool PerRoleTopology() {
  const char* topology = std::getenv("VMP3_IT_TOPOLOGY");
  return topology != nullptr && std::string_view(topology) == "per-role";
}

namespace {

// Forks and execs `argv` (argv[0] a path, or a name looked up in PATH) with stdout and stderr to
// `log_path` and stdin from /dev/null. The child dies with the test process (PR_SET_PDEATHSIG).
pid_t Spawn(std::vector<std::string> argv_strings, const fs::path& log_path) {
  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    throw std::runtime_error(
        fmt::format("cannot create {}: {}", log_path.string(), std::strerror(errno)));
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
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  return pid;
}

// A loopback port nobody listens on right now (the kernel's pick for a socket bound to port 0).
// Another process may take it before the caller binds it; the caller retries on that.
uint16_t FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

bool Accepts(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return connected;
}

std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

}  // namespace

std::unique_ptr<ServerProcess> ServerProcess::Start(const fs::path& data_dir,
                                                    std::vector<std::string> args,
                                                    std::chrono::milliseconds start_timeout) {
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  server->data_dir_ = data_dir;
  server->args_ = std::move(args);
  fs::create_directories(data_dir);
  auto roles_flag = std::find(server->args_.begin(), server->args_.end(), "--roles");
  const bool names_roles =
      roles_flag != server->args_.end() && roles_flag + 1 != server->args_.end();
  if (!PerRoleTopology() || names_roles) {
    server->StartVmp3(names_roles ? *(roles_flag + 1) : "all", {}, start_timeout);
    server->port_ = server->processes_.front().port;
    server->base_url_ = fmt::format("http://127.0.0.1:{}", server->port_);
    return server;
  }
  // Roles other than auth verify tokens with the JWKS of the auth process, as deployed.
  server->StartVmp3("auth", {"--roles", "auth"}, start_timeout);
  const std::string auth_url = fmt::format("http://127.0.0.1:{}", server->processes_[0].port);
  for (const char* role : {"upload", "metadata", "download", "converter", "converter", "notifier"})
    server->StartVmp3(role, {"--roles", role, "--auth-url", auth_url}, start_timeout);
  server->StartGateway(start_timeout);
  return server;
}

void ServerProcess::StartVmp3(std::string name, std::vector<std::string> extra_args,
                              std::chrono::milliseconds start_timeout) {
  static std::atomic<int> starts{0};
  Process process;
  process.name = std::move(name);
  process.log_path =
      data_dir_.parent_path() /
      fmt::format("{}-{}-{}.log", data_dir_.filename().string(), process.name, starts.fetch_add(1));
  std::vector<std::string> argv = {BinaryPath().string(), "serve",      "--listen",
                                   "127.0.0.1:0",         "--data-dir", data_dir_.string()};
  argv.insert(argv.end(), args_.begin(), args_.end());
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  for (std::string& a : BackendArgs(data_dir_)) argv.push_back(std::move(a));
  process.pid = Spawn(std::move(argv), process.log_path);
  processes_.push_back(process);
  Process& started = processes_.back();

  auto deadline = Clock::now() + start_timeout;
  for (;;) {
    uint16_t port = ListeningPort(ReadIfPresent(started.log_path));
    if (port != 0) {
      started.port = port;
      return;
    }
    int status = 0;
    if (::waitpid(started.pid, &status, WNOHANG) == started.pid) {
      started.pid = -1;
      ExitInfo info = Decode(status);
      std::string log = ReadIfPresent(started.log_path);
      StopAll(SIGKILL, std::chrono::seconds(30));
      throw std::runtime_error(fmt::format("vmp3 serve ({}) exited before listening ({} {}):\n{}",
                                           started.name, info.exited ? "exit code" : "signal",
                                           info.exited ? info.exit_code : info.signal, Tail(log)));
    }
    if (Clock::now() > deadline) {
      std::string log = ReadIfPresent(started.log_path);
      StopAll(SIGKILL, std::chrono::seconds(30));
      throw std::runtime_error(fmt::format("vmp3 serve ({}) did not listen within {} ms:\n{}",
                                           started.name, start_timeout.count(), Tail(log)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void ServerProcess::StartGateway(std::chrono::milliseconds start_timeout) {
  auto role_address = [&](std::string_view role) {
    for (const Process& p : processes_)
      if (p.name == role) return fmt::format("127.0.0.1:{}", p.port);
    throw std::logic_error("no process for role " + std::string(role));
  };
  const fs::path dir = data_dir_.parent_path() / (data_dir_.filename().string() + "-nginx");
  fs::create_directories(dir);
  std::string routes = ReadFile(VMP3_NGINX_TEMPLATE);
  // The template's ${VMP3_*} placeholders, filled as the nginx image's envsubst fills them.
  for (auto [placeholder, role] :
       {std::pair{"${VMP3_AUTH_UPSTREAM}", "auth"}, std::pair{"${VMP3_UPLOAD_UPSTREAM}", "upload"},
        std::pair{"${VMP3_METADATA_UPSTREAM}", "metadata"},
        std::pair{"${VMP3_DOWNLOAD_UPSTREAM}", "download"},
        std::pair{"${VMP3_NOTIFIER_UPSTREAM}", "notifier"}}) {
    routes = ReplaceAll(routes, placeholder, role_address(role));
  }
  // The kernel picks a free port, but another test may take it before nginx binds it: retry.
  for (int attempt = 1;; ++attempt) {
    const uint16_t port = FreeLoopbackPort();
    WriteFile(dir / "routes.conf",
              ReplaceAll(routes, "${VMP3_GATEWAY_LISTEN}", fmt::format("127.0.0.1:{}", port)));
    // One foreground process (no master/worker split), so the test owns exactly one pid.
    WriteFile(dir / "nginx.conf", fmt::format(R"(daemon off;
master_process off;
worker_processes 1;
pid {0}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
  access_log {0}/access.log;
  client_body_temp_path {0}/body;
  proxy_temp_path {0}/proxy;
  fastcgi_temp_path {0}/fastcgi;
  uwsgi_temp_path {0}/uwsgi;
  scgi_temp_path {0}/scgi;
  include {0}/routes.conf;
}}
)",
                                              dir.string()));
    Process gateway;
    gateway.name = "nginx";
    gateway.port = port;
    gateway.log_path = dir / fmt::format("nginx-{}.log", attempt);
    // nginx writes its pid file only once it has bound the port: until then, whatever answers
    // on the port may be another test's server that took it first.
    const fs::path pid_file = dir / "nginx.pid";
    fs::remove(pid_file);
    // Debian installs it in /usr/sbin, which a non-root PATH may lack.
    const std::string nginx = fs::exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";
    gateway.pid =
        Spawn({nginx, "-e", "stderr", "-p", dir.string(), "-c", (dir / "nginx.conf").string()},
              gateway.log_path);
    processes_.push_back(gateway);
    auto deadline = Clock::now() + start_timeout;
    bool exited = false;
    auto bound = [&] {
      return std::atoi(ReadIfPresent(pid_file).c_str()) == gateway.pid && Accepts(port);
    };
    while (!bound()) {
      int status = 0;
      if (::waitpid(gateway.pid, &status, WNOHANG) == gateway.pid) {
        exited = true;
        break;
      }
      if (Clock::now() > deadline) {
        StopAll(SIGKILL, std::chrono::seconds(30));
        throw std::runtime_error(
            fmt::format("nginx did not listen within {} ms", start_timeout.count()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!exited) {
      port_ = port;
      base_url_ = fmt::format("http://127.0.0.1:{}", port);
      return;
    }
    processes_.pop_back();
    std::string log = ReadIfPresent(gateway.log_path);
    if (attempt >= 5 || log.find("Address already in use") == std::string::npos) {
      StopAll(SIGKILL, std::chrono::seconds(30));
      throw std::runtime_error("nginx exited before listening:\n" + Tail(log));
    }
  }
}

ServerProcess::~ServerProcess() { Terminate(); }

ExitInfo ServerProcess::StopAll(int signal, std::chrono::milliseconds timeout) {
  const auto since = Clock::now();
  const auto deadline = since + timeout;
  for (const Process& p : processes_)
    if (p.pid > 0) ::kill(p.pid, signal);
  ExitInfo all;
  all.exited = true;
  all.exit_code = 0;
  for (Process& p : processes_) {
    if (p.pid <= 0) continue;
    ExitInfo one;
    for (;;) {
      int status = 0;
      pid_t got = ::waitpid(p.pid, &status, WNOHANG);
      if (got == p.pid || (got < 0 && errno == ECHILD)) {
        one = got == p.pid ? Decode(status) : ExitInfo{};
        break;
      }
      if (Clock::now() >= deadline) {
        ::kill(p.pid, SIGKILL);
        ::waitpid(p.pid, &status, 0);
        one = Decode(status);
        one.forced = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    p.pid = -1;
    all.forced = all.forced || one.forced;
    if (!one.exited) {
      all.exited = false;
      if (all.signal == 0) all.signal = one.signal;
    } else if (all.exited && one.exit_code != 0 && all.exit_code == 0) {
      all.exit_code = one.exit_code;
    }
  }
  if (!all.exited) all.exit_code = -1;
  all.seconds = std::chrono::duration<double>(Clock::now() - since).count();
  return all;
}

ExitInfo ServerProcess::Terminate(std::chrono::milliseconds timeout) {
  if (stopped_ || processes_.empty()) return exit_;
  stopped_ = true;
  exit_ = StopAll(SIGTERM, timeout);
  return exit_;
}

ExitInfo ServerProcess::Kill() {
  if (stopped_ || processes_.empty()) return exit_;
  stopped_ = true;
  exit_ = StopAll(SIGKILL, std::chrono::seconds(30));
  return exit_;
}

std::vector<ServerProcess::Endpoint> ServerProcess::endpoints() const {
  std::vector<Endpoint> endpoints;
  for (const Process& p : processes_) {
    if (p.name != "nginx")
      endpoints.push_back({p.name, fmt::format("http://127.0.0.1:{}", p.port)});
  }
  return endpoints;
}

int ServerProcess::converter_processes() const {
  int count = 0;
  for (const Process& p : processes_)
    count += p.name == "all" || p.name.find("converter") != std::string::npos;
  return count;
}

std::string ServerProcess::Log() const {
  if (processes_.size() == 1) return ReadIfPresent(processes_.front().log_path);
  std::string all;
  for (const Process& p : processes_)
    all += fmt::format("--- {} ({})\n{}", p.name, p.log_path.string(), ReadIfPresent(p.log_path));
  return all;
}

}  // namespace vmp3::itest
