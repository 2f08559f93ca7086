#include "common/io.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace vmp3 {
namespace {

Error ErrnoError(std::string_view what, const std::filesystem::path& path) {
  int err = errno;
  ErrorCode code = ErrorCode::kIo;
  if (err == ENOENT) code = ErrorCode::kNotFound;
  if (err == EACCES || err == EPERM) code = ErrorCode::kPermissionDenied;
  if (err == EEXIST) code = ErrorCode::kAlreadyExists;
  return Error(code, fmt::format("{} {}: {}", what, path.string(), std::strerror(err)));
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

}  // namespace

Result<std::unique_ptr<FileSource>> FileSource::Open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(ErrnoError("cannot open", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Error e = ErrnoError("cannot stat", path);
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
    if (errno != EINTR) return tl::unexpected(ErrnoError("cannot read", path_));
  }
}

Status FileSource::Seek(uint64_t offset) {
  if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0)
    return tl::unexpected(ErrnoError("cannot seek in", path_));
  return {};
}

Result<std::unique_ptr<AtomicFileSink>> AtomicFileSink::Create(
    const std::filesystem::path& destination, bool overwrite) {
  if (!overwrite && std::filesystem::exists(destination)) {
    return MakeError(
        ErrorCode::kAlreadyExists,
        fmt::format("{} exists (use --overwrite to replace it)", destination.string()));
  }
  std::filesystem::path dir = destination.parent_path();
  if (dir.empty()) dir = ".";
  std::filesystem::path temp =
      dir / fmt::format(".{}.{}.part", destination.filename().string(), RandomSuffix());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return tl::unexpected(ErrnoError("cannot create", temp));
  return std::unique_ptr<AtomicFileSink>(new AtomicFileSink(fd, temp, destination, overwrite));
}

AtomicFileSink::~AtomicFileSink() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

Status AtomicFileSink::Write(std::span<const std::byte> data) {
  const std::byte* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return tl::unexpected(ErrnoError("cannot write", temp_));
    }
    p += n;
    left -= static_cast<size_t>(n);
    position_ += static_cast<uint64_t>(n);
  }
  return {};
}

Status AtomicFileSink::Seek(uint64_t offset) {
  if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0)
    return tl::unexpected(ErrnoError("cannot seek in", temp_));
  position_ = offset;
  return {};
}

Status AtomicFileSink::Commit() {
  if (committed_) return {};
  if (::fsync(fd_) != 0) return tl::unexpected(ErrnoError("cannot sync", temp_));
  ::close(fd_);
  fd_ = -1;
  if (!overwrite_) {
    // link() fails if the destination appeared meanwhile, so we never clobber a file silently.
    if (::link(temp_.c_str(), destination_.c_str()) != 0) {
      return tl::unexpected(ErrnoError("cannot create", destination_));
    }
    ::unlink(temp_.c_str());
  } else if (::rename(temp_.c_str(), destination_.c_str()) != 0) {
    return tl::unexpected(ErrnoError("cannot rename onto", destination_));
  }
  committed_ = true;
  return {};
}

}  // namespace vmp3
