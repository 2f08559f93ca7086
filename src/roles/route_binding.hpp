// How a role declares its routes whether or not this process serves them: every process knows
// the whole API (so a 405 lists every method, and /openapi.json and /docs describe everything),
// serves its own roles' routes and answers the others' with 421 naming the role to route them
// to. Declaring routes does no work: no backends, no metrics, no hashing.
#pragma once

#include <memory>
#include <string_view>

#include "http/router.hpp"

namespace vmp3::roles {

// 421 misdirected: "route it to a process started with --roles ROLE".
http::Handler Misdirected(std::string_view role);

// `routes`'s member `method`, or Misdirected(role) when `routes` is null.
template <typename Routes>
http::Handler Bind(const std::shared_ptr<Routes>& routes,
                   http::Awaitable<http::Response> (Routes::*method)(http::Exchange&),
                   std::string_view role) {
  if (!routes) return Misdirected(role);
  return [routes, method](http::Exchange& ex) { return ((*routes).*method)(ex); };
}

}  // namespace vmp3::roles
