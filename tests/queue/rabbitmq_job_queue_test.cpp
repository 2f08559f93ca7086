// RabbitMqJobQueue's own parts; its behaviour as a JobQueue is in job_queue_contract_test.cpp.
#include "queue/rabbitmq_job_queue.hpp"

#include <gtest/gtest.h>

namespace vmp3 {
namespace {

TEST(AmqpTargetTest, DefaultsAndOverrides) {
  auto bare = AmqpTarget::Parse("amqp://");
  ASSERT_TRUE(bare) << bare.error().message;
  EXPECT_EQ(bare->host, "127.0.0.1");
  EXPECT_EQ(bare->port, 5672);
  EXPECT_EQ(bare->user, "guest");
  EXPECT_EQ(bare->password, "guest");
  EXPECT_EQ(bare->vhost, "/");
  EXPECT_EQ(bare->prefix, "vmp3");

  auto full = AmqpTarget::Parse("amqp://vmp3:s3cret@rabbit:5671/%2f?prefix=staging");
  ASSERT_TRUE(full) << full.error().message;
  EXPECT_EQ(full->host, "rabbit");
  EXPECT_EQ(full->port, 5671);
  EXPECT_EQ(full->user, "vmp3");
  EXPECT_EQ(full->password, "s3cret");
  EXPECT_EQ(full->vhost, "/");
  EXPECT_EQ(full->prefix, "staging");

  EXPECT_EQ(AmqpTarget::Parse("amqp://h/tenant")->vhost, "tenant");
  EXPECT_FALSE(AmqpTarget::Parse("amqp://h/?prefix="));
}

}  // namespace
}  // namespace vmp3
