// libFuzzer entry point; the property checks live in fuzz_targets.cpp.
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return vmp3::fuzz::FuzzRange(data, size);
}
