#include "storage/file_object_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

namespace vmp3 {
namespace {

constexpr size_t kWriteBufferSize = 256 * 1024;
constexpr int64_t kAbandonedTempAgeSeconds = 24 * 60 * 60;

// Messages name the key, not the absolute path: they can reach users and logs.
Error ErrnoError(int err, std::string_view what, std::string_view key) {
  ErrorCode code = ErrorCode::kIo;
  if (err == ENOENT || err == ENOTDIR) code = ErrorCode::kNotFound;
  return Error(code, fmt::format("{} object {}: {}", what, key, std::strerror(err)));
}

ObjectInfo InfoFrom(std::string_view key, uint64_t inode, uint64_t size, int64_t modified_ns) {
  return ObjectInfo{
      .key = std::string(key),
      .size = size,
      .etag = fmt::format("{:x}-{:x}-{:x}", inode, size, static_cast<uint64_t>(modified_ns)),
      .modified_unix = modified_ns / 1'000'000'000,
  };
}

ObjectInfo InfoFromStat(std::string_view key, const struct stat& st) {
  return InfoFrom(key, static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
                  static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec);
}

// The writer's failures are the store's: kIo (a full disk, a vanished directory), or kConflict
// for a writer that is no longer open.
Error StoreError(Error error) {
  if (error.code != ErrorCode::kConflict) error.code = ErrorCode::kIo;
  return error;
}

// Buffers writes into an AtomicFileSink whose temporary file lives in <root>/.tmp.
class FileObjectWriter final : public ObjectWriter {
 public:
  FileObjectWriter(std::unique_ptr<AtomicFileSink> sink, std::string key)
      : sink_(std::move(sink)), key_(std::move(key)) {}
  ~FileObjectWriter() override { Abort(); }

  Status Write(std::span<const std::byte> data) override {
    if (state_ != State::kOpen) return NotOpen();
    if (buffer_.empty()) buffer_.reserve(kWriteBufferSize);
    if (buffer_.size() + data.size() > kWriteBufferSize) {
      if (auto flushed = Flush(); !flushed) return flushed;
    }
    if (data.size() >= kWriteBufferSize) {
      if (auto written = sink_->Write(data); !written)
        return tl::unexpected(StoreError(written.error()));
    } else {
      buffer_.insert(buffer_.end(), data.begin(), data.end());
    }
    position_ += data.size();
    return {};
  }

  uint64_t Position() const override { return position_; }

  Result<ObjectInfo> Commit() override {
    if (state_ != State::kOpen) return NotOpen();
    if (auto flushed = Flush(); !flushed) {
      Abort();
      return tl::unexpected(flushed.error());
    }
    Status committed = sink_->Commit();
    if (!committed && !sink_->committed()) {
      Abort();
      return tl::unexpected(StoreError(committed.error()));
    }
    state_ = State::kCommitted;
    if (!committed) {
      // The object is visible already, and reporting a failure now would break the promise that
      // a failed Commit leaves nothing visible; only its durability across a power loss is weaker.
      spdlog::warn("{}", committed.error().message);
    }
    const AtomicFileSink::FileVersion& v = sink_->version();
    return InfoFrom(key_, v.inode, v.size, v.modified_ns);
  }

  void Abort() override {
    if (state_ != State::kOpen) return;
    state_ = State::kAborted;
    buffer_ = {};
    sink_->Abort();
  }

 private:
  enum class State { kOpen, kCommitted, kAborted };

  tl::unexpected<Error> NotOpen() const {
    return MakeError(ErrorCode::kConflict,
                     fmt::format("the writer of object {} is already {}", key_,
                                 state_ == State::kCommitted ? "committed" : "aborted"));
  }

  Status Flush() {
    auto written = sink_->Write(buffer_);
    buffer_.clear();
    if (!written) return tl::unexpected(StoreError(written.error()));
    return {};
  }

  std::unique_ptr<AtomicFileSink> sink_;
  std::string key_;
  std::vector<std::byte> buffer_;
  uint64_t position_ = 0;
  State state_ = State::kOpen;
};

class FileObjectReader final : public ObjectReader {
 public:
  FileObjectReader(int fd, ObjectInfo info) : fd_(fd), info_(std::move(info)) {}
  ~FileObjectReader() override { ::close(fd_); }

  Result<size_t> Read(std::span<std::byte> out) override {
    for (;;) {
      ssize_t n = ::read(fd_, out.data(), out.size());
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return tl::unexpected(ErrnoError(errno, "cannot read", info_.key));
    }
  }

  Status Seek(uint64_t offset) override {
    if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
      return tl::unexpected(ErrnoError(errno, "cannot seek in", info_.key));
    }
    return {};
  }

  bool Seekable() const override { return true; }
  std::optional<uint64_t> Size() const override { return info_.size; }
  std::string Describe() const override { return info_.key; }
  const ObjectInfo& Info() const override { return info_; }

 private:
  int fd_;
  ObjectInfo info_;
};

void RemoveAbandonedTempFiles(const std::filesystem::path& tmp) {
  std::error_code ec;
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (const auto& entry : std::filesystem::directory_iterator(tmp, ec)) {
    struct stat st {};
    if (::lstat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (now - static_cast<int64_t>(st.st_mtim.tv_sec) > kAbandonedTempAgeSeconds) {
      ::unlink(entry.path().c_str());
    }
  }
}

}  // namespace

Result<std::unique_ptr<FileObjectStore>> FileObjectStore::OpenDirectory(
    const std::filesystem::path& root) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(root, ec);
  if (!ec) std::filesystem::create_directories(absolute / ".tmp", ec);
  if (ec) {
    return MakeError(ErrorCode::kIo, fmt::format("cannot create the object directory {}: {}",
                                                 root.string(), ec.message()));
  }
  RemoveAbandonedTempFiles(absolute / ".tmp");
  return std::unique_ptr<FileObjectStore>(new FileObjectStore(absolute));
}

Result<std::unique_ptr<ObjectWriter>> FileObjectStore::Create(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  auto sink = AtomicFileSink::Create(
      root_ / key, AtomicFileOptions{.overwrite = true,
                                     .temp_dir = tmp_,
                                     .create_directories = true,
                                     .name_in_messages = fmt::format("object {}", key)});
  // Any failure here (ENOENT included: .tmp vanished) is the store's, not a missing object.
  if (!sink) return tl::unexpected(StoreError(sink.error()));
  return std::make_unique<FileObjectWriter>(std::move(*sink), std::string(key));
}

Result<std::unique_ptr<ObjectReader>> FileObjectStore::Open(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  std::filesystem::path path = root_ / key;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(ErrnoError(errno, "cannot open", key));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return tl::unexpected(ErrnoError(err, "cannot stat", key));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return MakeError(ErrorCode::kNotFound, fmt::format("object {} does not exist", key));
  }
  // Objects are read front to back (conversion input, downloads): ask for aggressive readahead.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::make_unique<FileObjectReader>(fd, InfoFromStat(key, st));
}

Result<ObjectInfo> FileObjectStore::Stat(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  struct stat st {};
  if (::stat((root_ / key).c_str(), &st) != 0) {
    return tl::unexpected(ErrnoError(errno, "cannot stat", key));
  }
  if (!S_ISREG(st.st_mode)) {
    return MakeError(ErrorCode::kNotFound, fmt::format("object {} does not exist", key));
  }
  return InfoFromStat(key, st);
}

Status FileObjectStore::Remove(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  if (::unlink((root_ / key).c_str()) != 0) {
    int err = errno;
    // EISDIR: the key is only a prefix of other objects, so there is no object to remove.
    if (err == ENOENT || err == ENOTDIR || err == EISDIR) return {};
    return tl::unexpected(ErrnoError(err, "cannot remove", key));
  }
  return {};
}

Status FileObjectStore::Ping() {
  if (::access(tmp_.c_str(), W_OK | X_OK) != 0 || ::access(root_.c_str(), W_OK | X_OK) != 0) {
    return MakeError(ErrorCode::kUnavailable, fmt::format("object directory {} is not writable: {}",
                                                          root_.string(), std::strerror(errno)));
  }
  return {};
}

std::string FileObjectStore::Describe() const { return "file://" + root_.string(); }

}  // namespace vmp3
