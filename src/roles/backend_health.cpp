#include "roles/backend_health.hpp"

#include "common/deadline.hpp"
#include "common/stoppable.hpp"

namespace vmp3::roles {

BackendHealth::BackendHealth(std::chrono::milliseconds interval, std::chrono::milliseconds timeout)
    : interval_(interval), timeout_(timeout) {}

BackendHealth::~BackendHealth() { Stop(); }

void BackendHealth::Add(std::string name, std::function<Status()> ping) {
  std::lock_guard lock(mu_);
  checks_[name] = Check{false, "not checked yet"};
  backends_.emplace_back(std::move(name), std::move(ping));
}

void BackendHealth::CheckOne(const std::string& name, const std::function<Status()>& ping) {
  Status status;
  {
    ScopedDeadline deadline(DeadlineClock::now() + timeout_);
    status = ping();
  }
  std::lock_guard lock(mu_);
  checks_[name] = status ? Check{true, "ok"} : Check{false, status.error().message};
}

void BackendHealth::Start() {
  // The first round in parallel, so a stalled backend delays the start by one timeout at most.
  {
    std::vector<std::jthread> first;
    for (const auto& [name, ping] : backends_)
      first.emplace_back([this, &name, &ping] { CheckOne(name, ping); });
  }
  for (const auto& [name, ping] : backends_) {
    threads_.emplace_back([this, &name, &ping](std::stop_token stop) {
      while (SleepUnlessStopped(stop, interval_)) CheckOne(name, ping);
    });
  }
}

void BackendHealth::Stop() { threads_.clear(); }

std::map<std::string, BackendHealth::Check> BackendHealth::Snapshot() const {
  std::lock_guard lock(mu_);
  return checks_;
}

}  // namespace vmp3::roles
