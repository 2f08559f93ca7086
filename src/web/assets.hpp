// The browser UI: every file of web/ compiled into the library at build time by
// cmake/embed_assets.cmake, so a single binary serves the page with no files beside it.
//
// The table is constant data: safe to read from any thread, never freed.
#pragma once

#include <span>
#include <string_view>

namespace vmp3::web {

struct Asset {
  std::string_view path;          // relative to web/, e.g. "index.html", "app.js"
  std::string_view content_type;  // from the file extension, with charset for text
  std::string_view etag;          // strong, quoted: "\"<first 32 hex digits of SHA-256>\""
  std::span<const unsigned char> bytes;
};

// The asset at `path` (relative to web/, no leading slash), or null when there is none.
const Asset* FindAsset(std::string_view path);

// Every embedded asset, sorted by path.
std::span<const Asset> AllAssets();

}  // namespace vmp3::web
