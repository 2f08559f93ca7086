// The libFuzzer hooks of one fuzz executable. CMakeLists.txt here compiles this file once per
// target with VMP3_FUZZ_ENTRY naming its entry point (fuzz_targets.hpp).
#include <spdlog/spdlog.h>

#include "fuzz_targets.hpp"

#ifndef VMP3_FUZZ_ENTRY
#error "define VMP3_FUZZ_ENTRY to the entry point, e.g. vmp3::fuzz::FuzzRange"
#endif

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // Logging is not under test, and millions of log lines (FFmpeg's warnings about the garbage it
  // is fed among them) would slow fuzzing down and drown a crash report.
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return VMP3_FUZZ_ENTRY(data, size);
}
