#include "metadata/memory_limit_store.hpp"

#include <algorithm>
#include <vector>

namespace vmp3 {

Result<std::string> MemoryLimitStore::UpdateLimit(
    std::string_view key, std::chrono::milliseconds ttl,
    const std::function<std::string(std::string_view current)>& update) {
  if (auto valid = ValidateLimitKey(key); !valid) return tl::unexpected(valid.error());
  if (ttl.count() <= 0) return MakeError(ErrorCode::kInvalidArgument, "a limit TTL must be > 0");
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  auto it = records_.find(key);
  std::string_view current;
  if (it != records_.end() && it->second.expires > now) current = it->second.value;
  std::string next = update(current);
  if (next.empty()) {
    if (it != records_.end()) records_.erase(it);
    return next;
  }
  if (it == records_.end()) {
    MakeRoom(now);
    it = records_.emplace(std::string(key), Record{}).first;
  }
  it->second = Record{next, now + ttl};
  return next;
}

Result<std::string> MemoryLimitStore::GetLimit(std::string_view key) {
  if (auto valid = ValidateLimitKey(key); !valid) return tl::unexpected(valid.error());
  std::lock_guard lock(mu_);
  auto it = records_.find(key);
  if (it == records_.end() || it->second.expires <= Clock::now()) return std::string();
  return it->second.value;
}

size_t MemoryLimitStore::size() const {
  std::lock_guard lock(mu_);
  return records_.size();
}

void MemoryLimitStore::MakeRoom(Clock::time_point now) {
  if (records_.size() < max_records_) return;
  std::erase_if(records_, [&](const auto& entry) { return entry.second.expires <= now; });
  while (records_.size() >= std::max<size_t>(max_records_, 1)) {
    auto soonest = std::min_element(records_.begin(), records_.end(), [](auto& a, auto& b) {
      return a.second.expires < b.second.expires;
    });
    records_.erase(soonest);
  }
}

}  // namespace vmp3
