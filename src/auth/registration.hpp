// The body of POST /v1/auth/register, read and checked before anything is stored.
// Pure function; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace vmp3::auth {

struct Registration {
  std::string username;
  std::string password;
  std::string email;  // "" when the body has none
};

// Parses {"username": "...", "password": "...", "email": "..."} (email optional; other members
// and an email that is not a string are ignored) and applies CheckUsername, CheckPasswordPolicy
// and, when an email is given, CheckEmail. kInvalidArgument with a message for the user. Every
// string of a returned Registration is valid UTF-8 (the JSON parser refuses anything else).
Result<Registration> ParseRegistration(std::string_view body);

}  // namespace vmp3::auth
