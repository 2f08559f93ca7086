#include "metadata/limit_store.hpp"

namespace vmp3 {

Status ValidateLimitKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxLimitKeyBytes)
    return MakeError(ErrorCode::kInvalidArgument, "a limit key must have 1 to 512 bytes");
  return {};
}

}  // namespace vmp3
