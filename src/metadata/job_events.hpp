// Live job change notifications (progress, status), fanned out to whoever watches a job, e.g.
// the server-sent events of the web UI. Best effort: an event may be missed (a subscriber that
// needs the truth reads the job from the MetadataStore), but events of one job from one
// publisher arrive in order.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace vmp3 {

struct JobEvent {
  std::string job_id;
  std::string owner_id;
  std::string type;  // "progress" or "status"
  nlohmann::json data;
};

// Ends its subscription when destroyed: once the destructor returns, the callback is not running
// and will not run again (unless the destructor was called from within that very callback,
// which is allowed). Must not be destroyed from within another subscription's callback.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

// Thread-safe. Callbacks run on a thread of the bus (the publisher's own thread for the
// in-process bus): keep them cheap and non-blocking, e.g. hand the event to a queue.
class JobEventBus {
 public:
  virtual ~JobEventBus() = default;
  virtual void Publish(const JobEvent& event) = 0;
  // Calls callback for every event of job_id published from now on, until the returned
  // Subscription is destroyed. The Subscription may outlive the bus.
  virtual std::unique_ptr<Subscription> Subscribe(
      std::string job_id, std::function<void(const JobEvent&)> callback) = 0;
};

// Delivers synchronously within one process: Publish calls the job's subscribers before it
// returns.
class InProcessJobEventBus final : public JobEventBus {
 public:
  InProcessJobEventBus();
  void Publish(const JobEvent& event) override;
  std::unique_ptr<Subscription> Subscribe(std::string job_id,
                                          std::function<void(const JobEvent&)> callback) override;

 private:
  struct Subscriber;
  struct Registry;
  class Handle;
  std::shared_ptr<Registry> registry_;
};

}  // namespace vmp3
