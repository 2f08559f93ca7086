// The behaviour every ObjectStore must have, run against each backend in
// object_store_contract.hpp.
#include "storage/object_store_contract.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/bytes.hpp"

namespace vmp3::test {
namespace {

// A deterministic byte at each offset, so large objects are checked without keeping a copy.
char PatternByte(uint64_t offset, uint64_t seed = 0) {
  uint64_t x = (offset + seed * 0x9E3779B97F4A7C15ull) * 0xD6E8FEB86659FD93ull;
  return static_cast<char>((x >> 32) ^ (x >> 51));
}

std::string Pattern(uint64_t size, uint64_t seed = 0) {
  std::string s(size, '\0');
  for (uint64_t i = 0; i < size; ++i) s[i] = PatternByte(i, seed);
  return s;
}

Result<std::string> ReadAll(ObjectReader& reader, size_t chunk = 64 * 1024) {
  std::string out;
  std::vector<std::byte> buffer(chunk);
  for (;;) {
    auto n = reader.Read(buffer);
    if (!n) return tl::unexpected(n.error());
    if (*n == 0) return out;
    out.append(reinterpret_cast<const char*>(buffer.data()), *n);
  }
}

Result<std::string> ReadN(ObjectReader& reader, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    auto r = reader.Read(std::as_writable_bytes(std::span<char>(out.data() + got, n - got)));
    if (!r) return tl::unexpected(r.error());
    if (*r == 0) break;
    got += *r;
  }
  out.resize(got);
  return out;
}

class ObjectStoreContract : public ::testing::TestWithParam<ObjectStoreBackend> {
 protected:
  void SetUp() override {
    const ObjectStoreBackend& backend = GetParam();
    if (!backend.required_env.empty() && std::getenv(backend.required_env.c_str()) == nullptr) {
      GTEST_SKIP() << "set " << backend.required_env << " to test the " << backend.name
                   << " object store";
    }
    harness_ = backend.make();
    auto store = harness_->Open();
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
  }

  ObjectInfo Put(std::string_view key, std::string_view content, size_t chunk = 4096) {
    auto writer = store_->Create(key);
    EXPECT_TRUE(writer) << writer.error().message;
    if (!writer) return {};
    for (size_t i = 0; i < content.size(); i += chunk) {
      auto written = (*writer)->Write(Bytes(content.substr(i, chunk)));
      EXPECT_TRUE(written) << written.error().message;
    }
    auto info = (*writer)->Commit();
    EXPECT_TRUE(info) << info.error().message;
    return info ? *info : ObjectInfo{};
  }

  std::string Get(std::string_view key) {
    auto reader = store_->Open(key);
    EXPECT_TRUE(reader) << reader.error().message;
    if (!reader) return {};
    auto content = ReadAll(**reader);
    EXPECT_TRUE(content) << content.error().message;
    return content ? *content : std::string();
  }

  std::unique_ptr<ObjectStoreHarness> harness_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_P(ObjectStoreContract, WritesInManyChunksAndReadsBack) {
  const std::string content = Pattern(1'000'003);
  auto writer = store_->Create("inputs/job-1/source");
  ASSERT_TRUE(writer) << writer.error().message;
  // Uneven chunk sizes, from single bytes to larger than any internal buffer.
  const size_t sizes[] = {1, 7, 4096, 65537, 300'000, 3};
  size_t offset = 0;
  for (int i = 0; offset < content.size(); ++i) {
    size_t n = std::min(sizes[i % std::size(sizes)], content.size() - offset);
    ASSERT_TRUE((*writer)->Write(Bytes(std::string_view(content).substr(offset, n))));
    offset += n;
    EXPECT_EQ((*writer)->Position(), offset);
  }
  auto info = (*writer)->Commit();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->key, "inputs/job-1/source");
  EXPECT_EQ(info->size, content.size());
  EXPECT_FALSE(info->etag.empty());

  auto reader = store_->Open("inputs/job-1/source");
  ASSERT_TRUE(reader) << reader.error().message;
  EXPECT_TRUE((*reader)->Seekable());
  EXPECT_EQ((*reader)->Size(), content.size());
  EXPECT_EQ((*reader)->Info().size, content.size());
  EXPECT_EQ((*reader)->Info().etag, info->etag);
  auto back = ReadAll(**reader, 10'000);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(*back == content) << "read back " << back->size() << " bytes that differ";
}

TEST_P(ObjectStoreContract, SeeksAnywhere) {
  const std::string content = Pattern(100'000, 1);
  Put("seek", content);
  auto reader = store_->Open("seek");
  ASSERT_TRUE(reader) << reader.error().message;
  ObjectReader& r = **reader;

  ASSERT_TRUE(r.Seek(50'000));
  EXPECT_EQ(ReadN(r, 100).value(), content.substr(50'000, 100));
  ASSERT_TRUE(r.Seek(5));
  EXPECT_EQ(ReadN(r, 10).value(), content.substr(5, 10));
  ASSERT_TRUE(r.Seek(99'990));
  EXPECT_EQ(ReadAll(r).value(), content.substr(99'990));
  ASSERT_TRUE(r.Seek(100'000));
  EXPECT_EQ(ReadAll(r).value(), "");
  ASSERT_TRUE(r.Seek(250'000));  // past the end
  EXPECT_EQ(ReadAll(r).value(), "");
  ASSERT_TRUE(r.Seek(0));
  EXPECT_EQ(ReadN(r, 3).value(), content.substr(0, 3));
}

TEST_P(ObjectStoreContract, StatDescribesTheCommittedObject) {
  ObjectInfo committed = Put("outputs/a.mp3", "hello world");
  auto info = store_->Stat("outputs/a.mp3");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->key, "outputs/a.mp3");
  EXPECT_EQ(info->size, 11u);
  EXPECT_EQ(info->etag, committed.etag);
  EXPECT_NEAR(static_cast<double>(info->modified_unix), static_cast<double>(std::time(nullptr)),
              600);
}

TEST_P(ObjectStoreContract, MissingObjectsAreNotFound) {
  auto opened = store_->Open("missing");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::kNotFound);
  auto stat = store_->Stat("missing/too");
  ASSERT_FALSE(stat);
  EXPECT_EQ(stat.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store_->Remove("missing")) << "removing a missing object succeeds";
}

TEST_P(ObjectStoreContract, RemoveMakesTheObjectMissing) {
  Put("doomed", "bytes");
  ASSERT_TRUE(store_->Remove("doomed"));
  EXPECT_EQ(store_->Stat("doomed").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->Open("doomed").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store_->Remove("doomed"));
}

TEST_P(ObjectStoreContract, UncommittedWriterIsNeverVisible) {
  {
    auto writer = store_->Create("pending");
    ASSERT_TRUE(writer) << writer.error().message;
    ASSERT_TRUE((*writer)->Write(Bytes(Pattern(300'000))));
    EXPECT_EQ(store_->Stat("pending").error().code, ErrorCode::kNotFound);
    EXPECT_EQ(store_->Open("pending").error().code, ErrorCode::kNotFound);
  }  // destroyed without Commit
  EXPECT_EQ(store_->Stat("pending").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->Open("pending").error().code, ErrorCode::kNotFound);
}

TEST_P(ObjectStoreContract, AbortDiscardsAndEndsTheWriter) {
  auto writer = store_->Create("aborted");
  ASSERT_TRUE(writer) << writer.error().message;
  ASSERT_TRUE((*writer)->Write(Bytes("partial")));
  (*writer)->Abort();
  (*writer)->Abort();  // idempotent
  auto commit = (*writer)->Commit();
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error().code, ErrorCode::kConflict);
  auto write = (*writer)->Write(Bytes("more"));
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code, ErrorCode::kConflict);
  EXPECT_EQ(store_->Stat("aborted").error().code, ErrorCode::kNotFound);
}

TEST_P(ObjectStoreContract, CommittedWriterAcceptsNothingMore) {
  auto writer = store_->Create("once");
  ASSERT_TRUE(writer) << writer.error().message;
  ASSERT_TRUE((*writer)->Write(Bytes("abc")));
  ASSERT_TRUE((*writer)->Commit());
  EXPECT_EQ((*writer)->Commit().error().code, ErrorCode::kConflict);
  EXPECT_EQ((*writer)->Write(Bytes("d")).error().code, ErrorCode::kConflict);
  (*writer)->Abort();  // no effect after a commit
  writer->reset();
  EXPECT_EQ(Get("once"), "abc");
}

TEST_P(ObjectStoreContract, WriterIsNotSeekable) {
  auto writer = store_->Create("stream");
  ASSERT_TRUE(writer) << writer.error().message;
  EXPECT_FALSE((*writer)->Seekable());
  ASSERT_TRUE((*writer)->Write(Bytes("0123456789")));
  auto seek = (*writer)->Seek(2);
  ASSERT_FALSE(seek);
  EXPECT_EQ(seek.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ((*writer)->Position(), 10u);
  ASSERT_TRUE((*writer)->Commit());
  EXPECT_EQ(Get("stream"), "0123456789");
}

TEST_P(ObjectStoreContract, CommitReplacesAnExistingObject) {
  ObjectInfo old_info = Put("replace", "old content");
  auto writer = store_->Create("replace");
  ASSERT_TRUE(writer) << writer.error().message;
  ASSERT_TRUE((*writer)->Write(Bytes("new, longer content")));
  EXPECT_EQ(Get("replace"), "old content") << "the old object stays until the commit";
  auto new_info = (*writer)->Commit();
  ASSERT_TRUE(new_info) << new_info.error().message;
  EXPECT_EQ(Get("replace"), "new, longer content");
  EXPECT_EQ(new_info->size, 19u);
  EXPECT_NE(new_info->etag, old_info.etag);
  EXPECT_EQ(store_->Stat("replace")->etag, new_info->etag);
}

TEST_P(ObjectStoreContract, RewriteWithSameBytesChangesTheEtag) {
  ObjectInfo first = Put("same", "identical");
  ObjectInfo second = Put("same", "identical");
  EXPECT_NE(first.etag, second.etag);
}

TEST_P(ObjectStoreContract, AbortedOverwriteKeepsTheOldObject) {
  Put("keep", "original");
  {
    auto writer = store_->Create("keep");
    ASSERT_TRUE(writer) << writer.error().message;
    ASSERT_TRUE((*writer)->Write(Bytes("replacement")));
    (*writer)->Abort();
  }
  EXPECT_EQ(Get("keep"), "original");
}

TEST_P(ObjectStoreContract, RejectsMalformedKeys) {
  const std::string bad_keys[] = {
      "",         "/abs",        "trailing/", "a//b",  "..",        "../escape",
      "a/../b",   "a/./b",       ".hidden",   "a/.b",  "space key", "back\\slash",
      "tab\tkey", "caf\xc3\xa9", "a?b",       "a%2fb", "x..y",      std::string(201, 'k')};
  for (const std::string& key : bad_keys) {
    SCOPED_TRACE("key \"" + key + "\"");
    EXPECT_EQ(store_->Create(key).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(store_->Open(key).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(store_->Stat(key).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(store_->Remove(key).error().code, ErrorCode::kInvalidArgument);
  }
}

TEST_P(ObjectStoreContract, AcceptsEveryAllowedKeyCharacter) {
  const std::string good_keys[] = {
      "a",       "inputs/0123456789abcdef", "outputs/Job_1-x.mp3", "a.b.c", "x.y/z-",
      "k/e/y/s", std::string(200, 'k')};
  for (const std::string& key : good_keys) {
    SCOPED_TRACE("key \"" + key + "\"");
    Put(key, key);
    EXPECT_EQ(Get(key), key);
  }
}

TEST_P(ObjectStoreContract, EmptyObject) {
  ObjectInfo info = Put("empty", "");
  EXPECT_EQ(info.size, 0u);
  EXPECT_EQ(store_->Stat("empty")->size, 0u);
  auto reader = store_->Open("empty");
  ASSERT_TRUE(reader) << reader.error().message;
  EXPECT_EQ((*reader)->Size(), 0u);
  EXPECT_EQ(ReadAll(**reader).value(), "");
}

TEST_P(ObjectStoreContract, StreamsALargeObject) {
  constexpr uint64_t kSize = 20 * 1024 * 1024 + 17;
  constexpr size_t kChunk = 64 * 1024;
  auto writer = store_->Create("large");
  ASSERT_TRUE(writer) << writer.error().message;
  std::string chunk;
  for (uint64_t offset = 0; offset < kSize; offset += kChunk) {
    uint64_t n = std::min<uint64_t>(kChunk, kSize - offset);
    chunk.resize(n);
    for (uint64_t i = 0; i < n; ++i) chunk[i] = PatternByte(offset + i, 2);
    ASSERT_TRUE((*writer)->Write(Bytes(chunk)));
  }
  auto info = (*writer)->Commit();
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->size, kSize);

  auto reader = store_->Open("large");
  ASSERT_TRUE(reader) << reader.error().message;
  EXPECT_EQ((*reader)->Size(), kSize);
  std::vector<std::byte> buffer(100'000);
  uint64_t offset = 0;
  for (;;) {
    auto n = (*reader)->Read(buffer);
    ASSERT_TRUE(n) << n.error().message;
    if (*n == 0) break;
    for (size_t i = 0; i < *n; ++i) {
      if (static_cast<char>(buffer[i]) != PatternByte(offset + i, 2)) {
        FAIL() << "byte " << offset + i << " differs";
      }
    }
    offset += *n;
  }
  EXPECT_EQ(offset, kSize);
  ASSERT_TRUE((*reader)->Seek(15 * 1024 * 1024));
  auto tail = ReadN(**reader, 1000);
  ASSERT_TRUE(tail);
  for (size_t i = 0; i < tail->size(); ++i) {
    ASSERT_EQ((*tail)[i], PatternByte(15 * 1024 * 1024 + i, 2)) << "byte " << i << " after seek";
  }
}

// With the read-ahead hint, the bytes are the same whatever the pattern: front to back (the
// windows grow), a seek back, a seek into what was fetched ahead, a seek far ahead.
TEST_P(ObjectStoreContract, ReadAheadReadsTheSameBytes) {
  constexpr uint64_t kSize = 12 * 1024 * 1024 + 5;
  Put("ahead", Pattern(kSize, 6));
  auto reader = store_->Open("ahead");
  ASSERT_TRUE(reader) << reader.error().message;
  ObjectReader& r = **reader;
  r.ReadAhead(4 * 1024 * 1024);
  auto expect_at = [&](uint64_t offset, size_t n) {
    auto got = ReadN(r, n);
    ASSERT_TRUE(got) << got.error().message;
    ASSERT_EQ(got->size(), std::min<uint64_t>(n, kSize - offset)) << "at " << offset;
    for (size_t i = 0; i < got->size(); ++i)
      ASSERT_EQ((*got)[i], PatternByte(offset + i, 6)) << "byte " << offset + i;
  };
  uint64_t offset = 0;
  for (; offset < 7 * 1024 * 1024; offset += 65'536) expect_at(offset, 65'536);
  ASSERT_TRUE(r.Seek(1'000'000));  // back, out of every window
  expect_at(1'000'000, 70'000);
  for (offset = 1'070'000; offset < 3 * 1024 * 1024; offset += 100'000) expect_at(offset, 100'000);
  ASSERT_TRUE(r.Seek(offset + 500'000));  // forward, into what was fetched ahead
  offset += 500'000;
  expect_at(offset, 10'000);
  ASSERT_TRUE(r.Seek(11 * 1024 * 1024));  // far ahead
  expect_at(11 * 1024 * 1024, 2 * 1024 * 1024);
  EXPECT_EQ(ReadAll(r).value(), "");
}

TEST_P(ObjectStoreContract, ReaderNeverMixesVersions) {
  const std::string v1 = Pattern(1'000'000, 3);
  Put("versioned", v1);
  auto reader = store_->Open("versioned");
  ASSERT_TRUE(reader) << reader.error().message;
  auto head = ReadN(**reader, 400'000);
  ASSERT_TRUE(head);
  ASSERT_EQ(*head, v1.substr(0, 400'000));

  Put("versioned", Pattern(700'000, 4));
  EXPECT_EQ((*reader)->Info().size, v1.size());
  auto rest = ReadAll(**reader);
  if (rest) {
    EXPECT_TRUE(*rest == v1.substr(400'000)) << "the reader switched versions mid-read";
  }  // else: failing the read is allowed
}

TEST_P(ObjectStoreContract, ConcurrentCommitsToOneKeyLeaveOneWholeVersion) {
  constexpr int kWriters = 4;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([this, w] {
      auto writer = store_->Create("contended");
      ASSERT_TRUE(writer);
      std::string content = Pattern(200'000, 10 + w);
      for (size_t i = 0; i < content.size(); i += 1000) {
        ASSERT_TRUE((*writer)->Write(Bytes(std::string_view(content).substr(i, 1000))));
      }
      ASSERT_TRUE((*writer)->Commit());
    });
  }
  for (auto& t : threads) t.join();
  std::string final_content = Get("contended");
  bool matches_one = false;
  for (int w = 0; w < kWriters; ++w) matches_one |= final_content == Pattern(200'000, 10 + w);
  EXPECT_TRUE(matches_one) << "the object is not exactly one writer's bytes";
}

TEST_P(ObjectStoreContract, ManyObjectsFromManyThreads) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 25; ++i) {
        std::string key = "many/" + std::to_string(t) + "/" + std::to_string(i);
        Put(key, key);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 25; ++i) {
      std::string key = "many/" + std::to_string(t) + "/" + std::to_string(i);
      EXPECT_EQ(Get(key), key);
    }
  }
}

TEST_P(ObjectStoreContract, ObjectsPersistAcrossReopen) {
  ObjectInfo info = Put("durable/obj", "still here");
  store_.reset();
  auto reopened = harness_->Open();
  ASSERT_TRUE(reopened) << reopened.error().message;
  store_ = std::move(*reopened);
  EXPECT_EQ(Get("durable/obj"), "still here");
  EXPECT_EQ(store_->Stat("durable/obj")->etag, info.etag);
}

TEST_P(ObjectStoreContract, PingAndDescribe) {
  EXPECT_TRUE(store_->Ping());
  EXPECT_FALSE(store_->Describe().empty());
}

// ---------------------------------------------------------------------------------------- List

std::vector<std::string> Keys(const ObjectListing& listing) {
  std::vector<std::string> keys;
  for (const ObjectInfo& info : listing.objects) keys.push_back(info.key);
  return keys;
}

// Every object under `prefix`, page by page; fails the test on an error or a page over `limit`.
std::vector<std::string> ListAll(ObjectStore& store, std::string_view prefix, int limit,
                                 int* pages = nullptr) {
  std::vector<std::string> keys;
  std::string start_after;
  for (int page = 1;; ++page) {
    auto listing = store.List(prefix, start_after, limit);
    EXPECT_TRUE(listing) << listing.error().message;
    if (!listing) return keys;
    EXPECT_LE(listing->objects.size(), static_cast<size_t>(limit));
    for (std::string& key : Keys(*listing)) keys.push_back(std::move(key));
    if (pages) *pages = page;
    if (listing->next_start_after.empty()) return keys;
    EXPECT_GT(listing->next_start_after, start_after) << "paging must move forward";
    start_after = listing->next_start_after;
    if (page > 100) {
      ADD_FAILURE() << "paging does not end";
      return keys;
    }
  }
}

TEST_P(ObjectStoreContract, ListsInByteOrderOfKeyWithSizeEtagAndTime) {
  // '-' < '.' < '/' < '0': a directory walk that visits "a/" before "a-c" or "a.d" is wrong.
  const std::vector<std::string> sorted = {"list/a-c",   "list/a.d", "list/a/b",
                                           "list/a/c/d", "list/a0",  "list/b"};
  std::map<std::string, ObjectInfo> committed;
  for (std::string key : {"list/a0", "list/a/c/d", "list/b", "list/a-c", "list/a/b", "list/a.d"}) {
    committed[key] = Put(key, "content of " + key);
  }
  auto listing = store_->List("list/", "", 1000);
  ASSERT_TRUE(listing) << listing.error().message;
  EXPECT_EQ(Keys(*listing), sorted);
  EXPECT_EQ(listing->next_start_after, "");
  const double now = static_cast<double>(std::time(nullptr));
  for (const ObjectInfo& info : listing->objects) {
    SCOPED_TRACE(info.key);
    EXPECT_EQ(info.size, ("content of " + info.key).size());
    EXPECT_FALSE(info.etag.empty());
    EXPECT_NEAR(static_cast<double>(info.modified_unix), now, 600);
    EXPECT_NEAR(static_cast<double>(info.modified_unix),
                static_cast<double>(committed[info.key].modified_unix), 2);
  }
  auto again = store_->List("list/", "", 1000);
  ASSERT_TRUE(again);
  for (size_t i = 0; i < again->objects.size(); ++i) {
    EXPECT_EQ(again->objects[i].etag, listing->objects[i].etag) << "same version, same etag";
  }
  Put("list/b", "rewritten");
  auto rewritten = store_->List("list/b", "", 10);
  ASSERT_TRUE(rewritten);
  ASSERT_EQ(rewritten->objects.size(), 1u);
  EXPECT_EQ(rewritten->objects[0].size, 9u);
}

TEST_P(ObjectStoreContract, ListPagesWithStartAfter) {
  std::vector<std::string> keys;
  for (int i = 0; i < 7; ++i) keys.push_back(fmt::format("paged/{:02}", i));
  for (const std::string& key : keys) Put(key, key);

  auto first = store_->List("paged/", "", 3);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(Keys(*first), (std::vector<std::string>{"paged/00", "paged/01", "paged/02"}));
  EXPECT_EQ(first->next_start_after, "paged/02");
  auto second = store_->List("paged/", first->next_start_after, 3);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(Keys(*second), (std::vector<std::string>{"paged/03", "paged/04", "paged/05"}));
  auto last = store_->List("paged/", second->next_start_after, 3);
  ASSERT_TRUE(last) << last.error().message;
  EXPECT_EQ(Keys(*last), (std::vector<std::string>{"paged/06"}));
  EXPECT_EQ(last->next_start_after, "") << "the last page says so";

  int pages = 0;
  EXPECT_EQ(ListAll(*store_, "paged/", 1, &pages), keys);
  EXPECT_EQ(pages, 7);
  EXPECT_EQ(ListAll(*store_, "paged/", 7), keys);

  // start_after need not be a key: strictly after it, in byte order.
  auto between = store_->List("paged/", "paged/03a", 10);
  ASSERT_TRUE(between) << between.error().message;
  EXPECT_EQ(Keys(*between), (std::vector<std::string>{"paged/04", "paged/05", "paged/06"}));
  auto before_all = store_->List("paged/", "a", 2);
  ASSERT_TRUE(before_all);
  EXPECT_EQ(Keys(*before_all), (std::vector<std::string>{"paged/00", "paged/01"}));
  auto after_all = store_->List("paged/", "paged/99", 10);
  ASSERT_TRUE(after_all);
  EXPECT_TRUE(after_all->objects.empty());
  EXPECT_EQ(after_all->next_start_after, "");
}

TEST_P(ObjectStoreContract, ListFiltersByPrefix) {
  for (std::string_view key :
       {"inputs/job-1", "inputs/job-2", "inputs-old", "outputs/job-1.mp3", "outputs/job-2.mp3"}) {
    Put(key, key);
  }
  EXPECT_EQ(ListAll(*store_, "inputs/", 1000),
            (std::vector<std::string>{"inputs/job-1", "inputs/job-2"}));
  EXPECT_EQ(ListAll(*store_, "outputs/", 1000),
            (std::vector<std::string>{"outputs/job-1.mp3", "outputs/job-2.mp3"}));
  EXPECT_EQ(ListAll(*store_, "inputs", 1000),
            (std::vector<std::string>{"inputs-old", "inputs/job-1", "inputs/job-2"}))
      << "a prefix is a string prefix, not a directory";
  EXPECT_EQ(ListAll(*store_, "outputs/job-2", 1000),
            (std::vector<std::string>{"outputs/job-2.mp3"}));
  EXPECT_EQ(ListAll(*store_, "", 1000).size(), 5u) << "an empty prefix lists everything";
  EXPECT_TRUE(ListAll(*store_, "nothing/", 1000).empty());
  EXPECT_TRUE(ListAll(*store_, "inputs/job-1/", 1000).empty());
}

TEST_P(ObjectStoreContract, ListNeverShowsUncommittedWritesOrRemovedObjects) {
  Put("visible/kept", "kept");
  Put("visible/removed", "removed");
  ASSERT_TRUE(store_->Remove("visible/removed"));
  auto writer = store_->Create("visible/pending");
  ASSERT_TRUE(writer) << writer.error().message;
  ASSERT_TRUE((*writer)->Write(Bytes(Pattern(300'000))));
  EXPECT_EQ(ListAll(*store_, "", 1000), (std::vector<std::string>{"visible/kept"}));
  ASSERT_TRUE((*writer)->Commit());
  EXPECT_EQ(ListAll(*store_, "", 1000),
            (std::vector<std::string>{"visible/kept", "visible/pending"}));
  auto aborted = store_->Create("visible/aborted");
  ASSERT_TRUE(aborted);
  ASSERT_TRUE((*aborted)->Write(Bytes("x")));
  (*aborted)->Abort();
  EXPECT_EQ(ListAll(*store_, "visible/", 1000),
            (std::vector<std::string>{"visible/kept", "visible/pending"}));
}

// What the listing promises while objects come and go: every object that exists throughout is
// listed exactly once, in order, whatever is committed or removed between pages.
TEST_P(ObjectStoreContract, ListPagesThroughChangesWithoutSkippingOrRepeating) {
  std::set<std::string> throughout;
  for (int i = 0; i < 12; ++i) {
    std::string key = fmt::format("churn/{:02}", i * 2);
    Put(key, key);
    throughout.insert(key);
  }
  // Removed between pages: one already listed, one not yet reached.
  throughout.erase("churn/00");
  throughout.erase("churn/16");
  std::vector<std::string> listed;
  std::string start_after;
  for (int page = 0;; ++page) {
    auto listing = store_->List("churn/", start_after, 3);
    ASSERT_TRUE(listing) << listing.error().message;
    for (const std::string& key : Keys(*listing)) listed.push_back(key);
    if (listing->next_start_after.empty()) break;
    start_after = listing->next_start_after;
    ASSERT_LT(page, 50) << "paging does not end";
    // Keys both behind and ahead of the pager arrive; two objects go.
    Put(fmt::format("churn/{:02}", page * 4 + 1), "new");
    Put(fmt::format("churn/99-{}", page), "new");
    if (page == 1) {
      ASSERT_TRUE(store_->Remove("churn/00"));
      ASSERT_TRUE(store_->Remove("churn/16"));
    }
  }
  EXPECT_TRUE(std::is_sorted(listed.begin(), listed.end()));
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()).size(), listed.size())
      << "an object was listed twice";
  std::set<std::string> seen(listed.begin(), listed.end());
  for (const std::string& key : throughout) EXPECT_EQ(seen.count(key), 1u) << key;
  EXPECT_EQ(seen.count("churn/16"), 0u) << "removed before the pager reached it";
}

TEST_P(ObjectStoreContract, ListLimitIsOneToAThousand) {
  Put("limit/a", "a");
  Put("limit/b", "b");
  for (int bad : {0, -1, kMaxListLimit + 1, std::numeric_limits<int>::min()}) {
    auto listing = store_->List("limit/", "", bad);
    ASSERT_FALSE(listing) << bad;
    EXPECT_EQ(listing.error().code, ErrorCode::kInvalidArgument);
  }
  auto one = store_->List("limit/", "", 1);
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(Keys(*one), std::vector<std::string>{"limit/a"});
  EXPECT_EQ(one->next_start_after, "limit/a");
  auto most = store_->List("limit/", "", kMaxListLimit);
  ASSERT_TRUE(most) << most.error().message;
  EXPECT_EQ(Keys(*most), (std::vector<std::string>{"limit/a", "limit/b"}));
  EXPECT_EQ(most->next_start_after, "");
}

INSTANTIATE_TEST_SUITE_P(Backends, ObjectStoreContract, ::testing::ValuesIn(ObjectStoreBackends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace vmp3::test
