// Byte range requests (RFC 9110 §14) for downloads of a representation whose size is known.
//
// Only a single range is served. Whenever the RFC lets a server ignore the Range header, this
// does, and the whole representation is sent with 200:
//  * a range unit other than `bytes` (§14.2: MUST ignore);
//  * more than one range (`bytes=0-1,5-6`): a server MAY ignore Range, and a multipart/byteranges
//    body buys our clients (browsers, media players, curl -C) nothing;
//  * a syntactically invalid ranges-specifier, including last < first (§14.2: MAY ignore).
// A well-formed single range that selects no byte (first >= size, which includes every
// `first-last` range of an empty representation, or a zero-length suffix `-0`) is unsatisfiable:
// answer 416 with UnsatisfiedContentRange(size). A non-zero suffix of an empty representation is
// satisfiable by the RFC's definition but cannot be expressed in a 206, so it gets the whole
// (empty) body.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vmp3::http {

struct RangeDecision {
  enum class Kind {
    kWhole,          // no usable Range: 200 with the whole body
    kPartial,        // 206 with bytes [first, last] and Content-Range: ContentRange(...)
    kUnsatisfiable,  // 416 with Content-Range: UnsatisfiedContentRange(size)
  };
  Kind kind = Kind::kWhole;
  uint64_t first = 0;  // inclusive; meaningful for kPartial only
  uint64_t last = 0;   // inclusive; first <= last < size

  uint64_t length() const { return last - first + 1; }
};

// `range_header` is the Range field value, empty when the request has none.
RangeDecision ParseRange(std::string_view range_header, uint64_t size);

// "bytes first-last/size". Requires first <= last < size.
std::string ContentRange(uint64_t first, uint64_t last, uint64_t size);

// "bytes */size", for a 416 response.
std::string UnsatisfiedContentRange(uint64_t size);

// Whether a Range request may be honoured given its If-Range value (RFC 9110 §13.1.5).
// True when `if_range` is empty (no If-Range), or is a strong entity tag equal to `current_etag`
// (strong comparison: W/ tags never match). An HTTP-date or anything else yields false, i.e.
// serve the whole body; that is always a correct answer, only a less efficient one.
// `current_etag` is the ETag header value of the representation, quotes included.
bool IfRangeMatches(std::string_view if_range, std::string_view current_etag);

}  // namespace vmp3::http
