// Picks the ObjectStore implementation from a storage URL (the --storage setting).
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "storage/object_store.hpp"

namespace vmp3 {

// url:
//   "file" or ""        files under data_dir/objects
//   "file:///abs/path"  files under /abs/path
//   "s3://bucket[/prefix]?endpoint=...&region=..."  S3 (see storage/s3_object_store.hpp), with
//                       credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
//                       AWS_SESSION_TOKEN; nothing is contacted until the store is used
// Any other URL fails with kInvalidArgument. Error messages never repeat the URL, since a URL may
// carry credentials.
Result<std::shared_ptr<ObjectStore>> MakeObjectStore(std::string_view url,
                                                     const std::filesystem::path& data_dir);

}  // namespace vmp3
