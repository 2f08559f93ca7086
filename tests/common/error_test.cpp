#include "common/error.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <future>
#include <system_error>

namespace vmp3 {
namespace {

TEST(CodeForErrnoTest, MapsTheErrorsCallersActOn) {
  EXPECT_EQ(CodeForErrno(ENOENT), ErrorCode::kNotFound);
  EXPECT_EQ(CodeForErrno(ENOTDIR), ErrorCode::kNotFound);
  EXPECT_EQ(CodeForErrno(EACCES), ErrorCode::kPermissionDenied);
  EXPECT_EQ(CodeForErrno(EPERM), ErrorCode::kPermissionDenied);
  EXPECT_EQ(CodeForErrno(EEXIST), ErrorCode::kAlreadyExists);
  EXPECT_EQ(CodeForErrno(ENOSPC), ErrorCode::kIo);
  EXPECT_EQ(CodeForErrno(EIO), ErrorCode::kIo);
  EXPECT_EQ(CodeForErrno(0), ErrorCode::kIo);
}

TEST(ErrnoErrorTest, NamesTheActionTheSubjectAndTheReason) {
  Error e = ErrnoError(ENOENT, "cannot open", "/x/y");
  EXPECT_EQ(e.code, ErrorCode::kNotFound);
  EXPECT_EQ(e.message, "cannot open /x/y: No such file or directory");
  Error full = ErrnoError(ENOSPC, "cannot write", "object a/b");
  EXPECT_EQ(full.code, ErrorCode::kIo);
  EXPECT_EQ(full.message, "cannot write object a/b: No space left on device");
}

TEST(ErrnoErrorTest, ReadsErrorCodesLikeErrno) {
  Error e = ErrnoError(std::error_code(EACCES, std::generic_category()), "cannot create", "/d");
  EXPECT_EQ(e.code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(e.message, "cannot create /d: Permission denied");
  Error s = ErrnoError(std::error_code(ENOENT, std::system_category()), "cannot list", "/d");
  EXPECT_EQ(s.code, ErrorCode::kNotFound);
  EXPECT_EQ(s.message, "cannot list /d: No such file or directory");
  // What std::filesystem reports comes through the same way.
  std::error_code ec;
  std::filesystem::create_directories("/proc/self/vmp3-cannot-exist/x", ec);
  ASSERT_TRUE(ec);
  Error fs = ErrnoError(ec, "cannot create the directory", "/proc/self/vmp3-cannot-exist/x");
  EXPECT_TRUE(
      fs.message.starts_with("cannot create the directory /proc/self/vmp3-cannot-exist/x: "))
      << fs.message;
  EXPECT_EQ(fs.message.substr(fs.message.rfind(": ") + 2), ec.message());
}

TEST(ErrnoErrorTest, OtherCategoriesAreIoErrors) {
  Error e = ErrnoError(std::make_error_code(std::future_errc::broken_promise), "cannot wait for",
                       "the worker");
  EXPECT_EQ(e.code, ErrorCode::kIo);
  EXPECT_TRUE(e.message.starts_with("cannot wait for the worker: ")) << e.message;
}

}  // namespace
}  // namespace vmp3
