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
// Any other URL fails with kInvalidArgument (S3 comes later). Error messages name only the URL's
// scheme, since a URL may carry credentials.
Result<std::shared_ptr<ObjectStore>> MakeObjectStore(std::string_view url,
                                                     const std::filesystem::path& data_dir);

}  // namespace vmp3
