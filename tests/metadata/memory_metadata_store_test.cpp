// What is specific to the in-memory metadata store (the factory's "memory" URL); the behaviour
// every store shares is in metadata_store_contract_test.cpp and limit_store_contract_test.cpp.
#include "metadata/memory_metadata_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "metadata/metadata_store_factory.hpp"
#include "support/fixtures.hpp"

namespace vmp3 {
namespace {

using namespace std::chrono_literals;

TEST(MetadataStoreFactory, MemoryIsANewEmptyStoreThatAlsoKeepsTheLimits) {
  const auto data = test::TempDir() / "data";
  auto a = MakeMetadataBackend("memory", data);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->store->Describe(), "memory");
  ASSERT_NE(a->limits, nullptr);
  EXPECT_EQ(dynamic_cast<MemoryMetadataStore*>(a->limits.get()),
            dynamic_cast<MemoryMetadataStore*>(a->store.get()))
      << "one backend: the limits live beside the jobs";
  ASSERT_TRUE(a->store->CreateUser(User{.id = "u-1", .username = "alice"}));
  ASSERT_TRUE(a->limits->UpdateLimit("k", 60s, [](std::string_view) { return "1"; }));
  auto b = MakeMetadataBackend("memory", data);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->store->GetUser("u-1").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(b->limits->GetLimit("k").value(), "");
  EXPECT_FALSE(std::filesystem::exists(data)) << "nothing goes to disk";
}

}  // namespace
}  // namespace vmp3
