// Picks the ObjectStore implementation from a storage URL (the --storage setting).
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "storage/capabilities.hpp"
#include "storage/object_store.hpp"

namespace vmp3 {

// A store and what else it can do: each capability is null when the store lacks it.
struct ObjectStorage {
  std::shared_ptr<ObjectStore> store;
  // S3 with presign=true only: downloads redirect clients to the store.
  std::shared_ptr<PresignedUrls> presigned_urls;
  // Files (temporary files) and S3 (multipart uploads); the janitor sweeps with it.
  std::shared_ptr<AbandonedWriteSweeper> abandoned_writes;
};

// url:
//   "file" or ""        files under data_dir/objects
//   "file:///abs/path"  files under /abs/path
//   "s3://bucket[/prefix]?endpoint=...&region=..."  S3 (see storage/s3_config.hpp), with
//                       credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
//                       AWS_SESSION_TOKEN; nothing is contacted until the store is used
// Any other URL fails with kInvalidArgument. Error messages never repeat the URL, since a URL may
// carry credentials.
Result<ObjectStorage> MakeObjectStore(std::string_view url, const std::filesystem::path& data_dir);

}  // namespace vmp3
