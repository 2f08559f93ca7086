#include "common/io.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <vector>

namespace vmp3 {
namespace {

// Makes the entries of `dir` (a rename or link just done) durable.
Status SyncDirectory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int err = errno;
  if (fd < 0) return tl::unexpected(ErrnoError(err, "cannot open", dir.filename().string()));
  int rc = ::fsync(fd);
  err = errno;
  ::close(fd);
  if (rc != 0) return tl::unexpected(ErrnoError(err, "cannot sync", dir.filename().string()));
  return {};
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

}  // namespace

Result<std::unique_ptr<FileSource>> FileSource::Open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return tl::unexpected(ErrnoError(err, "cannot open", path.string()));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    Error e = ErrnoError(err, "cannot stat", path.string());
    ::close(fd);
    return tl::unexpected(e);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return MakeError(ErrorCode::kInvalidArgument, fmt::format("{} is a directory", path.string()));
  }
  return std::unique_ptr<FileSource>(new FileSource(fd, static_cast<uint64_t>(st.st_size), path));
}

FileSource::~FileSource() { ::close(fd_); }

Result<size_t> FileSource::Read(std::span<std::byte> out) {
  for (;;) {
    ssize_t n = ::read(fd_, out.data(), out.size());
    if (n >= 0) return static_cast<size_t>(n);
    const int err = errno;
    if (err != EINTR) return tl::unexpected(ErrnoError(err, "cannot read", path_.string()));
  }
}

Status FileSource::Seek(uint64_t offset) {
  if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
    const int err = errno;
    return tl::unexpected(ErrnoError(err, "cannot seek in", path_.string()));
  }
  return {};
}

Result<std::unique_ptr<AtomicFileSink>> AtomicFileSink::Create(
    const std::filesystem::path& destination, const AtomicFileOptions& options) {
  const std::string name =
      options.name_in_messages.empty() ? destination.string() : options.name_in_messages;
  struct stat existing {};
  if (!options.overwrite && ::lstat(destination.c_str(), &existing) == 0) {
    return MakeError(ErrorCode::kAlreadyExists, fmt::format("{} exists", name));
  }
  std::filesystem::path dir = destination.parent_path();
  if (dir.empty()) dir = ".";
  if (options.create_directories && options.temp_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return tl::unexpected(ErrnoError(ec, "cannot create the directory of", name));
  }
  std::filesystem::path temp =
      options.temp_dir.empty()
          ? dir / fmt::format(".{}.{}.part", destination.filename().string(), RandomSuffix())
          : options.temp_dir / fmt::format("{}{}.part", RandomSuffix(), RandomSuffix());
  const auto mode = static_cast<mode_t>(options.mode);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return tl::unexpected(ErrnoError(errno, "cannot create", name));
  // The umask can only remove bits; exact_mode restores them (a key file must be exactly 0600).
  if (options.exact_mode && ::fchmod(fd, mode) != 0) {
    Error e = ErrnoError(errno, "cannot set the permissions of", name);
    ::close(fd);
    ::unlink(temp.c_str());
    return tl::unexpected(e);
  }
  return std::unique_ptr<AtomicFileSink>(
      new AtomicFileSink(fd, std::move(temp), destination, options));
}

AtomicFileSink::AtomicFileSink(int fd, std::filesystem::path temp,
                               std::filesystem::path destination, AtomicFileOptions options)
    : fd_(fd), temp_(std::move(temp)), destination_(std::move(destination)), options_(options) {
  if (options_.name_in_messages.empty()) options_.name_in_messages = destination_.string();
}

AtomicFileSink::~AtomicFileSink() { Abort(); }

Error AtomicFileSink::ErrnoFailure(int err, std::string_view what) const {
  return ErrnoError(err, what, options_.name_in_messages);
}

Status AtomicFileSink::Write(std::span<const std::byte> data) {
  if (state_ != State::kOpen) {
    return MakeError(ErrorCode::kConflict,
                     fmt::format("{} is already {}", options_.name_in_messages,
                                 state_ == State::kCommitted ? "committed" : "aborted"));
  }
  const std::byte* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return tl::unexpected(ErrnoFailure(errno, "cannot write"));
    }
    p += n;
    left -= static_cast<size_t>(n);
    position_ += static_cast<uint64_t>(n);
  }
  return {};
}

Status AtomicFileSink::Seek(uint64_t offset) {
  if (state_ != State::kOpen) {
    return MakeError(ErrorCode::kConflict,
                     fmt::format("{} is no longer being written", options_.name_in_messages));
  }
  if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0)
    return tl::unexpected(ErrnoFailure(errno, "cannot seek in"));
  position_ = offset;
  return {};
}

void AtomicFileSink::Abort() {
  if (state_ != State::kOpen) return;
  state_ = State::kAborted;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(temp_.c_str());
}

Status AtomicFileSink::Commit() {
  if (state_ == State::kCommitted) return {};
  if (state_ == State::kAborted) {
    return MakeError(ErrorCode::kConflict, fmt::format("{} was aborted and cannot be committed",
                                                       options_.name_in_messages));
  }
  // Every failure before the file is in place aborts: the temporary file goes, the destination
  // stays as it was.
  auto fail = [this](Error error) {
    Abort();
    return tl::unexpected(std::move(error));
  };
  if (::fsync(fd_) != 0) return fail(ErrnoFailure(errno, "cannot sync"));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return fail(ErrnoFailure(errno, "cannot stat"));
  version_ = FileVersion{
      .inode = static_cast<uint64_t>(st.st_ino),
      .size = static_cast<uint64_t>(st.st_size),
      .modified_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return fail(ErrnoFailure(errno, "cannot close"));

  std::filesystem::path dir = destination_.parent_path();
  if (dir.empty()) dir = ".";
  // Directories created now must be synced into their parents too, up to one that existed.
  std::vector<std::filesystem::path> to_sync{dir};
  if (options_.create_directories && !options_.temp_dir.empty()) {
    std::error_code ec;
    for (auto d = dir; !d.empty() && d != d.parent_path() && !std::filesystem::exists(d, ec);
         d = d.parent_path()) {
      to_sync.push_back(d.parent_path());
    }
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return fail(ErrnoError(ec, "cannot create the directory of", options_.name_in_messages));
  }
  if (options_.overwrite) {
    if (::rename(temp_.c_str(), destination_.c_str()) != 0) {
      return fail(ErrnoFailure(errno, "cannot replace"));
    }
  } else {
    // link() fails if the destination appeared meanwhile, so we never clobber a file silently.
    if (::link(temp_.c_str(), destination_.c_str()) != 0) {
      return fail(ErrnoFailure(errno, "cannot create"));
    }
    // The file is in place under both names; a failed unlink only leaves the temporary name.
    ::unlink(temp_.c_str());
  }
  state_ = State::kCommitted;
  for (const auto& d : to_sync) {
    if (auto synced = SyncDirectory(d); !synced) {
      return MakeError(ErrorCode::kIo,
                       fmt::format("{} is in place, but its directory cannot be synced: {}",
                                   options_.name_in_messages, synced.error().message));
    }
  }
  return {};
}

Status WriteFileAtomically(const std::filesystem::path& destination, std::string_view contents,
                           const AtomicFileOptions& options) {
  auto sink = AtomicFileSink::Create(destination, options);
  if (!sink) return tl::unexpected(sink.error());
  if (auto written = (*sink)->Write(std::as_bytes(std::span(contents))); !written) return written;
  return (*sink)->Commit();
}

}  // namespace vmp3
