// The converter role: worker threads that take jobs from the queue, convert them with the
// engine, store the MP3 and record the result. It serves no API routes.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include "common/options.hpp"
#include "metadata/job_events.hpp"
#include "metadata/metadata_store.hpp"
#include "metrics/registry.hpp"
#include "queue/job_queue.hpp"
#include "queue/lifecycle_publisher.hpp"
#include "roles/jobs.hpp"
#include "roles/worker.hpp"
#include "storage/object_store.hpp"

namespace vmp3::roles {

struct ConverterConfig {
  int workers = 0;                         // conversions at once; 0 = number of cores
  int threads_per_job = 0;                 // encoder threads; 0 = the cores others leave, <= 8
  double max_input_seconds = 12 * 3600;    // longest input converted
  uint64_t max_output_bytes = 1ull << 30;  // largest MP3 produced
  std::filesystem::path spool_dir;         // local scratch for MP3s; set by the service

  void AddOptions(OptionList& options);
  Status Validate() const;
};

struct ConverterRole {
  const ConverterConfig& config;
  const RetentionConfig& retention;
  ObjectStore& storage;
  JobQueue& queue;
  LifecyclePublisher* lifecycle;  // null: the queue announces no events
  MetadataStore& metadata;
  JobEventBus& events;
  metrics::Registry& metrics;
  std::function<int64_t()> now_ms;
  std::chrono::seconds lease;  // the queue's lease: heartbeats go out well within it
  int job_attempts;            // the queue's attempts, for messages
};

std::unique_ptr<Worker> MakeConverter(const ConverterRole& role);

}  // namespace vmp3::roles
