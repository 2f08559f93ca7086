// Readiness of the backends a process uses, checked in the background so that /readyz answers
// at once whatever the backends do: each backend is pinged on its own thread every `interval`,
// each ping bounded by `timeout` (through common/deadline.hpp), and /readyz reports the last
// answers. A stalled backend therefore shows as not ready within about interval + timeout, and
// never holds a request.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"

namespace vmp3::roles {

class BackendHealth {
 public:
  struct Check {
    bool ok = false;
    std::string detail;  // "ok", or why not
  };

  BackendHealth(std::chrono::milliseconds interval, std::chrono::milliseconds timeout);
  ~BackendHealth();  // Stop()

  // Adds a backend before Start(). `ping` must be thread-safe.
  void Add(std::string name, std::function<Status()> ping);
  // Checks every backend once (so the first /readyz has answers), then keeps checking in the
  // background.
  void Start();
  void Stop();

  // The last answer per backend; a backend not yet checked is not ok.
  std::map<std::string, Check> Snapshot() const;

 private:
  void CheckOne(const std::string& name, const std::function<Status()>& ping);

  std::chrono::milliseconds interval_;
  std::chrono::milliseconds timeout_;
  std::vector<std::pair<std::string, std::function<Status()>>> backends_;
  mutable std::mutex mu_;
  std::map<std::string, Check> checks_;
  std::vector<std::jthread> threads_;
};

}  // namespace vmp3::roles
