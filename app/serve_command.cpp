// `vmp3 serve`: every option is a flag and a VMP3_* environment variable, from one table.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <thread>
#include <variant>

#include "commands.hpp"
#include "service/service.hpp"

namespace vmp3::app {
namespace {

service::ServeConfig config;

struct OptionRow {
  const char* flag;
  const char* env;
  const char* help;
  std::variant<std::string*, std::filesystem::path*, int*, int64_t*, uint64_t*, double*, bool*>
      target;
};

std::vector<OptionRow> OptionTable() {
  auto& c = config;
  return {
      {"--listen", "VMP3_LISTEN", "HOST:PORT to listen on (port 0: any free port)", &c.listen},
      {"--data-dir", "VMP3_DATA_DIR", "Directory for embedded backends, keys and spool files",
       &c.data_dir},
      {"--roles", "VMP3_ROLES",
       "Roles to run: all, or a list of auth,upload,metadata,download,converter", &c.roles},
      {"--storage", "VMP3_STORAGE",
       "Object store URL: file (under the data dir), file:///path, or "
       "s3://BUCKET?endpoint=URL&region=R (docs/deploy.md)",
       &c.storage},
      {"--queue", "VMP3_QUEUE",
       "Job queue URL: sqlite (under the data dir), sqlite:///path, or "
       "amqp://USER:PASS@HOST:PORT/VHOST (RabbitMQ)",
       &c.queue},
      {"--metadata", "VMP3_METADATA",
       "Metadata store URL: sqlite (under the data dir), sqlite:///path, or "
       "redis://HOST:PORT/DB",
       &c.metadata},
      {"--workers", "VMP3_WORKERS", "Converter threads (0: one per core)", &c.workers},
      {"--io-threads", "VMP3_IO_THREADS", "HTTP I/O threads (0: one per core)", &c.io_threads},
      {"--max-upload-bytes", "VMP3_MAX_UPLOAD_BYTES", "Largest upload accepted (413 beyond)",
       &c.max_upload_bytes},
      {"--max-input-seconds", "VMP3_MAX_INPUT_SECONDS", "Longest input converted",
       &c.max_input_seconds},
      {"--max-output-bytes", "VMP3_MAX_OUTPUT_BYTES", "Largest MP3 produced", &c.max_output_bytes},
      {"--retention", "VMP3_RETENTION", "Seconds before jobs and their MP3s expire",
       &c.retention_seconds},
      {"--keep-inputs", "VMP3_KEEP_INPUTS", "Keep uploaded files after their job ends",
       &c.keep_inputs},
      {"--token-ttl", "VMP3_TOKEN_TTL", "Lifetime of issued tokens, seconds", &c.token_ttl_seconds},
      {"--jwt-key", "VMP3_JWT_KEY",
       "Private signing key file (auth role; created if missing; default DATA_DIR/jwt-ed25519.key)",
       &c.jwt_key},
      {"--jwt-public-key", "VMP3_JWT_PUBLIC_KEY",
       "Public key file that verifies tokens (roles without auth)", &c.jwt_public_key},
      {"--auth-url", "VMP3_AUTH_URL",
       "Roles without auth: base URL of the auth role, whose JWKS verifies tokens", &c.auth_url},
      {"--job-attempts", "VMP3_JOB_ATTEMPTS", "Deliveries of a job before it is given up",
       &c.job_attempts},
      {"--lease", "VMP3_LEASE", "Seconds a silent converter keeps a job before it is redelivered",
       &c.lease_seconds},
      {"--drain", "VMP3_DRAIN", "Seconds to finish in-flight requests on SIGTERM",
       &c.drain_seconds},
      {"--janitor-interval", "VMP3_JANITOR_INTERVAL", "Seconds between retention sweeps",
       &c.janitor_interval_seconds},
      {"--open-registration", "VMP3_OPEN_REGISTRATION", "Anyone may register an account",
       &c.open_registration},
      {"--log-level", "VMP3_LOG_LEVEL", "trace, debug, info, warn, error", &c.log_level},
      {"--clock-offset", "VMP3_CLOCK_OFFSET", "Testing only: seconds added to the clock",
       &c.clock_offset_seconds},
  };
}

std::atomic<int> received_signal{0};
void OnSignal(int signal) { received_signal = signal; }

}  // namespace

void AddServeOptions(CLI::App& sub) {
  for (const OptionRow& row : OptionTable()) {
    CLI::Option* option = std::visit(
        [&](auto* target) -> CLI::Option* {
          using T = std::remove_pointer_t<decltype(target)>;
          if constexpr (std::is_same_v<T, bool>) {
            return sub.add_option(row.flag, *target, row.help)
                ->default_str(*target ? "true" : "false");
          } else {
            return sub.add_option(row.flag, *target, row.help)->capture_default_str();
          }
        },
        row.target);
    option->envname(row.env);
  }
  sub.get_option("--clock-offset")->group("");  // hidden
}

int RunServe() {
  auto level = spdlog::level::from_str(config.log_level);
  spdlog::set_level(level);
  auto service = service::Service::Create(config);
  if (!service) {
    std::fprintf(stderr, "vmp3: serve: %s\n", service.error().message.c_str());
    return kExitUsage;
  }
  if (auto s = (*service)->Start(); !s) {
    std::fprintf(stderr, "vmp3: serve: %s\n", s.error().message.c_str());
    return kExitFailure;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  std::printf("vmp3 listening on http://%s:%u/\n",
              config.listen.substr(0, config.listen.rfind(':')).c_str(), (*service)->port());
  std::fflush(stdout);
  while (received_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("signal {}: draining", received_signal.load());
  (*service)->Stop();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace vmp3::app
