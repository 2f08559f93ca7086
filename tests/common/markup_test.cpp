#include "common/markup.hpp"

#include <gtest/gtest.h>

namespace vmp3 {
namespace {

TEST(EscapeMarkupTest, ReplacesTheFiveSpecialCharactersOnly) {
  EXPECT_EQ(EscapeMarkup(R"(<a href="x">Tom & 'Jerry'</a>)"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &apos;Jerry&apos;&lt;/a&gt;");
  EXPECT_EQ(EscapeMarkup("/v1/jobs/{id} caf\xC3\xA9"), "/v1/jobs/{id} caf\xC3\xA9");
  EXPECT_EQ(EscapeMarkup(""), "");
}

}  // namespace
}  // namespace vmp3
