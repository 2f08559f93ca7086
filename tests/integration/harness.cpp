#include "integration/harness.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/audio_decode.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

bool IsTerminal(const json& job) {
  const std::string status = job.value("status", "");
  return status == "done" || status == "failed" || status == "cancelled";
}

// Makes `name` in the fixture cache with `ffmpeg ARGS... out` unless it is there already; the
// name carries a version, so a changed recipe gets a new file. Safe across processes (flock).
fs::path CachedMedia(const std::string& name, const std::vector<std::string>& args) {
  const fs::path dir = VMP3_FIXTURE_DIR;
  const fs::path final_path = dir / name;
  static std::mutex mu;
  std::lock_guard guard(mu);
  if (fs::exists(final_path)) return final_path;
  fs::create_directories(dir);
  int lock = ::open((dir / ".integration.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) throw std::runtime_error("cannot open the fixture lock in " + dir.string());
  while (::flock(lock, LOCK_EX) != 0 && errno == EINTR) {
  }
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock};
  if (fs::exists(final_path)) return final_path;
  const fs::path partial = dir / (".partial-" + name);
  std::vector<std::string> argv = {"ffmpeg",    "-nostdin", "-hide_banner",
                                   "-loglevel", "error",    "-y"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(partial.string());
  ProcessResult ran = RunProcess(argv, 300s);
  if (ran.exit_code != 0) {
    throw std::runtime_error(
        fmt::format("ffmpeg failed making {} (exit {}): {}", name, ran.exit_code, ran.err));
  }
  fs::rename(partial, final_path);
  return final_path;
}

std::vector<std::string> StereoTones(int left, int right, int rate, double seconds) {
  return {"-f", "lavfi",
          "-i", fmt::format("sine=frequency={}:sample_rate={}:duration={}", left, rate, seconds),
          "-f", "lavfi",
          "-i", fmt::format("sine=frequency={}:sample_rate={}:duration={}", right, rate, seconds)};
}

}  // namespace

std::string UniqueName(std::string_view prefix) {
  static std::atomic<int> counter{0};
  return fmt::format("{}{}x{}", prefix, counter.fetch_add(1), ::getpid());
}

Account CreateAccount(const HttpClient& client, std::string_view prefix) {
  Account account;
  account.username = UniqueName(prefix);
  account.password = "correct horse battery " + account.username;
  HttpResponse reg = client.PostJson(
      "/v1/auth/register", {{"username", account.username}, {"password", account.password}});
  if (reg.status != 201) throw std::runtime_error("register failed: " + reg.Describe());
  account.token = Login(client, account);
  return account;
}

std::string Login(const HttpClient& client, const Account& account) {
  HttpRequest login{.method = "POST", .target = "/v1/auth/login"};
  login.basic = {{account.username, account.password}};
  HttpResponse r = client.Send(login);
  if (r.status != 200) throw std::runtime_error("login failed: " + r.Describe());
  std::string token = r.Json().value("access_token", "");
  if (token.empty()) throw std::runtime_error("login gave no token: " + r.Describe());
  return token;
}

void ExpectMp3(const HttpClient& client, const Account& account, const json& job, double seconds) {
  ASSERT_EQ(job.value("status", ""), "done") << job;
  EXPECT_NEAR(job["output"].value("duration", 0.0), seconds, 0.05) << job;
  HttpResponse mp3 = client.Get(job["links"].value("mp3", ""), account.token);
  ASSERT_EQ(mp3.status, 200) << mp3.Describe();
  EXPECT_EQ(mp3.body.size(), job["output"].value("size", uint64_t{0}));
  auto file = vmp3::test::TempDir() / "out.mp3";
  WriteFile(file, mp3.body);
  auto decoded = vmp3::test::DecodeAudio(file, {.keep_pcm = false});
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->sample_rate, 44100);
  EXPECT_EQ(decoded->channels, 2);
  EXPECT_EQ(decoded->decode_errors, 0);
  EXPECT_NEAR(decoded->seconds(), seconds, 0.05);
}

HttpResponse Upload(const HttpClient& client, const Account& account, const fs::path& file,
                    std::string filename) {
  HttpRequest r;
  r.method = "POST";
  r.target = "/v1/jobs";
  r.bearer = account.token;
  r.form.push_back(
      FormPart::File("file", file, filename.empty() ? file.filename().string() : filename));
  return client.Send(r);
}

json UploadJob(const HttpClient& client, const Account& account, const fs::path& file,
               std::string filename) {
  HttpResponse r = Upload(client, account, file, std::move(filename));
  if (r.status != 202) throw std::runtime_error("upload failed: " + r.Describe());
  return r.Json();
}

json WaitForJob(const HttpClient& client, const Account& account, const std::string& id,
                const std::function<bool(const json&)>& until, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  HttpResponse last;
  for (;;) {
    last = client.Get("/v1/jobs/" + id, account.token);
    if (last.status == 200) {
      json job = last.Json();
      if (until(job)) return job;
    }
    if (Clock::now() > deadline) {
      throw std::runtime_error(fmt::format("job {} not as expected after {} ms; last answer: {}",
                                           id, timeout.count(), last.Describe()));
    }
    std::this_thread::sleep_for(20ms);
  }
}

json WaitForEnd(const HttpClient& client, const Account& account, const std::string& id,
                std::chrono::milliseconds timeout) {
  return WaitForJob(client, account, id, IsTerminal, timeout);
}

json WaitForStatus(const HttpClient& client, const Account& account, const std::string& id,
                   std::string_view status, std::chrono::milliseconds timeout) {
  return WaitForJob(
      client, account, id, [&](const json& job) { return job.value("status", "") == status; },
      timeout);
}

fs::path TonesVideo25s() {
  std::vector<std::string> args = StereoTones(440, 880, 44100, kTonesVideoSeconds);
  std::vector<std::string> rest = {
      "-f",
      "lavfi",
      "-i",
      fmt::format("testsrc2=size=160x120:rate=10:duration={}", kTonesVideoSeconds),
      "-filter_complex",
      "[0:a][1:a]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR[a]",
      "-map",
      "2:v",
      "-map",
      "[a]",
      "-c:v",
      "libx264",
      "-preset",
      "ultrafast",
      "-pix_fmt",
      "yuv420p",
      "-c:a",
      "aac",
      "-b:a",
      "96k",
      "-movflags",
      "+faststart"};
  args.insert(args.end(), rest.begin(), rest.end());
  return CachedMedia("integration-tones-25s-v1.mp4", args);
}

fs::path LongAudio() {
  std::vector<std::string> args = StereoTones(440, 660, 44100, kLongAudioSeconds);
  std::vector<std::string> rest = {
      "-filter_complex",
      "[0:a][1:a]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR[a]",
      "-map",
      "[a]",
      "-c:a",
      "aac",
      "-b:a",
      "48k"};
  args.insert(args.end(), rest.begin(), rest.end());
  return CachedMedia("integration-long-600s-v1.m4a", args);
}

fs::path NewDataDir() { return vmp3::test::TempDir() / "data"; }

namespace {

std::string RequiredEnv(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) {
    throw std::runtime_error(std::string(name) +
                             " is not set: run the distributed integration tests through `make "
                             "test`, which starts the servers");
  }
  return value;
}

// A prefix unique to the test (its data directory), the same across restarts of its server.
std::string PrefixFor(const fs::path& data_dir) {
  std::string prefix =
      "it-" + data_dir.parent_path().filename().string() + "-" + data_dir.filename().string();
  for (char& c : prefix)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '-';
  return prefix;
}

std::string WithQuery(const std::string& url, const std::string& param) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + param;
}

// s3://bucket?endpoint=... -> bucket and endpoint.
std::pair<std::string, std::string> S3BucketAndEndpoint() {
  std::string url = RequiredEnv("VMP3_TEST_S3_URL");
  std::string rest = url.substr(5);
  std::string bucket = rest.substr(0, rest.find_first_of("/?"));
  size_t at = rest.find("endpoint=");
  std::string endpoint = rest.substr(at + 9, rest.find('&', at) - at - 9);
  return {bucket, endpoint};
}

std::vector<std::string> XmlValues(const std::string& xml, const std::string& tag) {
  std::vector<std::string> values;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  for (size_t pos = xml.find(open); pos != std::string::npos; pos = xml.find(open, pos)) {
    pos += open.size();
    values.push_back(xml.substr(pos, xml.find(close, pos) - pos));
  }
  return values;
}

std::vector<std::string> S3Objects(const fs::path& data_dir) {
  auto [bucket, endpoint] = S3BucketAndEndpoint();
  const std::string prefix = PrefixFor(data_dir) + "/";
  auto list = [&](const std::string& query) {
    ProcessResult r = RunProcess(
        {"curl", "-sS", "--fail-with-body", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
         RequiredEnv("AWS_ACCESS_KEY_ID") + ":" + RequiredEnv("AWS_SECRET_ACCESS_KEY"), "-H",
         "x-amz-content-sha256: UNSIGNED-PAYLOAD", endpoint + "/" + bucket + "?" + query});
    if (r.exit_code != 0) throw std::runtime_error("listing S3 failed: " + r.out + r.err);
    return r.out;
  };
  std::vector<std::string> files;
  // curl's SigV4 signs the query as written: give it canonical form (parameters sorted, "/"
  // encoded, "uploads=" with its empty value), or RGW answers SignatureDoesNotMatch.
  const std::string encoded = PrefixFor(data_dir) + "%2F";
  for (const std::string& key : XmlValues(list("list-type=2&prefix=" + encoded), "Key"))
    files.push_back(key.substr(prefix.size()));
  for (const std::string& key : XmlValues(list("prefix=" + encoded + "&uploads="), "Key"))
    files.push_back("multipart:" + key.substr(prefix.size()));
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

bool DistributedBackends() {
  const char* mode = std::getenv("VMP3_IT_BACKENDS");
  return mode && std::string_view(mode) == "distributed";
}

std::vector<std::string> BackendArgs(const fs::path& data_dir) {
  if (!DistributedBackends()) return {};
  const std::string prefix = PrefixFor(data_dir);
  std::string s3 = RequiredEnv("VMP3_TEST_S3_URL");
  s3.insert(s3.find_first_of("?", 5), "/" + prefix);
  return {"--storage",  s3,
          "--queue",    WithQuery(RequiredEnv("VMP3_TEST_AMQP_URL"), "prefix=" + prefix),
          "--metadata", WithQuery(RequiredEnv("VMP3_TEST_REDIS_URL"), "prefix=" + prefix)};
}

void PutObject(const fs::path& data_dir, const std::string& key, std::string_view bytes) {
  if (!DistributedBackends()) {
    fs::path path = data_dir / "objects" / key;
    fs::create_directories(path.parent_path());
    WriteFile(path, bytes);
    return;
  }
  auto [bucket, endpoint] = S3BucketAndEndpoint();
  fs::path body = vmp3::test::TempDir() / "object";
  WriteFile(body, bytes);
  ProcessResult r = RunProcess(
      {"curl", "-sS", "--fail-with-body", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
       RequiredEnv("AWS_ACCESS_KEY_ID") + ":" + RequiredEnv("AWS_SECRET_ACCESS_KEY"), "-H",
       "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--upload-file", body.string(),
       endpoint + "/" + bucket + "/" + PrefixFor(data_dir) + "/" + key});
  if (r.exit_code != 0) throw std::runtime_error("S3 PUT failed: " + r.out + r.err);
}

std::vector<std::string> ObjectFiles(const fs::path& data_dir) {
  if (DistributedBackends()) return S3Objects(data_dir);
  std::vector<std::string> files;
  const fs::path root = data_dir / "objects";
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    // Lexical, and without throwing: the server may remove a file meanwhile.
    std::error_code gone;
    if (it->is_regular_file(gone)) files.push_back(it->path().lexically_relative(root).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace vmp3::itest
