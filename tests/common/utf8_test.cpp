#include "common/utf8.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vmp3 {
namespace {

std::vector<uint32_t> Decode(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const size_t before = i;
    auto cp = NextCodePoint(s, i);
    if (!cp) {
      EXPECT_EQ(i, before) << "a failed decode must not advance";
      return out;
    }
    out.push_back(*cp);
  }
  return out;
}

TEST(Utf8, DecodesEverySequenceLength) {
  EXPECT_EQ(Decode("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x8E\xB5"),
            (std::vector<uint32_t>{'a', 0xE9, 0x20AC, 0x1F3B5}));
  EXPECT_EQ(Decode("\xF4\x8F\xBF\xBF"), (std::vector<uint32_t>{0x10FFFF}));
}

TEST(Utf8, RefusesIllFormedSequences) {
  for (std::string bad :
       {"\x80", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF0\x80\x80\xAF",
        "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xC3", "\xE2\x82", "\xE2\x28\xAC"}) {
    EXPECT_EQ(Utf8SequenceLength(bad, 0), 0u) << testing::PrintToString(bad);
    size_t i = 0;
    EXPECT_FALSE(NextCodePoint(bad, i)) << testing::PrintToString(bad);
    EXPECT_EQ(i, 0u);
  }
}

TEST(Utf8, SequenceLengthCountsBytes) {
  EXPECT_EQ(Utf8SequenceLength("x\xE2\x82\xAC", 1), 3u);
  EXPECT_EQ(Utf8SequenceLength("x\xE2\x82\xAC", 0), 1u);
}

}  // namespace
}  // namespace vmp3
