// The auth role: accounts and tokens. The only role that holds the signing key.
//   POST /v1/auth/register, POST /v1/auth/login, GET /.well-known/jwks.json, POST /login (seed)
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>

#include "auth/jwt.hpp"
#include "auth/login_throttle.hpp"
#include "common/options.hpp"
#include "http/router.hpp"
#include "metadata/limit_store.hpp"
#include "metadata/metadata_store.hpp"

namespace vmp3::roles {

struct AuthConfig {
  int64_t token_ttl_seconds = 3600;  // lifetime of issued tokens
  // The private signing key file; created if missing (default DATA_DIR/jwt-ed25519.key).
  std::filesystem::path jwt_key;
  bool open_registration = true;  // anyone may register
  auth::LoginThrottleOptions throttle;

  void AddOptions(OptionList& options);
  Status Validate() const;
};

// What the role's routes use. References must outlive the router.
struct AuthRole {
  const AuthConfig& config;
  MetadataStore& metadata;
  LimitStore& limits;  // the login throttle's counts
  const auth::SigningKey& signing_key;
  std::function<int64_t()> now_ms;
};

// Declares the routes; with `role` null (another process serves them) they answer 421.
void AddAuthRoutes(http::Router& router, const AuthConfig& config, const AuthRole* role);

}  // namespace vmp3::roles
