#include "auth/base64.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstddef>

namespace vmp3::auth {

std::string Base64Encode(const void* data, size_t size, int sodium_variant) {
  std::string out(sodium_base64_ENCODED_LEN(size, sodium_variant), '\0');
  sodium_bin2base64(out.data(), out.size(), static_cast<const unsigned char*>(data), size,
                    sodium_variant);
  out.resize(out.size() - 1);  // the terminating NUL sodium_bin2base64 writes
  return out;
}

std::optional<std::string> Base64DecodeStrict(std::string_view text, int sodium_variant) {
  if (std::any_of(text.begin(), text.end(),
                  [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    return std::nullopt;
  }
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &length, nullptr, sodium_variant) != 0) {
    return std::nullopt;
  }
  out.resize(length);
  return out;
}

}  // namespace vmp3::auth
