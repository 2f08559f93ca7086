#include "auth/password.hpp"

#include <gtest/gtest.h>

#include <string>

namespace vmp3::auth {
namespace {

constexpr PasswordHashParams kFast = PasswordHashParams::Minimum();

TEST(PasswordTest, HashVerifyRoundTrip) {
  auto hash = HashPassword("correct horse battery staple", kFast);
  ASSERT_TRUE(hash) << hash.error().message;
  EXPECT_TRUE(hash->starts_with("$argon2id$")) << *hash;
  EXPECT_TRUE(VerifyPassword(*hash, "correct horse battery staple"));
}

TEST(PasswordTest, WrongPasswordFails) {
  auto hash = HashPassword("correct horse battery staple", kFast);
  ASSERT_TRUE(hash);
  EXPECT_FALSE(VerifyPassword(*hash, "correct horse battery stapl"));
  EXPECT_FALSE(VerifyPassword(*hash, "Correct horse battery staple"));
  EXPECT_FALSE(VerifyPassword(*hash, ""));
}

TEST(PasswordTest, SaltMakesEachHashDifferent) {
  auto a = HashPassword("same password", kFast);
  auto b = HashPassword("same password", kFast);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(VerifyPassword(*a, "same password"));
  EXPECT_TRUE(VerifyPassword(*b, "same password"));
}

TEST(PasswordTest, PasswordWithNulBytesIsHashedWhole) {
  const std::string with_nul("abc\0def", 7);
  auto hash = HashPassword(with_nul, kFast);
  ASSERT_TRUE(hash);
  EXPECT_TRUE(VerifyPassword(*hash, with_nul));
  EXPECT_FALSE(VerifyPassword(*hash, "abc"));
}

TEST(PasswordTest, MalformedStoredHashNeverVerifies) {
  EXPECT_FALSE(VerifyPassword("", "password1"));
  EXPECT_FALSE(VerifyPassword("password1", "password1"));
  EXPECT_FALSE(VerifyPassword("$argon2id$v=19$m=8,t=1,p=1$garbage", "password1"));
  EXPECT_FALSE(VerifyPassword(std::string(500, '$'), "password1"));
  auto hash = HashPassword("password1", kFast);
  ASSERT_TRUE(hash);
  EXPECT_FALSE(VerifyPassword(*hash + std::string(1, '\0') + "x", "password1"));
}

TEST(PasswordTest, TooLongPasswordIsRefused) {
  const std::string long_password(kMaxPasswordBytes + 1, 'x');
  auto hash = HashPassword(long_password, kFast);
  ASSERT_FALSE(hash);
  EXPECT_EQ(hash.error().code, ErrorCode::kInvalidArgument);
  auto ok = HashPassword(std::string(kMaxPasswordBytes, 'x'), kFast);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(VerifyPassword(*ok, std::string(kMaxPasswordBytes, 'x')));
}

TEST(PasswordTest, NeedsRehashWhenCostsDiffer) {
  auto hash = HashPassword("password1", kFast);
  ASSERT_TRUE(hash);
  EXPECT_FALSE(PasswordNeedsRehash(*hash, kFast));
  EXPECT_TRUE(PasswordNeedsRehash(*hash, PasswordHashParams{}));
  EXPECT_TRUE(PasswordNeedsRehash("not a hash", kFast));
  // Same costs but Argon2i: still needs a rehash to move to Argon2id.
  std::string argon2i = *hash;
  argon2i.replace(0, 10, "$argon2i$");
  EXPECT_TRUE(PasswordNeedsRehash(argon2i, kFast));
}

TEST(PasswordPolicyTest, AcceptsReasonablePassword) {
  EXPECT_TRUE(CheckPasswordPolicy("tr0ub4dor&3", "alice"));
  EXPECT_TRUE(CheckPasswordPolicy("aaaaaaab", "alice"));
}

TEST(PasswordPolicyTest, RejectsWithActionableMessages) {
  auto short_pw = CheckPasswordPolicy("abc123", "alice");
  ASSERT_FALSE(short_pw);
  EXPECT_EQ(short_pw.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(short_pw.error().message, "password must be at least 8 characters long");

  auto long_pw = CheckPasswordPolicy(std::string(1025, 'a') + "b", "alice");
  ASSERT_FALSE(long_pw);
  EXPECT_EQ(long_pw.error().message, "password must be at most 1024 bytes long");

  auto same = CheckPasswordPolicy("AliceSmith", "alicesmith");
  ASSERT_FALSE(same);
  EXPECT_EQ(same.error().message, "password must not be the same as the username");

  auto repeated = CheckPasswordPolicy("zzzzzzzzzz", "alice");
  ASSERT_FALSE(repeated);
  EXPECT_EQ(repeated.error().message, "password must not be one character repeated");
}

TEST(UsernameTest, Rules) {
  EXPECT_TRUE(CheckUsername("bob"));
  EXPECT_TRUE(CheckUsername("9lives"));
  EXPECT_TRUE(CheckUsername("a.b_c-d"));
  EXPECT_TRUE(CheckUsername(std::string(64, 'a')));

  auto too_short = CheckUsername("ab");
  ASSERT_FALSE(too_short);
  EXPECT_EQ(too_short.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(too_short.error().message, "username must be 3 to 64 characters long");
  EXPECT_FALSE(CheckUsername(std::string(65, 'a')));

  auto bad_start = CheckUsername("_bob");
  ASSERT_FALSE(bad_start);
  EXPECT_EQ(bad_start.error().message, "username must start with a letter or a digit");
  EXPECT_FALSE(CheckUsername(".bob"));

  auto bad_char = CheckUsername("bob smith");
  ASSERT_FALSE(bad_char);
  EXPECT_EQ(bad_char.error().message,
            "username may contain only letters, digits, '.', '_' and '-'");
  EXPECT_FALSE(CheckUsername("b\xc3\xb6rk"));  // non-ASCII letter
  EXPECT_FALSE(CheckUsername("bob/.."));
}

TEST(EmailTest, Rules) {
  EXPECT_TRUE(CheckEmail("alice@example.com"));
  EXPECT_TRUE(CheckEmail("a+tag@localhost"));

  auto no_at = CheckEmail("alice.example.com");
  ASSERT_FALSE(no_at);
  EXPECT_EQ(no_at.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(no_at.error().message, "email address must contain exactly one '@'");
  EXPECT_FALSE(CheckEmail("a@b@example.com"));

  auto space = CheckEmail("alice @example.com");
  ASSERT_FALSE(space);
  EXPECT_EQ(space.error().message, "email address must not contain spaces");
  EXPECT_FALSE(CheckEmail("alice@example.com\r\nBcc: x@y"));
  // Found by the json_bodies fuzzer: Unicode whitespace and controls passed (U+0085 NEL is a C1
  // control that some mail software takes for a line break).
  for (const char* unicode_space :
       {"\xC2\x85", "\xC2\xA0", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE3\x80\x80", "\xC2\x9B"}) {
    auto bad = CheckEmail(std::string("alice@exa") + unicode_space + "mple.com");
    ASSERT_FALSE(bad) << unicode_space;
    EXPECT_EQ(bad.error().message, "email address must not contain spaces");
  }
  EXPECT_TRUE(
      CheckEmail("j\xC3\xBCrgen@b\xC3\xBC"
                 "cher.example"));  // non-ASCII letters are fine
  auto invalid = CheckEmail(
      "alice@ex\xFF"
      "ample.com");
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().message, "email address must be valid UTF-8");

  EXPECT_FALSE(CheckEmail("@example.com"));
  EXPECT_FALSE(CheckEmail("alice@"));
  EXPECT_FALSE(CheckEmail(""));

  const std::string domain = "@example.com";
  EXPECT_TRUE(CheckEmail(std::string(254 - domain.size(), 'a') + domain));
  auto too_long = CheckEmail(std::string(255 - domain.size(), 'a') + domain);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().message, "email address must be at most 254 characters long");
}

}  // namespace
}  // namespace vmp3::auth
