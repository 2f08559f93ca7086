// What is specific to the file store and the storage factory; the shared behaviour is in
// object_store_contract_test.cpp.
#include "storage/file_object_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <ctime>
#include <fstream>

#include "storage/object_store_factory.hpp"
#include "support/fixtures.hpp"

namespace vmp3 {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

size_t CountFiles(const fs::path& dir) {
  size_t n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) n += entry.is_regular_file() ? 1 : 0;
  return n;
}

TEST(FileObjectStore, KeepsObjectsAsFilesUnderTheRoot) {
  fs::path root = TempDir() / "root";
  auto store = FileObjectStore::OpenDirectory(root);
  ASSERT_TRUE(store) << store.error().message;
  auto writer = (*store)->Create("outputs/x.mp3");
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->Write(Bytes("mp3 bytes")));
  EXPECT_EQ(CountFiles(root / ".tmp"), 1u) << "bytes stream into a temporary file";
  EXPECT_FALSE(fs::exists(root / "outputs/x.mp3"));
  ASSERT_TRUE((*writer)->Commit());
  EXPECT_EQ(CountFiles(root / ".tmp"), 0u);
  EXPECT_EQ(fs::file_size(root / "outputs/x.mp3"), 9u);
  EXPECT_EQ((*store)->Describe(), "file://" + root.string());
}

TEST(FileObjectStore, AbortAndDestructionLeaveNoTemporaryFiles) {
  fs::path root = TempDir();
  auto store = FileObjectStore::OpenDirectory(root);
  ASSERT_TRUE(store);
  {
    auto aborted = (*store)->Create("a");
    ASSERT_TRUE((*aborted)->Write(Bytes("x")));
    (*aborted)->Abort();
    auto dropped = (*store)->Create("b");
    ASSERT_TRUE((*dropped)->Write(Bytes("y")));
  }
  EXPECT_EQ(CountFiles(root / ".tmp"), 0u);
}

TEST(FileObjectStore, OpeningRemovesOnlyStaleTemporaryFiles) {
  fs::path root = TempDir();
  fs::create_directories(root / ".tmp");
  std::ofstream(root / ".tmp/stale.part") << "left by a crash";
  std::ofstream(root / ".tmp/live.part") << "another process is writing";
  struct utimbuf old_times {};
  old_times.actime = old_times.modtime = std::time(nullptr) - 2 * 24 * 3600;
  ASSERT_EQ(::utime((root / ".tmp/stale.part").c_str(), &old_times), 0);

  ASSERT_TRUE(FileObjectStore::OpenDirectory(root));
  EXPECT_FALSE(fs::exists(root / ".tmp/stale.part"));
  EXPECT_TRUE(fs::exists(root / ".tmp/live.part"));
}

TEST(FileObjectStore, ADirectoryIsNotAnObject) {
  fs::path root = TempDir();
  auto store = FileObjectStore::OpenDirectory(root);
  ASSERT_TRUE(store);
  fs::create_directories(root / "dir/sub");
  EXPECT_EQ((*store)->Stat("dir").error().code, ErrorCode::kNotFound);
  EXPECT_EQ((*store)->Open("dir").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE((*store)->Remove("dir"));
  EXPECT_TRUE(fs::exists(root / "dir/sub"));
}

TEST(FileObjectStore, PingFailsWhenTheDirectoryIsGone) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can write anywhere";
  fs::path root = TempDir();
  auto store = FileObjectStore::OpenDirectory(root);
  ASSERT_TRUE(store);
  EXPECT_TRUE((*store)->Ping());
  fs::permissions(root, fs::perms::owner_read | fs::perms::owner_exec);
  auto ping = (*store)->Ping();
  fs::permissions(root, fs::perms::owner_all);
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, ErrorCode::kUnavailable);
}

TEST(FileObjectStore, PingFailsWhenTheTemporaryDirectoryIsRemoved) {
  fs::path root = TempDir();
  auto store = FileObjectStore::OpenDirectory(root);
  ASSERT_TRUE(store);
  fs::remove_all(root / ".tmp");
  EXPECT_EQ((*store)->Ping().error().code, ErrorCode::kUnavailable);
  EXPECT_FALSE((*store)->Create("x"));
}

TEST(ObjectStoreFactory, FileDefaultsToTheDataDirectory) {
  fs::path data = TempDir();
  for (std::string_view url : {"", "file"}) {
    auto store = MakeObjectStore(url, data);
    ASSERT_TRUE(store) << store.error().message;
    EXPECT_EQ((*store)->Describe(), "file://" + (data / "objects").string());
  }
  EXPECT_TRUE(fs::is_directory(data / "objects"));
}

TEST(ObjectStoreFactory, FileUrlWithAbsolutePath) {
  fs::path elsewhere = TempDir() / "elsewhere";
  auto store = MakeObjectStore("file://" + elsewhere.string(), TempDir());
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_EQ((*store)->Describe(), "file://" + elsewhere.string());
  EXPECT_TRUE(fs::is_directory(elsewhere));
}

TEST(ObjectStoreFactory, RejectsOtherUrlsWithoutEchoingThem) {
  for (std::string_view url : {"file://relative/path", "file://", "memory"}) {
    auto store = MakeObjectStore(url, TempDir());
    ASSERT_FALSE(store) << url;
    EXPECT_EQ(store.error().code, ErrorCode::kInvalidArgument);
  }
  auto ftp = MakeObjectStore("ftp://admin:s3cr3t@files:21/bucket", TempDir());
  ASSERT_FALSE(ftp);
  EXPECT_EQ(ftp.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(ftp.error().message.find("unsupported storage URL"), std::string::npos);
  EXPECT_EQ(ftp.error().message.find("s3cr3t"), std::string::npos) << ftp.error().message;
}

}  // namespace
}  // namespace vmp3
