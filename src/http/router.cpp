#include "http/router.hpp"

#include <algorithm>

namespace vmp3::http {

void Router::Add(Route route) { routes_.push_back(std::move(route)); }

bool Router::MatchPattern(std::string_view pattern, std::string_view path,
                          std::map<std::string, std::string>& params) {
  params.clear();
  size_t pi = 0, si = 0;
  while (pi < pattern.size() && si < path.size()) {
    if (pattern[pi] == '{') {
      size_t close = pattern.find('}', pi);
      std::string name(pattern.substr(pi + 1, close - pi - 1));
      size_t end = path.find('/', si);
      if (end == std::string_view::npos) end = path.size();
      if (end == si) return false;  // empty parameter
      params[name] = std::string(path.substr(si, end - si));
      pi = close + 1;
      si = end;
    } else {
      if (pattern[pi] != path[si]) return false;
      ++pi;
      ++si;
    }
  }
  return pi == pattern.size() && si == path.size();
}

RouteMatch Router::Match(std::string_view method, std::string_view path) const {
  RouteMatch match;
  std::map<std::string, std::string> params;
  for (const Route& route : routes_) {
    if (!MatchPattern(route.pattern, path, params)) continue;
    // HEAD is served by a GET route unless a HEAD route exists.
    if (route.method == method) {
      match.route = &route;
      match.params = std::move(params);
      match.allowed_methods.clear();
      return match;
    }
    match.allowed_methods.push_back(route.method);
  }
  if (method == "HEAD") {
    for (const Route& route : routes_) {
      if (route.method == "GET" && MatchPattern(route.pattern, path, params)) {
        match.route = &route;
        match.params = std::move(params);
        match.allowed_methods.clear();
        return match;
      }
    }
  }
  std::sort(match.allowed_methods.begin(), match.allowed_methods.end());
  match.allowed_methods.erase(
      std::unique(match.allowed_methods.begin(), match.allowed_methods.end()),
      match.allowed_methods.end());
  return match;
}

}  // namespace vmp3::http
