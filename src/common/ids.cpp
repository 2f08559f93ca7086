#include "common/ids.hpp"

#include <sodium.h>

#include <cstdint>

namespace vmp3 {

std::string RandomId() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  unsigned char bytes[16];
  randombytes_buf(bytes, sizeof(bytes));
  std::string id;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      id += kAlphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) id += kAlphabet[(buffer << (5 - bits)) & 31];
  return id;
}

}  // namespace vmp3
