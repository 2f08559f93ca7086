#include "auth/sodium.hpp"

#include <sodium.h>

namespace vmp3::auth {

bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

}  // namespace vmp3::auth
