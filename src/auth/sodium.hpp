// libsodium's one-time initialisation, shared by everything in auth/ that calls libsodium.
#pragma once

namespace vmp3::auth {

// True once sodium_init() has succeeded. The first call initialises; later calls only read a
// static (sodium_init() is itself idempotent and thread-safe; the static saves the repeated call).
bool SodiumReady();

}  // namespace vmp3::auth
