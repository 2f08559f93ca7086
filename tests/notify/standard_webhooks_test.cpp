// Standard Webhooks against the specification's published vector (the one the reference
// libraries test with, recomputed independently with openssl), never against values this code
// computed itself; then what a receiver must refuse.
#include "notify/standard_webhooks.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include "auth/base64.hpp"

namespace vmp3::notify {
namespace {

constexpr std::string_view kSpecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view kSpecId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kSpecTimestamp = 1614265330;
constexpr std::string_view kSpecBody = R"({"test": 2432232314})";
constexpr std::string_view kSpecSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const std::vector<std::string> kSpecSecrets{std::string(kSpecSecret)};

TEST(StandardWebhooks, SignsTheSpecificationVector) {
  auto signature = SignWebhook(kSpecSecret, kSpecId, kSpecTimestamp, kSpecBody);
  ASSERT_TRUE(signature) << signature.error().message;
  EXPECT_EQ(*signature, kSpecSignature);
}

TEST(StandardWebhooks, AcceptsTheSecretWithoutItsPrefix) {
  auto signature = SignWebhook(kSpecSecret.substr(6), kSpecId, kSpecTimestamp, kSpecBody);
  ASSERT_TRUE(signature) << signature.error().message;
  EXPECT_EQ(*signature, kSpecSignature);
}

TEST(StandardWebhooks, RefusesMalformedSecrets) {
  for (std::string_view secret : {"", "whsec_", "whsec_not base64!", "whsec_MfKQ9r8G*YqrTw",
                                  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw===="}) {
    auto signature = SignWebhook(secret, kSpecId, kSpecTimestamp, kSpecBody);
    ASSERT_FALSE(signature) << secret;
    EXPECT_EQ(signature.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(StandardWebhooks, VerifiesTheSpecificationVector) {
  auto verified = VerifyWebhook(kSpecSecrets, kSpecId, "1614265330", kSpecSignature, kSpecBody,
                                kSpecTimestamp + 10);
  EXPECT_TRUE(verified) << verified.error().message;
}

TEST(StandardWebhooks, GeneratedSecretsAre32RandomBytes) {
  std::string a = GenerateWebhookSecret();
  std::string b = GenerateWebhookSecret();
  ASSERT_TRUE(a.starts_with("whsec_"));
  EXPECT_NE(a, b);
  auto key =
      auth::Base64DecodeStrict(std::string_view(a).substr(6), sodium_base64_VARIANT_ORIGINAL);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->size(), 32u);
  // And they sign and verify round trip.
  auto signature = SignWebhook(a, "msg_1", 1700000000, "{}");
  ASSERT_TRUE(signature);
  EXPECT_TRUE(VerifyWebhook({a}, "msg_1", "1700000000", *signature, "{}", 1700000000));
  EXPECT_FALSE(VerifyWebhook({b}, "msg_1", "1700000000", *signature, "{}", 1700000000));
}

TEST(StandardWebhooks, RotationSignsWithEverySecret) {
  std::string fresh = GenerateWebhookSecret();
  auto header =
      SignatureHeader({std::string(kSpecSecret), fresh}, kSpecId, kSpecTimestamp, kSpecBody);
  ASSERT_TRUE(header) << header.error().message;
  auto fresh_signature = SignWebhook(fresh, kSpecId, kSpecTimestamp, kSpecBody);
  ASSERT_TRUE(fresh_signature);
  EXPECT_EQ(*header, std::string(kSpecSignature) + " " + *fresh_signature);
  // A receiver holding either secret accepts the delivery.
  EXPECT_TRUE(
      VerifyWebhook(kSpecSecrets, kSpecId, "1614265330", *header, kSpecBody, kSpecTimestamp));
  EXPECT_TRUE(VerifyWebhook({fresh}, kSpecId, "1614265330", *header, kSpecBody, kSpecTimestamp));
}

TEST(StandardWebhooks, SignatureHeaderRefusesNoOrMalformedSecrets) {
  auto none = SignatureHeader({}, kSpecId, kSpecTimestamp, kSpecBody);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kInvalidArgument);
  auto bad =
      SignatureHeader({std::string(kSpecSecret), "whsec_%%"}, kSpecId, kSpecTimestamp, kSpecBody);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST(StandardWebhooks, RefusesAWrongSecret) {
  auto verified = VerifyWebhook({GenerateWebhookSecret()}, kSpecId, "1614265330", kSpecSignature,
                                kSpecBody, kSpecTimestamp);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kUnauthenticated);
}

TEST(StandardWebhooks, RefusesABodyChangedByOneByte) {
  std::string body(kSpecBody);
  body[body.size() - 2] = '5';
  auto verified =
      VerifyWebhook(kSpecSecrets, kSpecId, "1614265330", kSpecSignature, body, kSpecTimestamp);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kUnauthenticated);
  // The id and the timestamp are signed too.
  EXPECT_FALSE(VerifyWebhook(kSpecSecrets, "msg_p5jXN8AQM9LWM0D4loKWxJeK", "1614265330",
                             kSpecSignature, kSpecBody, kSpecTimestamp));
  EXPECT_FALSE(VerifyWebhook(kSpecSecrets, kSpecId, "1614265331", kSpecSignature, kSpecBody,
                             kSpecTimestamp));
}

TEST(StandardWebhooks, RefusesTimestampsOutsideTheTolerance) {
  // Exactly at the edges is accepted, one second past is not.
  EXPECT_TRUE(VerifyWebhook(kSpecSecrets, kSpecId, "1614265330", kSpecSignature, kSpecBody,
                            kSpecTimestamp + 300));
  EXPECT_TRUE(VerifyWebhook(kSpecSecrets, kSpecId, "1614265330", kSpecSignature, kSpecBody,
                            kSpecTimestamp - 300));
  auto old = VerifyWebhook(kSpecSecrets, kSpecId, "1614265330", kSpecSignature, kSpecBody,
                           kSpecTimestamp + 301);
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code, ErrorCode::kUnauthenticated);
  EXPECT_NE(old.error().message.find("too old"), std::string::npos);
  auto future = VerifyWebhook(kSpecSecrets, kSpecId, "1614265330", kSpecSignature, kSpecBody,
                              kSpecTimestamp - 301);
  ASSERT_FALSE(future);
  EXPECT_NE(future.error().message.find("future"), std::string::npos);
  // A custom tolerance.
  EXPECT_FALSE(VerifyWebhook(kSpecSecrets, kSpecId, "1614265330", kSpecSignature, kSpecBody,
                             kSpecTimestamp + 11, 10));
}

TEST(StandardWebhooks, RefusesMalformedHeaders) {
  for (std::string_view timestamp :
       {"", "-1614265330", "+1614265330", "1614265330 ", "16142653x0", "99999999999999999999999"}) {
    auto verified =
        VerifyWebhook(kSpecSecrets, kSpecId, timestamp, kSpecSignature, kSpecBody, kSpecTimestamp);
    ASSERT_FALSE(verified) << timestamp;
    EXPECT_EQ(verified.error().code, ErrorCode::kUnauthenticated);
  }
  for (std::string_view signature :
       {"", " ", "v1", "v1,", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1 g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
        "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}) {
    auto verified =
        VerifyWebhook(kSpecSecrets, kSpecId, "1614265330", signature, kSpecBody, kSpecTimestamp);
    ASSERT_FALSE(verified) << signature;
    EXPECT_EQ(verified.error().code, ErrorCode::kUnauthenticated);
  }
  auto no_secret =
      VerifyWebhook({}, kSpecId, "1614265330", kSpecSignature, kSpecBody, kSpecTimestamp);
  ASSERT_FALSE(no_secret);
  EXPECT_EQ(no_secret.error().code, ErrorCode::kInvalidArgument);
}

TEST(StandardWebhooks, IgnoresOtherSchemes) {
  // The right MAC under another scheme's name is not a v1 signature.
  auto v2_only =
      VerifyWebhook(kSpecSecrets, kSpecId, "1614265330",
                    "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", kSpecBody, kSpecTimestamp);
  ASSERT_FALSE(v2_only);
  EXPECT_NE(v2_only.error().message.find("no v1"), std::string::npos);
  // Other schemes beside a valid v1 do not spoil it.
  EXPECT_TRUE(VerifyWebhook(kSpecSecrets, kSpecId, "1614265330",
                            "v1a,AAAA v2,BBBB " + std::string(kSpecSignature), kSpecBody,
                            kSpecTimestamp));
}

TEST(StandardWebhooks, AcceptsWhenOneOfSeveralSignaturesMatches) {
  std::string header =
      "v1,Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE= " + std::string(kSpecSignature) +
      " v1,bm9wZQ==";
  EXPECT_TRUE(
      VerifyWebhook(kSpecSecrets, kSpecId, "1614265330", header, kSpecBody, kSpecTimestamp));
  // ... and refuses when none does.
  EXPECT_FALSE(VerifyWebhook(
      kSpecSecrets, kSpecId, "1614265330",
      "v1,Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE= v1,bm9wZQ==", kSpecBody, kSpecTimestamp));
  // A rotation on the receiver's side: the old and the new secret, the sender signs with one.
  EXPECT_TRUE(VerifyWebhook({GenerateWebhookSecret(), std::string(kSpecSecret)}, kSpecId,
                            "1614265330", kSpecSignature, kSpecBody, kSpecTimestamp));
}

}  // namespace
}  // namespace vmp3::notify
