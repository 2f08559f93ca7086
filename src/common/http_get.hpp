// A minimal blocking HTTP GET (libcurl) for configuration fetched at start, such as the auth
// role's JWKS. Not for request paths.
#pragma once

#include <chrono>
#include <string>

#include "common/error.hpp"

namespace vmp3 {

// The body of a 2xx answer; kUnavailable when the server cannot be reached or answers otherwise.
Result<std::string> HttpGet(const std::string& url, std::chrono::seconds timeout);

}  // namespace vmp3
