#include "http/header_params.hpp"

#include <gtest/gtest.h>

namespace vmp3::http {
namespace {

TEST(HeaderParamsTest, TokensAndQuotedStrings) {
  auto params = ParseHeaderParams(R"(; Name="a \"b\" \\ c";  size=12 ;; x= "C:\dir\f")", "X");
  ASSERT_TRUE(params) << params.error().message;
  ASSERT_EQ(params->size(), 3u);
  EXPECT_EQ((*params)[0].name, "name");
  EXPECT_EQ((*params)[0].value, R"(a "b" \ c)");
  EXPECT_EQ((*params)[1].name, "size");
  EXPECT_EQ((*params)[1].value, "12");
  // Only '"' and '\' are escaped: other backslashes stay (a Windows path from an old browser).
  EXPECT_EQ((*params)[2].value, R"(C:\dir\f)");
  EXPECT_EQ(FindHeaderParam(*params, "size"), &(*params)[1]);
  EXPECT_EQ(FindHeaderParam(*params, "Size"), nullptr);
  EXPECT_TRUE(ParseHeaderParams("", "X"));
  EXPECT_TRUE(ParseHeaderParams(" ; ", "X"));
}

TEST(HeaderParamsTest, RejectsMalformedParameters) {
  struct Case {
    const char* tail;
    const char* says;
  };
  for (const Case& c :
       {Case{"; a", "'a' has no value"}, Case{"; a=", "'a' has no value"}, Case{"; =1", "no name"},
        Case{"; a=\"x", "unterminated"}, Case{" x; a=1", "expected ';'"},
        Case{"; a=1; A=2", "duplicate parameter 'a'"}, Case{"; a=1 b", "expected ';'"}}) {
    auto params = ParseHeaderParams(c.tail, "Content-Type");
    ASSERT_FALSE(params) << c.tail;
    EXPECT_EQ(params.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(params.error().message.find("malformed Content-Type header: "), std::string::npos);
    EXPECT_NE(params.error().message.find(c.says), std::string::npos)
        << c.tail << ": " << params.error().message;
  }
}

TEST(DecodeExtValueTest, Utf8AndLatin1) {
  EXPECT_EQ(DecodeExtValue("UTF-8''%E2%82%AC%20rates"), "\xE2\x82\xAC rates");
  EXPECT_EQ(DecodeExtValue("utf-8'en'a%2fb"), "a/b");
  EXPECT_EQ(DecodeExtValue("ISO-8859-1''caf%E9"), "caf\xC3\xA9");
  EXPECT_EQ(DecodeExtValue("UTF-8''"), "");
  for (const char* bad : {"UTF-8'x", "x", "latin1''a", "UTF-8''%", "UTF-8''%4", "UTF-8''%G1"}) {
    EXPECT_FALSE(DecodeExtValue(bad)) << bad;
  }
}

TEST(TokenCharTest, Rfc9110) {
  for (char c : std::string_view("aZ09!#$%&'*+-.^_`|~")) EXPECT_TRUE(IsTokenChar(c)) << c;
  for (char c : std::string_view("\"(),/:;<=>?@[\\]{} \t\x7f\x80"))
    EXPECT_FALSE(IsTokenChar(c)) << c;
  EXPECT_FALSE(IsTokenChar('\0'));
}

}  // namespace
}  // namespace vmp3::http
