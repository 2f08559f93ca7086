// GET /healthz, /readyz, /metrics, /openapi.json, /docs — on every HTTP process, whatever its
// roles. None of them waits for a backend on an I/O thread.
#pragma once

#include "http/router.hpp"
#include "metrics/registry.hpp"
#include "roles/backend_health.hpp"

namespace vmp3::roles {

// `metrics` and `health` (null: no backends to report) must outlive the router.
void AddOperationalRoutes(http::Router& router, metrics::Registry& metrics,
                          const BackendHealth* health);

}  // namespace vmp3::roles
