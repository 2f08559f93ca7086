#include "common/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <iterator>

namespace vmp3 {

namespace {

// One row per ErrorCode, in the enum's order (checked below).
struct Row {
  ErrorCode code;
  ErrorCodeInfo info;
};
constexpr Row kTable[] = {
    {ErrorCode::kInvalidArgument, {"invalid_argument", 400, "Invalid request", false}},
    {ErrorCode::kNotFound, {"not_found", 404, "Not found", false}},
    {ErrorCode::kAlreadyExists, {"already_exists", 409, "Already exists", false}},
    {ErrorCode::kConflict, {"conflict", 409, "Conflict", false}},
    {ErrorCode::kUnauthenticated, {"unauthenticated", 401, "Authentication required", false}},
    {ErrorCode::kPermissionDenied, {"permission_denied", 403, "Permission denied", false}},
    {ErrorCode::kQuotaExceeded, {"quota_exceeded", 403, "Storage quota exceeded", false}},
    {ErrorCode::kRateLimited, {"rate_limited", 429, "Too many requests", true}},
    {ErrorCode::kTooLarge, {"too_large", 413, "Too large", false}},
    {ErrorCode::kUnavailable, {"backend_unavailable", 503, "Service unavailable", true}},
    // 409: the resource is in a state, cancelled, that does not allow the request.
    {ErrorCode::kCancelled, {"cancelled", 409, "Cancelled", false}},
    {ErrorCode::kDeadlineExceeded, {"deadline_exceeded", 504, "Timed out", true}},
    {ErrorCode::kIo, {"io_error", 500, "Storage error", true}},
    {ErrorCode::kInternal, {"internal", 500, "Internal error", false}},
    {ErrorCode::kMisdirected, {"misdirected", 421, "Misdirected request", false}},
    // 422: the request is well-formed, the URL in it points where the service will not call.
    {ErrorCode::kUrlRefused, {"url_refused", 422, "URL refused", false}},
    {ErrorCode::kMethodNotAllowed, {"method_not_allowed", 405, "Method not allowed", false}},
    {ErrorCode::kHeadersTooLarge,
     {"headers_too_large", 431, "Request header fields too large", false}},
    {ErrorCode::kRangeNotSatisfiable,
     {"range_not_satisfiable", 416, "Range not satisfiable", false}},
    // 422: the upload is well-formed HTTP but its content cannot be converted.
    {ErrorCode::kEmptyInput, {"empty_input", 422, "Empty file", false}},
    {ErrorCode::kNotMedia, {"not_media", 422, "Not a media file", false}},
    {ErrorCode::kNoAudioStream, {"no_audio_stream", 422, "No audio stream", false}},
    {ErrorCode::kCorruptMedia, {"corrupt_media", 422, "Corrupt media", false}},
    {ErrorCode::kUnsupportedMedia, {"unsupported_media", 422, "Unsupported media", false}},
    {ErrorCode::kMediaTooLong, {"media_too_long", 422, "Media too long", false}},
    {ErrorCode::kOutputTooLarge, {"output_too_large", 422, "Output too large", false}},
};

constexpr bool TableInEnumOrder() {
  for (size_t i = 0; i < std::size(kTable); ++i)
    if (static_cast<size_t>(kTable[i].code) != i) return false;
  return static_cast<size_t>(ErrorCode::kOutputTooLarge) + 1 == std::size(kTable);
}
static_assert(TableInEnumOrder(), "kTable must have one row per ErrorCode, in enum order");

}  // namespace

const ErrorCodeInfo& InfoOf(ErrorCode code) {
  auto index = static_cast<size_t>(code);
  return index < std::size(kTable) ? kTable[index].info
                                   : kTable[static_cast<size_t>(ErrorCode::kInternal)].info;
}

Error UnsupportedUrlScheme(std::string_view kind, std::string_view url,
                           std::string_view supported) {
  std::string_view scheme = url.substr(0, std::min(url.find(':'), url.size()));
  if (scheme.size() > 16) scheme = scheme.substr(0, 16);
  return Error(
      ErrorCode::kInvalidArgument,
      fmt::format("unsupported {} URL scheme '{}' (supported: {})", kind, scheme, supported));
}

ErrorCode CodeForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return ErrorCode::kNotFound;
    case EACCES:
    case EPERM:
      return ErrorCode::kPermissionDenied;
    case EEXIST:
      return ErrorCode::kAlreadyExists;
    default:
      return ErrorCode::kIo;
  }
}

Error ErrnoError(int err, std::string_view what, std::string_view subject) {
  // The category's message is strerror's text without strerror's shared buffer.
  return ErrnoError(std::error_code(err, std::system_category()), what, subject);
}

Error ErrnoError(const std::error_code& ec, std::string_view what, std::string_view subject) {
  const bool is_errno =
      ec.category() == std::system_category() || ec.category() == std::generic_category();
  return Error(is_errno ? CodeForErrno(ec.value()) : ErrorCode::kIo,
               fmt::format("{} {}: {}", what, subject, ec.message()));
}

}  // namespace vmp3
