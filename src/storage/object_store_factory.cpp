#include "storage/object_store_factory.hpp"

#include <fmt/format.h>

#include "storage/file_object_store.hpp"

namespace vmp3 {

Result<std::shared_ptr<ObjectStore>> MakeObjectStore(std::string_view url,
                                                     const std::filesystem::path& data_dir) {
  std::filesystem::path root;
  if (url.empty() || url == "file") {
    root = data_dir / "objects";
  } else if (url.starts_with("file://")) {
    std::string_view path = url.substr(std::string_view("file://").size());
    if (!path.starts_with('/') || path.size() < 2) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a file storage URL needs an absolute path, as in file:///var/lib/vmp3");
    }
    root = std::filesystem::path(path);
  } else {
    size_t colon = url.find(':');
    std::string_view scheme = colon == std::string_view::npos ? url : url.substr(0, colon);
    if (scheme.size() > 16) scheme = scheme.substr(0, 16);
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("unsupported storage URL scheme '{}' (supported: file, "
                                 "file:///path)",
                                 scheme));
  }
  auto store = FileObjectStore::OpenDirectory(root);
  if (!store) return tl::unexpected(store.error());
  return std::shared_ptr<ObjectStore>(std::move(*store));
}

}  // namespace vmp3
