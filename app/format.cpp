#include "format.hpp"

#include <fmt/format.h>

#include <cmath>

namespace vmp3::app {

std::string FormatClock(double seconds) {
  if (!(seconds > 0)) seconds = 0;
  auto total = static_cast<int64_t>(std::llround(seconds));
  int64_t h = total / 3600, m = total / 60 % 60, s = total % 60;
  if (h > 0) return fmt::format("{}:{:02}:{:02}", h, m, s);
  return fmt::format("{}:{:02}", m, s);
}

std::string FormatPreciseClock(double seconds) {
  if (!(seconds > 0)) seconds = 0;
  auto centis = static_cast<int64_t>(std::llround(seconds * 100));
  int64_t h = centis / 360000, m = centis / 6000 % 60, s = centis / 100 % 60, cs = centis % 100;
  return fmt::format("{}:{:02}:{:02}.{:02}", h, m, s, cs);
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1000) return fmt::format("{} B", bytes);
  static constexpr const char* kUnits[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
  double value = static_cast<double>(bytes) / 1000;
  size_t unit = 0;
  // Round first so 999.96 kB prints as "1.0 MB", not "1000.0 kB".
  while (std::round(value * 10) / 10 >= 1000 && unit + 1 < std::size(kUnits)) {
    value /= 1000;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string FormatBitRate(int64_t bits_per_second) {
  return fmt::format("{} kb/s", std::llround(static_cast<double>(bits_per_second) / 1000));
}

namespace {
bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }
}  // namespace

std::string Printable(std::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    auto u = static_cast<unsigned char>(c);
    if (keep_newlines && c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    bool control = u < 0x20 || u == 0x7f;
    out += control && !(keep_newlines && c == '\n') ? '?' : c;
  }
  return out;
}

size_t CountColumns(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += IsContinuationByte(c) ? 0 : 1;
  return n;
}

std::string TruncateToColumns(std::string_view text, size_t columns) {
  if (CountColumns(text) <= columns) return std::string(text);
  if (columns == 0) return "";
  // Keep columns - 1 code points, then the ellipsis.
  size_t kept = 0, end = 0;
  for (; end < text.size(); ++end) {
    if (!IsContinuationByte(text[end])) {
      if (kept == columns - 1) break;
      ++kept;
    }
  }
  return std::string(text.substr(0, end)) + "…";
}

}  // namespace vmp3::app
