// Configuration of `vmp3 serve`. Each field has its default and meaning here; app/serve_command.cpp
// exposes every field as a flag and a VMP3_* environment variable from one table.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/error.hpp"

namespace vmp3::service {

struct ServeConfig {
  std::string listen = "127.0.0.1:8080";           // host:port; port 0 picks a free one
  std::filesystem::path data_dir = "./vmp3-data";  // embedded backends, keys, spool files
  std::string roles = "all";        // comma list of auth,upload,metadata,download,converter
  std::string storage = "file";     // object store URL ("file" = data_dir/objects)
  std::string queue = "sqlite";     // job queue URL ("sqlite" = data_dir/queue.db)
  std::string metadata = "sqlite";  // metadata URL ("sqlite" = data_dir/vmp3.db)
  int workers = 0;                  // converter threads; 0 = number of cores
  int io_threads = 0;               // HTTP I/O threads; 0 = number of cores
  // A request waits this long at most for its backends (a blocking thread included), then gets
  // 503; streaming requests (uploads, downloads, event streams) get it per backend call.
  double request_timeout_seconds = 5;
  int blocking_threads = 8;                   // threads for backend calls and password hashing
  int blocking_queue = 256;                   // calls waiting for one of them; beyond, 503 at once
  uint64_t max_upload_bytes = 2ull << 30;     // 2 GiB
  double max_input_seconds = 12 * 3600;       // longest input accepted
  uint64_t max_output_bytes = 1ull << 30;     // largest MP3 produced
  int64_t retention_seconds = 7 * 24 * 3600;  // jobs and outputs expire after this
  bool keep_inputs = false;                   // keep uploads after their job ends
  int64_t token_ttl_seconds = 3600;           // lifetime of issued tokens
  std::filesystem::path jwt_key;              // private key file; default data_dir/jwt-ed25519.key
  std::filesystem::path jwt_public_key;       // verify-only roles: the public key file
  std::string auth_url;                       // verify-only roles: fetch the JWKS from here
  int job_attempts = 3;                       // deliveries before a job is dead-lettered
  int lease_seconds = 60;                     // a converter that is silent this long lost its job
  int drain_seconds = 15;                     // graceful shutdown bound
  int janitor_interval_seconds = 60;
  bool open_registration = true;  // anyone may register
  std::string log_level = "info";
  int64_t clock_offset_seconds = 0;  // testing only: shifts the service's clock

  // Fails with kInvalidArgument naming the bad setting.
  Status Validate() const;
};

}  // namespace vmp3::service
