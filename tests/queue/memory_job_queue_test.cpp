// What is specific to the in-memory job queue (handles with their own options, the factory's
// "memory" URL); the behaviour every queue shares is in job_queue_contract_test.cpp.
#include "queue/memory_job_queue.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "queue/job_queue_factory.hpp"
#include "support/fixtures.hpp"

namespace vmp3 {
namespace {

using namespace std::chrono_literals;

TEST(MemoryJobQueueTest, EachHandleDeadLettersByItsOwnAttempts) {
  auto patient = MemoryJobQueue::Open({.max_attempts = 3});
  ASSERT_TRUE(patient) << patient.error().message;
  auto strict = MemoryJobQueue::Open({.max_attempts = 1}, (*patient)->state());
  ASSERT_TRUE(strict) << strict.error().message;
  ASSERT_TRUE((*patient)->Publish("job"));
  auto d = (*strict)->Take(0ms);
  ASSERT_TRUE(d && d->has_value());
  EXPECT_TRUE((*strict)->Retry(**d, 0ms).value()) << "attempt 1 of 1 dead-letters";
  EXPECT_EQ((*patient)->DeadLetters().value(), std::vector<std::string>{"job"});
}

TEST(MemoryJobQueueTest, MalformedReceiptsAreInvalid) {
  auto q = MemoryJobQueue::Open({});
  ASSERT_TRUE(q);
  for (std::string receipt : {"", "1", "1.", ".1", "1.0", "x.y", "1.2.3"}) {
    Delivery forged{.job_id = "j", .attempt = 1, .receipt = receipt};
    EXPECT_EQ((*q)->Ack(forged).error().code, ErrorCode::kInvalidArgument) << receipt;
  }
  Delivery unknown{.job_id = "j", .attempt = 1, .receipt = "7.7"};
  EXPECT_EQ((*q)->Ack(unknown).error().code, ErrorCode::kConflict);
}

TEST(JobQueueFactory, MemoryIsANewEmptyQueueWithoutLifecycleEvents) {
  const auto data = test::TempDir() / "data";
  auto a = MakeJobQueue("memory", data, {});
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->queue->Describe(), "memory");
  EXPECT_EQ(a->lifecycle, nullptr);
  ASSERT_TRUE(a->queue->Publish("j"));
  auto b = MakeJobQueue("memory", data, {});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->queue->Depth().value(), 0u);
  EXPECT_FALSE(std::filesystem::exists(data)) << "nothing goes to disk";
  EXPECT_EQ(MakeJobQueue("memory", data, {.max_attempts = 0}).error().code,
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vmp3
