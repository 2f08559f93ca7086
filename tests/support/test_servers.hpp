// The real servers `scripts/test-servers start DIR` runs (RabbitMQ, Redis, Ceph RGW, SMTP), for
// tests that put them into a fault: stop and start one (its data survives), raise a RabbitMQ
// resource alarm, freeze the broker with SIGSTOP. DIR comes from VMP3_TEST_SERVERS_DIR and its
// ports from DIR/ports.env; every action goes through scripts/servers/*.sh with them, so a test
// only ever touches the servers it was given.
//
// These faults hit every client of the servers, so tests that cause them must not run beside
// other tests on the same servers: ctest runs them serially (test suites named *FaultsTest).
//
// Errors: a failing action throws std::runtime_error with the script's output; GoogleTest
// reports it as a failure of the calling test. The scoped faults undo themselves in their
// destructors even when the test failed meanwhile.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vmp3::test {

// Seconds on the steady clock since start: how long a server took to notice something.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class TestServers {
 public:
  // The servers of VMP3_TEST_SERVERS_DIR; nullopt when it is unset.
  static std::optional<TestServers> FromEnvironment();

  // name: "redis", "rabbitmq", "rgw" or "smtp".
  void Stop(const std::string& name);
  void Start(const std::string& name);

  // Runs rabbitmqctl ARGS... against the RabbitMQ node; returns what it printed.
  std::string RabbitMqCtl(const std::vector<std::string>& args);
  // The PID of the RabbitMQ node's Erlang VM.
  pid_t RabbitMqPid();

 private:
  std::string Port(const std::string& key) const;
  // The command line of scripts/servers/NAME.sh ACTION for this DIR's server NAME.
  std::vector<std::string> ServerArgs(const std::string& name, const std::string& action) const;
  std::string Run(const std::string& name, const std::vector<std::string>& argv);

  std::filesystem::path dir_;
  std::map<std::string, std::string> ports_;
};

// A RabbitMQ memory alarm while it lives: the memory high watermark is 0, so the broker blocks
// every connection that publishes (held, not refused) until End() or the destructor sets it
// back to 0.4 (the default). Both wait until the broker's alarm state has changed.
class MemoryAlarm {
 public:
  explicit MemoryAlarm(TestServers& servers);
  ~MemoryAlarm();
  MemoryAlarm(const MemoryAlarm&) = delete;
  MemoryAlarm& operator=(const MemoryAlarm&) = delete;

  void End();

 private:
  void WaitForAlarm(bool active);

  TestServers& servers_;
  bool ended_ = false;
};

// The broker frozen while it lives: SIGSTOP to its Erlang VM, so connections stay open and
// nothing answers (a stalled broker, not a dead one); SIGCONT in End() or the destructor.
class BrokerStall {
 public:
  explicit BrokerStall(TestServers& servers);
  ~BrokerStall();
  BrokerStall(const BrokerStall&) = delete;
  BrokerStall& operator=(const BrokerStall&) = delete;

  void End();

 private:
  pid_t pid_;
  bool ended_ = false;
};

}  // namespace vmp3::test
