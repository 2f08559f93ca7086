// What only some object stores can do, each as a small interface of its own instead of a
// do-nothing virtual on ObjectStore: a wrapper of ObjectStore (a decorator adding metrics or
// faults) cannot swallow them by accident, and a caller holds a capability only when the store
// behind it really has it. MakeObjectStore (object_store_factory.hpp) hands them out beside the
// store, null when absent.
//
// Threading: as ObjectStore, every method may be called from any thread concurrently.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace vmp3 {

// URLs that let anyone holding them read an object without credentials (S3 presigned URLs). The
// download role redirects clients there instead of streaming the bytes itself.
class PresignedUrls {
 public:
  virtual ~PresignedUrls() = default;
  // A URL for GET (Range included) of `key` that works until `expires` from now. Does not check
  // that the object exists. kInvalidArgument for a bad key or a lifetime the store cannot sign.
  virtual Result<std::string> PresignedGetUrl(std::string_view key,
                                              std::chrono::seconds expires) const = 0;
};

// Cleans up after writers that never ended because their process died: S3 multipart uploads,
// temporary files. The janitor calls it periodically.
class AbandonedWriteSweeper {
 public:
  virtual ~AbandonedWriteSweeper() = default;
  // Discards writes started at least `older_than` ago and neither committed nor aborted; returns
  // how many. `older_than` must exceed the longest write a live process may still be doing.
  virtual Result<int> AbortAbandonedWrites(std::chrono::seconds older_than) = 0;
};

}  // namespace vmp3
