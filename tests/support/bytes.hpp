// Test data as the byte spans ObjectWriter::Write and friends take.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace vmp3::test {

// The bytes of `s` (a view: `s` must outlive the span).
inline std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

}  // namespace vmp3::test
