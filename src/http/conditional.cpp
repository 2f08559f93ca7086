#include "http/conditional.hpp"

#include "common/text.hpp"

namespace vmp3::http {
namespace {

bool IsEtagChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == 0x21 || (u >= 0x23 && u != 0x7F);
}

// Reads one entity tag at the front of `s` and removes it; nullopt (s unspecified) when `s` does
// not start with one.
std::optional<EntityTag> TakeEntityTag(std::string_view& s) {
  EntityTag tag;
  if (s.starts_with("W/")) {
    tag.weak = true;
    s.remove_prefix(2);
  }
  if (s.empty() || s.front() != '"') return std::nullopt;
  size_t close = 1;
  while (close < s.size() && IsEtagChar(s[close])) ++close;
  if (close == s.size() || s[close] != '"') return std::nullopt;
  tag.opaque = s.substr(0, close + 1);
  s.remove_prefix(close + 1);
  return tag;
}

}  // namespace

std::optional<EntityTag> ParseEntityTag(std::string_view text) {
  text = TrimSpaces(text);
  auto tag = TakeEntityTag(text);
  if (!tag || !text.empty()) return std::nullopt;
  return tag;
}

bool IfNoneMatchHits(std::string_view header, std::string_view current_etag) {
  header = TrimSpaces(header);
  if (header == "*") return true;
  const std::optional<EntityTag> current = ParseEntityTag(current_etag);
  if (!current) return false;
  bool hit = false;
  // 1#entity-tag: elements separated by commas with optional whitespace; a comma may sit inside
  // an opaque tag, so the list is read tag by tag rather than split at commas.
  while (true) {
    while (!header.empty() && (header.front() == ',' || IsOws(header.front())))
      header.remove_prefix(1);
    if (header.empty()) return hit;
    const std::optional<EntityTag> tag = TakeEntityTag(header);
    if (!tag) return false;
    hit = hit || tag->opaque == current->opaque;
    header = TrimSpaces(header);
    if (!header.empty() && header.front() != ',') return false;
  }
}

}  // namespace vmp3::http
