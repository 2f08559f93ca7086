#include "common/blocking_pool.hpp"

#include <algorithm>

namespace vmp3 {
namespace {

Error Overloaded() {
  return Error(ErrorCode::kUnavailable,
               "the server is overloaded: too many requests are waiting for its backends; retry "
               "shortly");
}

Error ShuttingDown() { return Error(ErrorCode::kUnavailable, "the server is shutting down"); }

Error WaitedTooLong() {
  return Error(ErrorCode::kUnavailable,
               "the server's backends did not answer in time (the request waited for a worker "
               "until its deadline); retry shortly");
}

}  // namespace

BlockingPool::BlockingPool(BlockingPoolOptions options) : options_(options) {
  options_.threads = std::max(1, options_.threads);
  threads_.reserve(static_cast<size_t>(options_.threads));
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { Loop(); });
}

BlockingPool::~BlockingPool() { Stop(); }

void BlockingPool::Submit(std::function<void()> work, std::function<void(Status)> done,
                          std::optional<DeadlineClock::time_point> deadline) {
  bool stopping = false;
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && queue_.size() < options_.max_queued) {
      queue_.push_back(Task{std::move(work), std::move(done), deadline});
      cv_.notify_one();
      return;
    }
    ++refused_;
    stopping = stopping_;
  }
  done(tl::unexpected(stopping ? ShuttingDown() : Overloaded()));
}

void BlockingPool::Loop() {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
      bool stopping = stopping_;
      if (stopping || (task.deadline && DeadlineClock::now() >= *task.deadline)) {
        ++refused_;
        lock.unlock();
        task.done(tl::unexpected(stopping ? ShuttingDown() : WaitedTooLong()));
        continue;
      }
      ++running_;
    }
    {
      ScopedDeadline scope(task.deadline);
      task.work();
    }
    {
      std::lock_guard lock(mu_);
      --running_;
    }
    task.done(Status{});
  }
}

void BlockingPool::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

size_t BlockingPool::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

size_t BlockingPool::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

uint64_t BlockingPool::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}

}  // namespace vmp3
