#include "http/conditional.hpp"

#include <gtest/gtest.h>

namespace vmp3::http {
namespace {

TEST(ParseEntityTagTest, ReadsStrongAndWeakTags) {
  auto strong = ParseEntityTag(" \"abc\"\t");
  ASSERT_TRUE(strong);
  EXPECT_FALSE(strong->weak);
  EXPECT_EQ(strong->opaque, "\"abc\"");
  auto weak = ParseEntityTag("W/\"a,b\"");
  ASSERT_TRUE(weak);
  EXPECT_TRUE(weak->weak);
  EXPECT_EQ(weak->opaque, "\"a,b\"");
  auto empty = ParseEntityTag("\"\"");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->opaque, "\"\"");
}

TEST(ParseEntityTagTest, RejectsMalformedTags) {
  for (std::string_view text : {"", "abc", "\"abc", "abc\"", "w/\"abc\"", "W/abc", "\"a\"b\"",
                                "\"a b\"", "\"a\" \"b\"", "\"a\"x", "*", "\"a\x7f\""}) {
    EXPECT_FALSE(ParseEntityTag(text)) << text;
  }
}

TEST(IfNoneMatchTest, StarMatchesAnyRepresentation) {
  EXPECT_TRUE(IfNoneMatchHits("*", "\"x\""));
  EXPECT_TRUE(IfNoneMatchHits(" * ", "W/\"x\""));
}

TEST(IfNoneMatchTest, ExactTagMatches) {
  EXPECT_TRUE(IfNoneMatchHits("\"x\"", "\"x\""));
  EXPECT_FALSE(IfNoneMatchHits("\"y\"", "\"x\""));
  EXPECT_FALSE(IfNoneMatchHits("\"X\"", "\"x\""));  // opaque tags are case-sensitive
}

// The download route compared the header with its ETag byte for byte, so a client that sent a
// list or a weak tag (as browsers and caches do after a proxy weakened the ETag) never got 304.
TEST(IfNoneMatchTest, WeakComparisonIgnoresWOnBothSides) {
  EXPECT_TRUE(IfNoneMatchHits("W/\"x\"", "\"x\""));
  EXPECT_TRUE(IfNoneMatchHits("\"x\"", "W/\"x\""));
  EXPECT_TRUE(IfNoneMatchHits("W/\"x\"", "W/\"x\""));
}

TEST(IfNoneMatchTest, AnyTagOfAListMatches) {
  EXPECT_TRUE(IfNoneMatchHits("\"a\", \"x\"", "\"x\""));
  EXPECT_TRUE(IfNoneMatchHits("\"a\",W/\"x\" ,\t\"b\"", "\"x\""));
  EXPECT_TRUE(IfNoneMatchHits(" , \"x\",, ", "\"x\""));  // empty list elements are skipped
  EXPECT_FALSE(IfNoneMatchHits("\"a\", \"b\"", "\"x\""));
}

// Web assets split the header at every comma, so a tag holding a comma could never match and
// a fragment of one could match another tag.
TEST(IfNoneMatchTest, CommaInsideATagIsPartOfIt) {
  EXPECT_TRUE(IfNoneMatchHits("\"a,b\"", "\"a,b\""));
  EXPECT_FALSE(IfNoneMatchHits("\"a,\"b\"\"", "\"b\""));
  EXPECT_FALSE(IfNoneMatchHits("\"a,b\"", "\"b\""));
}

TEST(IfNoneMatchTest, EmptyOrMalformedHeaderMatchesNothing) {
  EXPECT_FALSE(IfNoneMatchHits("", "\"x\""));
  EXPECT_FALSE(IfNoneMatchHits("x", "\"x\""));
  EXPECT_FALSE(IfNoneMatchHits("\"x\" \"y\"", "\"x\""));
  EXPECT_FALSE(IfNoneMatchHits("\"x\", junk", "\"x\""));
  EXPECT_FALSE(IfNoneMatchHits("*, \"x\"", "\"x\""));
  EXPECT_FALSE(IfNoneMatchHits("\"x\"", "x"));  // the current ETag is not an entity tag
}

}  // namespace
}  // namespace vmp3::http
