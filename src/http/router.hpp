// Maps (method, path) to a handler. Patterns are literal segments and `{name}` parameters:
// "/v1/jobs/{id}/mp3". A path that matches a pattern with another method gives 405 with Allow.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/exchange.hpp"

namespace vmp3::http {

struct Route {
  std::string method;
  std::string pattern;  // also the metrics label
  Handler handler;
  uint64_t max_body = 64 * 1024;  // request bodies larger than this get 413
  std::string summary;            // one line for the OpenAPI document
  // The request streams a body in or out (uploads, downloads, event streams) for as long as it
  // takes: the server's request timeout then bounds each blocking call, not the whole request.
  bool streaming = false;
};

struct RouteMatch {
  const Route* route = nullptr;  // null when nothing matched
  std::map<std::string, std::string> params;
  std::vector<std::string> allowed_methods;  // set when the path matched but not the method
};

// Built before the server starts, then read-only (safe to share between threads).
class Router {
 public:
  void Add(Route route);
  RouteMatch Match(std::string_view method, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  static bool MatchPattern(std::string_view pattern, std::string_view path,
                           std::map<std::string, std::string>& params);
  std::vector<Route> routes_;
};

}  // namespace vmp3::http
