// Download file names: what a converted file is called and how that name is sent to a browser.
//
// Uploaded file names are untrusted bytes: any encoding, path components from old browsers
// ("C:\Users\me\clip.mp4"), traversal attempts ("../../x"), control characters. Everything here
// returns valid UTF-8 that is safe to show, to store and to put in a header. Pure functions;
// thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace vmp3::http {

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
