#include "common/text.hpp"

#include <gtest/gtest.h>

namespace vmp3 {
namespace {

TEST(TextTest, ClassifiesAsciiOnly) {
  EXPECT_TRUE(IsAsciiDigit('0'));
  EXPECT_TRUE(IsAsciiDigit('9'));
  EXPECT_FALSE(IsAsciiDigit('a'));
  EXPECT_TRUE(IsAsciiAlpha('z'));
  EXPECT_TRUE(IsAsciiAlpha('A'));
  EXPECT_FALSE(IsAsciiAlpha('@'));
  EXPECT_FALSE(IsAsciiAlpha('['));
  EXPECT_TRUE(IsAsciiAlnum('7'));
  EXPECT_FALSE(IsAsciiAlnum('-'));
  for (char c : {'\xC3', '\xA9', '\xFF'}) {  // UTF-8 bytes are never letters or spaces
    EXPECT_FALSE(IsAsciiAlnum(c));
    EXPECT_FALSE(IsAsciiWhitespace(c));
  }
  for (char c : {' ', '\t', '\n', '\v', '\f', '\r'}) EXPECT_TRUE(IsAsciiWhitespace(c));
  EXPECT_FALSE(IsAsciiWhitespace('\0'));
  EXPECT_TRUE(IsOws(' '));
  EXPECT_TRUE(IsOws('\t'));
  EXPECT_FALSE(IsOws('\n'));
}

TEST(TextTest, LowersAsciiLettersOnly) {
  EXPECT_EQ(AsciiLowerCopy("Content-TYPE: X/Y"), "content-type: x/y");
  EXPECT_EQ(AsciiLowerCopy("\xC3\x89T\xC3\x89"), "\xC3\x89t\xC3\x89");  // "ÉTÉ": É unchanged
}

TEST(TextTest, ComparesIgnoringAsciiCase) {
  EXPECT_TRUE(EqualsIgnoringAsciiCase("Multipart/Form-Data", "multipart/form-data"));
  EXPECT_FALSE(EqualsIgnoringAsciiCase("bytes", "byte"));
  EXPECT_FALSE(EqualsIgnoringAsciiCase("a-b", "a_b"));
  EXPECT_TRUE(EqualsIgnoringAsciiCase("", ""));
  EXPECT_TRUE(StartsWithIgnoringAsciiCase("bearer abc", "Bearer "));
  EXPECT_TRUE(StartsWithIgnoringAsciiCase("Basic", "basic"));
  EXPECT_FALSE(StartsWithIgnoringAsciiCase("Bas", "Basic"));
  EXPECT_FALSE(StartsWithIgnoringAsciiCase("Bearer", "Basic"));
}

TEST(TextTest, OrdersIgnoringAsciiCase) {
  EXPECT_FALSE(LessIgnoringAsciiCase("ETag", "etag"));
  EXPECT_FALSE(LessIgnoringAsciiCase("etag", "ETag"));
  EXPECT_TRUE(LessIgnoringAsciiCase("Accept", "b"));
  EXPECT_TRUE(LessIgnoringAsciiCase("x", "X-Forwarded"));  // a prefix sorts first
  EXPECT_FALSE(LessIgnoringAsciiCase("X-Forwarded", "x"));
  EXPECT_TRUE(LessIgnoringAsciiCase("z", "\xC3\xA9"));  // bytes compare as unsigned
  // '_' sits between 'Z' and 'a': the lower-cased order puts it before every letter, as
  // strcasecmp does.
  EXPECT_TRUE(LessIgnoringAsciiCase("_", "Z"));
  EXPECT_FALSE(LessIgnoringAsciiCase("Z", "_"));
}

TEST(TextTest, TrimsSpacesOrAllWhitespace) {
  EXPECT_EQ(TrimSpaces(" \t a b \t"), "a b");
  EXPECT_EQ(TrimSpaces("\r\nx\r\n"), "\r\nx\r\n");
  EXPECT_EQ(TrimSpaces("  "), "");
  EXPECT_EQ(TrimWhitespace("\r\n\t x y\v\f\r\n"), "x y");
  EXPECT_EQ(TrimWhitespace("\n"), "");
  EXPECT_EQ(TrimWhitespace(""), "");
}

TEST(TextTest, SplitsLists) {
  using List = std::vector<std::string_view>;
  EXPECT_EQ(SplitList("auth, upload ,converter"), (List{"auth", "upload", "converter"}));
  EXPECT_EQ(SplitList(" a ,, \t,b\n,"), (List{"a", "b"}));
  EXPECT_EQ(SplitList("one"), (List{"one"}));
  EXPECT_EQ(SplitList(""), List{});
  EXPECT_EQ(SplitList(" , "), List{});
  EXPECT_EQ(SplitList("10.0.0.0/8 ; ::1", ';'), (List{"10.0.0.0/8", "::1"}));
  EXPECT_EQ(SplitList("a b, c"), (List{"a b", "c"}));  // inner whitespace stays
}

}  // namespace
}  // namespace vmp3
