// Where vmp3 keeps bytes: uploaded inputs and converted outputs. The embedded implementation
// keeps files under a directory (FileObjectStore); a distributed deployment keeps them in S3.
// Every implementation passes tests/storage/object_store_contract_test.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/io.hpp"

namespace vmp3 {

// Keys are ids that vmp3 makes (e.g. "inputs/<job id>"), never names a user supplied. A valid key
// has 1 to 200 characters from [A-Za-z0-9._/-], no "..", and is made of '/'-separated non-empty
// segments none of which starts with '.' (so no "." segments and no hidden files). kInvalidArgument
// otherwise. Every ObjectStore method validates its key with this.
Status ValidateObjectKey(std::string_view key);
inline constexpr size_t kMaxObjectKeyLength = 200;

// kInvalidArgument unless 1 <= limit <= kMaxListLimit (ObjectStore::List).
inline constexpr int kMaxListLimit = 1000;
Status ValidateListLimit(int limit);

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  // Changes whenever the object is written again, even with the same bytes. Opaque: compare for
  // equality only; etags from different stores are not comparable.
  std::string etag;
  int64_t modified_unix = 0;  // seconds since the epoch
};

// One page of ObjectStore::List.
struct ObjectListing {
  std::vector<ObjectInfo> objects;
  // Pass as start_after to get the next page; empty on the last page. A page that is not the
  // last may hold fewer than `limit` objects, even none: page until this is empty.
  std::string next_start_after;
};

// Streams a new object into the store. Nothing is visible under the key until Commit() succeeds,
// and then the whole object is, atomically replacing any previous object with that key.
// Destroying a writer that was not committed aborts it.
//
// Not seekable: Seek() fails with kInvalidArgument (remote stores upload as they go).
// Threading: one thread at a time. Must not outlive the store that created it.
class ObjectWriter : public ByteSink {
 public:
  Status Seek(uint64_t) final {
    return MakeError(ErrorCode::kInvalidArgument, "an object writer cannot seek");
  }
  bool Seekable() const final { return false; }

  // Makes the written bytes visible under the key. A failed Commit leaves nothing visible (any
  // previous object stays) and aborts the writer. After Commit, Write and Commit fail with
  // kConflict.
  virtual Result<ObjectInfo> Commit() = 0;
  // Discards what was written. Idempotent; does nothing after a successful Commit. Afterwards
  // Write and Commit fail with kConflict.
  virtual void Abort() = 0;
};

// Reads one version of an object: the one current when it was opened. If the object is replaced
// or removed while reading, a reader either keeps reading that version (files) or fails with an
// error (remote stores); it never mixes versions. Seekable; seeking past the end makes Read
// return 0. Threading: one thread at a time. Must not outlive the store that created it.
class ObjectReader : public ByteSource {
 public:
  // The version being read.
  virtual const ObjectInfo& Info() const = 0;
  // A hint that the caller reads mostly front to back: a reader of a remote store may fetch up
  // to `max_bytes` ahead of the position in the background, which costs up to twice that in
  // memory. Readers of local files ignore it (the kernel reads ahead for them).
  virtual void ReadAhead(size_t /*max_bytes*/) {}
};

// Thread-safe: every method may be called from any thread concurrently. What only some stores
// can do (presigned URLs, sweeping abandoned writes) is in storage/capabilities.hpp.
// Errors: kInvalidArgument for a bad key, kNotFound for a missing object, kUnavailable or kIo
// when the backend cannot be reached or fails.
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Starts a new object. Nothing is visible until the writer's Commit().
  virtual Result<std::unique_ptr<ObjectWriter>> Create(std::string_view key) = 0;
  virtual Result<std::unique_ptr<ObjectReader>> Open(std::string_view key) = 0;
  virtual Result<ObjectInfo> Stat(std::string_view key) = 0;
  // Removing a missing object succeeds.
  virtual Status Remove(std::string_view key) = 0;
  // Objects whose keys start with `prefix` (a plain string prefix: "inputs/" or "in"), in
  // ascending byte order of key, strictly after `start_after` (empty: from the first), at most
  // `limit` (1 to kMaxListLimit; kInvalidArgument otherwise). Each ObjectInfo has key, size,
  // etag and modified_unix. Objects being written (not committed) are never listed, nor objects
  // whose names are not valid keys (put there by other tools). Not a snapshot: an object
  // committed or removed while paging may or may not be listed, but every object that exists
  // throughout is listed exactly once. Listed etags are for comparing listings with each other:
  // S3 lists its content hash, not the per-commit etag Stat() reports.
  virtual Result<ObjectListing> List(std::string_view prefix, std::string_view start_after,
                                     int limit) = 0;
  // Checks that the backend is reachable and writable (for readiness probes).
  virtual Status Ping() = 0;
  // Where objects are, for logs; never contains a secret.
  virtual std::string Describe() const = 0;
};

}  // namespace vmp3
