// Configuration of `vmp3 serve`: the server's own settings, the backends, and each role's config
// struct (owned by the role, in src/roles). AllOptions lists every module's flags and VMP3_*
// environment variables from the one table each module keeps beside its defaults;
// app/serve_command.cpp binds them to the command line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/error.hpp"
#include "common/options.hpp"
#include "roles/api.hpp"
#include "roles/auth_role.hpp"
#include "roles/converter_role.hpp"
#include "roles/egress.hpp"
#include "roles/jobs.hpp"
#include "roles/metadata_role.hpp"
#include "roles/notifier_role.hpp"
#include "roles/upload_role.hpp"

namespace vmp3::service {

// The process: where it listens, its threads and time limits, which roles it runs.
struct ServerConfig {
  std::string listen = "127.0.0.1:8080";           // host:port; port 0 picks a free one
  std::filesystem::path data_dir = "./vmp3-data";  // embedded backends, keys, spool files
  std::string roles =
      "all";           // comma list of auth,upload,metadata,download,converter,notifier, or all
  int io_threads = 0;  // HTTP I/O threads; 0 = number of cores
  // A request waits this long at most for its backends (a blocking thread included), then gets
  // 503; streaming requests (uploads, downloads, event streams) get it per backend call.
  double request_timeout_seconds = 5;
  int blocking_threads = 8;  // threads for backend calls and password hashing
  int blocking_queue = 256;  // calls waiting for one of them; beyond, 503 at once
  int drain_seconds = 15;    // graceful shutdown bound
  // Gateways whose X-Forwarded-For names the client (for per-address login throttling): CIDRs.
  std::string trusted_proxies = "127.0.0.0/8,::1/128";
  std::string log_level = "info";
  int64_t clock_offset_seconds = 0;  // testing only: shifts the service's clock

  void AddOptions(OptionList& options);
  Status Validate() const;
};

// The backends, by URL, and the queue's delivery settings.
struct BackendConfig {
  std::string storage = "file";     // object store URL ("file" = data_dir/objects)
  std::string queue = "sqlite";     // job queue URL ("sqlite" = data_dir/queue.db)
  std::string metadata = "sqlite";  // metadata URL ("sqlite" = data_dir/vmp3.db)
  int job_attempts = 3;             // deliveries before a job is dead-lettered
  int lease_seconds = 60;           // a converter silent this long has lost its job

  void AddOptions(OptionList& options);
  Status Validate() const;
};

struct ServeConfig {
  ServerConfig server;
  BackendConfig backends;
  roles::ApiConfig api;
  roles::AuthConfig auth;
  roles::UploadConfig upload;
  roles::QuotaConfig quota;
  roles::RetentionConfig retention;
  roles::MetadataConfig metadata;
  roles::ConverterConfig converter;
  roles::NotifierConfig notifier;
  roles::EgressConfig egress;

  // Every module's options, bound to this config's fields.
  OptionList AllOptions();
  // Fails with kInvalidArgument naming the bad setting; checks what the selected roles use.
  Status Validate() const;
};

}  // namespace vmp3::service
