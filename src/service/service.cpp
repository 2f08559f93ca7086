#include "service/service.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>
#include <thread>

#include "auth/rate_limiter.hpp"
#include "common/http_get.hpp"
#include "common/text.hpp"
#include "http/server.hpp"
#include "metadata/metadata_store_factory.hpp"
#include "metrics/registry.hpp"
#include "queue/job_queue_factory.hpp"
#include "roles/backend_health.hpp"
#include "roles/download_role.hpp"
#include "roles/operational.hpp"
#include "storage/object_store_factory.hpp"

namespace vmp3::service {
namespace {

// What the service builds for the roles of this process: backends (only those a selected role
// needs), keys, the API's token check and rate limit, metrics, the clock. Filled in by
// Service::Create before any module installs; outlives the routes and workers. The role structs
// handed to the roles live here too, since roles keep references to them.
struct Built {
  ServeConfig config;
  std::function<int64_t()> now_ms;
  metrics::Registry metrics;
  std::shared_ptr<ObjectStore> storage;
  std::shared_ptr<PresignedUrls> presigned_urls;            // null: the store cannot, or is not
  std::shared_ptr<AbandonedWriteSweeper> abandoned_writes;  // configured to
  std::shared_ptr<JobQueue> queue;
  std::shared_ptr<LifecyclePublisher> lifecycle;  // null: the queue announces no events
  std::shared_ptr<MetadataStore> metadata;
  std::shared_ptr<LimitStore> limits;
  std::shared_ptr<NotificationStore> notifications;
  std::shared_ptr<JobEventBus> events;
  std::optional<auth::SigningKey> signing_key;
  std::unique_ptr<auth::TokenVerifier> verifier;
  std::unique_ptr<auth::RateLimiter> rate_limiter;
  std::unique_ptr<roles::Api> api;
  notify::EgressPolicy egress;               // from config.egress
  std::optional<notify::VapidKey> vapid;     // with the notifier role
  std::optional<notify::SmtpMailer> mailer;  // with the notifier role and --smtp-url
  std::unique_ptr<roles::BackendHealth> health;

  std::unique_ptr<roles::AuthRole> auth_role;
  std::unique_ptr<roles::UploadRole> upload_role;
  std::unique_ptr<roles::MetadataRole> metadata_role;
  std::unique_ptr<roles::DownloadRole> download_role;
  std::unique_ptr<roles::ConverterRole> converter_role;
  std::unique_ptr<roles::NotifierRole> notifier_role;
};

// A role as data: what it needs, what it depends on, how it declares its routes and which
// workers it runs. `all` is the module that depends on every other one.
struct Module {
  std::string_view name;
  std::vector<std::string_view> depends_on;
  bool storage = false, queue = false, metadata = false;
  bool serves_api = false;    // authenticated routes: needs a token verifier and the rate limit
  bool signs_tokens = false;  // holds the private key
  // Declares the role's routes; `built` is null when another process serves them (421).
  void (*routes)(http::Router&, const ServeConfig&, Built*) = nullptr;
  // Adds the role's background workers.
  void (*workers)(Built&, std::vector<std::unique_ptr<roles::Worker>>&) = nullptr;
};

roles::MetadataRole& MetadataRoleOf(Built& b) {
  if (!b.metadata_role) {
    b.metadata_role.reset(new roles::MetadataRole{
        b.config.metadata, b.config.retention, b.config.quota, *b.api, *b.storage,
        b.abandoned_writes.get(), *b.metadata, *b.events, b.metrics, b.now_ms});
  }
  return *b.metadata_role;
}

roles::NotifierRole& NotifierRoleOf(Built& b) {
  if (!b.notifier_role) {
    b.notifier_role.reset(new roles::NotifierRole{
        b.config.notifier, b.egress, *b.vapid, b.mailer ? &*b.mailer : nullptr, *b.api, *b.metadata,
        *b.notifications, b.metrics, b.now_ms});
  }
  return *b.notifier_role;
}

const std::vector<Module>& Modules() {
  static const std::vector<Module> modules = {
      {.name = "auth",
       .metadata = true,
       .signs_tokens = true,
       .routes =
           [](http::Router& router, const ServeConfig& config, Built* b) {
             if (b && !b->auth_role) {
               b->auth_role.reset(new roles::AuthRole{b->config.auth, *b->metadata, *b->limits,
                                                      *b->signing_key, b->now_ms});
             }
             roles::AddAuthRoutes(router, config.auth, b ? b->auth_role.get() : nullptr);
           }},
      {.name = "metadata",
       .storage = true,
       .metadata = true,
       .serves_api = true,
       .routes =
           [](http::Router& router, const ServeConfig&, Built* b) {
             roles::AddMetadataRoutes(router, b ? &MetadataRoleOf(*b) : nullptr);
           },
       .workers =
           [](Built& b, std::vector<std::unique_ptr<roles::Worker>>& workers) {
             workers.push_back(roles::MakeJanitor(MetadataRoleOf(b)));
           }},
      {.name = "upload",
       .storage = true,
       .queue = true,
       .metadata = true,
       .serves_api = true,
       .routes =
           [](http::Router& router, const ServeConfig& config, Built* b) {
             if (b && !b->upload_role) {
               b->upload_role.reset(new roles::UploadRole{
                   b->config.upload, b->config.retention, b->config.quota, *b->api, *b->storage,
                   *b->queue, b->lifecycle.get(), *b->metadata, b->egress, b->metrics, b->now_ms});
             }
             roles::AddUploadRoutes(router, config.upload, b ? b->upload_role.get() : nullptr);
             // The upload role also serves the web page, since the page is how people upload.
             roles::AddWebRoutes(router, b != nullptr);
           }},
      {.name = "download",
       .storage = true,
       .metadata = true,
       .serves_api = true,
       .routes =
           [](http::Router& router, const ServeConfig&, Built* b) {
             if (b && !b->download_role) {
               b->download_role.reset(new roles::DownloadRole{
                   *b->api, *b->storage, b->presigned_urls.get(), *b->metadata});
             }
             roles::AddDownloadRoutes(router, b ? b->download_role.get() : nullptr);
           }},
      {.name = "converter",
       .storage = true,
       .queue = true,
       .metadata = true,
       .workers =
           [](Built& b, std::vector<std::unique_ptr<roles::Worker>>& workers) {
             b.converter_role.reset(new roles::ConverterRole{
                 b.config.converter, b.config.retention, *b.storage, *b.queue, b.lifecycle.get(),
                 *b.metadata, *b.events, b.metrics, b.now_ms,
                 std::chrono::seconds(b.config.backends.lease_seconds),
                 b.config.backends.job_attempts});
             workers.push_back(roles::MakeConverter(*b.converter_role));
           }},
      {.name = "notifier",
       .metadata = true,
       .serves_api = true,
       .routes =
           [](http::Router& router, const ServeConfig&, Built* b) {
             roles::AddNotifierRoutes(router, b ? &NotifierRoleOf(*b) : nullptr);
           },
       .workers =
           [](Built& b, std::vector<std::unique_ptr<roles::Worker>>& workers) {
             workers.push_back(roles::MakeNotifier(NotifierRoleOf(b)));
           }},
      {.name = "all",
       .depends_on = {"auth", "metadata", "upload", "download", "converter", "notifier"}},
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
                                   "converter, notifier or all",
                                   name));
    }
    if (wanted.count(it->name)) return {};
    for (auto dep : it->depends_on)
      if (auto s = add(dep); !s) return s;
    wanted.insert(it->name);
    order.push_back(&*it);  // dependencies first
    return {};
  };
  for (std::string_view item : SplitList(list)) {
    if (auto s = add(item); !s) return tl::unexpected(s.error());
  }
  if (order.empty()) return MakeError(ErrorCode::kInvalidArgument, "no role selected");
  return order;
}

// What the selected modules need together.
struct Needs {
  bool storage = false, queue = false, metadata = false, serves_api = false, signs = false;
};
Needs NeedsOf(const std::vector<const Module*>& modules) {
  Needs n;
  for (const Module* m : modules) {
    n.storage |= m->storage;
    n.queue |= m->queue;
    n.metadata |= m->metadata;
    n.serves_api |= m->serves_api;
    n.signs |= m->signs_tokens;
  }
  return n;
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

// The keys that verify tokens, for roles that serve the API without the auth role: from a
// public key file, or the auth role's JWKS (which may still be starting: retried for a while).
Result<std::vector<auth::PublicKey>> VerifyKeys(const roles::ApiConfig& api) {
  if (!api.jwt_public_key.empty()) {
    auto key = auth::PublicKey::FromFile(api.jwt_public_key);
    if (!key) return tl::unexpected(key.error());
    return std::vector<auth::PublicKey>{*key};
  }
  std::string url = api.auth_url;
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
  return *keys;
}

void AddBackendMetrics(Built& b) {
  if (b.queue) {
    b.metrics.AddCallbackGauge("vmp3_queue_depth", "Jobs in the queue (ready or leased).",
                               [q = b.queue] {
                                 auto depth = q->Depth();
                                 return depth ? static_cast<double>(*depth) : -1.0;
                               });
  }
  if (b.metadata) {
    // One CountByStatus per scrape for the five gauges, not one each; -1 when it fails.
    std::vector<std::pair<JobStatus, metrics::Gauge*>> gauges;
    for (JobStatus status : {JobStatus::kQueued, JobStatus::kConverting, JobStatus::kDone,
                             JobStatus::kFailed, JobStatus::kCancelled}) {
      gauges.emplace_back(status,
                          &b.metrics
                               .AddGauge(fmt::format("vmp3_jobs_{}", JobStatusName(status)),
                                         fmt::format("Jobs currently {}.", JobStatusName(status)))
                               .WithLabels());
    }
    b.metrics.AddCollector([m = b.metadata, gauges] {
      auto counts = m->CountByStatus();
      for (auto [status, gauge] : gauges) {
        if (!counts) {
          gauge->Set(-1);
          continue;
        }
        auto it = counts->find(status);
        gauge->Set(it == counts->end() ? 0.0 : static_cast<double>(it->second));
      }
    });
  }
}

}  // namespace

void ServerConfig::AddOptions(OptionList& options) {
  options.push_back(
      {"--listen", "VMP3_LISTEN", "HOST:PORT to listen on (port 0: any free port)", &listen});
  options.push_back({"--data-dir", "VMP3_DATA_DIR",
                     "Directory for embedded backends, keys and spool files", &data_dir});
  options.push_back(
      {"--roles", "VMP3_ROLES",
       "Roles to run: all, or a list of auth,upload,metadata,download,converter,notifier", &roles});
  options.push_back(
      {"--io-threads", "VMP3_IO_THREADS", "HTTP I/O threads (0: one per core)", &io_threads});
  options.push_back({"--request-timeout", "VMP3_REQUEST_TIMEOUT",
                     "Seconds a request may wait for its backends before it gets 503 (streaming "
                     "requests: per backend call)",
                     &request_timeout_seconds});
  options.push_back({"--blocking-threads", "VMP3_BLOCKING_THREADS",
                     "Threads for backend calls and password hashing (never the I/O threads)",
                     &blocking_threads});
  options.push_back({"--blocking-queue", "VMP3_BLOCKING_QUEUE",
                     "Backend calls that may wait for a blocking thread; beyond, requests get 503 "
                     "at once",
                     &blocking_queue});
  options.push_back(
      {"--drain", "VMP3_DRAIN", "Seconds to finish in-flight requests on SIGTERM", &drain_seconds});
  options.push_back({"--trusted-proxies", "VMP3_TRUSTED_PROXIES",
                     "Comma list of CIDRs of gateways whose X-Forwarded-For names the client "
                     "(e.g. your ingress controller's pod network)",
                     &trusted_proxies});
  options.push_back(
      {"--log-level", "VMP3_LOG_LEVEL", "trace, debug, info, warn, error", &log_level});
  options.push_back({"--clock-offset", "VMP3_CLOCK_OFFSET",
                     "Testing only: seconds added to the clock", &clock_offset_seconds, true});
}

Status ServerConfig::Validate() const {
  if (auto l = SplitListen(listen); !l) return tl::unexpected(l.error());
  if (auto r = ResolveRoles(roles); !r) return tl::unexpected(r.error());
  if (io_threads < 0 || io_threads > 256)
    return MakeError(ErrorCode::kInvalidArgument, "--io-threads must be 0..256");
  if (!(request_timeout_seconds >= 0.1 && request_timeout_seconds <= 600))
    return MakeError(ErrorCode::kInvalidArgument, "--request-timeout must be 0.1..600 s");
  if (blocking_threads < 1 || blocking_threads > 1024)
    return MakeError(ErrorCode::kInvalidArgument, "--blocking-threads must be 1..1024");
  if (blocking_queue < 0)
    return MakeError(ErrorCode::kInvalidArgument, "--blocking-queue must not be negative");
  if (drain_seconds < 0)
    return MakeError(ErrorCode::kInvalidArgument, "--drain must not be negative");
  return {};
}

void BackendConfig::AddOptions(OptionList& options) {
  options.push_back({"--storage", "VMP3_STORAGE",
                     "Object store URL: file (under the data dir), file:///path, "
                     "s3://BUCKET?endpoint=URL&region=R (keys from AWS_* variables), or memory "
                     "(this process only, gone when it exits: demos)",
                     &storage});
  options.push_back({"--queue", "VMP3_QUEUE",
                     "Job queue URL: sqlite (under the data dir), sqlite:///path, RabbitMQ as "
                     "amqp://USER:PASS@HOST:5672/VHOST?prefix=vmp3&timeout_ms=5000 (timeout_ms "
                     "bounds every call to the broker; default 5000), or memory (demos)",
                     &queue});
  options.push_back({"--metadata", "VMP3_METADATA",
                     "Metadata store URL: sqlite (under the data dir), sqlite:///path, "
                     "redis://[:pass@]host:port/DB, or memory (demos)",
                     &metadata});
  options.push_back({"--job-attempts", "VMP3_JOB_ATTEMPTS",
                     "Deliveries of a job before it is given up", &job_attempts});
  options.push_back({"--lease", "VMP3_LEASE",
                     "Seconds a silent converter keeps a job before it is redelivered",
                     &lease_seconds});
}

Status BackendConfig::Validate() const {
  if (job_attempts < 1)
    return MakeError(ErrorCode::kInvalidArgument, "--job-attempts must be at least 1");
  if (lease_seconds < 5)
    return MakeError(ErrorCode::kInvalidArgument, "--lease must be at least 5 s");
  return {};
}

OptionList ServeConfig::AllOptions() {
  OptionList options;
  server.AddOptions(options);
  backends.AddOptions(options);
  api.AddOptions(options);
  auth.AddOptions(options);
  upload.AddOptions(options);
  quota.AddOptions(options);
  retention.AddOptions(options);
  metadata.AddOptions(options);
  converter.AddOptions(options);
  notifier.AddOptions(options);
  egress.AddOptions(options);
  return options;
}

Status ServeConfig::Validate() const {
  for (Status s : {server.Validate(), backends.Validate(), api.Validate(), auth.Validate(),
                   upload.Validate(), quota.Validate(), retention.Validate(), metadata.Validate(),
                   converter.Validate(), notifier.Validate(), egress.Validate()}) {
    if (!s) return s;
  }
  const auto modules = *ResolveRoles(server.roles);
  // A memory backend lives in this process, where no other process can reach it.
  const bool memory =
      backends.storage == "memory" || backends.queue == "memory" || backends.metadata == "memory";
  // "all" is a name for the others, not a role of its own.
  auto is_role = [](const Module& m) { return m.name != std::string_view("all"); };
  const auto roles_here =
      std::count_if(modules.begin(), modules.end(), [&](const Module* m) { return is_role(*m); });
  if (memory && roles_here != std::count_if(Modules().begin(), Modules().end(), is_role)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "memory backends live in one process only: use them with --roles all");
  }
  // Only a process that serves the API without signing needs to be told how to verify tokens.
  Needs needs = NeedsOf(modules);
  if (needs.serves_api && !needs.signs && api.jwt_public_key.empty() && api.auth_url.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "roles serving the API without the auth role need --jwt-public-key or "
                     "--auth-url to verify tokens");
  }
  return {};
}

struct Service::Impl {
  Built built;
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
  Built& b = impl.built;
  b.config = config;
  b.config.converter.spool_dir = config.server.data_dir / "spool";
  b.now_ms = now_ms ? std::move(now_ms) : [offset = config.server.clock_offset_seconds * 1000] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count() +
           offset;
  };
  impl.modules = *ResolveRoles(config.server.roles);
  b.egress = *config.egress.Policy();  // validated above
  const Needs needs = NeedsOf(impl.modules);
  const auto& data_dir = config.server.data_dir;

  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec)
    return tl::unexpected(ErrnoError(ec, "cannot create the data directory", data_dir.string()));
  // Backends: only those a selected role needs.
  if (needs.storage) {
    auto store = MakeObjectStore(config.backends.storage, data_dir);
    if (!store) return tl::unexpected(store.error());
    b.storage = store->store;
    b.presigned_urls = store->presigned_urls;
    b.abandoned_writes = store->abandoned_writes;
  }
  if (needs.queue) {
    JobQueueOptions options;
    options.lease = std::chrono::seconds(config.backends.lease_seconds);
    options.max_attempts = config.backends.job_attempts;
    auto queue = MakeJobQueue(config.backends.queue, data_dir, options);
    if (!queue) return tl::unexpected(queue.error());
    b.queue = queue->queue;
    b.lifecycle = queue->lifecycle;
  }
  if (needs.metadata) {
    auto metadata = MakeMetadataBackend(config.backends.metadata, data_dir);
    if (!metadata) return tl::unexpected(metadata.error());
    b.metadata = metadata->store;
    b.limits = metadata->limits;
    b.notifications = metadata->notifications;
    auto events = MakeJobEventBus(config.backends.metadata);
    if (!events) return tl::unexpected(events.error());
    b.events = *events;
  }

  // Keys: the auth role signs (and so holds the private key); roles serving the API verify.
  auth::TokenVerifierOptions verifier_options;
  verifier_options.clock = [clock = b.now_ms] { return clock() / 1000; };
  std::vector<auth::PublicKey> verify_keys;
  if (needs.signs) {
    auto key_path =
        config.auth.jwt_key.empty() ? data_dir / "jwt-ed25519.key" : config.auth.jwt_key;
    auto key = auth::SigningKey::LoadOrCreate(key_path);
    if (!key) return tl::unexpected(key.error());
    verify_keys.push_back(key->public_key());
    b.signing_key.emplace(std::move(*key));
  } else if (needs.serves_api) {
    auto keys = VerifyKeys(config.api);
    if (!keys) return tl::unexpected(keys.error());
    verify_keys = std::move(*keys);
  }
  // The notifier's VAPID key, like the signing key: created on first start.
  if (std::any_of(impl.modules.begin(), impl.modules.end(),
                  [](const Module* m) { return m->name == "notifier"; })) {
    auto path =
        config.notifier.vapid_key.empty() ? data_dir / "vapid-p256.pem" : config.notifier.vapid_key;
    auto key = notify::VapidKey::LoadOrCreate(path);
    if (!key) return tl::unexpected(key.error());
    b.vapid.emplace(std::move(*key));
    if (auto smtp = config.notifier.Smtp()) {
      auto mailer = notify::SmtpMailer::Create(*smtp);
      if (!mailer) return tl::unexpected(mailer.error());
      b.mailer.emplace(std::move(*mailer));
    }
  }
  if (needs.serves_api) {
    b.verifier = std::make_unique<auth::TokenVerifier>(std::move(verify_keys), verifier_options);
    if (config.api.RateLimit().enabled())
      b.rate_limiter = std::make_unique<auth::RateLimiter>(*b.limits, config.api.RateLimit());
    b.api = std::make_unique<roles::Api>(*b.verifier, b.rate_limiter.get(), b.now_ms);
  }

  // Every process declares every role's routes: its own are served, the others answer 421.
  for (const Module& module : Modules()) {
    if (!module.routes) continue;
    bool served =
        std::find(impl.modules.begin(), impl.modules.end(), &module) != impl.modules.end();
    module.routes(impl.router, config, served ? &b : nullptr);
  }
  // The job list shares its URL with uploads (roles/metadata_role.hpp): either role serves it.
  bool lists_jobs = std::any_of(impl.modules.begin(), impl.modules.end(), [](const Module* m) {
    return m->name == "metadata" || m->name == "upload";
  });
  roles::AddJobListRoute(impl.router, lists_jobs ? &MetadataRoleOf(b) : nullptr);
  // Readiness: each backend this process uses, checked in the background.
  b.health =
      std::make_unique<roles::BackendHealth>(std::chrono::seconds(1), std::chrono::seconds(2));
  if (b.storage) b.health->Add("storage", [s = b.storage] { return s->Ping(); });
  if (b.queue) b.health->Add("queue", [q = b.queue] { return q->Ping(); });
  if (b.metadata) b.health->Add("metadata", [m = b.metadata] { return m->Ping(); });
  roles::AddOperationalRoutes(impl.router, b.metrics, b.health.get());
  AddBackendMetrics(b);

  auto [host, port] = *SplitListen(config.server.listen);
  http::ServerOptions server_options;
  server_options.address = host;
  server_options.port = port;
  server_options.io_threads =
      config.server.io_threads > 0
          ? config.server.io_threads
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  server_options.drain_timeout = std::chrono::seconds(config.server.drain_seconds);
  server_options.request_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(config.server.request_timeout_seconds * 1000));
  server_options.blocking_threads = config.server.blocking_threads;
  server_options.blocking_queue = static_cast<size_t>(config.server.blocking_queue);
  server_options.trusted_proxies.clear();
  for (std::string_view cidr : SplitList(config.server.trusted_proxies))
    server_options.trusted_proxies.emplace_back(cidr);
  impl.server = std::make_unique<http::Server>(server_options, impl.router, &b.metrics);

  for (const Module* module : impl.modules)
    if (module->workers) module->workers(b, impl.workers);
  return service;
}

Status Service::Start() {
  impl_->built.health->Start();
  if (auto s = impl_->server->Start(); !s) return s;
  for (auto& worker : impl_->workers) worker->Start();
  std::vector<std::string_view> names;
  for (const Module* m : impl_->modules) {
    if (m->routes || m->workers) names.push_back(m->name);  // not `all`, an alias
  }
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
  impl_->built.health->Stop();
}

}  // namespace vmp3::service
