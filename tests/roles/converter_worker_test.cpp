// The converter worker's handling of failures, on the embedded backends with faults injected
// by thin wrappers: what a job becomes when storage fails transiently and the queue cannot take
// the retry either.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <span>
#include <thread>

#include "metadata/metadata_store_factory.hpp"
#include "queue/job_queue_factory.hpp"
#include "roles/converter_role.hpp"
#include "storage/object_store_factory.hpp"
#include "support/audio_decode.hpp"
#include "support/fixtures.hpp"

namespace vmp3::roles {
namespace {

using namespace std::chrono_literals;

// An object store whose Open fails with kUnavailable while `down` is set (Ping still answers,
// so the converter does not wait the failure out as an outage: it retries the job).
class FlakyOpenStore final : public ObjectStore {
 public:
  explicit FlakyOpenStore(std::shared_ptr<ObjectStore> inner) : inner_(std::move(inner)) {}
  std::atomic<bool> down{true};

  Result<std::unique_ptr<ObjectWriter>> Create(std::string_view key) override {
    return inner_->Create(key);
  }
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view key) override {
    if (down) return MakeError(ErrorCode::kUnavailable, "storage is restarting (injected)");
    return inner_->Open(key);
  }
  Result<ObjectInfo> Stat(std::string_view key) override { return inner_->Stat(key); }
  Status Remove(std::string_view key) override { return inner_->Remove(key); }
  Result<ObjectListing> List(std::string_view prefix, std::string_view start_after,
                             int limit) override {
    return inner_->List(prefix, start_after, limit);
  }
  Status Ping() override { return inner_->Ping(); }
  std::string Describe() const override { return inner_->Describe(); }

 private:
  std::shared_ptr<ObjectStore> inner_;
};

// A queue whose Retry fails with kUnavailable while `retry_down` is set, as a broker that went
// away would; everything else is the real SQLite queue.
class RetryFailingQueue final : public JobQueue {
 public:
  explicit RetryFailingQueue(std::shared_ptr<JobQueue> inner) : inner_(std::move(inner)) {}
  std::atomic<bool> retry_down{true};
  std::atomic<int> failed_retries{0};

  Status Publish(std::string_view job_id) override { return inner_->Publish(job_id); }
  Result<std::optional<Delivery>> Take(std::chrono::milliseconds wait) override {
    return inner_->Take(wait);
  }
  Status Ack(const Delivery& delivery) override { return inner_->Ack(delivery); }
  Result<bool> Retry(const Delivery& delivery, std::chrono::milliseconds delay) override {
    if (retry_down) {
      ++failed_retries;
      return MakeError(ErrorCode::kUnavailable, "the broker connection is closed (injected)");
    }
    return inner_->Retry(delivery, delay);
  }
  Status Release(const Delivery& delivery) override { return inner_->Release(delivery); }
  Status Heartbeat(const Delivery& delivery) override { return inner_->Heartbeat(delivery); }
  Result<uint64_t> Depth() override { return inner_->Depth(); }
  Result<std::vector<std::string>> DeadLetters() override { return inner_->DeadLetters(); }
  void Interrupt() override { inner_->Interrupt(); }
  Status Ping() override { return inner_->Ping(); }
  std::string Describe() const override { return inner_->Describe(); }

 private:
  std::shared_ptr<JobQueue> inner_;
};

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
  auto files = MakeObjectStore("file", dir);
  ASSERT_TRUE(files) << files.error().message;
  auto store = std::make_shared<FlakyOpenStore>(files->store);
  JobQueueOptions queue_options;
  queue_options.lease = 5s;  // the smallest lease: redelivery after the lost retry
  auto sqlite_queue = MakeJobQueue("sqlite", dir, queue_options);
  ASSERT_TRUE(sqlite_queue) << sqlite_queue.error().message;
  auto queue = std::make_shared<RetryFailingQueue>(sqlite_queue->queue);
  auto metadata_store = MakeMetadataStore("sqlite", dir);
  ASSERT_TRUE(metadata_store) << metadata_store.error().message;
  std::shared_ptr<MetadataStore> metadata = *metadata_store;
  auto events = MakeJobEventBus("sqlite");
  ASSERT_TRUE(events) << events.error().message;
  metrics::Registry registry;
  ConverterConfig config;
  config.workers = 1;
  config.spool_dir = dir / "spool";
  RetentionConfig retention;
  ConverterRole role{config,    retention, *store,   *queue, /*lifecycle=*/nullptr,
                     *metadata, **events,  registry, now_ms, 5s,
                     3};

  // A job whose input is stored, as the upload role leaves it.
  Job job;
  job.id = NewId();
  job.owner_id = "owner";
  job.input_name = "tones.mp4";
  job.input_key = "inputs/" + job.id;
  job.options_json = "{}";
  job.created_at = job.updated_at = now_ms();
  {
    auto writer = files->store->Create(job.input_key);
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
  ASSERT_TRUE(Eventually([&] { return queue->failed_retries > 0; }))
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
  store->down = false;
  queue->retry_down = false;
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
  auto mp3 = files->store->Stat("outputs/" + job.id + ".mp3");
  ASSERT_TRUE(mp3) << mp3.error().message;
  EXPECT_EQ(mp3->size, done->output_size);
  auto decoded = vmp3::test::DecodeAudio(dir / "objects/outputs" / (job.id + ".mp3"));
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->container, "mp3");
  EXPECT_NEAR(decoded->seconds(), 3.0, 0.05);
}

}  // namespace
}  // namespace vmp3::roles
