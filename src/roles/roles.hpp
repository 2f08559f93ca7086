// The HTTP routes and background work of each role. Each Add*Routes registers the role's routes;
// the module table in service/service.cpp decides which run in a process.
#pragma once

#include <memory>

#include "http/router.hpp"
#include "roles/context.hpp"

namespace vmp3::roles {

// POST /v1/auth/register, POST /v1/auth/login, GET /.well-known/jwks.json, POST /login (seed).
void AddAuthRoutes(http::Router& router, Context& context);
// POST /v1/jobs, POST /upload (seed).
void AddUploadRoutes(http::Router& router, Context& context);
// GET /v1/jobs, GET /v1/jobs/{id}, GET /v1/jobs/{id}/events, DELETE /v1/jobs/{id}.
void AddMetadataRoutes(http::Router& router, Context& context);
// GET|HEAD /v1/jobs/{id}/mp3, GET /download?fid= (seed).
void AddDownloadRoutes(http::Router& router, Context& context);
// GET /healthz, /readyz, /metrics, /openapi.json, /docs — on every HTTP process.
void AddOperationalRoutes(http::Router& router, Context& context);
// GET / and GET /assets/{name}: the web page embedded at build time (web/assets.hpp).
void AddWebRoutes(http::Router& router, Context& context);

// Background workers. Start() returns at once; Stop() finishes or hands back running work.
class Worker {
 public:
  virtual ~Worker() = default;
  virtual void Start() = 0;
  virtual void Stop() = 0;
};

// Converter threads: take jobs from the queue, convert, store the MP3, record the result.
std::unique_ptr<Worker> MakeConverter(Context& context);
// Removes expired jobs with their objects, and inputs of ended jobs.
std::unique_ptr<Worker> MakeJanitor(Context& context);

}  // namespace vmp3::roles
