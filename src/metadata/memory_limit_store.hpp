// LimitStore in this process's memory, for unit tests and single-process tools. Bounded: at most
// `max_records` live records; when full, expired ones are dropped first, then the records that
// expire soonest.
#pragma once

#include <map>
#include <mutex>

#include "metadata/limit_store.hpp"

namespace vmp3 {

class MemoryLimitStore final : public LimitStore {
 public:
  explicit MemoryLimitStore(size_t max_records = 100000) : max_records_(max_records) {}

  Result<std::string> UpdateLimit(
      std::string_view key, std::chrono::milliseconds ttl,
      const std::function<std::string(std::string_view current)>& update) override;
  Result<std::string> GetLimit(std::string_view key) override;

  size_t size() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Record {
    std::string value;
    Clock::time_point expires;
  };
  void MakeRoom(Clock::time_point now);

  size_t max_records_;
  mutable std::mutex mu_;
  std::map<std::string, Record, std::less<>> records_;
};

}  // namespace vmp3
