#include "roles/api.hpp"

#include <spdlog/spdlog.h>

#include "common/text.hpp"

namespace vmp3::roles {

void ApiConfig::AddOptions(OptionList& options) {
  options.push_back({"--jwt-public-key", "VMP3_JWT_PUBLIC_KEY",
                     "Roles serving the API without auth: public key file that verifies tokens",
                     &jwt_public_key});
  options.push_back({"--auth-url", "VMP3_AUTH_URL",
                     "Roles serving the API without auth: base URL of the auth role, whose JWKS "
                     "verifies tokens",
                     &auth_url});
  options.push_back({"--rate-limit", "VMP3_RATE_LIMIT",
                     "API requests per second per user, shared by every replica; 429 beyond "
                     "(0: no limit)",
                     &rate_limit});
  options.push_back({"--rate-burst", "VMP3_RATE_BURST",
                     "API requests a user may make at once before --rate-limit applies",
                     &rate_burst});
}

Status ApiConfig::Validate() const {
  if (!(rate_limit >= 0) || rate_limit > 1e6)
    return MakeError(ErrorCode::kInvalidArgument, "--rate-limit must be 0..1000000");
  if (rate_limit > 0 && !(rate_burst >= 1 && rate_burst <= 1e6))
    return MakeError(ErrorCode::kInvalidArgument, "--rate-burst must be 1..1000000");
  return {};
}

Api::Api(const auth::TokenVerifier& verifier, auth::RateLimiter* limiter,
         std::function<int64_t()> now_ms)
    : verifier_(verifier), limiter_(limiter), now_ms_(std::move(now_ms)) {}

http::Awaitable<Result<auth::Claims>> Api::Authorize(http::Exchange& exchange) const {
  std::string_view header = exchange.request().Header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || !StartsWithIgnoringAsciiCase(header, kBearer)) {
    co_return MakeError(ErrorCode::kUnauthenticated,
                        "missing bearer token: sign in and send 'Authorization: Bearer <token>'");
  }
  auto claims = verifier_.Verify(header.substr(kBearer.size()));
  if (!claims || !limiter_ || !limiter_->limit().enabled()) co_return claims;
  Status charged = co_await exchange.Blocking<Status>(
      [&] { return limiter_->Take(claims->subject, now_ms_()); });
  if (!charged) {
    if (charged.error().code == ErrorCode::kRateLimited) co_return tl::unexpected(charged.error());
    spdlog::warn("rate limit not counted (letting the request through): {}",
                 charged.error().message);
  }
  co_return claims;
}

}  // namespace vmp3::roles
