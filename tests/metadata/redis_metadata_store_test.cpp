// RedisMetadataStore's own parts; its behaviour as a MetadataStore is in
// metadata_store_contract_test.cpp.
#include "metadata/redis_metadata_store.hpp"

#include <gtest/gtest.h>

namespace vmp3 {
namespace {

TEST(RedisTargetTest, DefaultsPasswordsAndDatabase) {
  auto bare = RedisTarget::Parse("redis://");
  ASSERT_TRUE(bare) << bare.error().message;
  EXPECT_EQ(bare->host, "127.0.0.1");
  EXPECT_EQ(bare->port, 6379);
  EXPECT_EQ(bare->db, 0);
  EXPECT_EQ(bare->password, "");
  EXPECT_EQ(bare->prefix, "vmp3");

  auto full = RedisTarget::Parse("redis://:pa%20ss@cache:6380/3?prefix=it");
  ASSERT_TRUE(full) << full.error().message;
  EXPECT_EQ(full->host, "cache");
  EXPECT_EQ(full->port, 6380);
  EXPECT_EQ(full->db, 3);
  EXPECT_EQ(full->password, "pa ss");
  EXPECT_EQ(full->prefix, "it");
  EXPECT_EQ(RedisTarget::Parse("redis://legacy@cache")->password, "legacy");

  for (const char* bad : {"redis://cache/x", "redis://cache/-1", "redis://cache/1x",
                          "redis://cache/?prefix=", "amqp://cache"}) {
    auto target = RedisTarget::Parse(bad);
    ASSERT_FALSE(target) << bad;
    EXPECT_EQ(target.error().code, ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace vmp3
