// A streaming multipart/form-data parser (RFC 7578 on top of RFC 2046 §5.1).
//
// Push style: the caller feeds the request body in chunks of any size as they arrive from the
// socket and the parser reports each part to a MultipartHandler as it goes. A part's body is
// never collected: it is passed on in pieces, so memory is bounded by one part's header block
// (MultipartLimits::max_header_bytes) whatever the size of the upload.
//
// Input rules:
//  * The body is `preamble CRLF? --boundary ... (CRLF --boundary ...)* CRLF --boundary-- epilogue`;
//    preamble and epilogue are ignored. Transport padding (spaces, tabs) after a boundary is
//    allowed.
//  * Every part must carry `Content-Disposition: form-data; name="..."` (RFC 7578 §4.2).
//    `filename` and the RFC 5987/8187 `filename*=UTF-8''...` (preferred when both are present)
//    mark a file part. In quoted values a backslash escapes only `"` and `\`; any other backslash
//    is kept, so a Windows path sent by an old browser survives (Mp3NameFor strips it later).
//  * Content-Transfer-Encoding base64 / quoted-printable is refused (RFC 7578 §4.7 deprecates it
//    and we would otherwise store the encoded bytes).
//  * A boundary string followed by anything but padding+CRLF or `--` is malformed: senders must
//    pick a boundary that does not occur in the content (RFC 2046 §5.1.1).
//
// Errors: malformed input fails with kInvalidArgument, a passed limit with kTooLarge, and a
// Status returned by the handler is passed through unchanged. After the first error the parser
// makes no further callbacks and returns that same error from every later Feed/Finish. A part
// that was begun but not ended when an error occurs must be discarded by the handler.
//
// Threading: one instance is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace vmp3::http {

// Extracts the boundary from a request's Content-Type, which must be multipart/form-data.
// Type and parameter names are matched case-insensitively; the value may be a token or a quoted
// string. Fails with kInvalidArgument when the type is wrong or the boundary is missing, empty,
// longer than 70 characters or uses characters RFC 2046 does not allow.
Result<std::string> BoundaryFromContentType(std::string_view content_type);

struct PartHeaders {
  std::string name;                     // the form field name (Content-Disposition `name`)
  std::optional<std::string> filename;  // set for a file part; may be empty (no file chosen)
  std::string content_type;             // as sent; empty when absent (RFC 7578 default text/plain)

  bool is_file() const { return filename.has_value(); }
};

// Receives the parts in order: OnPartBegin, zero or more OnPartData, OnPartEnd, per part.
// Returning an error aborts the parse; Feed returns that error.
class MultipartHandler {
 public:
  virtual ~MultipartHandler() = default;
  virtual Status OnPartBegin(const PartHeaders& headers) = 0;
  // `data` is never empty and is valid only during the call. How a part is cut into pieces
  // has no relation to the chunks given to Feed.
  virtual Status OnPartData(std::span<const std::byte> data) = 0;
  virtual Status OnPartEnd() = 0;
};

struct MultipartLimits {
  // Bytes of one part's header block (without the blank line ending it). kTooLarge when passed.
  size_t max_header_bytes = 16 * 1024;
  // Number of parts. kTooLarge when passed.
  size_t max_parts = 16;
  // Body bytes of a part without a filename (a plain form field). kTooLarge when passed. File
  // parts are not limited here: the handler enforces the upload size.
  size_t max_field_bytes = 64 * 1024;
};

class MultipartParser {
 public:
  // `boundary` as returned by BoundaryFromContentType; when it is not a valid boundary the first
  // Feed fails with kInvalidArgument. `handler` must outlive the parser.
  MultipartParser(std::string boundary, MultipartHandler& handler, MultipartLimits limits = {});

  MultipartParser(const MultipartParser&) = delete;
  MultipartParser& operator=(const MultipartParser&) = delete;

  // Consumes the whole chunk (an empty chunk is fine), making the callbacks it completes.
  Status Feed(std::span<const std::byte> chunk);
  Status Feed(std::string_view chunk) {
    return Feed(std::as_bytes(std::span<const char>(chunk.data(), chunk.size())));
  }

  // Call once the body has ended. Fails with kInvalidArgument unless the closing boundary was
  // seen (a truncated upload).
  Status Finish();

  // True once the closing boundary has been seen; the rest of the body is epilogue.
  bool done() const { return state_ == State::kEpilogue; }
  // Parts begun so far.
  size_t parts() const { return parts_; }

 private:
  enum class State {
    kPreamble,       // looking for the first boundary
    kAfterBoundary,  // just past "--boundary": expecting padding+CRLF or "--"
    kPadding,        // past "--boundary" and some spaces/tabs: expecting more or CRLF
    kAfterBoundaryCr,
    kAfterBoundaryDash,
    kHeaders,  // collecting a part's header block
    kBody,     // streaming a part's body until the next delimiter
    kEpilogue,
    kFailed,
  };

  // Scans for the delimiter, emitting part data (in kBody). Returns the bytes consumed.
  Result<size_t> ScanForDelimiter(std::span<const std::byte> data);
  Result<size_t> ConsumeHeaders(std::span<const std::byte> data);
  Status EmitData(std::span<const std::byte> data);
  Status Fail(Error error);

  std::string delimiter_;         // CRLF "--" boundary
  std::vector<uint8_t> failure_;  // KMP failure function of delimiter_
  MultipartHandler& handler_;
  MultipartLimits limits_;
  State state_ = State::kPreamble;
  // Bytes at the end of the input so far that equal delimiter_[0, matched_). Keeping them as a
  // count is all the buffering the body needs: if the match fails they are re-emitted from
  // delimiter_ itself.
  size_t matched_ = 0;
  std::string header_block_;
  size_t parts_ = 0;
  bool in_file_part_ = false;
  size_t field_bytes_ = 0;
  std::string field_name_;
  Error error_;
};

}  // namespace vmp3::http
