// The parts of a backend URL such as amqp://user:pass@host:5672/vhost?prefix=x or
// redis://:pass@host:6379/0, parsed with Boost.URL (RFC 3986) and percent-decoded.
// Each backend checks the parts it uses (queue/rabbitmq_job_queue.cpp, metadata/redis_*.cpp).
//
// Errors never repeat the URL: it may carry a password.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace vmp3 {

struct BackendUrl {
  std::string host;         // IPv6 addresses without brackets; empty when the URL has none
  std::optional<int> port;  // 1..65535 when the URL has one
  std::optional<std::string> user;
  std::optional<std::string> password;
  std::string path;  // after the first '/', decoded ("" when absent or just "/")
  std::vector<std::pair<std::string, std::string>> params;  // the query, decoded, in order
};

// kInvalidArgument, naming `what` ("RabbitMQ", "Redis") and the part that is wrong, when `url` is
// not SCHEME://... with a valid port, or has a fragment, or a query parameter not in `known`.
Result<BackendUrl> ParseBackendUrl(std::string_view url, std::string_view scheme,
                                   std::string_view what,
                                   const std::vector<std::string_view>& known_params);

}  // namespace vmp3
