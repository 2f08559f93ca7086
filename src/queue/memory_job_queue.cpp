#include "queue/memory_job_queue.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>

namespace vmp3 {

namespace {

using Clock = std::chrono::steady_clock;

enum class MessageState { kReady, kLeased, kDead };

struct Message {
  std::string job_id;
  MessageState state = MessageState::kReady;
  int attempt = 0;               // deliveries so far
  Clock::time_point visible_at;  // ready from / lease runs out at
  uint64_t lease = 0;            // id of the current lease; 0 when not leased
};

// A receipt is "<seq>.<lease>": the message and the lease it was handed out under.
struct MemoryReceipt {
  uint64_t seq = 0;
  uint64_t lease = 0;
};

Result<MemoryReceipt> ParseMemoryReceipt(const Delivery& delivery) {
  std::string_view text = delivery.receipt;
  const char* end = text.data() + text.size();
  MemoryReceipt receipt;
  auto [dot, ec] = std::from_chars(text.data(), end, receipt.seq);
  if (ec == std::errc() && dot != end && *dot == '.') {
    auto [last, ec2] = std::from_chars(dot + 1, end, receipt.lease);
    if (ec2 == std::errc() && last == end && receipt.lease != 0) return receipt;
  }
  return MalformedReceipt(delivery);
}

Clock::time_point After(std::chrono::milliseconds delay) {
  return Clock::now() + std::max(delay, std::chrono::milliseconds(0));
}

}  // namespace

class MemoryJobQueue::State {
 public:
  std::mutex mu;
  std::condition_variable visible;       // signalled when a message may have become takeable
  std::map<uint64_t, Message> messages;  // by seq: publish order
  uint64_t next_seq = 1;
  uint64_t next_lease = 1;

  // The message a receipt names while it still holds that lease (expired or not), else null.
  Message* Leased(const MemoryReceipt& receipt) {
    auto it = messages.find(receipt.seq);
    if (it == messages.end() || it->second.state != MessageState::kLeased ||
        it->second.lease != receipt.lease) {
      return nullptr;
    }
    return &it->second;
  }
};

Result<std::unique_ptr<MemoryJobQueue>> MemoryJobQueue::Open(const JobQueueOptions& options,
                                                             std::shared_ptr<State> state) {
  if (auto valid = ValidateJobQueueOptions(options); !valid) return tl::unexpected(valid.error());
  if (state == nullptr) state = std::make_shared<State>();
  return std::unique_ptr<MemoryJobQueue>(new MemoryJobQueue(options, std::move(state)));
}

MemoryJobQueue::~MemoryJobQueue() = default;

Status MemoryJobQueue::Publish(std::string_view job_id) {
  if (Status valid = CheckQueuedJobId(job_id); !valid) return valid;
  {
    std::lock_guard lock(state_->mu);
    state_->messages.emplace(state_->next_seq++,
                             Message{.job_id = std::string(job_id), .visible_at = Clock::now()});
  }
  state_->visible.notify_all();
  return {};
}

Result<std::optional<Delivery>> MemoryJobQueue::Take(std::chrono::milliseconds wait) {
  const Clock::time_point deadline = After(wait);
  std::unique_lock lock(state_->mu);
  for (;;) {
    if (interrupted_) return std::nullopt;
    const Clock::time_point now = Clock::now();
    // The takeable message that became visible first (oldest first among equals), and when the
    // next one becomes visible.
    Message* next = nullptr;
    uint64_t next_seq = 0;
    std::optional<Clock::time_point> soonest;
    for (auto& [seq, message] : state_->messages) {
      if (message.state == MessageState::kDead) continue;
      if (message.visible_at > now) {
        if (!soonest || message.visible_at < *soonest) soonest = message.visible_at;
        continue;
      }
      if (message.state == MessageState::kLeased && message.attempt >= options_.max_attempts) {
        // Its lease ran out on the last attempt: it crashed or hung its taker each time.
        message.state = MessageState::kDead;
        message.lease = 0;
        continue;
      }
      if (next == nullptr || message.visible_at < next->visible_at) {
        next = &message;
        next_seq = seq;
      }
    }
    if (next != nullptr) {
      next->state = MessageState::kLeased;
      next->attempt += 1;
      next->visible_at = now + options_.lease;
      next->lease = state_->next_lease++;
      return Delivery{.job_id = next->job_id,
                      .attempt = next->attempt,
                      .receipt = fmt::format("{}.{}", next_seq, next->lease)};
    }
    if (now >= deadline) return std::nullopt;
    state_->visible.wait_until(lock, soonest ? std::min(*soonest, deadline) : deadline);
  }
}

Status MemoryJobQueue::Ack(const Delivery& delivery) {
  auto receipt = ParseMemoryReceipt(delivery);
  if (!receipt) return tl::unexpected(receipt.error());
  std::lock_guard lock(state_->mu);
  if (state_->Leased(*receipt) == nullptr) return LeaseLost(delivery.job_id);
  state_->messages.erase(receipt->seq);
  return {};
}

Result<bool> MemoryJobQueue::Retry(const Delivery& delivery, std::chrono::milliseconds delay) {
  auto receipt = ParseMemoryReceipt(delivery);
  if (!receipt) return tl::unexpected(receipt.error());
  bool dead = false;
  {
    std::lock_guard lock(state_->mu);
    Message* message = state_->Leased(*receipt);
    if (message == nullptr) return LeaseLost(delivery.job_id);
    // The attempt count comes from the message, not from the caller's copy of the delivery.
    dead = message->attempt >= options_.max_attempts;
    message->state = dead ? MessageState::kDead : MessageState::kReady;
    message->visible_at = After(delay);
    message->lease = 0;
  }
  // A delayed message is found by the waiters' timed wake-up; wake them to recompute it.
  if (!dead) state_->visible.notify_all();
  return dead;
}

Status MemoryJobQueue::Release(const Delivery& delivery) {
  auto receipt = ParseMemoryReceipt(delivery);
  if (!receipt) return tl::unexpected(receipt.error());
  {
    std::lock_guard lock(state_->mu);
    Message* message = state_->Leased(*receipt);
    if (message == nullptr) return LeaseLost(delivery.job_id);
    message->state = MessageState::kReady;
    message->attempt -= 1;
    message->visible_at = Clock::now();
    message->lease = 0;
  }
  state_->visible.notify_all();
  return {};
}

Status MemoryJobQueue::Heartbeat(const Delivery& delivery) {
  auto receipt = ParseMemoryReceipt(delivery);
  if (!receipt) return tl::unexpected(receipt.error());
  std::lock_guard lock(state_->mu);
  Message* message = state_->Leased(*receipt);
  if (message == nullptr) return LeaseLost(delivery.job_id);
  message->visible_at = After(options_.lease);
  return {};
}

Result<uint64_t> MemoryJobQueue::Depth() {
  std::lock_guard lock(state_->mu);
  uint64_t depth = 0;
  for (const auto& [seq, message] : state_->messages) {
    if (message.state != MessageState::kDead) ++depth;
  }
  return depth;
}

Result<std::vector<std::string>> MemoryJobQueue::DeadLetters() {
  std::lock_guard lock(state_->mu);
  std::vector<std::string> ids;
  for (const auto& [seq, message] : state_->messages) {
    if (message.state == MessageState::kDead) ids.push_back(message.job_id);
  }
  return ids;
}

void MemoryJobQueue::Interrupt() {
  {
    std::lock_guard lock(state_->mu);
    interrupted_ = true;
  }
  state_->visible.notify_all();
}

Status MemoryJobQueue::Ping() { return {}; }

std::string MemoryJobQueue::Describe() const { return "memory"; }

}  // namespace vmp3
