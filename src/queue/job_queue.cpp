#include "queue/job_queue.hpp"

#include <fmt/format.h>

namespace vmp3 {

tl::unexpected<Error> MalformedReceipt(const Delivery& delivery) {
  return MakeError(ErrorCode::kInvalidArgument,
                   fmt::format("malformed queue receipt for job {}", delivery.job_id));
}

Status CheckQueuedJobId(std::string_view job_id) {
  constexpr size_t kMaxJobIdLength = 200;
  if (job_id.empty() || job_id.size() > kMaxJobIdLength) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("a queued job id must have 1 to {} bytes", kMaxJobIdLength));
  }
  return {};
}

tl::unexpected<Error> LeaseLost(std::string_view job_id, std::string_view why) {
  return MakeError(ErrorCode::kConflict,
                   fmt::format("job {} no longer holds its queue lease ({})", job_id, why));
}

}  // namespace vmp3
