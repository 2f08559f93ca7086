// The fault decorators themselves: calls pass through untouched unless a rule picks them, and a
// picked call fails, waits or stalls exactly as the rule says.
#include "support/faulty_backends.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

#include "metadata/memory_metadata_store.hpp"
#include "queue/memory_job_queue.hpp"
#include "storage/memory_object_store.hpp"
#include "support/bytes.hpp"

namespace vmp3::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Status Put(ObjectStore& store, std::string_view key, std::string_view content) {
  auto writer = store.Create(key);
  if (!writer) return tl::unexpected(writer.error());
  if (auto written = (*writer)->Write(Bytes(content)); !written) return written;
  auto committed = (*writer)->Commit();
  if (!committed) return tl::unexpected(committed.error());
  return {};
}

std::shared_ptr<JobQueue> MemoryQueue() { return MemoryJobQueue::Open({}).value(); }

TEST(FaultyBackendsTest, PassesEveryCallThroughWithoutRules) {
  auto inner = std::make_shared<MemoryObjectStore>();
  FaultyObjectStore store(inner);
  ASSERT_TRUE(Put(store, "a/b", "bytes"));
  EXPECT_EQ(inner->Stat("a/b")->size, 5u) << "the wrapped store holds what went through";
  auto reader = store.Open("a/b");
  ASSERT_TRUE(reader) << reader.error().message;
  std::string out(8, '\0');
  EXPECT_EQ((*reader)->Read(std::as_writable_bytes(std::span<char>(out))).value(), 5u);
  EXPECT_EQ(out.substr(0, 5), "bytes");
  EXPECT_EQ(store.List("a/", "", 10)->objects.size(), 1u);
  EXPECT_EQ(store.Stat("missing").error().code, ErrorCode::kNotFound) << "real errors pass too";
  EXPECT_EQ(store.plan().Calls("Create"), 1);
  EXPECT_EQ(store.plan().Calls("Stat"), 1);
  EXPECT_EQ(store.plan().Failures("Stat"), 0);
  EXPECT_NE(store.Describe().find("memory"), std::string::npos);
}

TEST(FaultyBackendsTest, FailsEveryCallOfAnOperationUntilCleared) {
  auto inner = std::make_shared<MemoryObjectStore>();
  FaultyObjectStore store(inner);
  ASSERT_TRUE(Put(*inner, "k", "v"));
  store.plan().On("Open").Fail(ErrorCode::kUnavailable);
  for (int i = 0; i < 3; ++i) {
    auto opened = store.Open("k");
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(opened.error().message.find("injected"), std::string::npos);
  }
  EXPECT_TRUE(store.Stat("k")) << "other operations are untouched";
  EXPECT_EQ(store.plan().Failures("Open"), 3);
  store.plan().Clear("Open");
  EXPECT_TRUE(store.Open("k"));
  EXPECT_EQ(store.plan().Calls("Open"), 4);
  EXPECT_EQ(store.plan().Failures("Open"), 3);
}

TEST(FaultyBackendsTest, FailsOnlyTheNthCallCountedFromNow) {
  auto inner = std::make_shared<MemoryObjectStore>();
  FaultyObjectStore store(inner);
  ASSERT_TRUE(Put(store, "before", "x"));  // a call before the rule is not counted by it
  store.plan().On("Commit").Nth(2).Fail(ErrorCode::kIo);
  ASSERT_TRUE(Put(store, "first", "1"));
  auto writer = store.Create("second");
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->Write(Bytes("2")));
  auto commit = (*writer)->Commit();
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error().code, ErrorCode::kIo);
  EXPECT_EQ((*writer)->Write(Bytes("more")).error().code, ErrorCode::kConflict)
      << "a failed commit aborts the writer";
  EXPECT_EQ(inner->Stat("second").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(Put(store, "third", "3")) << "the rule was for one call only";
  EXPECT_EQ(store.plan().Failures("Commit"), 1);
}

TEST(FaultyBackendsTest, FaultsReachReadersAndWriters) {
  auto inner = std::make_shared<MemoryObjectStore>();
  FaultyObjectStore store(inner);
  ASSERT_TRUE(Put(*inner, "k", "0123456789"));
  auto reader = store.Open("k");
  ASSERT_TRUE(reader);
  store.plan().On("Read").Nth(2).Fail(ErrorCode::kUnavailable);
  std::string buffer(4, '\0');
  auto span = std::as_writable_bytes(std::span<char>(buffer));
  EXPECT_TRUE((*reader)->Read(span));
  EXPECT_EQ((*reader)->Read(span).error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE((*reader)->Read(span));
  store.plan().On("Write").Fail(ErrorCode::kIo);
  auto writer = store.Create("w");
  ASSERT_TRUE(writer);
  EXPECT_EQ((*writer)->Write(Bytes("x")).error().code, ErrorCode::kIo);
}

TEST(FaultyBackendsTest, DelaysCalls) {
  FaultyJobQueue queue(MemoryQueue());
  ASSERT_TRUE(queue.Publish("job"));
  queue.plan().On("Take").Delay(300ms);
  auto start = Clock::now();
  auto taken = queue.Take(0ms);
  EXPECT_GE(Clock::now() - start, 300ms);
  ASSERT_TRUE(taken) << taken.error().message;
  ASSERT_TRUE(taken->has_value()) << "a delayed call still goes through";
  EXPECT_EQ((*taken)->job_id, "job");
}

TEST(FaultyBackendsTest, StallsCallsUntilTheGateOpens) {
  auto inner = MemoryQueue();
  FaultyJobQueue queue(inner);
  auto gate = queue.plan().On("Publish").Stall();
  Status published = MakeError(ErrorCode::kInternal, "not yet");
  std::thread publisher([&] { published = queue.Publish("stalled"); });
  ASSERT_TRUE(gate->WaitForWaiting(1)) << "the call never reached the gate";
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(inner->Depth().value(), 0u) << "a stalled call has not reached the store";
  EXPECT_EQ(gate->waiting(), 1);
  gate->Open();
  publisher.join();
  EXPECT_TRUE(published);
  EXPECT_EQ(inner->Depth().value(), 1u);
  EXPECT_TRUE(queue.Publish("later")) << "an open gate lets later calls through";
  EXPECT_EQ(gate->waiting(), 0);
}

TEST(FaultyBackendsTest, AForgottenGateLetsTheCallGoAfterItsLongestStall) {
  FaultyJobQueue queue(MemoryQueue());
  queue.plan().On("Depth").Stall(200ms);
  auto start = Clock::now();
  EXPECT_TRUE(queue.Depth());
  EXPECT_GE(Clock::now() - start, 200ms);
}

TEST(FaultyBackendsTest, DelayedThenFailedCallWaitsAndFails) {
  auto inner = std::make_shared<MemoryMetadataStore>();
  FaultyMetadataStore store(inner);
  Job job{.id = "j-1", .owner_id = "u-1"};
  store.plan().On("CreateJobWithin").Delay(100ms);
  store.plan().On("CreateJobWithin").Nth(1).Fail(ErrorCode::kUnavailable);
  auto start = Clock::now();
  auto created = store.CreateJob(job);  // CreateJob goes through CreateJobWithin
  EXPECT_GE(Clock::now() - start, 100ms);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(inner->GetJob("j-1").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store.CreateJob(job));
  store.plan().ClearAll();
  start = Clock::now();
  EXPECT_TRUE(store.GetJob("j-1"));
  EXPECT_LT(Clock::now() - start, 100ms);
}

TEST(FaultyBackendsTest, UnknownOperationsAreRefused) {
  FaultyJobQueue queue(MemoryQueue());
  EXPECT_THROW(queue.plan().On("Retyr"), std::invalid_argument);
  EXPECT_THROW(queue.plan().On("Interrupt"), std::invalid_argument) << "void: nothing to fail";
  EXPECT_THROW(queue.plan().On("Take").Nth(0), std::invalid_argument);
  FaultyMetadataStore store(std::make_shared<MemoryMetadataStore>());
  EXPECT_THROW(store.plan().On("CreateJob"), std::invalid_argument) << "it is CreateJobWithin";
  EXPECT_THROW(static_cast<void>(store.plan().Calls("Publish")), std::invalid_argument);
}

}  // namespace
}  // namespace vmp3::test
