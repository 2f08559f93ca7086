// Well-formed UTF-8 (RFC 3629): one validator for every place that reads untrusted text (e-mail
// addresses, file names from Content-Disposition). Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace vmp3 {

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629's table), 0 if ill-formed:
// a stray continuation byte, an overlong form, a surrogate, a value above U+10FFFF, or a sequence
// cut short by the end of `s`. Requires i < s.size().
inline size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b = at(i);
  if (b < 0x80) return 1;
  size_t length = 0;
  uint8_t lo = 0x80;
  uint8_t hi = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    length = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    length = 3;
    if (b == 0xE0) lo = 0xA0;  // overlong
    if (b == 0xED) hi = 0x9F;  // surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    length = 4;
    if (b == 0xF0) lo = 0x90;  // overlong
    if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > s.size()) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  }
  return length;
}

// The code point of the well-formed sequence at s[i], advancing i past it; nullopt (and i
// unchanged) for an ill-formed one. Requires i < s.size().
inline std::optional<uint32_t> NextCodePoint(std::string_view s, size_t& i) {
  const size_t length = Utf8SequenceLength(s, i);
  if (length == 0) return std::nullopt;
  static constexpr uint8_t kLeadBits[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  uint32_t cp = static_cast<uint8_t>(s[i]) & kLeadBits[length];
  for (size_t k = 1; k < length; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  i += length;
  return cp;
}

}  // namespace vmp3
