#include "http/multipart.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/text.hpp"
#include "http/content_disposition.hpp"
#include "http/header_params.hpp"

namespace vmp3::http {
namespace {

constexpr size_t kMaxBoundaryLength = 70;  // RFC 2046 §5.1.1

bool IsBoundaryChar(char c) {
  if (IsAsciiAlnum(c)) return true;
  return std::strchr("'()+_,-./:=? ", c) != nullptr && c != '\0';
}

Status CheckBoundary(std::string_view boundary) {
  if (boundary.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "the multipart boundary is empty");
  }
  if (boundary.size() > kMaxBoundaryLength) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the multipart boundary is longer than 70 characters");
  }
  if (!std::all_of(boundary.begin(), boundary.end(), IsBoundaryChar) || boundary.back() == ' ') {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the multipart boundary contains characters RFC 2046 does not allow");
  }
  return {};
}

Result<PartHeaders> ParsePartHeaders(std::string_view block) {
  auto malformed = [](std::string what) {
    return MakeError(ErrorCode::kInvalidArgument, "malformed multipart part headers: " + what);
  };
  // Unfold into (name, value) fields first; obsolete line folding is still legal in MIME.
  std::vector<std::pair<std::string, std::string>> fields;
  size_t pos = 0;
  while (pos < block.size()) {
    size_t end = block.find("\r\n", pos);
    if (end == std::string_view::npos) end = block.size();
    std::string_view line = block.substr(pos, end - pos);
    pos = end + 2;
    for (char c : line) {
      unsigned char u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7F) return malformed("control character in a header");
    }
    if (!line.empty() && IsOws(line.front())) {
      if (fields.empty()) return malformed("continuation line before any header");
      std::string& value = fields.back().second;
      value.push_back(' ');
      value.append(TrimSpaces(line));
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return malformed("a line is not a header");
    std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return malformed("invalid header name");
    }
    fields.emplace_back(AsciiLowerCopy(name), std::string(TrimSpaces(line.substr(colon + 1))));
  }

  const std::string* disposition = nullptr;
  const std::string* content_type = nullptr;
  for (const auto& [name, value] : fields) {
    if (name == "content-disposition") {
      if (disposition != nullptr) return malformed("more than one Content-Disposition");
      disposition = &value;
    } else if (name == "content-type") {
      if (content_type != nullptr) return malformed("more than one Content-Type");
      content_type = &value;
    } else if (name == "content-transfer-encoding") {
      std::string encoding = AsciiLowerCopy(TrimSpaces(value));
      if (encoding != "7bit" && encoding != "8bit" && encoding != "binary") {
        return malformed("Content-Transfer-Encoding '" + std::string(TrimSpaces(value)) +
                         "' is not supported; send the bytes as they are");
      }
    }
  }
  if (disposition == nullptr) return malformed("a part has no Content-Disposition");

  auto cd = ParseContentDisposition(*disposition);
  if (!cd) return tl::unexpected(cd.error());
  if (cd->type != "form-data") return malformed("Content-Disposition of a part must be form-data");
  if (!cd->name) return malformed("Content-Disposition has no name parameter");
  PartHeaders headers;
  headers.name = std::move(*cd->name);
  headers.filename = std::move(cd->filename);
  if (content_type != nullptr) headers.content_type = *content_type;
  return headers;
}

}  // namespace

Result<std::string> BoundaryFromContentType(std::string_view content_type) {
  size_t semicolon = content_type.find(';');
  std::string_view type = TrimSpaces(content_type.substr(0, semicolon));
  if (!EqualsIgnoringAsciiCase(type, "multipart/form-data")) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "expected Content-Type multipart/form-data, got '" + std::string(type) + "'");
  }
  std::string_view rest =
      semicolon == std::string_view::npos ? std::string_view() : content_type.substr(semicolon);
  auto params = ParseHeaderParams(rest, "Content-Type");
  if (!params) return tl::unexpected(params.error());
  const HeaderParam* boundary = FindHeaderParam(*params, "boundary");
  if (boundary == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the multipart/form-data Content-Type has no boundary parameter");
  }
  if (auto ok = CheckBoundary(boundary->value); !ok) return tl::unexpected(ok.error());
  return boundary->value;
}

MultipartParser::MultipartParser(std::string boundary, MultipartHandler& handler,
                                 MultipartLimits limits)
    : delimiter_("\r\n--" + boundary), handler_(handler), limits_(limits) {
  if (auto ok = CheckBoundary(boundary); !ok) {
    state_ = State::kFailed;
    error_ = ok.error();
    return;
  }
  // Knuth-Morris-Pratt: failure_[i] is the length of the longest proper prefix of
  // delimiter_[0, i] that is also its suffix.
  failure_.assign(delimiter_.size(), 0);
  size_t k = 0;
  for (size_t i = 1; i < delimiter_.size(); ++i) {
    while (k > 0 && delimiter_[i] != delimiter_[k]) k = failure_[k - 1];
    if (delimiter_[i] == delimiter_[k]) ++k;
    failure_[i] = static_cast<uint8_t>(k);
  }
  // The first boundary may open the body without a preceding line break: act as if the body
  // started with one.
  matched_ = 2;
}

Status MultipartParser::Fail(Error error) {
  state_ = State::kFailed;
  error_ = std::move(error);
  return tl::unexpected(error_);
}

Status MultipartParser::EmitData(std::span<const std::byte> data) {
  if (data.empty() || state_ != State::kBody) return {};
  if (!in_file_part_) {
    // The bytes within the limit reach the handler before the field is refused, so the handler
    // sees the same bytes, and the same error wins, wherever the chunks given to Feed are cut
    // (found by the multipart fuzzer: a whole body was refused for its field before a handler
    // limit that a chunked one hit first).
    const size_t room = limits_.max_field_bytes - field_bytes_;
    if (data.size() > room) {
      if (room > 0) {
        field_bytes_ += room;
        if (auto ok = handler_.OnPartData(data.first(room)); !ok) return Fail(ok.error());
      }
      return Fail(Error(ErrorCode::kTooLarge, "form field '" + field_name_ + "' is longer than " +
                                                  std::to_string(limits_.max_field_bytes) +
                                                  " bytes"));
    }
    field_bytes_ += data.size();
  }
  if (auto ok = handler_.OnPartData(data); !ok) return Fail(ok.error());
  return {};
}

Result<size_t> MultipartParser::ScanForDelimiter(std::span<const std::byte> data) {
  const size_t held = matched_;  // delimiter_[0, held) precedes data in the stream
  const char* bytes = reinterpret_cast<const char*>(data.data());
  const size_t n = data.size();
  size_t m = matched_;
  size_t i = 0;
  bool found = false;
  while (i < n) {
    if (m == 0) {
      // Nothing pending: skip straight to the next CR, where a delimiter could start.
      const void* cr = std::memchr(bytes + i, '\r', n - i);
      if (cr == nullptr) {
        i = n;
        break;
      }
      i = static_cast<size_t>(static_cast<const char*>(cr) - bytes);
    }
    const char c = bytes[i++];
    while (m > 0 && delimiter_[m] != c) m = failure_[m - 1];
    if (delimiter_[m] == c) ++m;
    if (m == delimiter_.size()) {
      found = true;
      break;
    }
  }
  // Everything before the last m bytes of the stream is certainly data: first the bytes that were
  // held back from earlier chunks (a prefix of the delimiter), then the start of this chunk.
  const size_t emit = held + i - m;
  const size_t from_held = std::min(held, emit);
  if (auto ok = EmitData(std::as_bytes(std::span<const char>(delimiter_.data(), from_held))); !ok) {
    return tl::unexpected(ok.error());
  }
  if (emit > held) {
    if (auto ok = EmitData(data.first(emit - held)); !ok) return tl::unexpected(ok.error());
  }
  if (found) {
    if (state_ == State::kBody) {
      if (auto ok = handler_.OnPartEnd(); !ok) return tl::unexpected(Fail(ok.error()).error());
    }
    state_ = State::kAfterBoundary;
    m = 0;
  }
  matched_ = m;
  return i;
}

Result<size_t> MultipartParser::ConsumeHeaders(std::span<const std::byte> data) {
  const size_t old_size = header_block_.size();
  // Room for the largest allowed block plus its terminating CRLF CRLF; one byte more proves the
  // block too large.
  const size_t room = limits_.max_header_bytes + 4 - old_size;
  const size_t take = std::min(room, data.size());
  header_block_.append(reinterpret_cast<const char*>(data.data()), take);

  size_t block_end = std::string::npos;  // where the header block ends
  size_t terminator = 0;                 // length of what ends it
  if (header_block_.size() >= 2 && header_block_.compare(0, 2, "\r\n") == 0) {
    block_end = 0;  // no headers at all
    terminator = 2;
  } else {
    size_t from = old_size >= 3 ? old_size - 3 : 0;
    size_t at = header_block_.find("\r\n\r\n", from);
    if (at != std::string::npos) {
      block_end = at;
      terminator = 4;
    }
  }
  if (block_end == std::string::npos) {
    if (header_block_.size() >= limits_.max_header_bytes + 4) {
      return tl::unexpected(
          Fail(Error(ErrorCode::kTooLarge, "the headers of a multipart part are longer than " +
                                               std::to_string(limits_.max_header_bytes) + " bytes"))
              .error());
    }
    return take;  // need more input
  }
  const size_t consumed = block_end + terminator - old_size;
  auto headers = ParsePartHeaders(std::string_view(header_block_).substr(0, block_end));
  header_block_.clear();
  if (!headers) return tl::unexpected(Fail(headers.error()).error());
  ++parts_;
  in_file_part_ = headers->is_file();
  field_bytes_ = 0;
  field_name_ = headers->name;
  state_ = State::kBody;
  matched_ = 0;
  if (auto ok = handler_.OnPartBegin(*headers); !ok)
    return tl::unexpected(Fail(ok.error()).error());
  return consumed;
}

Status MultipartParser::Feed(std::span<const std::byte> chunk) {
  size_t pos = 0;
  while (state_ != State::kFailed && state_ != State::kEpilogue && pos < chunk.size()) {
    auto rest = chunk.subspan(pos);
    const char c = static_cast<char>(rest[0]);
    switch (state_) {
      case State::kPreamble:
      case State::kBody:
      case State::kHeaders: {
        auto used = state_ == State::kHeaders ? ConsumeHeaders(rest) : ScanForDelimiter(rest);
        if (!used) return tl::unexpected(used.error());
        pos += *used;
        break;
      }
      case State::kAfterBoundary:
      case State::kPadding:
        ++pos;
        if (c == '\r') {
          state_ = State::kAfterBoundaryCr;
        } else if (IsOws(c)) {
          state_ = State::kPadding;
        } else if (c == '-' && state_ == State::kAfterBoundary) {
          state_ = State::kAfterBoundaryDash;
        } else {
          return Fail(Error(ErrorCode::kInvalidArgument,
                            "malformed multipart body: a boundary is followed by other text; the "
                            "boundary must not occur inside the content"));
        }
        break;
      case State::kAfterBoundaryCr:
        ++pos;
        if (c != '\n') {
          return Fail(Error(ErrorCode::kInvalidArgument,
                            "malformed multipart body: a boundary line does not end with CRLF"));
        }
        if (parts_ >= limits_.max_parts) {
          return Fail(
              Error(ErrorCode::kTooLarge,
                    "the form has more than " + std::to_string(limits_.max_parts) + " parts"));
        }
        state_ = State::kHeaders;
        break;
      case State::kAfterBoundaryDash:
        ++pos;
        if (c != '-') {
          return Fail(Error(ErrorCode::kInvalidArgument,
                            "malformed multipart body: a boundary is followed by other text; the "
                            "boundary must not occur inside the content"));
        }
        state_ = State::kEpilogue;
        break;
      case State::kEpilogue:
      case State::kFailed:
        break;
    }
  }
  if (state_ == State::kFailed) return tl::unexpected(error_);
  return {};
}

Status MultipartParser::Finish() {
  switch (state_) {
    case State::kEpilogue:
      return {};
    case State::kFailed:
      return tl::unexpected(error_);
    case State::kPreamble:
      return Fail(Error(ErrorCode::kInvalidArgument,
                        "the request body contains no multipart boundary line; it is empty or does "
                        "not match the boundary in Content-Type"));
    default:
      return Fail(Error(ErrorCode::kInvalidArgument,
                        "upload ended before the multipart body was complete"));
  }
}

}  // namespace vmp3::http
