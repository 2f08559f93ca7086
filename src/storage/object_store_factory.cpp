#include "storage/object_store_factory.hpp"

#include <fmt/format.h>

#include "storage/file_object_store.hpp"
#include "storage/s3_object_store.hpp"

namespace vmp3 {

Result<ObjectStorage> MakeObjectStore(std::string_view url, const std::filesystem::path& data_dir) {
  if (url.starts_with("s3:")) {
    auto config = ParseS3Url(url);
    if (!config) return tl::unexpected(config.error());
    auto credentials = S3CredentialsFromEnvironment();
    if (!credentials) return tl::unexpected(credentials.error());
    config->credentials = std::move(*credentials);
    const bool presign = config->presign_downloads;
    auto store = S3ObjectStore::FromConfig(std::move(*config));
    if (!store) return tl::unexpected(store.error());
    std::shared_ptr<S3ObjectStore> s3 = std::move(*store);
    return ObjectStorage{
        .store = s3, .presigned_urls = presign ? s3 : nullptr, .abandoned_writes = s3};
  }
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
    return tl::unexpected(
        UnsupportedUrlScheme("storage", url, "file, file:///path, s3://bucket?endpoint=..."));
  }
  auto store = FileObjectStore::OpenDirectory(root);
  if (!store) return tl::unexpected(store.error());
  std::shared_ptr<FileObjectStore> files = std::move(*store);
  return ObjectStorage{.store = files, .presigned_urls = nullptr, .abandoned_writes = files};
}

}  // namespace vmp3
