#include "web/assets.hpp"

#include <algorithm>

namespace vmp3::web {

// Defined in the source that cmake/embed_assets.cmake generates in the build directory.
namespace generated {
extern const Asset kAssets[];
extern const size_t kAssetCount;
}  // namespace generated

std::span<const Asset> AllAssets() { return {generated::kAssets, generated::kAssetCount}; }

const Asset* FindAsset(std::string_view path) {
  auto assets = AllAssets();
  auto it = std::lower_bound(assets.begin(), assets.end(), path,
                             [](const Asset& a, std::string_view p) { return a.path < p; });
  return it != assets.end() && it->path == path ? &*it : nullptr;
}

}  // namespace vmp3::web
