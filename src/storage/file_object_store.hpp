// ObjectStore on a local (or shared, POSIX) directory: the object "a/b" is the file <root>/a/b.
//
// Writers stream into <root>/.tmp/<random>.part (same filesystem, so the final rename is atomic)
// through an AtomicFileSink: Commit fsyncs the file, renames it over <root>/<key> and fsyncs the
// directory (a failure of that last step is logged, not returned: the object is already visible).
// Keys cannot start a segment with '.', so .tmp never collides with an object. Temporary files a
// crashed process left behind are removed by OpenDirectory() once they are a day old, and by
// AbortAbandonedWrites (the janitor); a live writer, of this or another process sharing the
// directory, modifies its file as it goes and so is never taken for abandoned.
//
// The etag is "<inode>-<size>-<mtime ns>" in hex, like Apache's file etags: free to compute (no
// content hash while streaming, nothing stored beside the file) and different after every
// commit, since a committed file is a new inode and the replaced file is still alive when the
// new one is created. It is not a content hash.
//
// Limitation of files: a key and a key extending it with '/' ("a" and "a/b") cannot both exist;
// committing the second fails with kIo. vmp3's key scheme never does this.
#pragma once

#include <filesystem>
#include <memory>

#include "storage/capabilities.hpp"
#include "storage/object_store.hpp"

namespace vmp3 {

class FileObjectStore final : public ObjectStore, public AbandonedWriteSweeper {
 public:
  // Creates root and root/.tmp when missing.
  static Result<std::unique_ptr<FileObjectStore>> OpenDirectory(const std::filesystem::path& root);

  Result<std::unique_ptr<ObjectWriter>> Create(std::string_view key) override;
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view key) override;
  Result<ObjectInfo> Stat(std::string_view key) override;
  Status Remove(std::string_view key) override;
  // Walks the directories under the root in key order. Each page reads every directory it
  // passes through (and sorts it), so a page costs the size of those directories.
  Result<ObjectListing> List(std::string_view prefix, std::string_view start_after,
                             int limit) override;
  Status Ping() override;
  std::string Describe() const override;
  // Removes temporary files not modified for `older_than`.
  Result<int> AbortAbandonedWrites(std::chrono::seconds older_than) override;

 private:
  explicit FileObjectStore(std::filesystem::path root)
      : root_(std::move(root)), tmp_(root_ / ".tmp") {}
  std::filesystem::path root_;
  std::filesystem::path tmp_;
};

}  // namespace vmp3
