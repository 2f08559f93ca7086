// Picks the JobQueue implementation from a queue URL (the --queue setting).
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "queue/job_queue.hpp"
#include "queue/lifecycle_publisher.hpp"

namespace vmp3 {

// What a queue URL gives a process: the job queue, and where job lifecycle events go.
struct QueueBackend {
  std::shared_ptr<JobQueue> queue;
  std::shared_ptr<LifecyclePublisher> lifecycle;  // null when there is no broker (SQLite)
};

// url:
//   "sqlite" or ""        data_dir/queue.db (its own file, see sqlite_job_queue.hpp)
//   "sqlite:///abs/path"  that database file
//   "amqp://..."          RabbitMQ (AmqpTarget::Parse in amqp_connection.hpp), with lifecycle
//                         events on its PREFIX.events exchange
// Any other URL fails with kInvalidArgument. Error messages name only the URL's scheme, since a
// URL may carry credentials.
Result<QueueBackend> MakeJobQueue(std::string_view url, const std::filesystem::path& data_dir,
                                  const JobQueueOptions& options);

}  // namespace vmp3
