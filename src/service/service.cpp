#include "service/service.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>
#include <sstream>
#include <thread>

#include "common/http_get.hpp"
#include "http/server.hpp"
#include "metadata/metadata_store_factory.hpp"
#include "queue/job_queue_factory.hpp"
#include "roles/roles.hpp"
#include "storage/object_store_factory.hpp"

namespace vmp3::service {
namespace {

// A role: what it needs, what it depends on, what it adds. `all` is the module that depends on
// every other one.
struct Module {
  std::string_view name;
  std::vector<std::string_view> depends_on;
  bool storage, queue, metadata;
  void (*add_routes)(http::Router&, roles::Context&);
};

// The upload role also serves the web page, since the page is how people upload.
void AddUploadAndWebRoutes(http::Router& router, roles::Context& context) {
  roles::AddUploadRoutes(router, context);
  roles::AddWebRoutes(router, context);
}

const std::vector<Module>& Modules() {
  static const std::vector<Module> modules = {
      {"auth", {}, false, false, true, roles::AddAuthRoutes},
      {"metadata", {}, true, false, true, roles::AddMetadataRoutes},
      {"upload", {}, true, true, true, AddUploadAndWebRoutes},
      {"download", {}, true, false, true, roles::AddDownloadRoutes},
      {"converter", {}, true, true, true, nullptr},
      {"all",
       {"auth", "metadata", "upload", "download", "converter"},
       false,
       false,
       false,
       nullptr},
  };
  return modules;
}

Result<std::vector<const Module*>> ResolveRoles(std::string_view list) {
  std::set<std::string_view> wanted;
  std::vector<const Module*> order;
  std::function<Status(std::string_view)> add = [&](std::string_view name) -> Status {
    auto it = std::find_if(Modules().begin(), Modules().end(),
                           [&](const Module& m) { return m.name == name; });
    if (it == Modules().end()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("unknown role '{}': use auth, upload, metadata, download, "
                                   "converter or all",
                                   name));
    }
    if (wanted.count(it->name)) return {};
    for (auto dep : it->depends_on)
      if (auto s = add(dep); !s) return s;
    wanted.insert(it->name);
    order.push_back(&*it);  // dependencies first
    return {};
  };
  std::stringstream stream{std::string(list)};
  std::string item;
  while (std::getline(stream, item, ',')) {
    item.erase(std::remove_if(item.begin(), item.end(), ::isspace), item.end());
    if (item.empty()) continue;
    if (auto s = add(item); !s) return tl::unexpected(s.error());
  }
  if (order.empty()) return MakeError(ErrorCode::kInvalidArgument, "no role selected");
  return order;
}

// Answers a route of a role this process does not run: the gateway sent it to the wrong place.
http::Handler Misdirected(std::string_view role) {
  return [role](http::Exchange&) -> http::Awaitable<http::Response> {
    co_return http::Response::Problem(
        Error(ErrorCode::kMisdirected,
              fmt::format("this process does not run the {} role that serves this route: route "
                          "it to a process started with --roles {} (see docs/deploy.md)",
                          role, role)));
  };
}

// Every process knows the whole API. It serves the routes of its own roles and answers the
// others' with 421 naming the role to route them to; so a 405 lists every method the API has
// for a path, and /openapi.json and /docs describe the whole API wherever a gateway sends them.
// The other roles' routes are declared against a scratch context, so they register nothing
// (no metrics) in this one.
void AddRoutes(http::Router& router, roles::Context& context,
               const std::vector<const Module*>& served) {
  for (const Module& module : Modules()) {
    if (!module.add_routes) continue;
    if (std::find(served.begin(), served.end(), &module) != served.end()) {
      module.add_routes(router, context);
      continue;
    }
    roles::Context scratch;
    scratch.config = context.config;
    http::Router elsewhere;
    module.add_routes(elsewhere, scratch);
    for (http::Route route : elsewhere.routes()) {
      route.handler = Misdirected(module.name);
      router.Add(std::move(route));
    }
  }
}

Result<std::pair<std::string, uint16_t>> SplitListen(std::string_view listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos)
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("listen address '{}' needs HOST:PORT", listen));
  int port = 0;
  auto text = listen.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || port < 0 || port > 65535)
    return MakeError(ErrorCode::kInvalidArgument, fmt::format("bad port in '{}'", listen));
  std::string host(listen.substr(0, colon));
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return std::make_pair(host, static_cast<uint16_t>(port));
}

}  // namespace

Status ServeConfig::Validate() const {
  if (auto l = SplitListen(listen); !l) return tl::unexpected(l.error());
  if (auto r = ResolveRoles(roles); !r) return tl::unexpected(r.error());
  if (workers < 0 || workers > 256)
    return MakeError(ErrorCode::kInvalidArgument, "workers must be 0..256");
  if (max_upload_bytes == 0)
    return MakeError(ErrorCode::kInvalidArgument, "max upload size must be positive");
  if (retention_seconds <= 0)
    return MakeError(ErrorCode::kInvalidArgument, "retention must be positive");
  if (token_ttl_seconds < 60)
    return MakeError(ErrorCode::kInvalidArgument, "token lifetime must be at least 60 s");
  if (job_attempts < 1)
    return MakeError(ErrorCode::kInvalidArgument, "job attempts must be at least 1");
  if (lease_seconds < 5)
    return MakeError(ErrorCode::kInvalidArgument, "lease must be at least 5 s");
  return {};
}

struct Service::Impl {
  roles::Context context;
  std::vector<const Module*> modules;
  http::Router router;
  std::unique_ptr<http::Server> server;
  std::vector<std::unique_ptr<roles::Worker>> workers;
  bool stopped = false;
};

Service::Service() : impl_(std::make_unique<Impl>()) {}
Service::~Service() { Stop(); }

Result<std::unique_ptr<Service>> Service::Create(const ServeConfig& config,
                                                 std::function<int64_t()> now_ms) {
  if (auto s = config.Validate(); !s) return tl::unexpected(s.error());
  std::unique_ptr<Service> service(new Service());
  Impl& impl = *service->impl_;
  roles::Context& ctx = impl.context;
  ctx.config = config;
  ctx.now_ms = now_ms ? std::move(now_ms) : [offset = config.clock_offset_seconds * 1000] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count() +
           offset;
  };
  impl.modules = *ResolveRoles(config.roles);

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return MakeError(ErrorCode::kIo, fmt::format("cannot create data directory {}: {}",
                                                 config.data_dir.string(), ec.message()));
  }
  bool need_storage = false, need_queue = false, need_metadata = false, has_auth = false;
  for (const Module* m : impl.modules) {
    need_storage |= m->storage;
    need_queue |= m->queue;
    need_metadata |= m->metadata;
    has_auth |= m->name == "auth";
  }
  if (need_storage) {
    auto store = MakeObjectStore(config.storage, config.data_dir);
    if (!store) return tl::unexpected(store.error());
    ctx.storage = *store;
  }
  if (need_queue) {
    JobQueueOptions options;
    options.lease = std::chrono::seconds(config.lease_seconds);
    options.max_attempts = config.job_attempts;
    auto queue = MakeJobQueue(config.queue, config.data_dir, options);
    if (!queue) return tl::unexpected(queue.error());
    ctx.queue = queue->queue;
    ctx.lifecycle = queue->lifecycle;
  }
  if (need_metadata) {
    auto metadata = MakeMetadataStore(config.metadata, config.data_dir);
    if (!metadata) return tl::unexpected(metadata.error());
    ctx.metadata = *metadata;
  }
  auto events = MakeJobEventBus(config.metadata);
  if (!events) return tl::unexpected(events.error());
  ctx.events = *events;

  // Keys: the auth role signs (and so holds the private key); every other role only verifies.
  std::vector<auth::PublicKey> verify_keys;
  auth::TokenVerifierOptions verifier_options;
  verifier_options.clock = [clock = ctx.now_ms] { return clock() / 1000; };
  if (has_auth) {
    auto key_path = config.jwt_key.empty() ? config.data_dir / "jwt-ed25519.key" : config.jwt_key;
    auto key = auth::SigningKey::LoadOrCreate(key_path);
    if (!key) return tl::unexpected(key.error());
    verify_keys.push_back(key->public_key());
    ctx.signing_key.emplace(std::move(*key));
  } else if (!config.jwt_public_key.empty()) {
    auto key = auth::PublicKey::FromFile(config.jwt_public_key);
    if (!key) return tl::unexpected(key.error());
    verify_keys.push_back(*key);
  } else if (!config.auth_url.empty()) {
    // The auth role may still be starting: retry for a while before giving up.
    std::string url = config.auth_url;
    while (!url.empty() && url.back() == '/') url.pop_back();
    url += "/.well-known/jwks.json";
    Result<std::string> jwks = MakeError(ErrorCode::kUnavailable, "not fetched");
    for (int attempt = 0; attempt < 60; ++attempt) {
      jwks = HttpGet(url, std::chrono::seconds(5));
      if (jwks) break;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    if (!jwks) return tl::unexpected(jwks.error());
    auto keys = auth::PublicKey::FromJwks(*jwks);
    if (!keys) return tl::unexpected(keys.error());
    if (keys->empty())
      return MakeError(ErrorCode::kInvalidArgument, fmt::format("{} has no usable key", url));
    verify_keys = std::move(*keys);
  } else {
    return MakeError(ErrorCode::kInvalidArgument,
                     "without the auth role, give --jwt-public-key or --auth-url so tokens can be "
                     "verified");
  }
  ctx.verifier = std::make_unique<auth::TokenVerifier>(std::move(verify_keys), verifier_options);

  AddRoutes(impl.router, ctx, impl.modules);
  roles::AddOperationalRoutes(impl.router, ctx);

  // Gauges read at scrape time.
  if (ctx.queue) {
    ctx.metrics.AddCallbackGauge("vmp3_queue_depth", "Jobs in the queue (ready or leased).",
                                 [q = ctx.queue] {
                                   auto depth = q->Depth();
                                   return depth ? static_cast<double>(*depth) : -1.0;
                                 });
  }
  if (ctx.metadata) {
    for (JobStatus status : {JobStatus::kQueued, JobStatus::kConverting, JobStatus::kDone,
                             JobStatus::kFailed, JobStatus::kCancelled}) {
      ctx.metrics.AddCallbackGauge(
          fmt::format("vmp3_jobs_{}", JobStatusName(status)),
          fmt::format("Jobs currently {}.", JobStatusName(status)), [m = ctx.metadata, status] {
            auto counts = m->CountByStatus();
            if (!counts) return -1.0;
            auto it = counts->find(status);
            return it == counts->end() ? 0.0 : static_cast<double>(it->second);
          });
    }
  }

  auto [host, port] = *SplitListen(config.listen);
  http::ServerOptions server_options;
  server_options.address = host;
  server_options.port = port;
  server_options.io_threads =
      config.io_threads > 0 ? config.io_threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  server_options.drain_timeout = std::chrono::seconds(config.drain_seconds);
  impl.server = std::make_unique<http::Server>(server_options, impl.router, &ctx.metrics);

  for (const Module* m : impl.modules) {
    if (m->name == "converter") impl.workers.push_back(roles::MakeConverter(ctx));
    if (m->name == "metadata") impl.workers.push_back(roles::MakeJanitor(ctx));
  }
  return service;
}

Status Service::Start() {
  if (auto s = impl_->server->Start(); !s) return s;
  for (auto& worker : impl_->workers) worker->Start();
  std::vector<std::string_view> names;
  for (const Module* m : impl_->modules) names.push_back(m->name);
  spdlog::info("vmp3 serving roles [{}] on port {}", fmt::join(names, ","), port());
  return {};
}

uint16_t Service::port() const { return impl_->server->port(); }

void Service::Stop() {
  if (impl_->stopped || !impl_->server) return;  // (a Service whose Create failed never started)
  impl_->stopped = true;
  impl_->server->BeginDrain();
  // Workers stop before the server's threads so running conversions are handed back.
  for (auto it = impl_->workers.rbegin(); it != impl_->workers.rend(); ++it) (*it)->Stop();
  impl_->server->Stop();
}

}  // namespace vmp3::service
