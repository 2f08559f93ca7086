// Entity tags and the conditional requests that compare them (RFC 9110 §8.8.3, §13.1).
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string_view>

namespace vmp3::http {

// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text (RFC 9110
// §8.8.3). The weak indicator is case-sensitive.
struct EntityTag {
  bool weak = false;
  std::string_view opaque;  // the quoted part, quotes included: "\"abc\""
};

// The entity tag `text` holds, without surrounding whitespace; nullopt when it is not exactly one
// well-formed entity tag.
std::optional<EntityTag> ParseEntityTag(std::string_view text);

// Whether If-None-Match `header` matches the current representation, whose ETag header value is
// `current_etag` (quotes included, W/ when weak) — i.e. whether a GET or HEAD should get 304.
// RFC 9110 §13.1.2: "*" matches any current representation; otherwise a comma-separated list of
// entity tags, compared with the weak comparison (opaque tags equal, W/ ignored on both sides),
// optional whitespace and empty list elements allowed. An empty or malformed header, or a
// malformed `current_etag`, matches nothing: the request is then served as if unconditional,
// which is always a correct answer.
bool IfNoneMatchHits(std::string_view header, std::string_view current_etag);

}  // namespace vmp3::http
