#include "http/range.hpp"

#include <limits>
#include <optional>

#include "common/text.hpp"
#include "http/conditional.hpp"

namespace vmp3::http {
namespace {

// 1*DIGIT; saturates at UINT64_MAX, which compares the same way against any real size.
std::optional<uint64_t> ParseNumber(std::string_view s) {
  if (s.empty()) return std::nullopt;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  uint64_t value = 0;
  for (char c : s) {
    if (!IsAsciiDigit(c)) return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    value = value > (kMax - digit) / 10 ? kMax : value * 10 + digit;
  }
  return value;
}

// a < b for two digit strings of any length (so that saturated values still compare right).
bool DecimalLess(std::string_view a, std::string_view b) {
  while (a.size() > 1 && a.front() == '0') a.remove_prefix(1);
  while (b.size() > 1 && b.front() == '0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

}  // namespace

RangeDecision ParseRange(std::string_view range_header, uint64_t size) {
  using Kind = RangeDecision::Kind;
  const RangeDecision whole;
  const RangeDecision unsatisfiable{Kind::kUnsatisfiable, 0, 0};

  std::string_view header = TrimSpaces(range_header);
  size_t eq = header.find('=');
  if (eq == std::string_view::npos || !EqualsIgnoringAsciiCase(header.substr(0, eq), "bytes"))
    return whole;

  // range-set = 1#range-spec; list syntax lets recipients skip empty elements.
  const std::vector<std::string_view> specs = SplitList(header.substr(eq + 1));
  if (specs.size() != 1) return whole;
  const std::string_view spec = specs.front();

  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  std::string_view first_text = spec.substr(0, dash);
  std::string_view last_text = spec.substr(dash + 1);

  if (first_text.empty()) {  // suffix-range: the last N bytes
    std::optional<uint64_t> suffix = ParseNumber(last_text);
    if (!suffix) return whole;
    if (*suffix == 0) return unsatisfiable;
    // A zero-length representation has no byte to put in a 206; send it (empty) with 200.
    if (size == 0) return whole;
    const uint64_t length = *suffix < size ? *suffix : size;
    return {Kind::kPartial, size - length, size - 1};
  }

  std::optional<uint64_t> first = ParseNumber(first_text);
  if (!first) return whole;
  std::optional<uint64_t> last;
  if (!last_text.empty()) {
    last = ParseNumber(last_text);
    if (!last || DecimalLess(last_text, first_text)) return whole;  // invalid range-spec
  }
  if (*first >= size) return unsatisfiable;
  const uint64_t end = (last && *last < size - 1) ? *last : size - 1;
  return {Kind::kPartial, *first, end};
}

std::string ContentRange(uint64_t first, uint64_t last, uint64_t size) {
  return "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(size);
}

std::string UnsatisfiedContentRange(uint64_t size) { return "bytes */" + std::to_string(size); }

bool IfRangeMatches(std::string_view if_range, std::string_view current_etag) {
  if (TrimSpaces(if_range).empty()) return true;
  // Strong comparison (RFC 9110 §8.8.3.2): weak tags never match.
  const std::optional<EntityTag> wanted = ParseEntityTag(if_range);
  const std::optional<EntityTag> current = ParseEntityTag(current_etag);
  return wanted && current && !wanted->weak && !current->weak && wanted->opaque == current->opaque;
}

}  // namespace vmp3::http
