// Small text helpers for protocol work (header values, names, lists in configuration): ASCII
// only, locale-free, so they behave the same whatever the process's locale is (<cctype> depends
// on it and is undefined for negative chars). Bytes >= 0x80 (UTF-8) are never letters, digits or
// whitespace here and are never changed. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vmp3 {

inline bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsAsciiAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool IsAsciiAlnum(char c) { return IsAsciiAlpha(c) || IsAsciiDigit(c); }

// HTTP's optional whitespace (RFC 9110 §5.6.3): space and horizontal tab.
inline bool IsOws(char c) { return c == ' ' || c == '\t'; }

// Space, \t, \n, \v, \f, \r: what isspace() accepts in the "C" locale.
inline bool IsAsciiWhitespace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

inline char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string AsciiLowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

inline bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  return true;
}

inline bool StartsWithIgnoringAsciiCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoringAsciiCase(s.substr(0, prefix.size()), prefix);
}

// A strict weak order that ignores ASCII case: the order of the lower-cased strings, bytes
// compared as unsigned. For maps keyed by header names.
inline bool LessIgnoringAsciiCase(std::string_view a, std::string_view b) {
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(AsciiLower(a[i]));
    const auto y = static_cast<unsigned char>(AsciiLower(b[i]));
    if (x != y) return x < y;
  }
  return a.size() < b.size();
}

// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
inline std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// Without leading and trailing ASCII whitespace (IsAsciiWhitespace), line breaks included: for
// values read from files, environment variables and command lines.
inline std::string_view TrimWhitespace(std::string_view s) {
  while (!s.empty() && IsAsciiWhitespace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsAsciiWhitespace(s.back())) s.remove_suffix(1);
  return s;
}

// The elements of a `separator`-separated list such as "a, b,,c ", trimmed of ASCII whitespace,
// empty ones dropped: {"a", "b", "c"}. The views point into `list`.
inline std::vector<std::string_view> SplitList(std::string_view list, char separator = ',') {
  std::vector<std::string_view> items;
  while (true) {
    const size_t end = list.find(separator);
    std::string_view item = TrimWhitespace(list.substr(0, end));
    if (!item.empty()) items.push_back(item);
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
  }
  return items;
}

}  // namespace vmp3
