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

// Writes a local file atomically: bytes go to a hidden temporary file beside the destination,
// which Commit() fsyncs and renames over the destination. Destroying an uncommitted sink removes
// the temporary file, so a half-written file never appears under the final name.
class AtomicFileSink final : public ByteSink {
 public:
  // Fails with kAlreadyExists when the destination exists and !overwrite.
  static Result<std::unique_ptr<AtomicFileSink>> Create(const std::filesystem::path& destination,
                                                        bool overwrite);
  ~AtomicFileSink() override;
  Status Write(std::span<const std::byte> data) override;
  Status Seek(uint64_t offset) override;
  bool Seekable() const override { return true; }
  uint64_t Position() const override { return position_; }
  Status Commit();

 private:
  AtomicFileSink(int fd, std::filesystem::path temp, std::filesystem::path destination,
                 bool overwrite)
      : fd_(fd),
        temp_(std::move(temp)),
        destination_(std::move(destination)),
        overwrite_(overwrite) {}
  int fd_;
  std::filesystem::path temp_;
  std::filesystem::path destination_;
  bool overwrite_;
  uint64_t position_ = 0;
  bool committed_ = false;
};

}  // namespace vmp3
