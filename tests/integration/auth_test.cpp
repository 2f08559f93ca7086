// Accounts and tokens from the outside: every way a token can be wrong is refused, and sign-in
// failures tell an attacker nothing and slow them down.
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <memory>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

using nlohmann::json;

std::string Base64Url(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string FromBase64(std::string_view text, int variant) {
  std::string out(text.size(), '\0');
  size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), " \r\n", &length, nullptr, variant) != 0) {
    throw std::runtime_error("bad base64: " + std::string(text));
  }
  out.resize(length);
  return out;
}

// The claims of a token (its middle part), unverified.
json Payload(const std::string& token) {
  size_t a = token.find('.');
  size_t b = token.find('.', a + 1);
  return json::parse(
      FromBase64(token.substr(a + 1, b - a - 1), sodium_base64_VARIANT_URLSAFE_NO_PADDING));
}

// An Ed25519 key pair from a 32-byte seed.
struct KeyPair {
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
};
KeyPair FromSeed(std::string_view seed) {
  if (seed.size() != crypto_sign_SEEDBYTES) throw std::runtime_error("seed size");
  KeyPair k;
  crypto_sign_seed_keypair(k.pk, k.sk, reinterpret_cast<const unsigned char*>(seed.data()));
  return k;
}
KeyPair NewKey() {
  KeyPair k;
  crypto_sign_keypair(k.pk, k.sk);
  return k;
}

// A compact JWS signed with Ed25519.
std::string SignJwt(const json& header, const json& claims, const KeyPair& key) {
  std::string input = Base64Url(header.dump()) + "." + Base64Url(claims.dump());
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size(), key.sk);
  return input + "." + Base64Url(std::string_view(reinterpret_cast<char*>(sig), sizeof(sig)));
}

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (sodium_init() < 0) throw std::runtime_error("sodium_init failed");
    server_ = ServerProcess::Start(NewDataDir());
    client_ = std::make_unique<HttpClient>(server_->base_url());
    account_ = std::make_unique<Account>(CreateAccount(*client_, "auth"));
  }
  static void TearDownTestSuite() {
    account_.reset();
    client_.reset();
    server_.reset();
  }

  // GET /v1/jobs with `Authorization: <authorization>` (nothing when empty).
  static HttpResponse ListWith(const std::string& authorization) {
    HttpRequest r;
    r.target = "/v1/jobs";
    if (!authorization.empty()) r.headers.push_back("Authorization: " + authorization);
    return client_->Send(r);
  }
  static void ExpectUnauthenticated(const HttpResponse& r, const std::string& what) {
    EXPECT_EQ(r.status, 401) << what << ": " << r.Describe();
    EXPECT_EQ(r.Header("Content-Type").value_or(""), "application/problem+json") << what;
    if (r.status == 401) {
      EXPECT_EQ(r.Json().value("code", ""), "unauthenticated") << what;
    }
  }
  static json ValidClaims() { return Payload(account_->token); }
  static std::string Kid() {
    HttpResponse jwks = client_->Get("/.well-known/jwks.json");
    return jwks.Json()["keys"][0].value("kid", "");
  }

  static std::unique_ptr<ServerProcess> server_;
  static std::unique_ptr<HttpClient> client_;
  static std::unique_ptr<Account> account_;
};
std::unique_ptr<ServerProcess> AuthTest::server_;
std::unique_ptr<HttpClient> AuthTest::client_;
std::unique_ptr<Account> AuthTest::account_;

TEST_F(AuthTest, TheIssuedTokenWorks) {
  HttpResponse r = ListWith("Bearer " + account_->token);
  EXPECT_EQ(r.status, 200) << r.Describe();
  json claims = ValidClaims();
  EXPECT_EQ(claims.value("iss", ""), "vmp3");
  EXPECT_EQ(claims.value("name", ""), account_->username);
  EXPECT_EQ(claims.value("exp", int64_t{0}) - claims.value("iat", int64_t{0}), 3600);
}

TEST_F(AuthTest, MissingTokenIs401) {
  ExpectUnauthenticated(ListWith(""), "GET /v1/jobs");
  ExpectUnauthenticated(client_->Get("/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa"), "GET job");
  ExpectUnauthenticated(client_->Get("/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa/mp3"), "GET mp3");
  ExpectUnauthenticated(client_->Delete("/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa"), "DELETE");
  ExpectUnauthenticated(client_->Get("/download?fid=x"), "seed download");
  // An upload without a token is refused, and nothing of it is kept.
  HttpRequest upload;
  upload.method = "POST";
  upload.target = "/v1/jobs";
  upload.form = {FormPart::File("file", vmp3::test::Fixture("mp4_h264_aac"))};
  ExpectUnauthenticated(client_->Send(upload), "upload");
  upload.target = "/upload";
  ExpectUnauthenticated(client_->Send(upload), "seed upload");
  EXPECT_TRUE(ObjectFiles(server_->data_dir()).empty());
  // Basic credentials are for signing in only.
  HttpRequest basic;
  basic.target = "/v1/jobs";
  basic.basic = {{account_->username, account_->password}};
  ExpectUnauthenticated(client_->Send(basic), "Basic on a job route");
}

TEST_F(AuthTest, GarbageTokensAre401) {
  for (const std::string& authorization :
       {std::string("Bearer garbage"), std::string("Bearer a.b.c"), std::string("Bearer ..."),
        std::string("Bearer ") + std::string(5000, 'x'), std::string("Bearer"),
        "Token " + account_->token, "Bearer " + account_->token + "x"}) {
    ExpectUnauthenticated(ListWith(authorization), authorization.substr(0, 40));
  }
  // The real token with one claim changed: the signature no longer matches.
  const std::string& t = account_->token;
  size_t a = t.find('.'), b = t.find('.', a + 1);
  json claims = ValidClaims();
  claims["sub"] = "someoneelse0000000000000000";
  std::string tampered = t.substr(0, a + 1) + Base64Url(claims.dump()) + t.substr(b);
  ExpectUnauthenticated(ListWith("Bearer " + tampered), "tampered payload");
}

TEST_F(AuthTest, OnlyTheServersKeySignsValidTokens) {
  // Our signer is right: with the server's own key (its seed file) the token is accepted...
  std::string seed =
      FromBase64(ReadFile(server_->data_dir() / "jwt-ed25519.key"), sodium_base64_VARIANT_ORIGINAL);
  const json header{{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", Kid()}};
  std::string with_server_key = SignJwt(header, ValidClaims(), FromSeed(seed));
  EXPECT_EQ(ListWith("Bearer " + with_server_key).status, 200);
  // ...so a refusal of the same token signed by another key is about the key.
  KeyPair other = NewKey();
  ExpectUnauthenticated(ListWith("Bearer " + SignJwt(header, ValidClaims(), other)),
                        "another key, the server's kid");
  ExpectUnauthenticated(
      ListWith("Bearer " + SignJwt({{"alg", "EdDSA"}, {"typ", "JWT"}}, ValidClaims(), other)),
      "another key, no kid");
}

TEST_F(AuthTest, UnsignedAndOtherAlgorithmTokensAre401) {
  const json claims = ValidClaims();
  std::string body = Base64Url(claims.dump());
  for (const char* alg : {"none", "None", "NONE"}) {
    std::string token = Base64Url(json{{"alg", alg}, {"typ", "JWT"}}.dump()) + "." + body + ".";
    ExpectUnauthenticated(ListWith("Bearer " + token), std::string("alg ") + alg);
  }
  // HS256 keyed with the public key (the classic algorithm-confusion attack).
  HttpResponse jwks = client_->Get("/.well-known/jwks.json");
  std::string pk =
      FromBase64(jwks.Json()["keys"][0].value("x", ""), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  std::string input = Base64Url(json{{"alg", "HS256"}, {"typ", "JWT"}}.dump()) + "." + body;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(pk.data()), pk.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(input.data()),
                                input.size());
  crypto_auth_hmacsha256_final(&st, mac);
  std::string hs =
      input + "." + Base64Url(std::string_view(reinterpret_cast<char*>(mac), sizeof(mac)));
  ExpectUnauthenticated(ListWith("Bearer " + hs), "HS256 with the public key");
}

TEST_F(AuthTest, ExpiredAndFutureTokensAre401) {
  // The same data dir (same key, same users) seen by a server whose clock is two hours ahead.
  auto later = ServerProcess::Start(server_->data_dir(),
                                    {"--roles", "auth,metadata", "--clock-offset", "7200"});
  HttpClient later_client(later->base_url());
  HttpRequest list;
  list.target = "/v1/jobs";
  list.bearer = account_->token;
  EXPECT_EQ(client_->Send(list).status, 200) << "valid now";
  ExpectUnauthenticated(later_client.Send(list), "the token two hours later");

  // A token issued two hours in the future is refused now.
  HttpRequest login{.method = "POST", .target = "/v1/auth/login"};
  login.basic = {{account_->username, account_->password}};
  HttpResponse future = later_client.Send(login);
  ASSERT_EQ(future.status, 200) << future.Describe();
  list.bearer = future.Json().value("access_token", "");
  EXPECT_EQ(later_client.Send(list).status, 200) << "valid on the issuer's clock";
  ExpectUnauthenticated(client_->Send(list), "a token from the future");
}

TEST_F(AuthTest, ShortTokenLifetime) {
  // --token-ttl 60 on the same data dir: its tokens die a minute later (plus the leeway).
  auto issuer = ServerProcess::Start(server_->data_dir(), {"--roles", "auth", "--token-ttl", "60"});
  HttpClient issuer_client(issuer->base_url());
  HttpRequest login{.method = "POST", .target = "/v1/auth/login"};
  login.basic = {{account_->username, account_->password}};
  HttpResponse r = issuer_client.Send(login);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.Json().value("expires_in", 0), 60);
  std::string token = r.Json().value("access_token", "");
  EXPECT_EQ(Payload(token).value("exp", int64_t{0}) - Payload(token).value("iat", int64_t{0}), 60);
  EXPECT_EQ(ListWith("Bearer " + token).status, 200);
  auto later = ServerProcess::Start(server_->data_dir(),
                                    {"--roles", "auth,metadata", "--clock-offset", "120"});
  HttpRequest list{.target = "/v1/jobs", .bearer = token};
  ExpectUnauthenticated(HttpClient(later->base_url()).Send(list), "two minutes later");
  list.bearer = account_->token;  // the one-hour token still works there
  EXPECT_EQ(HttpClient(later->base_url()).Send(list).status, 200);
}

TEST_F(AuthTest, WrongPasswordAndUnknownUserLookTheSame) {
  HttpRequest wrong{.method = "POST", .target = "/v1/auth/login"};
  wrong.basic = {{account_->username, "not the password at all"}};
  HttpRequest unknown{.method = "POST", .target = "/v1/auth/login"};
  unknown.basic = {{UniqueName("ghost"), "not the password at all"}};
  HttpResponse a = client_->Send(wrong);
  HttpResponse b = client_->Send(unknown);
  EXPECT_EQ(a.status, 401) << a.Describe();
  EXPECT_EQ(b.status, 401) << b.Describe();
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.Header("WWW-Authenticate"), b.Header("WWW-Authenticate"));
  EXPECT_NE(a.Header("WWW-Authenticate").value_or("").find("Basic"), std::string::npos);
  // No credentials at all: 401 too, and the token is not issued.
  HttpResponse none = client_->Send({.method = "POST", .target = "/v1/auth/login"});
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.body.find("access_token"), std::string::npos);
}

TEST_F(AuthTest, RegistrationRules) {
  const std::string name = UniqueName("dup");
  json body{{"username", name}, {"password", "correct horse battery"}};
  EXPECT_EQ(client_->PostJson("/v1/auth/register", body).status, 201);
  HttpResponse again = client_->PostJson("/v1/auth/register", body);
  EXPECT_EQ(again.status, 409) << again.Describe();
  EXPECT_EQ(
      client_
          ->PostJson("/v1/auth/register", {{"username", UniqueName("short")}, {"password", "abc"}})
          .status,
      400);
  EXPECT_EQ(client_
                ->PostJson("/v1/auth/register",
                           {{"username", "x"}, {"password", "correct horse battery"}})
                .status,
            400);
  HttpRequest not_json{.method = "POST", .target = "/v1/auth/register", .body = "{not json"};
  EXPECT_EQ(client_->Send(not_json).status, 400);
}

// A server of its own: the lockout also blocks the address, which would break other tests.
TEST(AuthThrottleTest, RepeatedFailuresAreRateLimited) {
  auto server = ServerProcess::Start(NewDataDir());
  HttpClient client(server->base_url());
  Account victim = CreateAccount(client, "victim");
  Account bystander = CreateAccount(client, "bystander");
  HttpRequest wrong{.method = "POST", .target = "/v1/auth/login"};
  wrong.basic = {{victim.username, "guess guess guess"}};
  int failures = 0;
  HttpResponse last;
  for (; failures < 20; ++failures) {
    last = client.Send(wrong);
    if (last.status != 401) break;
  }
  EXPECT_GE(failures, 3) << "locked out too early";
  EXPECT_LE(failures, 10) << "no lockout after many failures";
  ASSERT_EQ(last.status, 429) << last.Describe();
  EXPECT_EQ(last.Json().value("code", ""), "rate_limited");
  std::string retry_after = last.Header("Retry-After").value_or("");
  EXPECT_FALSE(retry_after.empty()) << "429 should say when to retry";
  if (!retry_after.empty()) {
    EXPECT_GT(std::stoll(retry_after), 0);
  }
  // Locked: even the right password is refused for now, on both login routes.
  HttpRequest right{.method = "POST", .target = "/v1/auth/login"};
  right.basic = {{victim.username, victim.password}};
  EXPECT_EQ(client.Send(right).status, 429);
  right.target = "/login";
  EXPECT_EQ(client.Send(right).status, 429);
  // Tokens issued before still work: the lockout is about signing in.
  EXPECT_EQ(client.Get("/v1/jobs", victim.token).status, 200);
  EXPECT_EQ(client.Get("/v1/jobs", bystander.token).status, 200);
}

}  // namespace
}  // namespace vmp3::itest
