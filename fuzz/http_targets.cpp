// Entry points for the hand-written HTTP parsers: multipart, Range, Content-Disposition and file
// names. Included from beside this file: the test binary compiles it without fuzz/ on the
// include path.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "fuzz_check.hpp"
#include "fuzz_targets.hpp"
#include "http/content_disposition.hpp"
#include "http/multipart.hpp"
#include "http/range.hpp"

namespace vmp3::fuzz {
namespace {

// Deterministic chunk sizes from a seed (0 included: empty chunks are legal).
class Chunker {
 public:
  // max_chunk 0: a mix of tiny, small and medium chunks; otherwise 0..max_chunk bytes.
  explicit Chunker(uint32_t seed, size_t max_chunk = 0)
      : state_(seed * 2654435761u + 1), max_chunk_(max_chunk) {}
  size_t Next() {
    state_ = state_ * 1103515245u + 12345u;
    const uint32_t r = state_ >> 16;
    if (max_chunk_ > 0) return r % (max_chunk_ + 1);
    switch (r % 4) {
      case 0:
        return 1;
      case 1:
        return r % 3;
      case 2:
        return 1 + r % 17;
      default:
        return 1 + r % 300;
    }
  }

 private:
  uint32_t state_;
  size_t max_chunk_;
};

struct Part {
  http::PartHeaders headers;
  std::string data;
  bool ended = false;
};

struct Outcome {
  std::vector<Part> parts;
  std::optional<Error> error;
  bool done = false;
};

class RecordingHandler final : public http::MultipartHandler {
 public:
  RecordingHandler(Outcome& outcome, size_t abort_after)
      : outcome_(outcome), abort_after_(abort_after) {}

  Status OnPartBegin(const http::PartHeaders& headers) override {
    FUZZ_CHECK(!open_, "a part began inside another");
    open_ = true;
    outcome_.parts.push_back({headers, "", false});
    return {};
  }
  Status OnPartData(std::span<const std::byte> data) override {
    FUZZ_CHECK(open_, "data outside a part");
    FUZZ_CHECK(!data.empty(), "empty data callback");
    outcome_.parts.back().data.append(reinterpret_cast<const char*>(data.data()), data.size());
    total_ += data.size();
    if (total_ > abort_after_) return MakeError(ErrorCode::kTooLarge, "handler limit");
    return {};
  }
  Status OnPartEnd() override {
    FUZZ_CHECK(open_, "end without begin");
    open_ = false;
    outcome_.parts.back().ended = true;
    return {};
  }

 private:
  Outcome& outcome_;
  size_t abort_after_;
  bool open_ = false;
  size_t total_ = 0;
};

// Parses `body` cut by `chunker` (or whole when null).
Outcome Parse(std::string_view boundary, std::string_view body, http::MultipartLimits limits,
              size_t abort_after, Chunker* chunker) {
  Outcome outcome;
  RecordingHandler handler(outcome, abort_after);
  http::MultipartParser parser(std::string(boundary), handler, limits);
  size_t pos = 0;
  Status status;
  while (status && pos < body.size()) {
    size_t n = chunker ? std::min(chunker->Next(), body.size() - pos) : body.size();
    status = parser.Feed(body.substr(pos, n));
    pos += n;
  }
  if (status) status = parser.Finish();
  if (!status) {
    outcome.error = status.error();
    // Sticky: the same error again, and no callbacks.
    const size_t parts = outcome.parts.size();
    Status again = parser.Feed("\r\n--x");
    FUZZ_CHECK(!again && again.error().message == status.error().message, "error not sticky");
    FUZZ_CHECK(outcome.parts.size() == parts, "callback after an error");
  } else {
    FUZZ_CHECK(parser.done(), "Finish succeeded before the closing boundary");
    for (const Part& p : outcome.parts) FUZZ_CHECK(p.ended, "an unended part after success");
  }
  outcome.done = parser.done();
  return outcome;
}

void ExpectSame(const Outcome& a, const Outcome& b) {
  FUZZ_CHECK(a.error.has_value() == b.error.has_value(),
             a.error ? a.error->message : b.error->message);
  if (a.error) {
    FUZZ_CHECK(a.error->code == b.error->code, a.error->message + " vs " + b.error->message);
    FUZZ_CHECK(a.error->message == b.error->message, a.error->message + " vs " + b.error->message);
  }
  FUZZ_CHECK(a.parts.size() == b.parts.size(), "part counts differ");
  for (size_t i = 0; i < a.parts.size(); ++i) {
    FUZZ_CHECK(a.parts[i].headers.name == b.parts[i].headers.name, "names differ");
    FUZZ_CHECK(a.parts[i].headers.filename == b.parts[i].headers.filename, "filenames differ");
    FUZZ_CHECK(a.parts[i].headers.content_type == b.parts[i].headers.content_type, "types differ");
    if (!a.error) {
      FUZZ_CHECK(a.parts[i].data == b.parts[i].data, "data differs");
      FUZZ_CHECK(a.parts[i].ended == b.parts[i].ended, "ends differ");
    }
  }
}

// Arbitrary bytes as a body: cutting them differently must not change the result.
void MultipartDifferential(uint8_t selector, std::string_view body) {
  static constexpr size_t kHeaderLimits[] = {16 * 1024, 48, 256, 16 * 1024};
  static constexpr size_t kPartLimits[] = {1, 2, 4, 16};
  static constexpr size_t kFieldLimits[] = {0, 5, 100, 64 * 1024};
  http::MultipartLimits limits;
  limits.max_header_bytes = kHeaderLimits[selector & 3];
  limits.max_parts = kPartLimits[(selector >> 2) & 3];
  limits.max_field_bytes = kFieldLimits[(selector >> 4) & 3];
  const size_t abort_after = (selector & 0x40) ? 64 : SIZE_MAX;
  // A short boundary so that the fuzzer meets it often; "-" overlaps the delimiter's own dashes.
  const std::string_view boundary = (selector & 0x80) ? "-" : "XyZ";

  Outcome whole = Parse(boundary, body, limits, abort_after, nullptr);
  Chunker chunker(selector);
  ExpectSame(whole, Parse(boundary, body, limits, abort_after, &chunker));
  if (body.size() <= 2048) {
    Chunker bytewise(selector, 1);  // 0 or 1 byte at a time
    ExpectSame(whole, Parse(boundary, body, limits, abort_after, &bytewise));
  }
}

// A well-formed body built around payloads cut from the input must parse back to them.
void MultipartRoundTrip(uint8_t selector, std::string_view rest) {
  std::vector<std::string_view> payloads;
  while (payloads.size() < 4) {
    size_t cut = rest.find('\xff');
    payloads.push_back(rest.substr(0, cut));
    if (cut == std::string_view::npos) break;
    rest.remove_prefix(cut + 1);
  }
  // The first boundary whose delimiter occurs in no payload (nor straddles its end).
  std::string boundary;
  for (int k = 0;; ++k) {
    boundary = "b" + std::to_string(k);
    const std::string delimiter = "\r\n--" + boundary;
    bool clash = false;
    for (std::string_view p : payloads) {
      clash = clash || (std::string(p) + delimiter).find(delimiter) != p.size();
    }
    if (!clash) break;
  }
  std::string body = (selector & 1) ? "preamble\r\n" : "";
  for (size_t i = 0; i < payloads.size(); ++i) {
    body += "--" + boundary + ((selector & 2) ? " \t" : "") + "\r\n";
    body += "Content-Disposition: form-data; name=\"f" + std::to_string(i) + "\"";
    if (i % 2 == 0) body += "; filename=\"n" + std::to_string(i) + ".bin\"";
    body += "\r\n";
    if (selector & 4) body += "Content-Type: application/octet-stream\r\n";
    body += "\r\n";
    body += payloads[i];
    body += "\r\n";
  }
  body += "--" + boundary + "--";
  if (selector & 8) body += "\r\nepilogue\r\n--" + boundary + "\r\n";

  http::MultipartLimits limits;
  limits.max_field_bytes = SIZE_MAX;
  Chunker chunker(selector);
  Outcome outcome = Parse(boundary, body, limits, SIZE_MAX, &chunker);
  FUZZ_CHECK(!outcome.error, outcome.error->message);
  FUZZ_CHECK(outcome.parts.size() == payloads.size(), "lost or extra parts");
  for (size_t i = 0; i < payloads.size(); ++i) {
    const Part& part = outcome.parts[i];
    FUZZ_CHECK(part.data == payloads[i], "payload changed");
    FUZZ_CHECK(part.headers.name == "f" + std::to_string(i), "name changed");
    FUZZ_CHECK(part.headers.is_file() == (i % 2 == 0), "file flag wrong");
    FUZZ_CHECK(part.headers.content_type == ((selector & 4) ? "application/octet-stream" : ""),
               "content type wrong");
  }
}

bool IsBoundaryChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

void ContentTypeBoundary(std::string_view content_type) {
  Result<std::string> boundary = http::BoundaryFromContentType(content_type);
  if (!boundary) {
    FUZZ_CHECK(boundary.error().code == ErrorCode::kInvalidArgument, boundary.error().message);
    return;
  }
  FUZZ_CHECK(!boundary->empty() && boundary->size() <= 70, *boundary);
  FUZZ_CHECK(boundary->back() != ' ', *boundary);
  for (char c : *boundary) FUZZ_CHECK(IsBoundaryChar(c), *boundary);
  // Any accepted boundary works with the parser.
  const std::string body = "--" + *boundary +
                           "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--" +
                           *boundary + "--";
  Chunker chunker(static_cast<uint32_t>(content_type.size()));
  Outcome outcome = Parse(*boundary, body, {}, SIZE_MAX, &chunker);
  FUZZ_CHECK(!outcome.error, outcome.error->message);
  FUZZ_CHECK(outcome.parts.size() == 1 && outcome.parts[0].data == "hello", *boundary);
}

// Reference for the simple forms "bytes=A-B", "bytes=A-" and "bytes=-N", written independently
// of range.cpp: numbers stay decimal strings, exact at any length. nullopt when the header is
// not one of these forms.
std::optional<http::RangeDecision> ReferenceRange(std::string_view h, uint64_t size) {
  using Kind = http::RangeDecision::Kind;
  if (h.substr(0, 6) != "bytes=") return std::nullopt;
  h.remove_prefix(6);
  const size_t dash = h.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  // Digits without leading zeros ("0" for zero); nullopt unless 1*DIGIT.
  auto number = [](std::string_view digits) -> std::optional<std::string> {
    if (digits.empty()) return std::nullopt;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
    }
    while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
    return std::string(digits);
  };
  auto less = [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  };
  const std::string size_text = std::to_string(size);
  const std::string_view a = h.substr(0, dash);
  const std::string_view b = h.substr(dash + 1);
  if (a.empty()) {
    auto n = number(b);
    if (!n) return std::nullopt;
    if (*n == "0") return http::RangeDecision{Kind::kUnsatisfiable, 0, 0};
    if (size == 0) return http::RangeDecision{};
    const uint64_t first = less(*n, size_text) ? size - std::stoull(*n) : 0;
    return http::RangeDecision{Kind::kPartial, first, size - 1};
  }
  auto first = number(a);
  if (!first) return std::nullopt;
  std::optional<std::string> last;
  if (!b.empty()) {
    last = number(b);
    if (!last) return std::nullopt;
    if (less(*last, *first)) return http::RangeDecision{};
  }
  if (!less(*first, size_text)) return http::RangeDecision{Kind::kUnsatisfiable, 0, 0};
  const uint64_t end =
      last && less(*last, std::to_string(size - 1)) ? std::stoull(*last) : size - 1;
  return http::RangeDecision{Kind::kPartial, std::stoull(*first), end};
}

std::string Trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// A quoted-string that ParseHeaderParams reads back as `s`: a backslash before '"' and '\'.
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// `s` without the bytes a header line cannot carry (controls, DEL).
std::string HeaderSafe(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7F) out.push_back(c);
  }
  return out;
}

// ISO-8859-1 to UTF-8, written independently of the parser.
std::string Latin1ToUtf8(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      out.push_back(c);
    } else {
      out.push_back(static_cast<char>(0xC0 | (u >> 6)));
      out.push_back(static_cast<char>(0x80 | (u & 0x3F)));
    }
  }
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// The part headers a multipart body with `disposition` as its one part's Content-Disposition
// yields: the same parser, reached through MultipartParser as an upload reaches it.
Result<http::PartHeaders> PartThroughMultipart(std::string_view disposition) {
  const std::string body =
      "--b\r\nContent-Disposition: " + std::string(disposition) + "\r\n\r\nx\r\n--b--\r\n";
  Outcome outcome = Parse("b", body, {}, SIZE_MAX, nullptr);
  if (outcome.error) return tl::unexpected(*outcome.error);
  FUZZ_CHECK(outcome.parts.size() == 1, disposition);
  return outcome.parts[0].headers;
}
}  // namespace

int FuzzMultipart(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (data[0] % 3) {
    case 0:
      MultipartDifferential(data[1], rest);
      break;
    case 1:
      MultipartRoundTrip(data[1], rest);
      break;
    default:
      ContentTypeBoundary(rest);
      break;
  }
  return 0;
}

int FuzzRange(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static constexpr uint64_t kSizes[] = {
      0, 1, 2, 100, 1000, uint64_t{1} << 40, UINT64_MAX - 1, UINT64_MAX};
  const uint64_t length = kSizes[data[0] % 8];
  const std::string_view header(reinterpret_cast<const char*>(data) + 1, size - 1);

  const http::RangeDecision d = http::ParseRange(header, length);
  using Kind = http::RangeDecision::Kind;
  if (d.kind == Kind::kPartial) {
    FUZZ_CHECK(d.first <= d.last && d.last < length, std::string(header));
    const std::string content_range = http::ContentRange(d.first, d.last, length);
    FUZZ_CHECK(content_range == "bytes " + std::to_string(d.first) + "-" + std::to_string(d.last) +
                                    "/" + std::to_string(length),
               content_range);
  }
  if (header.find('=') == std::string_view::npos) {
    FUZZ_CHECK(d.kind == Kind::kWhole, std::string(header));
  }
  if (auto expected = ReferenceRange(header, length)) {
    FUZZ_CHECK(expected->kind == d.kind, std::string(header));
    if (d.kind == Kind::kPartial) {
      FUZZ_CHECK(expected->first == d.first && expected->last == d.last, std::string(header));
    }
  }
  // If-Range: a match means the same (trimmed) strong tag.
  const size_t half = header.size() / 2;
  const std::string_view a = header.substr(0, half);
  const std::string_view b = header.substr(half);
  if (http::IfRangeMatches(a, b) && !Trimmed(a).empty()) {
    FUZZ_CHECK(Trimmed(a) == Trimmed(b), std::string(header));
    FUZZ_CHECK(Trimmed(a).front() == '"', std::string(header));
  }
  if (http::IfRangeMatches(header, "\"x\""))
    FUZZ_CHECK(Trimmed(header).empty() || Trimmed(header) == "\"x\"", std::string(header));
  return 0;
}

int FuzzFilenames(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const std::string clean = http::DropInvalidUtf8(input);
  FUZZ_CHECK(IsValidUtf8(clean), clean);
  FUZZ_CHECK(http::DropInvalidUtf8(clean) == clean, clean);
  if (IsValidUtf8(input)) FUZZ_CHECK(clean == input, clean);

  const std::string name = http::Mp3NameFor(input);
  FUZZ_CHECK(IsValidUtf8(name), name);
  FUZZ_CHECK(name.size() >= 5 && name.size() <= 204, name);
  FUZZ_CHECK(name.substr(name.size() - 4) == ".mp3", name);
  FUZZ_CHECK(name.front() != '.' && name.front() != ' ', name);
  FUZZ_CHECK(name.find_first_of("/\\") == std::string::npos, name);
  for (char c : name) {
    FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F, name);
  }
  FUZZ_CHECK(http::Mp3NameFor(name) == name, name);

  const std::string value = http::AttachmentDisposition(input);
  static constexpr std::string_view kStart = "attachment; filename=\"";
  static constexpr std::string_view kMiddle = "\"; filename*=UTF-8''";
  FUZZ_CHECK(value.substr(0, kStart.size()) == kStart, value);
  const size_t middle = value.find(kMiddle, kStart.size());  // kStart ends with a quote
  FUZZ_CHECK(middle != std::string::npos, value);
  for (char c : value) {
    FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F,
               value);
  }
  const std::string_view fallback =
      std::string_view(value).substr(kStart.size(), middle - kStart.size());
  FUZZ_CHECK(fallback.find_first_of("\"\\/%") == std::string_view::npos, value);
  // Decode filename* and check it is the (cleaned) input.
  const std::string_view encoded = std::string_view(value).substr(middle + kMiddle.size());
  std::string decoded;
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%') {
      FUZZ_CHECK(i + 2 < encoded.size(), value);
      auto hex = [&](char c) {
        if (c >= '0' && c <= '9') return c - '0';
        FUZZ_CHECK(c >= 'A' && c <= 'F', value);  // upper case, as RFC 3986 recommends
        return c - 'A' + 10;
      };
      decoded.push_back(static_cast<char>(hex(encoded[i + 1]) * 16 + hex(encoded[i + 2])));
      i += 2;
    } else {
      FUZZ_CHECK(std::string_view("!#$&+-.^_`|~").find(encoded[i]) != std::string_view::npos ||
                     (encoded[i] >= '0' && encoded[i] <= '9') ||
                     (encoded[i] >= 'a' && encoded[i] <= 'z') ||
                     (encoded[i] >= 'A' && encoded[i] <= 'Z'),
                 value);
      decoded.push_back(encoded[i]);
    }
  }
  FUZZ_CHECK(IsValidUtf8(decoded), value);
  // What we send, our own parser reads back (filename* wins over the fallback).
  auto parsed = http::ParseContentDisposition(value);
  FUZZ_CHECK(parsed.has_value(), value);
  FUZZ_CHECK(parsed->type == "attachment" && parsed->filename == decoded, value);
  FUZZ_CHECK(decoded.find_first_of("/\\\r\n") == std::string::npos, value);
  if (!clean.empty() && clean.find_first_of("/\\") == std::string::npos) {
    bool printable = true;
    for (char c : clean) printable = printable && c >= 0x20 && c < 0x7F;
    if (printable) FUZZ_CHECK(decoded == clean, value);
  }
  return 0;
}

int FuzzContentDisposition(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const std::string_view input = AsText(data + 1, size - 1);

  // 1. Arbitrary bytes as a header value.
  auto parsed = http::ParseContentDisposition(input);
  if (!parsed) {
    FUZZ_CHECK(parsed.error().code == ErrorCode::kInvalidArgument, parsed.error().message);
    FUZZ_CHECK(parsed.error().message.starts_with("malformed Content-Disposition header: "),
               parsed.error().message);
  } else {
    FUZZ_CHECK(!parsed->type.empty(), std::string(input));
    for (char c : parsed->type) {
      FUZZ_CHECK(!(c >= 'A' && c <= 'Z'), parsed->type);
      FUZZ_CHECK(c != ';' && c != ' ' && c != '"' && c != '=', parsed->type);
    }
  }
  // A value a header line can carry must get the same verdict inside a multipart upload.
  if (HeaderSafe(input) == input && !input.empty() && input.front() != ' ' &&
      input.front() != '\t' && input.back() != ' ' && input.back() != '\t') {
    auto part = PartThroughMultipart(input);
    const bool usable = parsed && parsed->type == "form-data" && parsed->name.has_value();
    FUZZ_CHECK(part.has_value() == usable, std::string(input));
    if (part) {
      FUZZ_CHECK(part->name == *parsed->name, std::string(input));
      FUZZ_CHECK(part->filename == parsed->filename, std::string(input));
    }
  }

  // 2. Round trip: a value built from parts of the input parses back to them.
  const size_t cut = input.find('\0');
  const std::string_view raw_name = input.substr(0, cut);
  const std::string_view raw_file =
      cut == std::string_view::npos ? std::string_view() : input.substr(cut + 1);
  const std::string name = HeaderSafe(raw_name);
  const std::string file = HeaderSafe(raw_file);
  const bool upper = flags & 1;
  const std::string sep = (flags & 2) ? " ;\t" : "; ";
  const std::string eq = (flags & 2) ? " = " : "=";
  auto key = [&](std::string_view k) { return upper ? Upper(k) : std::string(k); };
  std::string name_param = key("name") + eq + Quoted(name);
  std::string file_param;
  std::optional<std::string> expected_file;
  switch ((flags >> 2) & 3) {
    case 0:  // no file
      break;
    case 1:  // a quoted filename
      file_param = key("filename") + eq + Quoted(file);
      expected_file = file;
      break;
    case 2:  // RFC 8187 UTF-8: any bytes at all, percent-encoded
      file_param =
          key("filename*") + eq + (upper ? "UTF-8" : "utf-8") + "''" + PercentEncode(raw_file);
      expected_file = std::string(raw_file);
      break;
    default:  // RFC 8187 ISO-8859-1 beside a plain fallback, which it must win over
      file_param = key("filename") + eq + Quoted("fallback") + sep + key("filename*") + eq +
                   "ISO-8859-1'en'" + PercentEncode(raw_file);
      expected_file = Latin1ToUtf8(raw_file);
      break;
  }
  std::string value = key("form-data") + sep;
  if (file_param.empty()) {
    value += name_param;
  } else if (flags & 16) {
    value += file_param + sep + name_param;
  } else {
    value += name_param + sep + file_param;
  }
  if (flags & 32) value += ";";  // a trailing empty parameter is allowed
  auto built = http::ParseContentDisposition(value);
  FUZZ_CHECK(built.has_value(), value + " -> " + built.error().message);
  FUZZ_CHECK(built->type == "form-data", value);
  FUZZ_CHECK(built->name == name, value);
  FUZZ_CHECK(built->filename == expected_file, value);
  auto part = PartThroughMultipart(value);
  FUZZ_CHECK(part.has_value(), value + " -> " + part.error().message);
  FUZZ_CHECK(part->name == name && part->filename == expected_file, value);
  return 0;
}

}  // namespace vmp3::fuzz
