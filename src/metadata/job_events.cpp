#include "metadata/job_events.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace vmp3 {

struct InProcessJobEventBus::Subscriber {
  // Held while the callback runs, so unsubscribing waits for a running callback to finish.
  // Recursive so that a callback may end its own subscription.
  std::recursive_mutex mu;
  bool active = true;
  std::function<void(const JobEvent&)> callback;
};

struct InProcessJobEventBus::Registry {
  std::mutex mu;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Subscriber>>> by_job;
};

class InProcessJobEventBus::Handle final : public Subscription {
 public:
  Handle(std::shared_ptr<Registry> registry, std::string job_id,
         std::shared_ptr<Subscriber> subscriber)
      : registry_(std::move(registry)),
        job_id_(std::move(job_id)),
        subscriber_(std::move(subscriber)) {}

  ~Handle() override {
    {
      std::lock_guard lock(registry_->mu);
      auto it = registry_->by_job.find(job_id_);
      if (it != registry_->by_job.end()) {
        std::erase(it->second, subscriber_);
        if (it->second.empty()) registry_->by_job.erase(it);
      }
    }
    // A Publish may have copied the subscriber before the erase; this waits for its callback.
    std::lock_guard lock(subscriber_->mu);
    subscriber_->active = false;
  }

 private:
  std::shared_ptr<Registry> registry_;
  std::string job_id_;
  std::shared_ptr<Subscriber> subscriber_;
};

InProcessJobEventBus::InProcessJobEventBus() : registry_(std::make_shared<Registry>()) {}

void InProcessJobEventBus::Publish(const JobEvent& event) {
  std::vector<std::shared_ptr<Subscriber>> subscribers;
  {
    std::lock_guard lock(registry_->mu);
    auto it = registry_->by_job.find(event.job_id);
    if (it == registry_->by_job.end()) return;
    subscribers = it->second;
  }
  // Called without the registry lock, so callbacks may subscribe, unsubscribe and publish.
  for (const auto& subscriber : subscribers) {
    std::lock_guard lock(subscriber->mu);
    if (subscriber->active) subscriber->callback(event);
  }
}

std::unique_ptr<Subscription> InProcessJobEventBus::Subscribe(
    std::string job_id, std::function<void(const JobEvent&)> callback) {
  auto subscriber = std::make_shared<Subscriber>();
  subscriber->callback = std::move(callback);
  {
    std::lock_guard lock(registry_->mu);
    registry_->by_job[job_id].push_back(subscriber);
  }
  return std::make_unique<Handle>(registry_, std::move(job_id), std::move(subscriber));
}

}  // namespace vmp3
