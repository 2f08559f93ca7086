#include "common/deadline.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace vmp3 {
namespace {

thread_local std::optional<DeadlineClock::time_point> current_deadline;

}  // namespace

std::optional<DeadlineClock::time_point> CurrentDeadline() { return current_deadline; }

ScopedDeadline::ScopedDeadline(std::optional<DeadlineClock::time_point> deadline)
    : previous_(current_deadline) {
  if (deadline && (!current_deadline || *deadline < *current_deadline)) current_deadline = deadline;
}

ScopedDeadline::~ScopedDeadline() { current_deadline = previous_; }

std::chrono::milliseconds TimeBudget(std::chrono::milliseconds configured) {
  if (!current_deadline) return configured;
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(*current_deadline - DeadlineClock::now());
  return std::clamp(left, std::chrono::milliseconds(0), configured);
}

Error DeadlinePassed(std::string_view backend) {
  return Error(ErrorCode::kUnavailable,
               fmt::format("{} was not asked: the request's deadline passed", backend));
}

}  // namespace vmp3
