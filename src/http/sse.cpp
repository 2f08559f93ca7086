#include "http/sse.hpp"

namespace vmp3::http {
namespace {

// Appends `prefix` + line + "\n" for each line of `text` (at least one line, possibly empty).
// Lines end at CR LF, CR or LF, exactly as an event-stream reader splits them.
void AppendLines(std::string& out, std::string_view prefix, std::string_view text) {
  size_t start = 0;
  for (;;) {
    const size_t end = text.find_first_of("\r\n", start);
    out += prefix;
    out += text.substr(start, end == std::string_view::npos ? end : end - start);
    out += '\n';
    if (end == std::string_view::npos) break;
    start = end + 1;
    if (text[end] == '\r' && start < text.size() && text[start] == '\n') ++start;
  }
}

}  // namespace

std::string SseEvent(std::string_view type, std::string_view data) {
  std::string out;
  out.reserve(type.size() + data.size() + 16);
  out += "event: ";
  for (char c : type) {
    if (c != '\r' && c != '\n') out += c;
  }
  out += '\n';
  AppendLines(out, "data: ", data);
  out += '\n';
  return out;
}

std::string SseComment(std::string_view text) {
  std::string out;
  AppendLines(out, ": ", text);
  out += '\n';
  return out;
}

}  // namespace vmp3::http
