// The upload role: streams uploads into object storage, records and queues the job; also serves
// the web page, since the page is how people upload.
//   POST /v1/jobs, POST /upload (seed), GET /, GET /assets/{name}
#pragma once

#include <cstdint>
#include <functional>

#include "common/options.hpp"
#include "http/router.hpp"
#include "metadata/metadata_store.hpp"
#include "metrics/registry.hpp"
#include "notify/egress_policy.hpp"
#include "queue/job_queue.hpp"
#include "queue/lifecycle_publisher.hpp"
#include "roles/api.hpp"
#include "roles/jobs.hpp"
#include "storage/object_store.hpp"

namespace vmp3::roles {

struct UploadConfig {
  uint64_t max_upload_bytes = 2ull << 30;  // largest upload accepted; 413 beyond

  void AddOptions(OptionList& options);
  Status Validate() const;
};

struct UploadRole {
  const UploadConfig& config;
  const RetentionConfig& retention;
  const QuotaConfig& quota;
  const Api& api;
  ObjectStore& storage;
  JobQueue& queue;
  LifecyclePublisher* lifecycle;  // null: the queue announces no events
  MetadataStore& metadata;
  const notify::EgressPolicy& egress;  // a job's webhook_url must pass it
  metrics::Registry& metrics;
  std::function<int64_t()> now_ms;
};

void AddUploadRoutes(http::Router& router, const UploadConfig& config, const UploadRole* role);
// GET / and GET /assets/{name}: the web page embedded at build time (web/assets.hpp); served
// where the upload role is (`served`), 421 elsewhere.
void AddWebRoutes(http::Router& router, bool served);

}  // namespace vmp3::roles
