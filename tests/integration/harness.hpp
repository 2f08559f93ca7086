// What the whole-system tests share on top of ServerProcess and HttpClient: accounts, uploads,
// waiting for jobs, the long media inputs, looking at the data dir.
//
// Errors: helpers that need a precondition to hold (an account was created, an upload was
// accepted) throw std::runtime_error with the server's answer, which GoogleTest reports as a
// failure of the calling test. Thread-safe unless noted.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "integration/http_client.hpp"
#include "support/process.hpp"

namespace vmp3::itest {

using namespace std::chrono_literals;

// An account on a running server, signed in.
struct Account {
  std::string username;
  std::string password;
  std::string token;  // from POST /v1/auth/login
};

// A username no other call in this process has returned: `prefix` + a counter + the pid.
std::string UniqueName(std::string_view prefix = "user");

// Registers a fresh account (expects 201) and logs it in (expects 200 with access_token).
Account CreateAccount(const HttpClient& client, std::string_view prefix = "user");

// POST /v1/auth/login with the account's password (HTTP Basic); returns the new token. Throws
// when the sign-in is refused.
std::string Login(const HttpClient& client, const Account& account);

// Checks a done job: its record says `seconds` of output, and its MP3 downloads whole and
// decodes, without errors, to `seconds` of 44.1 kHz stereo. Reports through GoogleTest.
void ExpectMp3(const HttpClient& client, const Account& account, const nlohmann::json& job,
               double seconds);

// POST /v1/jobs with `file` as the multipart part 'file' (named `filename`, default: the file's
// own name). Returns the response; the caller checks it.
HttpResponse Upload(const HttpClient& client, const Account& account,
                    const std::filesystem::path& file, std::string filename = {});
// Upload() that must be accepted (202): returns the job's JSON.
nlohmann::json UploadJob(const HttpClient& client, const Account& account,
                         const std::filesystem::path& file, std::string filename = {});

// Polls GET /v1/jobs/{id} every 20 ms until `until(job)` holds; returns that job. Throws with
// the last answer when `timeout` passes first.
nlohmann::json WaitForJob(const HttpClient& client, const Account& account, const std::string& id,
                          const std::function<bool(const nlohmann::json&)>& until,
                          std::chrono::milliseconds timeout = 60s);
// WaitForJob until the job is done, failed or cancelled.
nlohmann::json WaitForEnd(const HttpClient& client, const Account& account, const std::string& id,
                          std::chrono::milliseconds timeout = 60s);
// WaitForJob until the job has status `status` (e.g. "converting").
nlohmann::json WaitForStatus(const HttpClient& client, const Account& account,
                             const std::string& id, std::string_view status,
                             std::chrono::milliseconds timeout = 60s);

// A video long enough to report progress: MP4, H.264 160x120 + AAC 44100 Hz stereo, left 440 Hz,
// right 880 Hz, 25 s. Generated once with the ffmpeg CLI and cached beside the unit fixtures.
std::filesystem::path TonesVideo25s();
inline constexpr double kTonesVideoSeconds = 25;
// Audio that takes the converter seconds: M4A, AAC 44100 Hz stereo, left 440 Hz, right 660 Hz,
// 10 minutes. Cached like TonesVideo25s.
std::filesystem::path LongAudio();
inline constexpr double kLongAudioSeconds = 600;

// A fresh data directory (inside a TempDir removed at process exit).
std::filesystem::path NewDataDir();

// The objects the server started on `data_dir` holds, as keys, sorted. Embedded: regular files
// under DATA_DIR/objects (the .tmp staging directory included). On real backends
// (DistributedBackends()): the S3 objects under the server's key prefix, plus one
// "multipart:KEY" entry per multipart upload left open (an orphan).
std::vector<std::string> ObjectFiles(const std::filesystem::path& data_dir);

// Stores `bytes` under `key` in the object store of the server on `data_dir`, behind its back
// (a file under DATA_DIR/objects, or an S3 PUT under the server's key prefix): what a crash or
// a failed removal leaves behind.
void PutObject(const std::filesystem::path& data_dir, const std::string& key,
               std::string_view bytes);

// True when VMP3_IT_BACKENDS=distributed: every server the tests start runs on the real
// RabbitMQ, Redis and S3 of VMP3_TEST_AMQP_URL, VMP3_TEST_REDIS_URL and VMP3_TEST_S3_URL (make
// test starts them), with key/queue prefixes of its own derived from its data directory.
bool DistributedBackends();
// The extra `vmp3 serve` arguments for that (empty when embedded).
std::vector<std::string> BackendArgs(const std::filesystem::path& data_dir);

// Running other programs (support/process.hpp).
using test::ProcessResult;
using test::RunProcess;

std::string ReadFile(const std::filesystem::path& path);
void WriteFile(const std::filesystem::path& path, std::string_view bytes);

}  // namespace vmp3::itest
