// Parameters of an HTTP/MIME header value, `type *( OWS ";" OWS name "=" value )` (RFC 9110
// §5.6.6), as Content-Type and Content-Disposition carry them, and the RFC 8187 encoding of
// non-ASCII parameter values (`filename*=UTF-8''%E2%82%AC.mp4`). Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace vmp3::http {

// RFC 9110 tchar: the characters of a token (a type, a parameter or header name).
bool IsTokenChar(char c);

struct HeaderParam {
  std::string name;   // lower case
  std::string value;  // a token as written, or a quoted string without its quotes and escapes
};

// Parses the `*( ";" param )` tail of a header value whose type has already been taken off.
// Values are tokens or quoted strings. In a quoted string a backslash escapes only `"` and `\`;
// any other backslash is kept, so a Windows path sent by an old browser survives. Empty
// parameters (";;") and a trailing ";" are allowed. kInvalidArgument, naming `header` and what is
// wrong: a parameter without a name or value, an unterminated quoted string, text between
// parameters, a parameter given twice (names compare case-insensitively).
Result<std::vector<HeaderParam>> ParseHeaderParams(std::string_view tail, std::string_view header);

// The parameter called `name` (lower case), or null.
const HeaderParam* FindHeaderParam(const std::vector<HeaderParam>& params, std::string_view name);

// Decodes an RFC 8187 ext-value (charset'language'percent-encoded) into UTF-8. UTF-8 and
// ISO-8859-1 are the charsets the RFC requires recipients to support; the language is ignored.
// A UTF-8 value is returned as decoded, whether or not it is well-formed UTF-8. kInvalidArgument
// for another charset, a missing quote or a bad percent escape.
Result<std::string> DecodeExtValue(std::string_view ext_value);

}  // namespace vmp3::http
