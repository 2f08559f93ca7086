// Waiting that a std::stop_token can cut short, for background threads that must stop promptly.
#pragma once

#include <chrono>
#include <stop_token>

namespace vmp3 {

// Sleeps for `duration` or until `stop` is requested, whichever comes first. True when it slept
// the whole time, false when stopped.
bool SleepUnlessStopped(std::stop_token stop, std::chrono::milliseconds duration);

}  // namespace vmp3
