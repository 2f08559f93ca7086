// The auth role: accounts and tokens. The only role that holds the signing key.
#include <sodium.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "auth/login_throttle.hpp"
#include "auth/password.hpp"
#include "auth/registration.hpp"
#include "roles/roles.hpp"

namespace vmp3::roles {
namespace {

using http::Exchange;
using http::Response;

// Decodes "Basic base64(user:password)"; nullopt when malformed.
std::optional<std::pair<std::string, std::string>> BasicCredentials(std::string_view header) {
  constexpr std::string_view kBasic = "Basic ";
  if (header.size() <= kBasic.size() || strncasecmp(header.data(), "Basic ", 6) != 0)
    return std::nullopt;
  std::string_view encoded = header.substr(kBasic.size());
  std::string decoded(encoded.size(), '\0');
  size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(decoded.data()), decoded.size(),
                        encoded.data(), encoded.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    return std::nullopt;
  decoded.resize(length);
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::make_pair(decoded.substr(0, colon), decoded.substr(colon + 1));
}

// The same answer for an unknown user and a wrong password, so accounts cannot be enumerated.
Error BadCredentials() { return Error(ErrorCode::kUnauthenticated, "wrong username or password"); }

class AuthRoutes {
 public:
  explicit AuthRoutes(Context& context) : context_(context) {
    // A process that serves these routes makes the hash now, so even the first unknown-user
    // sign-in costs what every other one does. Routes only declared (service.cpp declares every
    // role's routes, against a context without backends) never need it.
    if (context_.metadata) DummyHash();
  }

  http::Awaitable<Response> Register(Exchange& ex) {
    if (!context_.config.open_registration)
      co_return Response::Problem(Error(ErrorCode::kPermissionDenied, "registration is closed"));
    auto body = co_await ex.ReadSmallBody();
    if (!body) co_return Response::Problem(body.error());
    auto registration = auth::ParseRegistration(*body);
    if (!registration) co_return Response::Problem(registration.error());
    User user;
    user.username = registration->username;
    user.email = registration->email;
    const std::string& password = registration->password;
    user.id = NewId();
    user.created_at = context_.now_ms();
    Status created = co_await ex.Blocking<Status>([&]() -> Status {
      auto hash = auth::HashPassword(password);
      if (!hash) return tl::unexpected(hash.error());
      user.password_hash = *hash;
      return context_.metadata->CreateUser(user);
    });
    if (!created) {
      if (created.error().code == ErrorCode::kAlreadyExists)
        co_return Response::Problem(Error(ErrorCode::kAlreadyExists, "that username is taken"));
      co_return Response::Problem(created.error());
    }
    nlohmann::json out{{"id", user.id}, {"username", user.username}};
    if (!user.email.empty()) out["email"] = user.email;
    co_return Response::Json(201, out.dump());
  }

  // Verifies Basic credentials and issues a token; shared by /v1/auth/login and /login. When
  // the attempt is throttled, sets `retry_after` to the seconds until the lock ends.
  http::Awaitable<Result<std::string>> Login(Exchange& ex, int64_t& retry_after) {
    auto credentials = BasicCredentials(ex.request().Header("Authorization"));
    if (!credentials) {
      co_return MakeError(ErrorCode::kUnauthenticated,
                          "send your username and password with HTTP Basic authentication");
    }
    auto& [username, password] = *credentials;
    int64_t now = context_.now_ms() / 1000;
    std::string user_key = "user:" + username;
    std::string address_key = "addr:" + ex.request().remote_address;
    if (!throttle_.Allowed(user_key, now) || !throttle_.Allowed(address_key, now)) {
      retry_after = std::max(throttle_.RetryAfterSeconds(user_key, now),
                             throttle_.RetryAfterSeconds(address_key, now));
      co_return MakeError(ErrorCode::kRateLimited,
                          "too many failed sign-in attempts; wait a few minutes and try again");
    }
    auto verified = co_await ex.Blocking<Result<User>>([&]() -> Result<User> {
      auto user = context_.metadata->FindUserByName(username);
      if (!user) {
        auth::VerifyPassword(DummyHash(), password);
        if (user.error().code == ErrorCode::kNotFound) return tl::unexpected(BadCredentials());
        return user;
      }
      if (!auth::VerifyPassword(user->password_hash, password))
        return tl::unexpected(BadCredentials());
      return user;
    });
    if (!verified) {
      if (verified.error().code == ErrorCode::kUnauthenticated) {
        throttle_.RecordFailure(user_key, now);
        throttle_.RecordFailure(address_key, now);
      }
      co_return tl::unexpected(verified.error());
    }
    throttle_.RecordSuccess(user_key);
    auto claims =
        auth::MakeClaims(verified->id, verified->username, now, context_.config.token_ttl_seconds);
    co_return context_.signing_key->Sign(claims);
  }

  // 401 says which scheme to use (RFC 9110 §11.6.1); 429 says when to come back (RFC 6585).
  static Response LoginFailure(const Error& error, int64_t retry_after) {
    Response r = Response::Problem(error);
    if (r.status == 401) {
      std::erase_if(r.headers, [](const auto& h) { return h.first == "WWW-Authenticate"; });
      r.Header("WWW-Authenticate", R"(Basic realm="vmp3", charset="UTF-8")");
    }
    if (r.status == 429 && retry_after > 0) r.Header("Retry-After", std::to_string(retry_after));
    return r;
  }

  http::Awaitable<Response> LoginJson(Exchange& ex) {
    int64_t retry_after = 0;
    auto token = co_await Login(ex, retry_after);
    if (!token) co_return LoginFailure(token.error(), retry_after);
    nlohmann::json out{{"access_token", *token},
                       {"token_type", "Bearer"},
                       {"expires_in", context_.config.token_ttl_seconds}};
    Response r = Response::Json(200, out.dump());
    r.Header("Cache-Control", "no-store");
    co_return r;
  }

  http::Awaitable<Response> LoginSeed(Exchange& ex) {
    int64_t retry_after = 0;
    auto token = co_await Login(ex, retry_after);
    if (!token) co_return LoginFailure(token.error(), retry_after);
    Response r = Response::Text(200, *token);
    r.Header("Cache-Control", "no-store");
    co_return r;
  }

  http::Awaitable<Response> Jwks(Exchange&) {
    std::vector<auth::PublicKey> keys{context_.signing_key->public_key()};
    Response r = Response::Json(200, auth::Jwks(keys));
    r.Header("Cache-Control", "public, max-age=300");
    co_return r;
  }

 private:
  // A real hash to verify against for unknown users, so both paths cost the same time. An
  // Argon2id hash costs 64 MiB and a tenth of a second: made once, and only where it is used.
  const std::string& DummyHash() {
    std::call_once(dummy_hash_once_, [this] {
      dummy_hash_ = auth::HashPassword("vmp3-timing-equaliser").value_or("");
    });
    return dummy_hash_;
  }

  Context& context_;
  auth::LoginThrottle throttle_;
  std::once_flag dummy_hash_once_;
  std::string dummy_hash_;
};

}  // namespace

void AddAuthRoutes(http::Router& router, Context& context) {
  auto routes = std::make_shared<AuthRoutes>(context);
  router.Add({"POST", "/v1/auth/register", [routes](Exchange& ex) { return routes->Register(ex); },
              64 * 1024, "Create an account"});
  router.Add({"POST", "/v1/auth/login", [routes](Exchange& ex) { return routes->LoginJson(ex); },
              64 * 1024, "Exchange HTTP Basic credentials for a bearer token"});
  router.Add({"GET", "/.well-known/jwks.json", [routes](Exchange& ex) { return routes->Jwks(ex); },
              0, "Public keys that verify tokens"});
  router.Add({"POST", "/login", [routes](Exchange& ex) { return routes->LoginSeed(ex); }, 64 * 1024,
              "Seed-compatible login: the token as plain text"});
}

}  // namespace vmp3::roles
