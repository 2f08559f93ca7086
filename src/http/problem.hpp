// The one place where an Error becomes an HTTP response: status code and an RFC 9457
// application/problem+json body.
//
// Body members:
//   type      "/problems/<code>", <code> being ErrorCodeName (e.g. "/problems/no_audio_stream").
//             A relative reference, resolved against the request URI as RFC 9457 §3.1.1 allows,
//             so the identifier does not depend on the host name the service runs under; the
//             server may serve a human-readable page at that path.
//   title     a short fixed summary of the code (ProblemTitle), the same for every occurrence
//   status    the HTTP status code
//   detail    Error::message, the sentence a user can act on
//   instance  the request path or a request id, when given
//   code      extension member: ErrorCodeName, what clients branch on
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace vmp3::http {

inline constexpr std::string_view kProblemContentType = "application/problem+json";

// kInvalidArgument 400, kUnauthenticated 401, kPermissionDenied 403, kNotFound 404,
// kAlreadyExists / kConflict / kCancelled 409 (the resource is in a state, cancelled, that does
// not allow the request), kTooLarge 413, the media errors 422 (the upload is well-formed HTTP
// but its content cannot be converted), kRateLimited 429, kIo / kInternal 500,
// kUnavailable 503, kDeadlineExceeded 504.
int HttpStatusFor(ErrorCode code);

// A short title per code, e.g. "No audio stream".
std::string_view ProblemTitle(ErrorCode code);

// The problem+json body for `error` sent with `status`. `instance` is omitted when empty.
// Never fails: bytes that are not UTF-8 in the message are replaced by U+FFFD.
std::string ProblemJson(const Error& error, int status, std::string_view instance = "");

// Same, with status HttpStatusFor(error.code).
inline std::string ProblemJson(const Error& error) {
  return ProblemJson(error, HttpStatusFor(error.code));
}

}  // namespace vmp3::http
