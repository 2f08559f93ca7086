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

std::atomic<int> received_signal{0};
void OnServeSignal(int signal) { received_signal = signal; }

}  // namespace

void AddServeOptions(CLI::App& sub) {
  // Each module's own table (src/roles/*, src/service/config.hpp): flag, variable, meaning.
  for (const Option& row : config.AllOptions()) {
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
    if (row.hidden) option->group("");
  }
}

int RunServe() {
  auto level = spdlog::level::from_str(config.server.log_level);
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
  std::signal(SIGINT, OnServeSignal);
  std::signal(SIGTERM, OnServeSignal);
  std::signal(SIGPIPE, SIG_IGN);
  const std::string& listen = config.server.listen;
  std::printf("vmp3 listening on http://%s:%u/\n", listen.substr(0, listen.rfind(':')).c_str(),
              (*service)->port());
  std::fflush(stdout);
  while (received_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("signal {}: draining", received_signal.load());
  (*service)->Stop();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace vmp3::app
