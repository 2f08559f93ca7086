// Random identifiers for records (users, jobs, events, webhooks, deliveries).
#pragma once

#include <string>

namespace vmp3 {

// 26 lowercase base32 characters (128 random bits from libsodium): unguessable, URL-safe, and
// the same form everywhere, so an id never tells what kind of record it names or when it was made.
std::string RandomId();

}  // namespace vmp3
