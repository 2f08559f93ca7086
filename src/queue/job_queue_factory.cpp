#include "queue/job_queue_factory.hpp"

#include <fmt/format.h>

#include "queue/rabbitmq_job_queue.hpp"
#include "queue/sqlite_job_queue.hpp"

namespace vmp3 {

Result<QueueBackend> MakeJobQueue(std::string_view url, const std::filesystem::path& data_dir,
                                  const JobQueueOptions& options) {
  std::filesystem::path path;
  if (url.empty() || url == "sqlite") {
    path = data_dir / "queue.db";
  } else if (url.starts_with("sqlite://")) {
    std::string_view rest = url.substr(std::string_view("sqlite://").size());
    if (!rest.starts_with('/') || rest.size() < 2) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a sqlite queue URL needs an absolute path, as in "
                       "sqlite:///var/lib/vmp3/queue.db");
    }
    path = std::filesystem::path(rest);
  } else if (url.starts_with("amqp://")) {
    auto target = AmqpTarget::Parse(url);
    if (!target) return tl::unexpected(target.error());
    auto queue = RabbitMqJobQueue::Open(*target, options);
    if (!queue) return tl::unexpected(queue.error());
    std::shared_ptr<LifecyclePublisher> lifecycle = (*queue)->LifecycleEvents();
    return QueueBackend{.queue = std::move(*queue), .lifecycle = std::move(lifecycle)};
  } else {
    return tl::unexpected(UnsupportedUrlScheme("queue", url, "sqlite, sqlite:///path, amqp://"));
  }
  auto queue = SqliteJobQueue::Open(path, options);
  if (!queue) return tl::unexpected(queue.error());
  return QueueBackend{.queue = std::move(*queue), .lifecycle = nullptr};
}

}  // namespace vmp3
