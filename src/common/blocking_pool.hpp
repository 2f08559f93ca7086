// A bounded pool of threads for blocking work: backend calls (SQLite, Redis, S3, RabbitMQ) and
// password hashing that must never run on an HTTP I/O thread.
//
// Bounded in both directions, so a stalled backend cannot grow threads or memory without limit:
// a fixed number of threads, and a fixed number of tasks waiting for one. A task submitted when
// the queue is full is refused at once; a task whose deadline passes while it waits is refused
// when its turn comes, without running. Either way its `done` gets kUnavailable, so the caller
// answers 503 promptly instead of piling up behind the stall.
//
// A task runs inside ScopedDeadline(its deadline) (common/deadline.hpp), so the backend clients
// it calls bound their own waits by what is left of it.
//
// Threading: Submit may be called from any thread. `work` and then `done` run on a pool thread
// (`done` with the Status of the task itself: success when `work` ran); when the task is refused,
// `done` runs either on the submitting thread (queue full, stopped) or on a pool thread
// (deadline passed). `done` must not block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/deadline.hpp"
#include "common/error.hpp"

namespace vmp3 {

struct BlockingPoolOptions {
  int threads = 8;          // tasks running at once
  size_t max_queued = 256;  // tasks waiting for a thread; more are refused at once
};

class BlockingPool {
 public:
  explicit BlockingPool(BlockingPoolOptions options);
  // Stop(): tasks still queued are refused, running ones finish.
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  void Submit(std::function<void()> work, std::function<void(Status)> done,
              std::optional<DeadlineClock::time_point> deadline);

  // Refuses what is queued and joins the threads after their current task. Idempotent.
  void Stop();

  // For metrics: tasks waiting, tasks running, tasks refused so far.
  size_t queued() const;
  size_t running() const;
  uint64_t refused() const;

 private:
  struct Task {
    std::function<void()> work;
    std::function<void(Status)> done;
    std::optional<DeadlineClock::time_point> deadline;
  };
  void Loop();

  BlockingPoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  size_t running_ = 0;
  uint64_t refused_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace vmp3
