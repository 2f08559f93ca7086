#include "common/io.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "support/bytes.hpp"
#include "support/fixtures.hpp"

namespace vmp3 {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const fs::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

using test::Bytes;

std::vector<std::string> DirEntries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  return s;
}

// Reads everything through `buffer_size`-byte reads.
std::string Drain(ByteSource& src, size_t buffer_size) {
  std::string out;
  std::vector<std::byte> buf(buffer_size);
  for (;;) {
    auto n = src.Read(buf);
    EXPECT_TRUE(n) << n.error().message;
    if (!n || *n == 0) return out;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
}

// --- FileSource ----------------------------------------------------------------------------------

TEST(FileSourceTest, ReadsTheWholeFileAndReportsItsSize) {
  const fs::path p = TempDir() / "data.bin";
  const std::string content = Pattern(100'003);
  WriteFile(p, content);
  auto src = FileSource::Open(p);
  ASSERT_TRUE(src) << src.error().message;
  EXPECT_TRUE((*src)->Seekable());
  ASSERT_TRUE((*src)->Size());
  EXPECT_EQ(*(*src)->Size(), content.size());
  EXPECT_EQ((*src)->Describe(), "data.bin");
  EXPECT_EQ(Drain(**src, 4096), content);
  // At the end, reads keep returning 0.
  std::array<std::byte, 16> buf{};
  auto n = (*src)->Read(buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
}

TEST(FileSourceTest, SeeksToAbsoluteOffsets) {
  const fs::path p = TempDir() / "data.bin";
  const std::string content = Pattern(10'000);
  WriteFile(p, content);
  auto src = FileSource::Open(p);
  ASSERT_TRUE(src) << src.error().message;
  std::array<std::byte, 100> buf{};
  for (uint64_t offset : {5000u, 0u, 9950u, 1234u}) {
    SCOPED_TRACE(offset);
    ASSERT_TRUE((*src)->Seek(offset));
    auto n = (*src)->Read(buf);
    ASSERT_TRUE(n);
    const size_t expected = std::min<size_t>(buf.size(), content.size() - offset);
    ASSERT_EQ(*n, expected);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), *n),
              content.substr(offset, expected));
  }
  ASSERT_TRUE((*src)->Seek(20'000));  // past the end: reads see the end
  auto n = (*src)->Read(buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
}

TEST(FileSourceTest, EmptyFileHasSizeZero) {
  const fs::path p = TempDir() / "empty";
  WriteFile(p, "");
  auto src = FileSource::Open(p);
  ASSERT_TRUE(src) << src.error().message;
  EXPECT_EQ((*src)->Size(), std::optional<uint64_t>(0));
  EXPECT_EQ(Drain(**src, 64), "");
}

TEST(FileSourceTest, MissingFileIsNotFound) {
  auto src = FileSource::Open(TempDir() / "missing.mp4");
  ASSERT_FALSE(src);
  EXPECT_EQ(src.error().code, ErrorCode::kNotFound);
  EXPECT_NE(src.error().message.find("missing.mp4"), std::string::npos) << src.error().message;
}

TEST(FileSourceTest, DirectoryIsRefused) {
  auto src = FileSource::Open(TempDir());
  ASSERT_FALSE(src);
  EXPECT_EQ(src.error().code, ErrorCode::kInvalidArgument);
}

// --- AtomicFileSink ------------------------------------------------------------------------------

TEST(AtomicFileSinkTest, NothingUnderTheFinalNameUntilCommit) {
  const fs::path dir = TempDir();
  const fs::path dest = dir / "out.mp3";
  const std::string content = Pattern(70'000);
  {
    auto sink = AtomicFileSink::Create(dest, /*overwrite=*/false);
    ASSERT_TRUE(sink) << sink.error().message;
    EXPECT_TRUE((*sink)->Seekable());
    ASSERT_TRUE((*sink)->Write(Bytes(std::string_view(content).substr(0, 30'000))));
    ASSERT_TRUE((*sink)->Write(Bytes(std::string_view(content).substr(30'000))));
    EXPECT_EQ((*sink)->Position(), content.size());
    EXPECT_FALSE(fs::exists(dest));
    auto entries = DirEntries(dir);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].front(), '.') << "temporary file should be hidden: " << entries[0];

    auto committed = (*sink)->Commit();
    ASSERT_TRUE(committed) << committed.error().message;
    EXPECT_TRUE(fs::exists(dest));
    EXPECT_TRUE((*sink)->Commit()) << "a second Commit is a no-op";
  }
  EXPECT_EQ(ReadFile(dest), content);
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{"out.mp3"}) << "temporary file left behind";
}

TEST(AtomicFileSinkTest, DestroyingUncommittedLeavesNothing) {
  const fs::path dir = TempDir();
  {
    auto sink = AtomicFileSink::Create(dir / "out.mp3", false);
    ASSERT_TRUE(sink) << sink.error().message;
    ASSERT_TRUE((*sink)->Write(Bytes("half-written")));
  }
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{});
}

TEST(AtomicFileSinkTest, SeekRewritesInPlace) {
  // The MP3 muxer goes back to fill in the Xing header; that must not truncate or append.
  const fs::path dest = TempDir() / "out.bin";
  {
    auto sink = AtomicFileSink::Create(dest, false);
    ASSERT_TRUE(sink) << sink.error().message;
    ASSERT_TRUE((*sink)->Write(Bytes("0123456789")));
    ASSERT_TRUE((*sink)->Seek(2));
    EXPECT_EQ((*sink)->Position(), 2u);
    ASSERT_TRUE((*sink)->Write(Bytes("XY")));
    EXPECT_EQ((*sink)->Position(), 4u);
    ASSERT_TRUE((*sink)->Seek(10));
    ASSERT_TRUE((*sink)->Write(Bytes("!")));
    ASSERT_TRUE((*sink)->Commit());
  }
  EXPECT_EQ(ReadFile(dest), "01XY456789!");
}

TEST(AtomicFileSinkTest, RefusesAnExistingDestinationWithoutOverwrite) {
  const fs::path dir = TempDir();
  const fs::path dest = dir / "out.mp3";
  WriteFile(dest, "precious");
  auto sink = AtomicFileSink::Create(dest, /*overwrite=*/false);
  ASSERT_FALSE(sink);
  EXPECT_EQ(sink.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(ReadFile(dest), "precious");
  EXPECT_EQ(DirEntries(dir).size(), 1u);
}

TEST(AtomicFileSinkTest, DoesNotClobberAFileThatAppearedBeforeCommit) {
  const fs::path dir = TempDir();
  const fs::path dest = dir / "out.mp3";
  auto sink = AtomicFileSink::Create(dest, /*overwrite=*/false);
  ASSERT_TRUE(sink) << sink.error().message;
  ASSERT_TRUE((*sink)->Write(Bytes("new")));
  WriteFile(dest, "someone else's");
  auto committed = (*sink)->Commit();
  ASSERT_FALSE(committed);
  EXPECT_EQ(committed.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(ReadFile(dest), "someone else's");
  sink->reset();
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{"out.mp3"}) << "temporary file left behind";
}

TEST(AtomicFileSinkTest, OverwriteReplacesOnlyAtCommit) {
  const fs::path dir = TempDir();
  const fs::path dest = dir / "out.mp3";
  WriteFile(dest, "old content");
  auto sink = AtomicFileSink::Create(dest, /*overwrite=*/true);
  ASSERT_TRUE(sink) << sink.error().message;
  ASSERT_TRUE((*sink)->Write(Bytes("new")));
  EXPECT_EQ(ReadFile(dest), "old content");
  ASSERT_TRUE((*sink)->Commit());
  EXPECT_EQ(ReadFile(dest), "new");
  sink->reset();
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{"out.mp3"});
}

TEST(AtomicFileSinkTest, OverwriteUncommittedKeepsTheOldFile) {
  const fs::path dir = TempDir();
  const fs::path dest = dir / "out.mp3";
  WriteFile(dest, "old content");
  {
    auto sink = AtomicFileSink::Create(dest, /*overwrite=*/true);
    ASSERT_TRUE(sink) << sink.error().message;
    ASSERT_TRUE((*sink)->Write(Bytes("new")));
  }
  EXPECT_EQ(ReadFile(dest), "old content");
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{"out.mp3"});
}

TEST(AtomicFileSinkTest, MissingDirectoryIsNotFound) {
  auto sink = AtomicFileSink::Create(TempDir() / "no" / "such" / "out.mp3", false);
  ASSERT_FALSE(sink);
  EXPECT_EQ(sink.error().code, ErrorCode::kNotFound);
}

TEST(AtomicFileSinkTest, TwoSinksForOneDestinationDoNotShareATemporaryFile) {
  const fs::path dir = TempDir();
  const fs::path dest = dir / "out.mp3";
  auto a = AtomicFileSink::Create(dest, true);
  auto b = AtomicFileSink::Create(dest, true);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*a)->Write(Bytes("from a")));
  ASSERT_TRUE((*b)->Write(Bytes("from b")));
  EXPECT_EQ(DirEntries(dir).size(), 2u);
  ASSERT_TRUE((*a)->Commit());
  EXPECT_EQ(ReadFile(dest), "from a");
  ASSERT_TRUE((*b)->Commit());
  EXPECT_EQ(ReadFile(dest), "from b");
}

TEST(AtomicFileSinkTest, AbortRemovesTheTemporaryFileAndEndsTheSink) {
  const fs::path dir = TempDir();
  auto sink = AtomicFileSink::Create(dir / "out.mp3", false);
  ASSERT_TRUE(sink) << sink.error().message;
  ASSERT_TRUE((*sink)->Write(Bytes("partial")));
  (*sink)->Abort();
  (*sink)->Abort();  // idempotent
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{});
  EXPECT_EQ((*sink)->Write(Bytes("more")).error().code, ErrorCode::kConflict);
  EXPECT_EQ((*sink)->Commit().error().code, ErrorCode::kConflict);
  EXPECT_FALSE((*sink)->committed());
}

TEST(AtomicFileSinkTest, AFailedRenameLeavesTheDestinationAndNoTemporaryFile) {
  const fs::path dir = TempDir();
  const fs::path dest = dir / "out";
  fs::create_directories(dest / "occupied");  // rename() cannot replace a non-empty directory
  auto sink = AtomicFileSink::Create(dest, /*overwrite=*/true);
  ASSERT_TRUE(sink) << sink.error().message;
  ASSERT_TRUE((*sink)->Write(Bytes("bytes")));
  auto committed = (*sink)->Commit();
  ASSERT_FALSE(committed);
  EXPECT_NE(committed.error().message.find(dest.string()), std::string::npos)
      << committed.error().message;
  EXPECT_FALSE((*sink)->committed());
  EXPECT_TRUE(fs::is_directory(dest / "occupied"));
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{"out"}) << "temporary file left behind";
}

TEST(AtomicFileSinkTest, TemporaryDirectoryElsewhereAndParentsCreatedAtCommit) {
  const fs::path root = TempDir();
  fs::create_directories(root / "tmp");
  const fs::path dest = root / "a" / "b" / "c.bin";
  auto sink = AtomicFileSink::Create(dest, AtomicFileOptions{.overwrite = true,
                                                             .temp_dir = root / "tmp",
                                                             .create_directories = true,
                                                             .name_in_messages = "object a/b/c"});
  ASSERT_TRUE(sink) << sink.error().message;
  ASSERT_TRUE((*sink)->Write(Bytes("payload")));
  EXPECT_EQ(DirEntries(root / "tmp").size(), 1u);
  EXPECT_FALSE(fs::exists(root / "a")) << "no directories for a file that may never be committed";
  ASSERT_TRUE((*sink)->Commit());
  EXPECT_TRUE((*sink)->committed());
  EXPECT_EQ(ReadFile(dest), "payload");
  EXPECT_EQ(DirEntries(root / "tmp"), std::vector<std::string>{});
  EXPECT_EQ((*sink)->version().size, 7u);
  struct stat st {};
  ASSERT_EQ(::stat(dest.c_str(), &st), 0);
  EXPECT_EQ((*sink)->version().inode, static_cast<uint64_t>(st.st_ino));
}

TEST(AtomicFileSinkTest, MessagesUseTheGivenName) {
  const fs::path missing = TempDir() / "no" / "such";
  auto sink =
      AtomicFileSink::Create(missing / "f", AtomicFileOptions{.name_in_messages = "object f"});
  ASSERT_FALSE(sink);
  EXPECT_EQ(sink.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(sink.error().message.starts_with("cannot create object f: ")) << sink.error().message;
  EXPECT_EQ(sink.error().message.find(missing.string()), std::string::npos);
}

// --- WriteFileAtomically -------------------------------------------------------------------------

TEST(WriteFileAtomicallyTest, WritesTheWholeFileAndLeavesNoTemporaryFile) {
  const fs::path dir = TempDir();
  ASSERT_TRUE(WriteFileAtomically(dir / "config", "key = value\n", AtomicFileOptions{}));
  EXPECT_EQ(ReadFile(dir / "config"), "key = value\n");
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{"config"});
  ASSERT_TRUE(
      WriteFileAtomically(dir / "config", "replaced", AtomicFileOptions{.overwrite = true}));
  EXPECT_EQ(ReadFile(dir / "config"), "replaced");
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{"config"});
}

TEST(WriteFileAtomicallyTest, NoOverwriteRefusesAnExistingDestination) {
  const fs::path dir = TempDir();
  WriteFile(dir / "key", "the first key");
  auto written = WriteFileAtomically(dir / "key", "a second key", AtomicFileOptions{});
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(ReadFile(dir / "key"), "the first key");
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{"key"}) << "temporary file left behind";
}

TEST(WriteFileAtomicallyTest, ASecretFileIsExactlyOwnerOnlyWhateverTheUmask) {
  const fs::path dir = TempDir() / "keys";
  // A umask that would also take the owner's write bit: exact_mode must still give 0600.
  const mode_t old_umask = ::umask(0277);
  auto written = WriteFileAtomically(
      dir / "secret.key", "seed",
      AtomicFileOptions{.mode = 0600, .exact_mode = true, .create_directories = true});
  ::umask(old_umask);
  ASSERT_TRUE(written) << written.error().message;
  struct stat st {};
  ASSERT_EQ(::stat((dir / "secret.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadFile(dir / "secret.key"), "seed");
  EXPECT_EQ(DirEntries(dir), std::vector<std::string>{"secret.key"});
}

TEST(WriteFileAtomicallyTest, WithoutExactModeTheUmaskApplies) {
  const fs::path dir = TempDir();
  const mode_t old_umask = ::umask(0027);
  auto written = WriteFileAtomically(dir / "shared", "x", AtomicFileOptions{.mode = 0666});
  ::umask(old_umask);
  ASSERT_TRUE(written) << written.error().message;
  struct stat st {};
  ASSERT_EQ(::stat((dir / "shared").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

}  // namespace
}  // namespace vmp3
