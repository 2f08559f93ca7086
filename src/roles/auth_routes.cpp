// The auth role: accounts and tokens. The only role that holds the signing key.
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "auth/base64.hpp"
#include "auth/password.hpp"
#include "auth/registration.hpp"
#include "common/text.hpp"
#include "roles/auth_role.hpp"
#include "roles/jobs.hpp"
#include "roles/route_binding.hpp"

namespace vmp3::roles {
namespace {

using http::Exchange;
using http::Response;

// Decodes "Basic base64(user:password)"; nullopt when malformed.
std::optional<std::pair<std::string, std::string>> BasicCredentials(std::string_view header) {
  constexpr std::string_view kBasic = "Basic ";
  if (header.size() <= kBasic.size() || !StartsWithIgnoringAsciiCase(header, kBasic))
    return std::nullopt;
  std::string_view encoded = header.substr(kBasic.size());
  std::optional<std::string> decoded =
      auth::Base64DecodeStrict(encoded, sodium_base64_VARIANT_ORIGINAL);
  if (!decoded) return std::nullopt;
  size_t colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::make_pair(decoded->substr(0, colon), decoded->substr(colon + 1));
}

// The same answer for an unknown user and a wrong password, so accounts cannot be enumerated.
Error BadCredentials() { return Error(ErrorCode::kUnauthenticated, "wrong username or password"); }

class AuthRoutes {
 public:
  explicit AuthRoutes(const AuthRole& role)
      : role_(role), throttle_(role.limits, role.config.throttle) {
    // A process that serves these routes makes the hash now, so even the first unknown-user
    // sign-in costs what every other one does. Routes only declared elsewhere never need it.
    DummyHash();
  }

  http::Awaitable<Response> Register(Exchange& ex) {
    if (!role_.config.open_registration)
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
    user.created_at = role_.now_ms();
    Status created = co_await ex.Blocking<Status>([&]() -> Status {
      auto hash = auth::HashPassword(password);
      if (!hash) return tl::unexpected(hash.error());
      user.password_hash = *hash;
      return role_.metadata.CreateUser(user);
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

  // Verifies Basic credentials and issues a token; shared by /v1/auth/login and /login. A
  // throttled attempt fails with kRateLimited carrying the seconds until the lock ends.
  http::Awaitable<Result<std::string>> Login(Exchange& ex) {
    auto credentials = BasicCredentials(ex.request().Header("Authorization"));
    if (!credentials) {
      co_return MakeError(ErrorCode::kUnauthenticated,
                          "send your username and password with HTTP Basic authentication");
    }
    auto& [username, password] = *credentials;
    int64_t now = role_.now_ms() / 1000;
    std::string user_key = "user:" + username;
    std::string address_key = "addr:" + ex.request().remote_address;
    // One hop: the throttle's check, the password check and the throttle's count all touch
    // backends (the throttle lives in the metadata backend, shared by every auth replica).
    auto verified = co_await ex.Blocking<Result<User>>([&]() -> Result<User> {
      int64_t locked_for = 0;
      for (const std::string& key : {user_key, address_key}) {
        auto retry_after = throttle_.RetryAfterSeconds(key, now);
        if (!retry_after) return tl::unexpected(retry_after.error());
        locked_for = std::max(locked_for, *retry_after);
      }
      if (locked_for > 0) {
        return tl::unexpected(Error(
            ErrorCode::kRateLimited,
            "too many failed sign-in attempts; wait a few minutes and try again", locked_for));
      }
      auto user = role_.metadata.FindUserByName(username);
      bool wrong = false;
      if (!user) {
        auth::VerifyPassword(DummyHash(), password);
        if (user.error().code != ErrorCode::kNotFound) return user;
        wrong = true;
      } else if (!auth::VerifyPassword(user->password_hash, password)) {
        wrong = true;
      }
      if (wrong) {
        for (const std::string& key : {user_key, address_key}) {
          if (Status counted = throttle_.RecordFailure(key, now); !counted)
            spdlog::warn("login throttle: a failure was not counted: {}", counted.error().message);
        }
        return tl::unexpected(BadCredentials());
      }
      if (Status cleared = throttle_.RecordSuccess(user_key); !cleared)
        spdlog::warn("login throttle: a success was not recorded: {}", cleared.error().message);
      return user;
    });
    if (!verified) co_return tl::unexpected(verified.error());
    auto claims =
        auth::MakeClaims(verified->id, verified->username, now, role_.config.token_ttl_seconds);
    co_return role_.signing_key.Sign(claims);
  }

  // 401 says which scheme to use (RFC 9110 §11.6.1); a 429 says when to come back (the
  // problem's Retry-After).
  static Response LoginFailure(const Error& error) {
    Response r = Response::Problem(error);
    if (r.status == 401) {
      std::erase_if(r.headers, [](const auto& h) { return h.first == "WWW-Authenticate"; });
      r.Header("WWW-Authenticate", R"(Basic realm="vmp3", charset="UTF-8")");
    }
    return r;
  }

  http::Awaitable<Response> LoginJson(Exchange& ex) {
    auto token = co_await Login(ex);
    if (!token) co_return LoginFailure(token.error());
    nlohmann::json out{{"access_token", *token},
                       {"token_type", "Bearer"},
                       {"expires_in", role_.config.token_ttl_seconds}};
    Response r = Response::Json(200, out.dump());
    r.Header("Cache-Control", "no-store");
    co_return r;
  }

  http::Awaitable<Response> LoginSeed(Exchange& ex) {
    auto token = co_await Login(ex);
    if (!token) co_return LoginFailure(token.error());
    Response r = Response::Text(200, *token);
    r.Header("Cache-Control", "no-store");
    co_return r;
  }

  http::Awaitable<Response> Jwks(Exchange&) {
    std::vector<auth::PublicKey> keys{role_.signing_key.public_key()};
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

  const AuthRole& role_;
  auth::LoginThrottle throttle_;
  std::once_flag dummy_hash_once_;
  std::string dummy_hash_;
};

}  // namespace

void AuthConfig::AddOptions(OptionList& options) {
  options.push_back(
      {"--token-ttl", "VMP3_TOKEN_TTL", "Lifetime of issued tokens, seconds", &token_ttl_seconds});
  options.push_back({"--jwt-key", "VMP3_JWT_KEY",
                     "Private signing key file (auth role; created if missing; default "
                     "DATA_DIR/jwt-ed25519.key)",
                     &jwt_key});
  options.push_back({"--open-registration", "VMP3_OPEN_REGISTRATION",
                     "Anyone may register an account", &open_registration});
  options.push_back({"--login-max-failures", "VMP3_LOGIN_MAX_FAILURES",
                     "Failed sign-ins (per user, and per address) within 15 minutes that lock "
                     "further attempts, counted across every auth replica",
                     &throttle.max_failures});
}

Status AuthConfig::Validate() const {
  if (token_ttl_seconds < 60)
    return MakeError(ErrorCode::kInvalidArgument, "--token-ttl must be at least 60 s");
  if (throttle.max_failures < 1)
    return MakeError(ErrorCode::kInvalidArgument, "--login-max-failures must be at least 1");
  return {};
}

void AddAuthRoutes(http::Router& router, const AuthConfig&, const AuthRole* role) {
  auto routes = role ? std::make_shared<AuthRoutes>(*role) : nullptr;
  router.Add({"POST", "/v1/auth/register", Bind(routes, &AuthRoutes::Register, "auth"), 64 * 1024,
              "Create an account"});
  router.Add({"POST", "/v1/auth/login", Bind(routes, &AuthRoutes::LoginJson, "auth"), 64 * 1024,
              "Exchange HTTP Basic credentials for a bearer token"});
  router.Add({"GET", "/.well-known/jwks.json", Bind(routes, &AuthRoutes::Jwks, "auth"), 0,
              "Public keys that verify tokens"});
  router.Add({"POST", "/login", Bind(routes, &AuthRoutes::LoginSeed, "auth"), 64 * 1024,
              "Seed-compatible login: the token as plain text"});
}

}  // namespace vmp3::roles
