// Job lifecycle events for consumers outside the request path, such as a notifier: "job.queued",
// "job.started", "job.done", "job.failed", "job.cancelled", each with the job as JSON. Only a
// deployment with a broker has them (RabbitMqJobQueue::LifecycleEvents(): the topic exchange
// PREFIX.events, routing key = the event); the embedded one has no publisher at all, so a caller
// holds a possibly null pointer and skips publishing when it is null.
//
// An event is a notification, not the record: the job's state lives in the metadata store, and
// a lost event loses nothing a client cannot read there. So a caller logs a failure (with the
// job id) and carries on; it never fails the job or the request for it.
#pragma once

#include <string_view>

#include "common/error.hpp"

namespace vmp3 {

// Thread-safe.
class LifecyclePublisher {
 public:
  virtual ~LifecyclePublisher() = default;
  // Publishes `json` as event `event` and waits, within the backend's timeout and the calling
  // thread's deadline, until the broker has taken it. kUnavailable when it could not.
  virtual Status Publish(std::string_view event, std::string_view json) = 0;
};

}  // namespace vmp3
