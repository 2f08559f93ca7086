// Server-Sent Events framing (WHATWG HTML, "Server-sent events": the text/event-stream format).
// Pure functions; thread-safe. The transport (http/session.cpp) writes what they return.
#pragma once

#include <string>
#include <string_view>

namespace vmp3::http {

// One event: "event: TYPE", one "data: LINE" per line of `data`, then a blank line.
// A client (EventSource) rebuilds `data` by joining its lines with "\n"; since the format ends a
// line at CR LF, lone CR and lone LF alike, every line break in `data` arrives as "\n" (a CR cannot
// be sent). CR and LF in `type` are dropped: a line break there would end the field early and let
// the rest pose as another field.
std::string SseEvent(std::string_view type, std::string_view data);

// A comment, which clients ignore (used to keep an idle stream open): ": TEXT" per line of
// `text`, then a blank line.
std::string SseComment(std::string_view text);

}  // namespace vmp3::http
