// What is specific to the file store and the storage factory; the shared behaviour is in
// object_store_contract_test.cpp.
#include "storage/file_object_store.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/object_store_factory.hpp"
#include "support/bytes.hpp"
#include "support/fixtures.hpp"

namespace vmp3 {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

using test::Bytes;

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

std::vector<std::string> ListKeys(ObjectStore& store, std::string_view prefix, int limit) {
  std::vector<std::string> keys;
  std::string start_after;
  for (;;) {
    auto listing = store.List(prefix, start_after, limit);
    if (!listing) {
      ADD_FAILURE() << listing.error().message;
      return keys;
    }
    for (const ObjectInfo& info : listing->objects) keys.push_back(info.key);
    if (listing->next_start_after.empty()) return keys;
    start_after = listing->next_start_after;
  }
}

TEST(FileObjectStore, ListShowsOnlyCommittedFilesWithValidKeys) {
  fs::path root = TempDir();
  auto store = FileObjectStore::OpenDirectory(root);
  ASSERT_TRUE(store);
  auto writer = (*store)->Create("kept");
  ASSERT_TRUE(writer && (*writer)->Write(Bytes("x")) && (*writer)->Commit());
  auto pending = (*store)->Create("pending");
  ASSERT_TRUE(pending && (*pending)->Write(Bytes(std::string(300'000, 'p'))));
  ASSERT_EQ(CountFiles(root / ".tmp"), 1u);
  // What other tools or people may leave in the directory.
  std::ofstream(root / ".hidden") << "h";
  std::ofstream(root / "space name") << "s";
  fs::create_directories(root / "dir");
  std::ofstream(root / "dir/.partial") << "p";
  fs::create_symlink(root / "kept", root / "link");
  fs::create_directories(root / "empty/deeper");
  ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0600), 0);
  EXPECT_EQ(ListKeys(**store, "", 1000), std::vector<std::string>{"kept"});
}

// Objects created and removed (directories too) while pages are listed: the listing never fails,
// and the objects that stay are listed, each once, in order.
TEST(FileObjectStore, ListingWhileObjectsComeAndGoNeverFails) {
  fs::path root = TempDir();
  auto store = FileObjectStore::OpenDirectory(root);
  ASSERT_TRUE(store);
  std::vector<std::string> stable;
  for (int i = 0; i < 20; ++i) {
    stable.push_back(fmt::format("jobs/{:02}/stable", i));
    auto writer = (*store)->Create(stable.back());
    ASSERT_TRUE(writer && (*writer)->Write(Bytes("s")) && (*writer)->Commit());
  }
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    for (int n = 0; !stop; ++n) {
      const fs::path dir = root / "jobs" / fmt::format("{:02}", n % 20) / "churn";
      std::error_code ec;
      fs::create_directories(dir, ec);
      std::ofstream(dir / "x") << n;
      fs::remove_all(dir, ec);
    }
  });
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> listed = ListKeys(**store, "jobs/", 3);
    std::vector<std::string> kept;
    for (const std::string& key : listed) {
      if (key.ends_with("/stable")) kept.push_back(key);
    }
    ASSERT_EQ(kept, stable) << "round " << round;
    ASSERT_TRUE(std::is_sorted(listed.begin(), listed.end()));
    ASSERT_EQ(std::adjacent_find(listed.begin(), listed.end()), listed.end()) << "a key twice";
  }
  stop = true;
  churn.join();
}

TEST(FileObjectStore, SweepsAbandonedTemporaryFilesByAge) {
  fs::path root = TempDir();
  auto store = FileObjectStore::OpenDirectory(root);
  ASSERT_TRUE(store);
  std::ofstream(root / ".tmp/crashed.part") << "left by a process that died";
  struct utimbuf old_times {};
  old_times.actime = old_times.modtime = std::time(nullptr) - 3 * 3600;
  ASSERT_EQ(::utime((root / ".tmp/crashed.part").c_str(), &old_times), 0);
  auto live = (*store)->Create("live");
  ASSERT_TRUE(live && (*live)->Write(Bytes(std::string(300'000, 'l'))));
  ASSERT_EQ(CountFiles(root / ".tmp"), 2u);

  auto swept = (*store)->AbortAbandonedWrites(std::chrono::hours(1));
  ASSERT_TRUE(swept) << swept.error().message;
  EXPECT_EQ(*swept, 1);
  EXPECT_FALSE(fs::exists(root / ".tmp/crashed.part"));
  EXPECT_EQ(CountFiles(root / ".tmp"), 1u) << "the live writer's file stays";
  ASSERT_TRUE((*live)->Commit());
  EXPECT_EQ(fs::file_size(root / "live"), 300'000u);

  // older_than 0: every write in progress counts as abandoned; its writer cannot commit.
  auto doomed = (*store)->Create("doomed");
  ASSERT_TRUE(doomed && (*doomed)->Write(Bytes(std::string(300'000, 'd'))));
  auto all = (*store)->AbortAbandonedWrites(std::chrono::seconds(0));
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(*all, 1);
  EXPECT_FALSE((*doomed)->Commit());
  EXPECT_EQ((*store)->Stat("doomed").error().code, ErrorCode::kNotFound);
}

TEST(ObjectStoreFactory, FileDefaultsToTheDataDirectory) {
  fs::path data = TempDir();
  for (std::string_view url : {"", "file"}) {
    auto store = MakeObjectStore(url, data);
    ASSERT_TRUE(store) << store.error().message;
    EXPECT_EQ(store->store->Describe(), "file://" + (data / "objects").string());
  }
  EXPECT_TRUE(fs::is_directory(data / "objects"));
}

TEST(ObjectStoreFactory, FileUrlWithAbsolutePath) {
  fs::path elsewhere = TempDir() / "elsewhere";
  auto store = MakeObjectStore("file://" + elsewhere.string(), TempDir());
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_EQ(store->store->Describe(), "file://" + elsewhere.string());
  EXPECT_TRUE(fs::is_directory(elsewhere));
}

TEST(ObjectStoreFactory, FilesCanSweepButNotPresign) {
  auto storage = MakeObjectStore("file", TempDir());
  ASSERT_TRUE(storage) << storage.error().message;
  ASSERT_NE(storage->store, nullptr);
  EXPECT_EQ(storage->presigned_urls, nullptr);
  ASSERT_NE(storage->abandoned_writes, nullptr);
  auto swept = storage->abandoned_writes->AbortAbandonedWrites(std::chrono::hours(24));
  ASSERT_TRUE(swept) << swept.error().message;
  EXPECT_EQ(*swept, 0);
}

TEST(ObjectStoreFactory, RejectsOtherUrlsWithoutEchoingThem) {
  for (std::string_view url : {"file://relative/path", "file://", "memory://elsewhere"}) {
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
