#include "roles/route_binding.hpp"

#include <fmt/format.h>

namespace vmp3::roles {

http::Handler Misdirected(std::string_view role) {
  return [role](http::Exchange&) -> http::Awaitable<http::Response> {
    co_return http::Response::Problem(
        Error(ErrorCode::kMisdirected,
              fmt::format("this process does not run the {} role that serves this route: route "
                          "it to a process started with --roles {} (see docs/deploy.md)",
                          role, role)));
  };
}

}  // namespace vmp3::roles
