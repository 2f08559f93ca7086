#include "auth/base64.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

namespace vmp3::auth {
namespace {

TEST(Base64DecodeStrict, DecodesCanonicalInput) {
  EXPECT_EQ(Base64DecodeStrict("YWxpY2U6c2VjcmV0", sodium_base64_VARIANT_ORIGINAL), "alice:secret");
  EXPECT_EQ(Base64DecodeStrict("", sodium_base64_VARIANT_ORIGINAL), "");
}

TEST(Base64DecodeStrict, RefusesBytesLibsodiumWouldTakeForDigits) {
  // libsodium 1.0.18 decodes a byte >= 0x80 as some digit; one swapped in must not pass.
  EXPECT_FALSE(Base64DecodeStrict("YWxpY2U6c2VjcmV\xC3", sodium_base64_VARIANT_ORIGINAL));
  EXPECT_FALSE(Base64DecodeStrict("\x80WxpY2U6c2VjcmV0", sodium_base64_VARIANT_ORIGINAL));
}

TEST(Base64DecodeStrict, RefusesNonCanonicalAndOtherVariants) {
  EXPECT_FALSE(Base64DecodeStrict("YR==", sodium_base64_VARIANT_ORIGINAL));  // trailing bits
  EXPECT_FALSE(Base64DecodeStrict("YQ", sodium_base64_VARIANT_ORIGINAL));    // padding missing
  EXPECT_FALSE(Base64DecodeStrict("-_-_", sodium_base64_VARIANT_ORIGINAL));  // URL alphabet
  EXPECT_EQ(Base64DecodeStrict("-_-_", sodium_base64_VARIANT_URLSAFE_NO_PADDING), "\xFB\xFF\xBF");
}

}  // namespace
}  // namespace vmp3::auth
