// Runs another program from a test and collects what it printed: ffmpeg for fixtures, curl, the
// scripts that start, stop and configure the test servers.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace vmp3::test {

struct ProcessResult {
  int exit_code = -1;  // -1 when it did not exit normally (killed, timed out)
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs `argv` (argv[0] looked up in PATH) with stdin from /dev/null and waits at most `timeout`
// (SIGKILL past it). Throws std::runtime_error when it cannot be started. Thread-safe.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace vmp3::test
