// What every role serving authenticated API requests shares: verifying bearer tokens and the
// per-user request rate limit, kept in the metadata backend so replicas share it.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "auth/jwt.hpp"
#include "auth/rate_limiter.hpp"
#include "common/options.hpp"
#include "http/exchange.hpp"

namespace vmp3::roles {

struct ApiConfig {
  // Roles without the auth role verify tokens with a public key: from a file, or from the auth
  // role's JWKS. Needed only by processes that serve authenticated routes.
  std::filesystem::path jwt_public_key;
  std::string auth_url;
  double rate_limit = 50;   // requests per second per user, 0: no limit
  double rate_burst = 200;  // requests a user may make at once

  void AddOptions(OptionList& options);
  Status Validate() const;
  auth::RateLimit RateLimit() const { return {rate_limit, rate_burst}; }
};

class Api {
 public:
  // `verifier` and `limiter` (null: no rate limit) must outlive the Api.
  Api(const auth::TokenVerifier& verifier, auth::RateLimiter* limiter,
      std::function<int64_t()> now_ms);

  // The caller's identity from `Authorization: Bearer <jwt>`, charged to the caller's rate
  // limit. kUnauthenticated without a valid token; kRateLimited (with Retry-After) past the
  // limit. The limit is counted on the blocking pool (it is kept in a backend); when that
  // backend fails, the request is let through (the limit protects the service, it must not
  // become its single point of failure) and the failure logged.
  http::Awaitable<Result<auth::Claims>> Authorize(http::Exchange& exchange) const;

  const auth::RateLimiter* limiter() const { return limiter_; }

 private:
  const auth::TokenVerifier& verifier_;
  auth::RateLimiter* limiter_;
  std::function<int64_t()> now_ms_;
};

}  // namespace vmp3::roles
