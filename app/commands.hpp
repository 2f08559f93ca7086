// The subcommands of the vmp3 executable. main.cpp holds the table; each command lives in its own
// <name>_command.cpp. To add one: declare its two functions here, define them, add a row to
// kCommands in main.cpp and the file to app/CMakeLists.txt.
//
// Contract of a command:
//   - AddXOptions registers the subcommand's options and positionals on `sub`, binding them to
//     storage owned by the command's .cpp (the process runs at most one command, once).
//   - RunX is called after a successful parse, on the main thread, and returns the process exit
//     code. It must not throw; it reports its own errors on stderr as "vmp3: <what>: <reason>".
#pragma once

#include <string_view>

namespace CLI {
class App;
}

namespace vmp3::app {

// Process exit codes shared by all commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;        // the command ran and something failed
inline constexpr int kExitUsage = 2;          // bad command line; nothing was done
inline constexpr int kExitInterrupted = 130;  // SIGINT (128 + 2), after a clean cancel

struct Command {
  std::string_view name;
  std::string_view description;  // one line, shown by `vmp3 --help`
  void (*add_options)(CLI::App& sub);
  int (*run)();
};

void AddConvertOptions(CLI::App& sub);
int RunConvert();

void AddProbeOptions(CLI::App& sub);
int RunProbe();

void AddServeOptions(CLI::App& sub);
int RunServe();

}  // namespace vmp3::app
