// Settings as data: each module lists its options (flag, environment variable, meaning, and the
// config field it sets) next to its config struct, so the flags and VMP3_* variables of a
// module are declared once, beside their defaults. app/serve_command.cpp binds every module's
// list to the command line; nothing here depends on a command-line library.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

namespace vmp3 {

struct Option {
  std::string flag;  // "--max-active-jobs"
  std::string env;   // "VMP3_MAX_ACTIVE_JOBS"
  std::string help;  // what it means, with its unit
  std::variant<std::string*, std::filesystem::path*, int*, int64_t*, uint64_t*, double*, bool*>
      target;
  bool hidden = false;  // testing knobs: not listed in --help
};

using OptionList = std::vector<Option>;

}  // namespace vmp3
