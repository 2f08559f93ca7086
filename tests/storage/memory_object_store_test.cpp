// What is specific to the in-memory object store (its shared State, the factory's "memory"
// URL); the behaviour every store shares is in object_store_contract_test.cpp.
#include "storage/memory_object_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "storage/object_store_factory.hpp"
#include "support/bytes.hpp"
#include "support/fixtures.hpp"

namespace vmp3 {
namespace {

using test::Bytes;

void Put(ObjectStore& store, std::string_view key, std::string_view content) {
  auto writer = store.Create(key);
  ASSERT_TRUE(writer) << writer.error().message;
  ASSERT_TRUE((*writer)->Write(Bytes(content)));
  ASSERT_TRUE((*writer)->Commit());
}

TEST(MemoryObjectStoreTest, HandlesOnOneStateShareObjectsAndOthersDoNot) {
  MemoryObjectStore first;
  MemoryObjectStore second(first.state());
  MemoryObjectStore unrelated;
  Put(first, "shared", "bytes");
  EXPECT_EQ(second.Stat("shared")->size, 5u);
  EXPECT_EQ(unrelated.Stat("shared").error().code, ErrorCode::kNotFound);
}

TEST(MemoryObjectStoreTest, AReaderKeepsReadingItsVersionAfterARemove) {
  MemoryObjectStore store;
  Put(store, "k", "version one");
  auto reader = store.Open("k");
  ASSERT_TRUE(reader);
  ASSERT_TRUE(store.Remove("k"));
  std::string out(32, '\0');
  auto n = (*reader)->Read(std::as_writable_bytes(std::span<char>(out)));
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(out.substr(0, *n), "version one");
}

TEST(MemoryObjectStoreTest, AWriterMayOutliveItsStore) {
  auto store = std::make_unique<MemoryObjectStore>();
  auto other = std::make_unique<MemoryObjectStore>(store->state());
  auto writer = store->Create("late");
  ASSERT_TRUE(writer);
  store.reset();
  ASSERT_TRUE((*writer)->Write(Bytes("x")));
  ASSERT_TRUE((*writer)->Commit());
  EXPECT_EQ(other->Stat("late")->size, 1u);
}

TEST(ObjectStoreFactory, MemoryIsANewEmptyStoreWithNoCapabilities) {
  const auto data = test::TempDir() / "data";
  auto a = MakeObjectStore("memory", data);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->store->Describe(), "memory");
  EXPECT_EQ(a->presigned_urls, nullptr);
  EXPECT_EQ(a->abandoned_writes, nullptr);
  Put(*a->store, "k", "v");
  auto b = MakeObjectStore("memory", data);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->store->Stat("k").error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(data)) << "nothing goes to disk";
}

}  // namespace
}  // namespace vmp3
