// The converter worker's handling of failures, on the in-memory backends with faults injected by
// the decorators of support/faulty_backends.hpp: what a job becomes when storage fails
// transiently and the queue cannot take the retry either.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "metadata/memory_metadata_store.hpp"
#include "queue/memory_job_queue.hpp"
#include "roles/converter_role.hpp"
#include "storage/memory_object_store.hpp"
#include "support/audio_decode.hpp"
#include "support/faulty_backends.hpp"
#include "support/fixtures.hpp"

namespace vmp3::roles {
namespace {

using namespace std::chrono_literals;

template <typename Predicate>
bool Eventually(Predicate done, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

TEST(ConverterWorkerTest, AJobIsNotFailedWhenTheQueueCannotTakeItsRetry) {
  const auto dir = vmp3::test::TempDir();
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  auto memory_store = std::make_shared<MemoryObjectStore>();
  auto store = std::make_shared<test::FaultyObjectStore>(memory_store);
  // Open fails (Ping still answers, so the converter does not wait the failure out as an
  // outage: it retries the job) ...
  store->plan().On("Open").Fail(ErrorCode::kUnavailable);
  JobQueueOptions queue_options;
  queue_options.lease = 5s;  // the smallest lease: redelivery after the lost retry
  auto memory_queue = MemoryJobQueue::Open(queue_options);
  ASSERT_TRUE(memory_queue) << memory_queue.error().message;
  auto queue = std::make_shared<test::FaultyJobQueue>(std::move(*memory_queue));
  // ... and the queue cannot take the retry, as when the broker went away.
  queue->plan().On("Retry").Fail(ErrorCode::kUnavailable);
  auto metadata = std::make_shared<MemoryMetadataStore>();
  InProcessJobEventBus events;
  metrics::Registry registry;
  ConverterConfig config;
  config.workers = 1;
  config.spool_dir = dir / "spool";
  RetentionConfig retention;
  ConverterRole role{config,   retention, *store, *queue, /*lifecycle=*/nullptr, *metadata, events,
                     registry, now_ms,    5s,     3};

  // A job whose input is stored, as the upload role leaves it.
  Job job;
  job.id = NewId();
  job.owner_id = "owner";
  job.input_name = "tones.mp4";
  job.input_key = "inputs/" + job.id;
  job.options_json = "{}";
  job.created_at = job.updated_at = now_ms();
  {
    auto writer = memory_store->Create(job.input_key);
    ASSERT_TRUE(writer) << writer.error().message;
    std::string bytes = [] {
      std::ifstream in(vmp3::test::Fixture("mp4_h264_aac"), std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    ASSERT_FALSE(bytes.empty());
    ASSERT_TRUE((*writer)->Write(std::as_bytes(std::span<const char>(bytes.data(), bytes.size()))));
    ASSERT_TRUE((*writer)->Commit());
  }
  ASSERT_TRUE(metadata->CreateJob(job));
  ASSERT_TRUE(queue->Publish(job.id));

  auto converter = MakeConverter(role);
  converter->Start();
  ASSERT_TRUE(Eventually([&] { return queue->plan().Failures("Retry") > 0; }))
      << "the converter never tried to retry the job";
  // The job is not failed, then or a moment later: the delivery it could not reschedule comes
  // back when its 5 s lease runs out.
  for (auto until = std::chrono::steady_clock::now() + 1s; std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(50ms)) {
    auto during = metadata->GetJob(job.id);
    ASSERT_TRUE(during) << during.error().message;
    ASSERT_NE(during->status, JobStatus::kFailed) << during->error_message;
  }

  // Storage and queue are back: the lease runs out, the job is delivered again and ends done.
  EXPECT_GE(store->plan().Failures("Open"), 1);
  store->plan().Clear("Open");
  queue->plan().Clear("Retry");
  ASSERT_TRUE(Eventually(
      [&] {
        auto now = metadata->GetJob(job.id);
        return now && now->status == JobStatus::kDone;
      },
      30s))
      << "status " << [&] {
           auto now = metadata->GetJob(job.id);
           return now ? std::string(JobStatusName(now->status)) : now.error().message;
         }();
  converter->Stop();
  auto done = metadata->GetJob(job.id);
  ASSERT_TRUE(done);
  auto mp3 = memory_store->Open("outputs/" + job.id + ".mp3");
  ASSERT_TRUE(mp3) << mp3.error().message;
  EXPECT_EQ((*mp3)->Size(), done->output_size);
  const auto mp3_path = dir / "output.mp3";
  {
    std::ofstream out(mp3_path, std::ios::binary);
    std::vector<std::byte> buffer(64 * 1024);
    for (;;) {
      auto n = (*mp3)->Read(buffer);
      ASSERT_TRUE(n) << n.error().message;
      if (*n == 0) break;
      out.write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(*n));
    }
    ASSERT_TRUE(out.good());
  }
  auto decoded = vmp3::test::DecodeAudio(mp3_path);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->container, "mp3");
  EXPECT_NEAR(decoded->seconds(), 3.0, 0.05);
}

}  // namespace
}  // namespace vmp3::roles
