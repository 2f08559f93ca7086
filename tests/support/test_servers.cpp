#include "support/test_servers.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/process.hpp"

namespace vmp3::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// scripts/servers/ of this source tree.
fs::path ServerScripts() {
  fs::path dir = fs::path(__FILE__).parent_path().parent_path().parent_path() / "scripts/servers";
  if (!fs::exists(dir / "rabbitmq.sh"))
    throw std::runtime_error("cannot find scripts/servers beside " + std::string(__FILE__));
  return dir;
}

}  // namespace

std::optional<TestServers> TestServers::FromEnvironment() {
  const char* dir = std::getenv("VMP3_TEST_SERVERS_DIR");
  if (!dir || !*dir) return std::nullopt;
  TestServers servers;
  servers.dir_ = dir;
  std::ifstream in(servers.dir_ / "ports.env");
  if (!in) throw std::runtime_error("cannot read " + (servers.dir_ / "ports.env").string());
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) servers.ports_[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return servers;
}

std::string TestServers::Port(const std::string& key) const {
  auto it = ports_.find(key);
  if (it == ports_.end()) throw std::runtime_error(key + " is missing from ports.env");
  return it->second;
}

std::vector<std::string> TestServers::ServerArgs(const std::string& name,
                                                 const std::string& action) const {
  const std::string script = (ServerScripts() / (name + ".sh")).string();
  const std::string dir = (dir_ / name).string();
  if (name == "rabbitmq") {
    return {script, action, dir, Port("AMQP_PORT"), Port("AMQP_DIST_PORT"), Port("EPMD_PORT")};
  }
  if (name == "redis") return {script, action, dir, Port("REDIS_PORT")};
  if (name == "smtp") return {script, action, dir, Port("SMTP_PORT")};
  return {"env",
          "MON_PORT_V2=" + Port("MON_PORT_V2"),
          "MON_PORT_V1=" + Port("MON_PORT_V1"),
          script,
          action,
          dir,
          Port("RGW_PORT")};
}

std::string TestServers::Run(const std::string& what, const std::vector<std::string>& argv) {
  auto started = Clock::now();
  ProcessResult r = RunProcess(argv, 180s);
  if (r.exit_code != 0) {
    throw std::runtime_error(
        fmt::format("{} failed (exit {}): {}{}", what, r.exit_code, r.out, r.err));
  }
  std::printf("[ servers  ] %s: %.1f s\n", what.c_str(),
              std::chrono::duration<double>(Clock::now() - started).count());
  return r.out;
}

void TestServers::Stop(const std::string& name) { Run(name + " stop", ServerArgs(name, "stop")); }

void TestServers::Start(const std::string& name) {
  Run(name + " start", ServerArgs(name, "start"));
}

std::string TestServers::RabbitMqCtl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = ServerArgs("rabbitmq", "ctl");
  argv.push_back("--");
  argv.insert(argv.end(), args.begin(), args.end());
  return Run("rabbitmqctl " + args.front(), argv);
}

pid_t TestServers::RabbitMqPid() {
  std::string out = Run("rabbitmq pid", ServerArgs("rabbitmq", "pid"));
  pid_t pid = static_cast<pid_t>(std::strtol(out.c_str(), nullptr, 10));
  if (pid <= 1) throw std::runtime_error("rabbitmq.sh pid printed no PID: " + out);
  return pid;
}

MemoryAlarm::MemoryAlarm(TestServers& servers) : servers_(servers) {
  servers_.RabbitMqCtl({"set_vm_memory_high_watermark", "0"});
  WaitForAlarm(true);
}

MemoryAlarm::~MemoryAlarm() {
  if (ended_) return;
  try {
    End();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "could not clear the memory alarm: " << e.what();
  }
}

void MemoryAlarm::End() {
  ended_ = true;
  servers_.RabbitMqCtl({"set_vm_memory_high_watermark", "0.4"});
  WaitForAlarm(false);
}

void MemoryAlarm::WaitForAlarm(bool active) {
  const auto deadline = Clock::now() + 30s;
  for (;;) {
    // "[]" without alarms, else e.g. [{{resource_limit,memory,'vmp3-1@localhost'},[]}].
    std::string alarms = servers_.RabbitMqCtl({"eval", "rabbit_alarm:get_alarms()."});
    if ((alarms.find("memory") != std::string::npos) == active) return;
    if (Clock::now() > deadline) {
      throw std::runtime_error(fmt::format("the memory alarm did not {} within 30 s: {}",
                                           active ? "start" : "clear", alarms));
    }
    std::this_thread::sleep_for(200ms);
  }
}

BrokerStall::BrokerStall(TestServers& servers) : pid_(servers.RabbitMqPid()) {
  if (::kill(pid_, SIGSTOP) != 0) {
    throw std::runtime_error(
        fmt::format("cannot stop RabbitMQ (pid {}): {}", pid_, std::strerror(errno)));
  }
}

BrokerStall::~BrokerStall() {
  if (!ended_) End();
}

void BrokerStall::End() {
  ended_ = true;
  if (::kill(pid_, SIGCONT) != 0) {
    ADD_FAILURE() << "cannot resume RabbitMQ (pid " << pid_ << "): " << std::strerror(errno);
  }
}

}  // namespace vmp3::test
