// One outbound HTTP POST under the egress policy (egress_policy.hpp): webhook deliveries and Web
// Push messages. Blocking, on the calling thread; bounded by the request's timeout and the
// thread's deadline (common/deadline.hpp); redirects are never followed and the response body
// is read only up to a cap, so a hostile endpoint costs at most `timeout` and
// `max_response_bytes`. Thread-safe: each call has its own curl handle.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "notify/egress_policy.hpp"

namespace vmp3::notify {

struct OutboundRequest {
  std::string url;
  // Sent as given. Without a Content-Type none is sent; without a User-Agent, "vmp3". Names must
  // be HTTP tokens and values free of CR, LF and NUL (kInvalidArgument otherwise).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // For the whole exchange: connecting, TLS, sending, the answer.
  std::chrono::milliseconds timeout{10000};
  // Response body bytes kept; the rest is not read (the connection is closed).
  size_t max_response_bytes = 64 * 1024;
};

struct OutboundResponse {
  int status = 0;                        // the final HTTP status; 3xx are answers like any other
  std::chrono::milliseconds latency{0};  // from the start of the exchange to its end
  // The response's Retry-After, as delta-seconds or an HTTP-date turned into seconds from now
  // (zero for a date already past); nullopt when absent or unreadable.
  std::optional<std::chrono::seconds> retry_after;
  std::string body;             // at most max_response_bytes
  bool body_truncated = false;  // the answer had more than max_response_bytes
  std::string location;         // the Location header, as sent; empty when absent
};

// POSTs `request.body` to `request.url` through `policy`. Errors:
//  - kUrlRefused: the policy refused the URL, or every address the host resolved to (the
//    message says which address and why, e.g. "address 10.0.0.1 is private (10.0.0.0/8)");
//  - kDeadlineExceeded: no complete answer within the timeout;
//  - kUnavailable: the exchange failed (DNS lookup, connection refused, TLS, a connection
//    closed early), or the thread's deadline had passed before starting; the message names
//    the host and what happened, never the rest of the URL (it may hold a token);
//  - kInvalidArgument: a malformed request header.
// Any HTTP answer, whatever its status, is a value.
Result<OutboundResponse> Post(const EgressPolicy& policy, const OutboundRequest& request);

// Reads a Retry-After value (RFC 9110 §10.2.3): delta-seconds, or an HTTP-date counted from
// `now` (zero when already past). nullopt when it is neither.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value,
                                                    std::chrono::system_clock::time_point now);

}  // namespace vmp3::notify
