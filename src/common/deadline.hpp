// Deadlines that follow the work across calls on one thread, like a request context: whoever
// starts work on behalf of a request (the HTTP server's blocking pool) sets the time by which
// the answer is due, and every backend client below bounds its network waits by what is left.
// So a request that needs a stalled backend fails by its deadline however many backend calls it
// makes, without a deadline parameter on every interface.
//
//   ScopedDeadline scope(Clock::now() + 5s);          // the pool, around one piece of work
//   ...
//   auto budget = TimeBudget(std::chrono::seconds(5)); // a backend client, before a network wait
//   if (budget <= 0ms) return tl::unexpected(DeadlinePassed("Redis"));
//   set the socket timeout to budget...
//
// Threading: the deadline is per thread. Work handed to another thread does not carry it; pass
// CurrentDeadline() along and open a ScopedDeadline there if it should.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>

#include "common/error.hpp"

namespace vmp3 {

using DeadlineClock = std::chrono::steady_clock;

// The deadline of the work this thread is doing; none outside any ScopedDeadline.
std::optional<DeadlineClock::time_point> CurrentDeadline();

// Sets this thread's deadline until destroyed. Scopes nest: an inner scope never extends the
// deadline of an outer one (the earlier of the two holds). nullopt adds no deadline.
class ScopedDeadline {
 public:
  explicit ScopedDeadline(std::optional<DeadlineClock::time_point> deadline);
  ~ScopedDeadline();
  ScopedDeadline(const ScopedDeadline&) = delete;
  ScopedDeadline& operator=(const ScopedDeadline&) = delete;

 private:
  std::optional<DeadlineClock::time_point> previous_;
};

// How long a backend call may wait now: `configured` (the client's own timeout), or less when
// this thread's deadline is nearer. Zero when the deadline has passed: fail without waiting.
std::chrono::milliseconds TimeBudget(std::chrono::milliseconds configured);

// What is left until `deadline`; zero once it has passed.
inline std::chrono::milliseconds TimeLeft(DeadlineClock::time_point deadline) {
  return std::max(
      std::chrono::milliseconds(0),
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - DeadlineClock::now()));
}

// kUnavailable: "<backend> was not asked: the request's deadline passed", for a client that
// found its TimeBudget spent before it started.
Error DeadlinePassed(std::string_view backend);

}  // namespace vmp3
