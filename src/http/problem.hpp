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

// The HTTP status and title of a code: the table in common/error.cpp.
inline int HttpStatusFor(ErrorCode code) { return InfoOf(code).http_status; }
inline std::string_view ProblemTitle(ErrorCode code) { return InfoOf(code).title; }

// Retry-After, in seconds, for an error response: the error's own retry_after_seconds, else a
// default for transient errors (a backend may be back by then), else 0 (send none).
int64_t RetryAfterFor(const Error& error);

// The problem+json body for `error` sent with `status`. `instance` is omitted when empty.
// Never fails: bytes that are not UTF-8 in the message are replaced by U+FFFD.
std::string ProblemJson(const Error& error, int status, std::string_view instance = "");

// Same, with status HttpStatusFor(error.code).
inline std::string ProblemJson(const Error& error) {
  return ProblemJson(error, HttpStatusFor(error.code));
}

}  // namespace vmp3::http
