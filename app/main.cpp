// vmp3: one executable, subcommands from a table (like ClickHouse's programs/main.cpp).
#include <CLI/CLI.hpp>
#include <array>
#include <cstdio>
#include <exception>
#include <string>

#include "commands.hpp"

#ifndef VMP3_VERSION
#define VMP3_VERSION "unknown"
#endif

namespace vmp3::app {
namespace {

constexpr std::array kCommands = {
    Command{"convert", "Convert video or audio files to MP3", AddConvertOptions, RunConvert},
    Command{"probe", "Show the container, streams and tags of a media file", AddProbeOptions,
            RunProbe},
    Command{"serve", "Run the HTTP service (all roles on embedded backends by default)",
            AddServeOptions, RunServe},
};

int Main(int argc, char** argv) {
  CLI::App app("vmp3: turns videos into MP3s", "vmp3");
  app.set_version_flag("--version", std::string("vmp3 ") + VMP3_VERSION);
  app.require_subcommand(1);
  app.failure_message([](const CLI::App* root, const CLI::Error& e) {
    std::string command;
    for (const CLI::App* sub : root->get_subcommands()) command = " " + sub->get_name();
    return "vmp3: " + std::string(e.what()) + "\nRun 'vmp3" + command +
           " --help' for more information.\n";
  });

  std::array<CLI::App*, kCommands.size()> subs{};
  for (size_t i = 0; i < kCommands.size(); ++i) {
    subs[i] =
        app.add_subcommand(std::string(kCommands[i].name), std::string(kCommands[i].description));
    kCommands[i].add_options(*subs[i]);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == static_cast<int>(CLI::ExitCodes::Success) ? kExitOk : kExitUsage;
  }

  for (size_t i = 0; i < kCommands.size(); ++i) {
    if (subs[i]->parsed()) return kCommands[i].run();
  }
  return kExitUsage;  // unreachable: require_subcommand(1)
}

}  // namespace
}  // namespace vmp3::app

int main(int argc, char** argv) {
  try {
    return vmp3::app::Main(argc, argv);
  } catch (const std::exception& e) {
    // Commands do not throw; this is the last guard (e.g. std::bad_alloc).
    std::fprintf(stderr, "vmp3: internal error: %s\n", e.what());
    return vmp3::app::kExitFailure;
  }
}
