#include "common/error.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace vmp3 {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kAlreadyExists:
      return "already_exists";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
    case ErrorCode::kRateLimited:
      return "rate_limited";
    case ErrorCode::kTooLarge:
      return "too_large";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case ErrorCode::kIo:
      return "io_error";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kMisdirected:
      return "misdirected";
    case ErrorCode::kEmptyInput:
      return "empty_input";
    case ErrorCode::kNotMedia:
      return "not_media";
    case ErrorCode::kNoAudioStream:
      return "no_audio_stream";
    case ErrorCode::kCorruptMedia:
      return "corrupt_media";
    case ErrorCode::kUnsupportedMedia:
      return "unsupported_media";
    case ErrorCode::kMediaTooLong:
      return "media_too_long";
    case ErrorCode::kOutputTooLarge:
      return "output_too_large";
  }
  return "internal";
}

bool IsTransient(ErrorCode code) {
  return code == ErrorCode::kUnavailable || code == ErrorCode::kDeadlineExceeded ||
         code == ErrorCode::kIo;
}

Error UnsupportedUrlScheme(std::string_view kind, std::string_view url,
                           std::string_view supported) {
  std::string_view scheme = url.substr(0, std::min(url.find(':'), url.size()));
  if (scheme.size() > 16) scheme = scheme.substr(0, 16);
  return Error(
      ErrorCode::kInvalidArgument,
      fmt::format("unsupported {} URL scheme '{}' (supported: {})", kind, scheme, supported));
}

}  // namespace vmp3
