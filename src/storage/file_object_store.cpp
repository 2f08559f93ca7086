#include "storage/file_object_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <vector>

namespace vmp3 {
namespace {

constexpr size_t kWriteBufferSize = 256 * 1024;
constexpr std::chrono::hours kAbandonedTempAge(24);

// A failed system call on the object `key`. Messages name the key, not the absolute path: they
// can reach users and logs. A missing object is kNotFound; anything else (permissions included)
// is the store's own failure, kIo.
Error ObjectError(int err, std::string_view what, std::string_view key) {
  Error error = ErrnoError(err, what, fmt::format("object {}", key));
  if (error.code != ErrorCode::kNotFound) error.code = ErrorCode::kIo;
  return error;
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
      if (errno != EINTR) return tl::unexpected(ObjectError(errno, "cannot read", info_.key));
    }
  }

  Status Seek(uint64_t offset) override {
    if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
      return tl::unexpected(ObjectError(errno, "cannot seek in", info_.key));
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

// Collects the objects of one listing by walking the directory tree in key order. Within a
// directory, entries are visited in the order of their name, with "/" appended to directory
// names: every key under directory "d" starts with "d/", so this is the byte order of the keys.
class Lister {
 public:
  Lister(std::string_view prefix, std::string_view start_after, size_t want)
      : prefix_(prefix), start_after_(start_after), want_(want) {}

  // Lists the directory `dir`, whose objects' keys start with `key_prefix` ("" or "a/b/").
  Status Walk(const std::filesystem::path& dir, const std::string& key_prefix) {
    auto entries = ReadDirectory(dir, key_prefix);
    if (!entries) return tl::unexpected(entries.error());
    for (const Entry& entry : *entries) {
      if (Full()) return {};
      const std::string key = key_prefix + entry.name;
      if (entry.directory) {
        const std::string sub = key + "/";
        if (!Reaches(sub)) continue;
        if (auto walked = Walk(dir / entry.name, sub); !walked) return walked;
        continue;
      }
      if (!key.starts_with(prefix_) || key <= start_after_ || !ValidateObjectKey(key)) continue;
      struct stat st {};
      if (::stat((dir / entry.name).c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) continue;  // removed meanwhile
        return tl::unexpected(ObjectError(errno, "cannot list", key));
      }
      if (!S_ISREG(st.st_mode)) continue;
      objects_.push_back(InfoFromStat(key, st));
    }
    return {};
  }

  bool Full() const { return objects_.size() >= want_; }
  std::vector<ObjectInfo>& objects() { return objects_; }

 private:
  struct Entry {
    std::string name;
    bool directory;
    std::string order;  // name, with "/" after a directory's
  };

  // Whether keys under `sub` ("a/b/") can be listed: they match the prefix, they can be after
  // start_after, and they can be valid keys.
  bool Reaches(const std::string& sub) const {
    if (sub.size() >= kMaxObjectKeyLength) return false;
    if (!sub.starts_with(prefix_) && !prefix_.starts_with(sub)) return false;
    // Every key under sub is before start_after when start_after is beyond all of "sub...".
    return !(start_after_ > sub && !start_after_.starts_with(sub));
  }

  // The visible entries of `dir`: regular files and directories whose names do not start with
  // '.' (so never .tmp, where writes in progress live). A directory removed meanwhile is empty.
  Result<std::vector<Entry>> ReadDirectory(const std::filesystem::path& dir,
                                           std::string_view key_prefix) {
    std::vector<Entry> entries;
    DIR* stream = ::opendir(dir.c_str());
    if (stream == nullptr) {
      const int err = errno;
      if (err == ENOENT || err == ENOTDIR) return entries;
      return tl::unexpected(StoreError(
          ErrnoError(err, "cannot list the objects under", fmt::format("\"{}\"", key_prefix))));
    }
    while (const dirent* d = ::readdir(stream)) {
      std::string name = d->d_name;
      if (name.empty() || name.front() == '.') continue;
      unsigned char type = d->d_type;
      if (type == DT_UNKNOWN) {
        struct stat st {};
        if (::fstatat(::dirfd(stream), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
      }
      // Symbolic links are not followed: vmp3 never makes them, and they could loop.
      if (type != DT_DIR && type != DT_REG) continue;
      std::string order = type == DT_DIR ? name + "/" : name;
      entries.push_back(Entry{std::move(name), type == DT_DIR, std::move(order)});
    }
    ::closedir(stream);
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.order < b.order; });
    return entries;
  }

  const std::string prefix_;
  const std::string start_after_;
  const size_t want_;
  std::vector<ObjectInfo> objects_;
};

// Removes the temporary files in `tmp` not modified for `older_than` (a live writer modifies its
// file at least every 256 KiB written); returns how many.
Result<int> RemoveAbandonedTempFiles(const std::filesystem::path& tmp,
                                     std::chrono::seconds older_than) {
  std::error_code ec;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  int removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(tmp, ec)) {
    struct stat st {};
    if (::lstat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (now - static_cast<int64_t>(st.st_mtim.tv_sec) < older_than.count()) continue;
    if (::unlink(entry.path().c_str()) == 0) {
      ++removed;
    } else if (const int err = errno; err != ENOENT) {  // ENOENT: another process swept it first
      return tl::unexpected(
          StoreError(ErrnoError(err, "cannot remove", "an abandoned temporary file")));
    }
  }
  if (ec) {
    return tl::unexpected(StoreError(
        ErrnoError(ec, "cannot list the temporary files of", tmp.parent_path().string())));
  }
  return removed;
}

}  // namespace

Result<std::unique_ptr<FileObjectStore>> FileObjectStore::OpenDirectory(
    const std::filesystem::path& root) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(root, ec);
  if (!ec) std::filesystem::create_directories(absolute / ".tmp", ec);
  if (ec) {
    return tl::unexpected(
        StoreError(ErrnoError(ec, "cannot create the object directory", root.string())));
  }
  // At most a few files: what crashed processes left. A failure only leaves them for the janitor.
  if (auto swept = RemoveAbandonedTempFiles(absolute / ".tmp", kAbandonedTempAge); !swept) {
    spdlog::warn("{}", swept.error().message);
  }
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
  if (fd < 0) return tl::unexpected(ObjectError(errno, "cannot open", key));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return tl::unexpected(ObjectError(err, "cannot stat", key));
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
    return tl::unexpected(ObjectError(errno, "cannot stat", key));
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
    return tl::unexpected(ObjectError(err, "cannot remove", key));
  }
  return {};
}

Result<ObjectListing> FileObjectStore::List(std::string_view prefix, std::string_view start_after,
                                            int limit) {
  if (auto valid = ValidateListLimit(limit); !valid) return tl::unexpected(valid.error());
  // One more than asked tells whether this is the last page.
  Lister lister(prefix, start_after, static_cast<size_t>(limit) + 1);
  if (auto walked = lister.Walk(root_, ""); !walked) return tl::unexpected(walked.error());
  ObjectListing listing;
  listing.objects = std::move(lister.objects());
  if (listing.objects.size() > static_cast<size_t>(limit)) {
    listing.objects.pop_back();
    listing.next_start_after = listing.objects.back().key;
  }
  return listing;
}

Result<int> FileObjectStore::AbortAbandonedWrites(std::chrono::seconds older_than) {
  return RemoveAbandonedTempFiles(tmp_, older_than);
}

Status FileObjectStore::Ping() {
  if (::access(tmp_.c_str(), W_OK | X_OK) != 0 || ::access(root_.c_str(), W_OK | X_OK) != 0) {
    Error error = ErrnoError(errno, "cannot write to the object directory", root_.string());
    error.code = ErrorCode::kUnavailable;
    return tl::unexpected(std::move(error));
  }
  return {};
}

std::string FileObjectStore::Describe() const { return "file://" + root_.string(); }

}  // namespace vmp3
