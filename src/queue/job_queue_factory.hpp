// Picks the JobQueue implementation from a queue URL (the --queue setting).
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "queue/job_queue.hpp"

namespace vmp3 {

// url:
//   "sqlite" or ""        data_dir/queue.db (its own file, see sqlite_job_queue.hpp)
//   "sqlite:///abs/path"  that database file
// Any other URL fails with kInvalidArgument (RabbitMQ comes later). Error messages name only the
// URL's scheme, since a URL may carry credentials.
Result<std::shared_ptr<JobQueue>> MakeJobQueue(std::string_view url,
                                               const std::filesystem::path& data_dir,
                                               const JobQueueOptions& options);

}  // namespace vmp3
