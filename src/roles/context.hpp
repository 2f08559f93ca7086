// What the roles share inside one process: configuration, backends, keys, metrics, the clock.
// Built by service::Service before any role starts; roles hold references to it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "auth/jwt.hpp"
#include "http/exchange.hpp"
#include "metadata/job_events.hpp"
#include "metadata/metadata_store.hpp"
#include "metrics/registry.hpp"
#include "queue/job_queue.hpp"
#include "queue/lifecycle_publisher.hpp"
#include "service/config.hpp"
#include "storage/object_store.hpp"

namespace vmp3::roles {

struct Context {
  service::ServeConfig config;
  std::shared_ptr<ObjectStore> storage;  // set when a role needs it
  std::shared_ptr<JobQueue> queue;
  std::shared_ptr<LifecyclePublisher> lifecycle;  // null without a broker: no events then
  std::shared_ptr<MetadataStore> metadata;
  std::shared_ptr<JobEventBus> events;
  std::optional<auth::SigningKey> signing_key;  // only with the auth role
  std::unique_ptr<auth::TokenVerifier> verifier;
  metrics::Registry metrics;
  std::function<int64_t()> now_ms;  // injectable clock (Unix ms)
};

// The caller's identity from `Authorization: Bearer <jwt>`; kUnauthenticated otherwise.
Result<auth::Claims> Authenticate(const http::Exchange& exchange, const Context& context);

// A new random id: 26 lowercase base32 characters (128 bits).
std::string NewId();

// The job as the API shows it to its owner.
nlohmann::json JobJson(const Job& job);

// Reads a job for its owner: kNotFound when missing or someone else's (never 403, so ids of
// other users' jobs cannot be probed).
Result<Job> OwnedJob(MetadataStore& metadata, std::string_view job_id, std::string_view owner_id);

}  // namespace vmp3::roles
