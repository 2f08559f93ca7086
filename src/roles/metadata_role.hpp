// The metadata role: a user's jobs, their live events, deletion, the account's usage; and the
// janitor that removes what expired or what nothing owns.
//   GET /v1/jobs, GET /v1/jobs/{id}, GET /v1/jobs/{id}/events, DELETE /v1/jobs/{id},
//   GET /v1/account, GET /v1/events
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "common/options.hpp"
#include "http/router.hpp"
#include "metadata/job_events.hpp"
#include "metadata/metadata_store.hpp"
#include "metrics/registry.hpp"
#include "roles/api.hpp"
#include "roles/jobs.hpp"
#include "roles/worker.hpp"
#include "storage/capabilities.hpp"
#include "storage/object_store.hpp"

namespace vmp3::roles {

struct MetadataConfig {
  int janitor_interval_seconds = 60;  // between janitor runs
  // Objects under inputs/ and outputs/ that no job owns are removed once this old (a write that
  // began just before its job record is never taken for an orphan).
  int64_t orphan_grace_seconds = 3600;

  void AddOptions(OptionList& options);
  Status Validate() const;
};

struct MetadataRole {
  const MetadataConfig& config;
  const RetentionConfig& retention;
  const QuotaConfig& quota;  // shown in GET /v1/account
  const Api& api;
  ObjectStore& storage;
  AbandonedWriteSweeper* abandoned_writes;  // null when the store has none to sweep
  MetadataStore& metadata;
  JobEventBus& events;
  metrics::Registry& metrics;
  std::function<int64_t()> now_ms;
};

// Every metadata route but the job list (AddJobListRoute).
void AddMetadataRoutes(http::Router& router, const MetadataRole* role);
// GET /v1/jobs, the list. POST to the same URL uploads, and a gateway that routes by path only (a
// Kubernetes Ingress) sends both methods to the upload role: so the list is served by a process
// running the metadata or the upload role (both hold the metadata store). Null: neither runs here.
void AddJobListRoute(http::Router& router, const MetadataRole* role);
// Removes expired jobs with their objects, and objects no job owns (the orphan sweep).
std::unique_ptr<Worker> MakeJanitor(const MetadataRole& role);

}  // namespace vmp3::roles
