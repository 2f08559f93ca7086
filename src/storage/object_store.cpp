#include "storage/object_store.hpp"

#include <fmt/format.h>

#include "common/text.hpp"

namespace vmp3 {
namespace {

bool IsKeyChar(char c) { return IsAsciiAlnum(c) || c == '.' || c == '_' || c == '/' || c == '-'; }

}  // namespace

Status ValidateObjectKey(std::string_view key) {
  // The key is not echoed: a bad key is a bug, and it might not be printable.
  if (key.empty() || key.size() > kMaxObjectKeyLength) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("an object key must have 1 to {} characters, not {}",
                                 kMaxObjectKeyLength, key.size()));
  }
  for (char c : key) {
    if (!IsKeyChar(c)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "an object key may only contain letters, digits and . _ / -");
    }
  }
  if (key.find("..") != std::string_view::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "an object key may not contain \"..\"");
  }
  size_t start = 0;
  for (;;) {
    size_t end = key.find('/', start);
    std::string_view segment =
        key.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (segment.empty() || segment.front() == '.') {
      return MakeError(ErrorCode::kInvalidArgument,
                       "an object key's '/'-separated parts must be non-empty and not start with "
                       "'.'");
    }
    if (end == std::string_view::npos) return {};
    start = end + 1;
  }
}

Status ValidateListLimit(int limit) {
  if (limit < 1 || limit > kMaxListLimit) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("a listing holds 1 to {} objects, not {}", kMaxListLimit, limit));
  }
  return {};
}

}  // namespace vmp3
