// Errors as values. Every fallible function in libvmp3 returns Result<T>; no exception crosses
// a module edge. The closed set of codes is what the HTTP layer maps to status codes (in exactly
// one place, http/problem.cpp) and what a failed job records for the user.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <tl/expected.hpp>
#include <utility>

namespace vmp3 {

enum class ErrorCode {
  kInvalidArgument,   // the caller asked for something malformed or out of range
  kNotFound,          // the thing does not exist (or is not the caller's)
  kAlreadyExists,     // a unique name is taken
  kConflict,          // the thing is in the wrong state for the request
  kUnauthenticated,   // no or bad credentials
  kPermissionDenied,  // authenticated but not allowed
  kQuotaExceeded,     // the caller's storage quota would be passed
  kRateLimited,       // too many requests or attempts; retry later
  kTooLarge,          // a size limit was passed
  kUnavailable,       // a backend is down, stalled or overloaded; retrying later may succeed
  kCancelled,         // the operation was cancelled by request
  kDeadlineExceeded,  // a time limit was passed
  kIo,                // local I/O failed
  kInternal,          // a bug or an unexpected library failure
  kMisdirected,       // the request reached a process that does not serve it (gateway routes)
  kUrlRefused,        // a URL the service would call (a webhook) breaks the egress policy
  // Protocol errors of the HTTP layer itself.
  kMethodNotAllowed,     // the path exists, the method does not
  kHeadersTooLarge,      // request headers past the server's limit
  kRangeNotSatisfiable,  // a Range outside the resource
  // Media errors: the input itself is unusable. Retrying will not help.
  kEmptyInput,        // zero bytes
  kNotMedia,          // no demuxer recognises the bytes
  kNoAudioStream,     // a media file without any audio stream
  kCorruptMedia,      // truncated or damaged beyond use
  kUnsupportedMedia,  // recognised but cannot be decoded
  kMediaTooLong,      // input duration limit passed
  kOutputTooLarge,    // output size limit passed
};

// Everything vmp3 says about a code, from one table (common/error.cpp): the stable snake_case
// name (JSON "code", problem type "/problems/<name>", job.error.code, logs), the HTTP status an
// error response gets, a short fixed title, and whether retrying later may succeed (transient;
// such responses carry Retry-After).
struct ErrorCodeInfo {
  std::string_view name;
  int http_status;
  std::string_view title;
  bool transient;
};
const ErrorCodeInfo& InfoOf(ErrorCode code);

inline std::string_view ErrorCodeName(ErrorCode code) { return InfoOf(code).name; }
inline bool IsTransient(ErrorCode code) { return InfoOf(code).transient; }

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // a sentence a user can act on; no trailing period
  // When > 0: seconds after which retrying may succeed (a lock or rate limit that ends then).
  // Error responses send it as Retry-After; transient ones without it get a default.
  int64_t retry_after_seconds = 0;

  Error() = default;
  Error(ErrorCode c, std::string m, int64_t retry_after = 0)
      : code(c), message(std::move(m)), retry_after_seconds(retry_after) {}
};

template <typename T>
class [[nodiscard]] Result : public tl::expected<T, Error> {
 public:
  using Base = tl::expected<T, Error>;
  using Base::Base;
  Result(const Base& other) : Base(other) {}        // NOLINT(google-explicit-constructor)
  Result(Base&& other) : Base(std::move(other)) {}  // NOLINT(google-explicit-constructor)
};

using Status = Result<void>;

// Discards a result on purpose. `why` documents, at the call site, why the error cannot matter.
template <typename T>
inline void IgnoreError(const Result<T>& /*result*/, std::string_view /*why*/) {}

inline tl::unexpected<Error> MakeError(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error(code, std::move(message)));
}

// The code a failed system call's errno implies: ENOENT and ENOTDIR kNotFound, EACCES and EPERM
// kPermissionDenied, EEXIST kAlreadyExists, anything else kIo.
ErrorCode CodeForErrno(int err);

// A failed system call as one Error, with the code CodeForErrno gives and the message
// "<what> <subject>: <strerror(err)>": ErrnoError(ENOENT, "cannot open", "/x/y") is kNotFound
// "cannot open /x/y: No such file or directory". `subject` names the thing (a path, "object
// <key>"); callers choose whether a path may appear (messages can reach users).
Error ErrnoError(int err, std::string_view what, std::string_view subject);
// The same for a std::error_code, as std::filesystem reports them: the code from its value when
// it is a system or generic (errno) error, else kIo; ec.message() as the reason.
Error ErrnoError(const std::error_code& ec, std::string_view what, std::string_view subject);

// kInvalidArgument for a backend URL whose scheme no implementation takes. Echoes at most the
// first 16 characters of the scheme, never the rest of the URL (it may hold credentials).
Error UnsupportedUrlScheme(std::string_view kind, std::string_view url, std::string_view supported);

}  // namespace vmp3
