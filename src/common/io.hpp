// Byte streams that the media engine reads from and writes to. Local files implement them here;
// object stores (storage/) implement them so the engine can stream from and into storage.
//
// Threading: an instance is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace vmp3 {

// A readable byte stream. Read returns 0 only at the end.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to out.size() bytes; 0 means end of stream.
  virtual Result<size_t> Read(std::span<std::byte> out) = 0;
  // Moves to an absolute offset. Fails with kInvalidArgument when not Seekable().
  virtual Status Seek(uint64_t offset) = 0;
  virtual bool Seekable() const = 0;
  // Total size when known.
  virtual std::optional<uint64_t> Size() const = 0;
  // A short description for messages (a file name, an object key); never a secret.
  virtual std::string Describe() const = 0;
};

// A writable byte stream. Seek is optional (Seekable()); writers that stream to a remote store
// are not seekable and callers must cope (see media::HeadBufferedSink).
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status Write(std::span<const std::byte> data) = 0;
  virtual Status Seek(uint64_t offset) = 0;
  virtual bool Seekable() const = 0;
  // Bytes from the start of the stream to the current position.
  virtual uint64_t Position() const = 0;
};

// Reads a local file.
class FileSource final : public ByteSource {
 public:
  static Result<std::unique_ptr<FileSource>> Open(const std::filesystem::path& path);
  ~FileSource() override;
  Result<size_t> Read(std::span<std::byte> out) override;
  Status Seek(uint64_t offset) override;
  bool Seekable() const override { return true; }
  std::optional<uint64_t> Size() const override { return size_; }
  std::string Describe() const override { return path_.filename().string(); }

 private:
  FileSource(int fd, uint64_t size, std::filesystem::path path)
      : fd_(fd), size_(size), path_(std::move(path)) {}
  int fd_;
  uint64_t size_;
  std::filesystem::path path_;
};

// How AtomicFileSink writes its file.
struct AtomicFileOptions {
  // Replace an existing destination (rename), or refuse one: Create fails with kAlreadyExists
  // when the destination exists, and Commit links the file into place so that a destination that
  // appeared meanwhile is not clobbered either (kAlreadyExists).
  bool overwrite = false;
  // Permissions of the new file, as for open(2): reduced by the umask unless exact_mode.
  unsigned mode = 0644;
  bool exact_mode = false;
  // Where the temporary file lives: empty means beside the destination, as a hidden
  // ".<name>.<random>.part". Otherwise "<temp_dir>/<random>.part"; temp_dir must be on the
  // destination's filesystem (rename and link cannot cross filesystems).
  std::filesystem::path temp_dir;
  // Create the destination's missing parent directories (before the temporary file when it goes
  // beside the destination, else at Commit).
  bool create_directories = false;
  // What error messages call the file; its path when empty. Lets a caller keep absolute paths
  // out of messages that reach users.
  std::string name_in_messages;
};

// Writes a local file atomically: bytes go to a temporary file (see AtomicFileOptions), which
// Commit() fsyncs, renames (or links) onto the destination, and then fsyncs the destination's
// directory so the new name survives a power loss. Destroying an uncommitted sink, Abort(), and
// a Commit that fails before the file is in place remove the temporary file: a half-written file
// never appears under the final name, and no temporary file is left behind.
class AtomicFileSink final : public ByteSink {
 public:
  // Fails with kAlreadyExists when the destination exists and !overwrite (the message names the
  // destination), kNotFound when its directory is missing, kPermissionDenied or kIo otherwise.
  static Result<std::unique_ptr<AtomicFileSink>> Create(const std::filesystem::path& destination,
                                                        const AtomicFileOptions& options);
  static Result<std::unique_ptr<AtomicFileSink>> Create(const std::filesystem::path& destination,
                                                        bool overwrite) {
    return Create(destination, AtomicFileOptions{.overwrite = overwrite});
  }
  ~AtomicFileSink() override;

  // After Commit or Abort, Write fails with kConflict.
  Status Write(std::span<const std::byte> data) override;
  Status Seek(uint64_t offset) override;
  bool Seekable() const override { return true; }
  uint64_t Position() const override { return position_; }

  // Puts the file in place. A second Commit after a successful one does nothing; Commit after
  // Abort fails with kConflict. One failure leaves the file in place: when the directory cannot
  // be synced after the rename (kIo), the destination holds the new file but its name may not
  // survive a power loss; committed() tells that case apart. Every other failure leaves the
  // destination as it was and aborts the sink.
  Status Commit();
  // Discards what was written (removes the temporary file). Idempotent; nothing after a commit.
  void Abort();
  // True once the file is in place under the destination name.
  bool committed() const { return state_ == State::kCommitted; }

  // The committed file's identity, taken after the last write and before the rename (so it is
  // this sink's file even if another writer replaces the destination at once). Meaningful only
  // when committed().
  struct FileVersion {
    uint64_t inode = 0;
    uint64_t size = 0;
    int64_t modified_ns = 0;  // since the epoch
  };
  const FileVersion& version() const { return version_; }

 private:
  enum class State { kOpen, kCommitted, kAborted };
  AtomicFileSink(int fd, std::filesystem::path temp, std::filesystem::path destination,
                 AtomicFileOptions options);
  Error ErrnoFailure(int err, std::string_view what) const;
  int fd_;
  std::filesystem::path temp_;
  std::filesystem::path destination_;
  AtomicFileOptions options_;
  uint64_t position_ = 0;
  State state_ = State::kOpen;
  FileVersion version_;
};

// Writes a whole small file (a key, a config) atomically through an AtomicFileSink in one call.
Status WriteFileAtomically(const std::filesystem::path& destination, std::string_view contents,
                           const AtomicFileOptions& options);

}  // namespace vmp3
