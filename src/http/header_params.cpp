#include "http/header_params.hpp"

#include <boost/url/pct_string_view.hpp>
#include <cstring>
#include <utility>

#include "common/text.hpp"

namespace vmp3::http {

bool IsTokenChar(char c) {
  if (IsAsciiAlnum(c)) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

Result<std::vector<HeaderParam>> ParseHeaderParams(std::string_view s, std::string_view header) {
  std::vector<HeaderParam> params;
  auto malformed = [&](std::string_view what) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "malformed " + std::string(header) + " header: " + std::string(what));
  };
  size_t i = 0;
  while (true) {
    while (i < s.size() && IsOws(s[i])) ++i;
    if (i == s.size()) break;
    if (s[i] != ';') return malformed("expected ';' between parameters");
    ++i;
    while (i < s.size() && IsOws(s[i])) ++i;
    if (i == s.size()) break;
    if (s[i] == ';') continue;  // an empty parameter
    size_t name_start = i;
    while (i < s.size() && IsTokenChar(s[i])) ++i;
    if (i == name_start) return malformed("a parameter has no name");
    std::string name = AsciiLowerCopy(s.substr(name_start, i - name_start));
    while (i < s.size() && IsOws(s[i])) ++i;
    if (i == s.size() || s[i] != '=') return malformed("parameter '" + name + "' has no value");
    ++i;
    while (i < s.size() && IsOws(s[i])) ++i;
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        char c = s[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < s.size() && (s[i] == '"' || s[i] == '\\')) c = s[i++];
        value.push_back(c);
      }
      if (!closed) return malformed("unterminated quoted value of '" + name + "'");
    } else {
      size_t value_start = i;
      while (i < s.size() && s[i] != ';' && !IsOws(s[i]) && s[i] != '"') ++i;
      value.assign(s.substr(value_start, i - value_start));
      if (value.empty()) return malformed("parameter '" + name + "' has no value");
    }
    if (FindHeaderParam(params, name) != nullptr) {
      return malformed("duplicate parameter '" + name + "'");
    }
    params.push_back({std::move(name), std::move(value)});
  }
  return params;
}

const HeaderParam* FindHeaderParam(const std::vector<HeaderParam>& params, std::string_view name) {
  for (const HeaderParam& p : params) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

Result<std::string> DecodeExtValue(std::string_view v) {
  auto bad = [] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "malformed Content-Disposition header: filename* is not charset'lang'value "
                     "with UTF-8 or ISO-8859-1");
  };
  size_t q1 = v.find('\'');
  if (q1 == std::string_view::npos) return bad();
  size_t q2 = v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return bad();
  std::string_view charset = v.substr(0, q1);
  bool latin1 = EqualsIgnoringAsciiCase(charset, "iso-8859-1");
  if (!latin1 && !EqualsIgnoringAsciiCase(charset, "utf-8")) return bad();
  // Percent-decoding only: '+' is a literal '+' here, not a space.
  auto encoded = boost::urls::make_pct_string_view(v.substr(q2 + 1));
  if (!encoded) return bad();
  const std::string bytes = encoded->decode();
  if (!latin1) return bytes;
  std::string out;
  out.reserve(bytes.size());
  for (char byte : bytes) {
    const auto c = static_cast<unsigned char>(byte);
    if (c >= 0x80) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(byte);
    }
  }
  return out;
}

}  // namespace vmp3::http
