#include "http/content_disposition.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/grammar/lut_chars.hpp>
#include <cstdint>

#include "common/text.hpp"
#include "common/utf8.hpp"
#include "http/header_params.hpp"

namespace vmp3::http {
namespace {

constexpr size_t kMaxStemBytes = 200;  // leaves room for ".mp3" under the usual 255-byte limit

bool IsControl(std::string_view ch) {
  if (ch.size() == 1) {
    const auto u = static_cast<uint8_t>(ch[0]);
    return u < 0x20 || u == 0x7F;
  }
  // C1 controls U+0080..U+009F are C2 80..C2 9F.
  return ch.size() == 2 && static_cast<uint8_t>(ch[0]) == 0xC2 &&
         static_cast<uint8_t>(ch[1]) <= 0x9F;
}

// U+202A..U+202E and U+2066..U+2069: embeddings, overrides and isolates, which can make
// "clip\u202Egpj.exe" display as "clipexe.jpg".
bool IsBidiControl(std::string_view ch) {
  if (ch.size() != 3 || static_cast<uint8_t>(ch[0]) != 0xE2) return false;
  const auto b1 = static_cast<uint8_t>(ch[1]);
  const auto b2 = static_cast<uint8_t>(ch[2]);
  return (b1 == 0x80 && b2 >= 0xAA && b2 <= 0xAE) || (b1 == 0x81 && b2 >= 0xA6 && b2 <= 0xA9);
}

// Calls fn(character) for each well-formed character of `s`, skipping ill-formed bytes.
template <typename Fn>
void ForEachChar(std::string_view s, Fn fn) {
  for (size_t i = 0; i < s.size();) {
    const size_t length = Utf8SequenceLength(s, i);
    if (length == 0) {
      ++i;
      continue;
    }
    fn(s.substr(i, length));
    i += length;
  }
}

// RFC 8187 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" /
// "`" / "|" / "~". Everything else in an ext-value is percent-encoded.
constexpr boost::urls::grammar::lut_chars kAttrChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~";

}  // namespace

Result<ContentDisposition> ParseContentDisposition(std::string_view value) {
  while (!value.empty() && IsOws(value.front())) value.remove_prefix(1);
  size_t type_end = 0;
  while (type_end < value.size() && IsTokenChar(value[type_end])) ++type_end;
  if (type_end == 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "malformed Content-Disposition header: no disposition type");
  }
  auto params = ParseHeaderParams(value.substr(type_end), "Content-Disposition");
  if (!params) return tl::unexpected(params.error());

  ContentDisposition disposition;
  disposition.type = AsciiLowerCopy(value.substr(0, type_end));
  if (const HeaderParam* name = FindHeaderParam(*params, "name")) disposition.name = name->value;
  if (const HeaderParam* ext = FindHeaderParam(*params, "filename*")) {
    auto decoded = DecodeExtValue(ext->value);
    if (!decoded) return tl::unexpected(decoded.error());
    disposition.filename = std::move(*decoded);
  } else if (const HeaderParam* filename = FindHeaderParam(*params, "filename")) {
    disposition.filename = filename->value;
  }
  return disposition;
}

std::string DropInvalidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  ForEachChar(bytes, [&](std::string_view ch) { out.append(ch); });
  return out;
}

std::string Mp3NameFor(std::string_view original_filename) {
  // Keep the last path component, then drop what must not survive into a name.
  std::string_view last = original_filename;
  if (size_t sep = last.find_last_of("/\\"); sep != std::string_view::npos) {
    last.remove_prefix(sep + 1);
  }
  std::string name;
  name.reserve(last.size());
  ForEachChar(last, [&](std::string_view ch) {
    if (!IsControl(ch) && !IsBidiControl(ch)) name.append(ch);
  });

  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '.')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '.')) s.remove_suffix(1);
    return s;
  };
  std::string_view stem = trim(name);
  // "C:name" is relative to a drive's current directory. Repeated so that the result is a fixed
  // point: Mp3NameFor(Mp3NameFor(x)) == Mp3NameFor(x).
  while (stem.size() >= 2 && stem[1] == ':' && IsAsciiAlpha(stem[0])) {
    stem = trim(stem.substr(2));
  }
  if (size_t dot = stem.rfind('.'); dot != std::string_view::npos && dot > 0) {
    std::string_view extension = stem.substr(dot + 1);
    bool looks_like_extension = !extension.empty() && extension.size() <= 8;
    for (char c : extension) looks_like_extension = looks_like_extension && IsAsciiAlnum(c);
    if (looks_like_extension) stem = stem.substr(0, dot);
  }
  if (stem.size() > kMaxStemBytes) {
    size_t cut = kMaxStemBytes;
    while (cut > 0 && (static_cast<uint8_t>(stem[cut]) & 0xC0) == 0x80) --cut;
    stem = stem.substr(0, cut);
  }
  stem = trim(stem);
  if (stem.empty()) stem = "audio";
  return std::string(stem) + ".mp3";
}

std::string AttachmentDisposition(std::string_view utf8_filename) {
  std::string fallback;
  std::string encoded;
  ForEachChar(utf8_filename, [&](std::string_view ch) {
    const char c = ch[0];
    const bool printable_ascii = ch.size() == 1 && c >= 0x20 && c < 0x7F;
    const bool separator = c == '/' || c == '\\';
    fallback.push_back(printable_ascii && c != '"' && !separator && c != '%' ? c : '_');
    if (IsControl(ch) || separator) {
      encoded.push_back('_');
      return;
    }
    encoded += boost::urls::encode(ch, kAttrChars);
  });
  if (fallback.empty()) {
    fallback = "download";
    encoded = "download";
  }
  return "attachment; filename=\"" + fallback + "\"; filename*=UTF-8''" + encoded;
}

}  // namespace vmp3::http
