#include "http/problem.hpp"

#include <nlohmann/json.hpp>

namespace vmp3::http {

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kCancelled:
      return 409;
    case ErrorCode::kTooLarge:
      return 413;
    case ErrorCode::kEmptyInput:
      return 422;
    case ErrorCode::kNotMedia:
      return 422;
    case ErrorCode::kNoAudioStream:
      return 422;
    case ErrorCode::kCorruptMedia:
      return 422;
    case ErrorCode::kUnsupportedMedia:
      return 422;
    case ErrorCode::kMediaTooLong:
      return 422;
    case ErrorCode::kOutputTooLarge:
      return 422;
    case ErrorCode::kRateLimited:
      return 429;
    case ErrorCode::kIo:
      return 500;
    case ErrorCode::kInternal:
      return 500;
    case ErrorCode::kMisdirected:
      return 421;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
  }
  return 500;
}

std::string_view ProblemTitle(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "Invalid request";
    case ErrorCode::kNotFound:
      return "Not found";
    case ErrorCode::kAlreadyExists:
      return "Already exists";
    case ErrorCode::kConflict:
      return "Conflict";
    case ErrorCode::kUnauthenticated:
      return "Authentication required";
    case ErrorCode::kPermissionDenied:
      return "Permission denied";
    case ErrorCode::kRateLimited:
      return "Too many requests";
    case ErrorCode::kTooLarge:
      return "Too large";
    case ErrorCode::kUnavailable:
      return "Service unavailable";
    case ErrorCode::kCancelled:
      return "Cancelled";
    case ErrorCode::kDeadlineExceeded:
      return "Timed out";
    case ErrorCode::kIo:
      return "Storage error";
    case ErrorCode::kInternal:
      return "Internal error";
    case ErrorCode::kMisdirected:
      return "Misdirected request";
    case ErrorCode::kEmptyInput:
      return "Empty file";
    case ErrorCode::kNotMedia:
      return "Not a media file";
    case ErrorCode::kNoAudioStream:
      return "No audio stream";
    case ErrorCode::kCorruptMedia:
      return "Corrupt media";
    case ErrorCode::kUnsupportedMedia:
      return "Unsupported media";
    case ErrorCode::kMediaTooLong:
      return "Media too long";
    case ErrorCode::kOutputTooLarge:
      return "Output too large";
  }
  return "Internal error";
}

std::string ProblemJson(const Error& error, int status, std::string_view instance) {
  const std::string_view code = ErrorCodeName(error.code);
  nlohmann::ordered_json body;
  body["type"] = "/problems/" + std::string(code);
  body["title"] = ProblemTitle(error.code);
  body["status"] = status;
  body["detail"] = error.message;
  if (!instance.empty()) body["instance"] = instance;
  body["code"] = code;
  // replace: a message quoting an uploaded file name may hold bytes that are not UTF-8, and
  // dump() would otherwise throw.
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace vmp3::http
