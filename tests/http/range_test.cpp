#include "http/range.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace vmp3::http {
namespace {

using Kind = RangeDecision::Kind;

void ExpectPartial(std::string_view header, uint64_t size, uint64_t first, uint64_t last) {
  RangeDecision d = ParseRange(header, size);
  ASSERT_EQ(d.kind, Kind::kPartial) << header << " of " << size;
  EXPECT_EQ(d.first, first) << header;
  EXPECT_EQ(d.last, last) << header;
  EXPECT_EQ(d.length(), last - first + 1);
}

void ExpectWhole(std::string_view header, uint64_t size) {
  EXPECT_EQ(ParseRange(header, size).kind, Kind::kWhole) << header << " of " << size;
}

void ExpectUnsatisfiable(std::string_view header, uint64_t size) {
  EXPECT_EQ(ParseRange(header, size).kind, Kind::kUnsatisfiable) << header << " of " << size;
}

TEST(ParseRangeTest, ClosedRange) {
  ExpectPartial("bytes=0-499", 1000, 0, 499);
  ExpectPartial("bytes=500-999", 1000, 500, 999);
  ExpectPartial("bytes=0-0", 1000, 0, 0);
  ExpectPartial("bytes=999-999", 1000, 999, 999);
}

TEST(ParseRangeTest, LastPastTheEndIsClamped) {
  ExpectPartial("bytes=500-5000", 1000, 500, 999);
  ExpectPartial("bytes=0-99999999999999999999999999", 1000, 0, 999);  // overflows uint64
}

TEST(ParseRangeTest, OpenEndedRange) {
  ExpectPartial("bytes=100-", 1000, 100, 999);
  ExpectPartial("bytes=0-", 1, 0, 0);
}

TEST(ParseRangeTest, SuffixRange) {
  ExpectPartial("bytes=-200", 1000, 800, 999);
  ExpectPartial("bytes=-1", 1000, 999, 999);
  ExpectPartial("bytes=-1000", 1000, 0, 999);
  ExpectPartial("bytes=-5000", 1000, 0, 999);  // longer than the representation: all of it
  ExpectPartial("bytes=-99999999999999999999999999", 1000, 0, 999);
}

TEST(ParseRangeTest, UnitIsCaseInsensitiveAndWhitespaceAroundElementsIsAllowed) {
  ExpectPartial("Bytes=1-2", 10, 1, 2);
  ExpectPartial("BYTES=1-2", 10, 1, 2);
  ExpectPartial("  bytes= 1-2 ", 10, 1, 2);
  ExpectPartial("bytes=1-2,", 10, 1, 2);  // empty list elements are skipped
  ExpectPartial("bytes=, ,1-2 , ", 10, 1, 2);
}

TEST(ParseRangeTest, Unsatisfiable) {
  ExpectUnsatisfiable("bytes=1000-", 1000);
  ExpectUnsatisfiable("bytes=1000-2000", 1000);
  ExpectUnsatisfiable("bytes=99999999999999999999999-", 1000);
  ExpectUnsatisfiable("bytes=-0", 1000);
  ExpectUnsatisfiable("bytes=0-", 0);
  ExpectUnsatisfiable("bytes=0-10", 0);
  ExpectUnsatisfiable("bytes=-0", 0);
}

TEST(ParseRangeTest, SuffixOfEmptyRepresentationServesTheWholeBody) { ExpectWhole("bytes=-5", 0); }

TEST(ParseRangeTest, IgnoredHeadersServeTheWholeBody) {
  for (std::string_view header : {
           "",                 // no header
           "items=0-5",        // unknown unit
           "bytes 0-5",        // no '='
           "bytes =0-5",       // space in the unit
           "bytes=",           // no range
           "bytes=,",          // only empty elements
           "bytes=0-1,5-6",    // several ranges: not served
           "bytes=0-1, -3",    //
           "bytes=5-4",        // last < first: invalid
           "bytes=a-b",        //
           "bytes=1-2-3",      //
           "bytes=--1",        //
           "bytes=-",          //
           "bytes=1",          //
           "bytes=+1-2",       //
           "bytes=0x10-20",    //
           "bytes=1 - 2",      // spaces inside a range-spec
           "bytes=\xff-\xfe",  //
       }) {
    ExpectWhole(header, 1000);
  }
}

TEST(ParseRangeTest, OverflowingNumbersStillCompareExactly) {
  // Both overflow uint64; last < first makes the range invalid (whole body), not unsatisfiable.
  ExpectWhole("bytes=77738888884444444444444444444-77777778888877777777", 1);
  ExpectUnsatisfiable("bytes=77777778888877777777-77738888884444444444444444444", 1);
  ExpectPartial("bytes=0000000000000000000000000001-0000000000000000000000000002", 10, 1, 2);
}

TEST(ParseRangeTest, HugeSizes) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  ExpectPartial("bytes=-10", max, max - 10, max - 1);
  ExpectPartial("bytes=18446744073709551613-", max, max - 2, max - 1);
  ExpectUnsatisfiable("bytes=18446744073709551615-", max);
}

TEST(ContentRangeTest, Formats) {
  EXPECT_EQ(ContentRange(0, 499, 1000), "bytes 0-499/1000");
  EXPECT_EQ(ContentRange(5, 5, 6), "bytes 5-5/6");
  EXPECT_EQ(UnsatisfiedContentRange(1000), "bytes */1000");
  EXPECT_EQ(UnsatisfiedContentRange(0), "bytes */0");
}

TEST(IfRangeMatchesTest, AbsentHeaderAllowsRanges) {
  EXPECT_TRUE(IfRangeMatches("", "\"abc\""));
  EXPECT_TRUE(IfRangeMatches("  ", "\"abc\""));
}

TEST(IfRangeMatchesTest, StrongComparison) {
  EXPECT_TRUE(IfRangeMatches("\"abc\"", "\"abc\""));
  EXPECT_TRUE(IfRangeMatches(" \"abc\" ", "\"abc\""));
  EXPECT_FALSE(IfRangeMatches("\"abd\"", "\"abc\""));
  EXPECT_FALSE(IfRangeMatches("W/\"abc\"", "\"abc\""));  // weak never matches
  EXPECT_FALSE(IfRangeMatches("\"abc\"", "W/\"abc\""));
  EXPECT_FALSE(IfRangeMatches("abc", "abc"));              // not an entity-tag
  EXPECT_FALSE(IfRangeMatches("\"a\"bc\"", "\"a\"bc\""));  // '"' inside
  EXPECT_FALSE(IfRangeMatches("\"\"", ""));
}

TEST(IfRangeMatchesTest, DatesServeTheWholeBody) {
  EXPECT_FALSE(IfRangeMatches("Wed, 21 Oct 2015 07:28:00 GMT", "\"abc\""));
}

}  // namespace
}  // namespace vmp3::http
