#include "auth/registration.hpp"

#include <nlohmann/json.hpp>

#include "auth/password.hpp"

namespace vmp3::auth {

Result<Registration> ParseRegistration(std::string_view body) {
  const auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  auto string_member = [&](const char* name) -> const std::string* {
    if (!json.is_object()) return nullptr;
    auto it = json.find(name);
    return it != json.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
  };
  const std::string* username = string_member("username");
  const std::string* password = string_member("password");
  if (username == nullptr || password == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument,
                     R"(send JSON {"username": "...", "password": "..."})");
  }
  Registration registration{*username, *password, ""};
  if (const std::string* email = string_member("email")) registration.email = *email;
  if (auto s = CheckUsername(registration.username); !s) return tl::unexpected(s.error());
  if (auto s = CheckPasswordPolicy(registration.password, registration.username); !s) {
    return tl::unexpected(s.error());
  }
  if (!registration.email.empty()) {
    if (auto s = CheckEmail(registration.email); !s) return tl::unexpected(s.error());
  }
  return registration;
}

}  // namespace vmp3::auth
