// Escaping text for XML and HTML (element content and quoted attribute values).
#pragma once

#include <string>
#include <string_view>

namespace vmp3 {

// `text` with & < > " ' replaced by their entities; every other byte unchanged.
std::string EscapeMarkup(std::string_view text);

}  // namespace vmp3
