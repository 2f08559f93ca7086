// ServeConfig's checks that span several roles' settings (each role's own are tested with it).
#include "service/service.hpp"

#include <gtest/gtest.h>

namespace vmp3::service {
namespace {

TEST(ServeConfigTest, MemoryBackendsNeedEveryRoleInTheProcess) {
  ServeConfig all;
  all.server.roles = "all";
  all.backends.storage = all.backends.queue = all.backends.metadata = "memory";
  auto valid = all.Validate();
  EXPECT_TRUE(valid) << valid.error().message;
  // Every role named one by one is every role too.
  all.server.roles = "converter,download,upload,metadata,auth,notifier";
  auto listed = all.Validate();
  EXPECT_TRUE(listed) << listed.error().message;

  for (std::string roles : {"converter", "auth,upload,metadata,download"}) {
    ServeConfig split = all;
    split.server.roles = roles;
    split.api.auth_url = "http://auth:8080";  // so that only the backends can be the problem
    auto refused = split.Validate();
    ASSERT_FALSE(refused) << roles;
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(refused.error().message.find("--roles all"), std::string::npos);
    split.backends.storage = split.backends.queue = split.backends.metadata = "sqlite";
    split.backends.storage = "file";
    auto embedded = split.Validate();
    EXPECT_TRUE(embedded) << roles << ": " << embedded.error().message;
  }
}

}  // namespace
}  // namespace vmp3::service
