#include "http/sse.hpp"

#include <gtest/gtest.h>

namespace vmp3::http {
namespace {

TEST(SseEventTest, OneDataLinePerLine) {
  EXPECT_EQ(SseEvent("progress", R"({"progress":0.5})"),
            "event: progress\ndata: {\"progress\":0.5}\n\n");
  EXPECT_EQ(SseEvent("status", "a\nb"), "event: status\ndata: a\ndata: b\n\n");
  EXPECT_EQ(SseEvent("status", ""), "event: status\ndata: \n\n");
  EXPECT_EQ(SseEvent("status", "a\n"), "event: status\ndata: a\ndata: \n\n");
}

// A reader ends a line at CR as well as at LF, so a CR passed through inside a data line would
// start a new field: "data: a\rid: 2" would set the event id. (The framing split only at LF
// before; the json_bodies fuzz target checks this against the WHATWG parsing rules.)
TEST(SseEventTest, CarriageReturnsBreakLinesAsReadersDo) {
  EXPECT_EQ(SseEvent("status", "a\rid: 2"), "event: status\ndata: a\ndata: id: 2\n\n");
  EXPECT_EQ(SseEvent("status", "a\r\nb"), "event: status\ndata: a\ndata: b\n\n");
  EXPECT_EQ(SseEvent("status", "a\r\rb"), "event: status\ndata: a\ndata: \ndata: b\n\n");
  EXPECT_EQ(SseEvent("status", "a\r"), "event: status\ndata: a\ndata: \n\n");
}

TEST(SseEventTest, LineBreaksInTheTypeAreDropped) {
  EXPECT_EQ(SseEvent("a\r\nretry: 1", "x"), "event: aretry: 1\ndata: x\n\n");
}

TEST(SseCommentTest, EveryLineIsAComment) {
  EXPECT_EQ(SseComment("ping"), ": ping\n\n");
  EXPECT_EQ(SseComment("a\ndata: x\r\rb"), ": a\n: data: x\n: \n: b\n\n");
}

}  // namespace
}  // namespace vmp3::http
