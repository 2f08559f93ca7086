// File names in Content-Disposition: reading the header of an uploaded part, naming the converted
// file, and offering that name to a browser.
//
// Uploaded file names are untrusted bytes: any encoding, path components from old browsers
// ("C:\Users\me\clip.mp4"), traversal attempts ("../../x"), control characters. Everything here
// that makes a name returns valid UTF-8 that is safe to show, to store and to put in a header.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace vmp3::http {

// A Content-Disposition value as a recipient reads it (RFC 6266; RFC 7578 §4.2 for the parts of
// multipart/form-data).
struct ContentDisposition {
  std::string type;                     // lower case: "form-data", "attachment", "inline", ...
  std::optional<std::string> name;      // the `name` parameter (a form field's name)
  std::optional<std::string> filename;  // see ParseContentDisposition
};

// Parses `type *( ";" parameter )` (see http/header_params.hpp for the parameter syntax).
// `filename` is the decoded `filename*` (RFC 8187, UTF-8 or ISO-8859-1) when present, else the
// `filename` parameter: untrusted bytes, possibly empty, with path separators or invalid UTF-8
// (Mp3NameFor and DropInvalidUtf8 deal with those). Other parameters are ignored.
// kInvalidArgument when the type is not a token or a parameter is malformed or given twice.
Result<ContentDisposition> ParseContentDisposition(std::string_view value);

// Removes every byte that is not part of a well-formed UTF-8 sequence (overlong forms, surrogates
// and code points above U+10FFFF are ill-formed too). Valid input is returned unchanged.
std::string DropInvalidUtf8(std::string_view bytes);

// The name of the MP3 made from an upload called `original_filename`:
// "My Clip.final.mp4" -> "My Clip.final.mp3", "notes" -> "notes.mp3", "../../x" -> "x.mp3",
// "C:\\a\\b.mov" -> "b.mp3", "" -> "audio.mp3".
// Only the last path component is kept (both / and \ separate, a drive prefix is dropped); the
// extension replaced is the part after the last dot when it is 1-8 ASCII letters or digits;
// invalid UTF-8, control characters and bidirectional overrides (which can disguise an
// extension) are dropped; leading dots (hidden files, "..") and trailing dots and spaces are
// trimmed; the stem is cut to at most 200 bytes, never inside a character.
std::string Mp3NameFor(std::string_view original_filename);

// A Content-Disposition value offering `utf8_filename` as a download (RFC 6266, RFC 8187):
//   attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded
// The fallback is for clients without RFC 8187 support: each character outside printable ASCII
// and each of " \ / % becomes '_'. In the encoded form control characters and path separators
// also become '_'. Invalid UTF-8 is dropped first; an empty name becomes "download".
std::string AttachmentDisposition(std::string_view utf8_filename);

}  // namespace vmp3::http
