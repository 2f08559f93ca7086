// The engine on a file, as the tests call it: FileSource -> media::Convert -> AtomicFileSink,
// committed on success, into a fresh temporary directory. Thread-safe.
#pragma once

#include <filesystem>
#include <string>

#include "common/error.hpp"
#include "media/converter.hpp"

namespace vmp3::test {

struct ConvertedFile {
  Result<media::ConvertResult> result;
  std::filesystem::path dir;   // holds nothing but the committed output
  std::filesystem::path path;  // the output, committed only when result has a value
};

// Converts `input`; the sink is gone on return (an uncommitted one leaves nothing behind).
ConvertedFile ConvertFile(const std::filesystem::path& input,
                          const media::ConvertOptions& options = {},
                          const media::ConvertControl& control = {});

// "code_name: message", for test failure messages.
std::string Describe(const Error& e);

}  // namespace vmp3::test
