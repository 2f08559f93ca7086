// A stalled backend never freezes the server. Redis is stopped with SIGSTOP (its sockets stay
// open and accept connections, but nothing answers: the worst kind of outage, since nothing
// fails fast) while clients keep asking for a job. Liveness must keep answering at once, the job
// requests must get 503 problem+json within the request timeout, and after SIGCONT everything
// answers 200 again.
//
// Signals the Redis of the servers `make test` runs (VMP3_TEST_SERVERS_DIR), so ctest runs it
// alone (RUN_SERIAL, like the fault tests). Skips unless VMP3_IT_BACKENDS=distributed.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The pid of the test servers' Redis (scripts/servers/redis.sh keeps it in DIR/redis/redis.pid).
pid_t TestRedisPid() {
  const char* dir = std::getenv("VMP3_TEST_SERVERS_DIR");
  if (!dir || !*dir) throw std::runtime_error("VMP3_TEST_SERVERS_DIR is not set");
  std::string text = ReadFile(fs::path(dir) / "redis" / "redis.pid");
  pid_t pid = static_cast<pid_t>(std::stol(text));
  if (pid <= 1) throw std::runtime_error("bad Redis pid: " + text);
  return pid;
}

// SIGSTOP now, SIGCONT when the scope ends (even when an assertion failed meanwhile).
class Frozen {
 public:
  explicit Frozen(pid_t pid) : pid_(pid) {
    if (::kill(pid_, SIGSTOP) != 0) throw std::runtime_error("cannot SIGSTOP Redis");
  }
  ~Frozen() { Thaw(); }
  Frozen(const Frozen&) = delete;
  Frozen& operator=(const Frozen&) = delete;
  void Thaw() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
    pid_ = -1;
  }

 private:
  pid_t pid_;
};

struct Sample {
  Clock::time_point started;
  double seconds = 0;
  int status = 0;
  std::string body;
  std::optional<std::string> retry_after;
};

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  return values[index];
}

TEST(StallTest, AStoppedRedisCostsRequestsA503NeverTheServer) {
  if (!DistributedBackends()) GTEST_SKIP() << "needs VMP3_IT_BACKENDS=distributed";
  constexpr double kRequestTimeout = 5;  // the default --request-timeout
  constexpr double kBound = 6;           // what the issue promises an operator
  // The clients ask as fast as they can: no rate limit, that is not what this test is about.
  auto server = ServerProcess::Start(NewDataDir(), {"--rate-limit", "0"});
  HttpClient client(server->base_url());
  Account account = CreateAccount(client, "stall");
  json job = UploadJob(client, account, test::Fixture("mp4_h264_aac"));
  ASSERT_EQ(WaitForEnd(client, account, job["id"]).value("status", ""), "done");
  const std::string target = "/v1/jobs/" + job["id"].get<std::string>();

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Sample> job_samples;
  std::vector<Sample> health_samples;
  auto record = [&](std::vector<Sample>& into, Clock::time_point started, const HttpResponse& r) {
    Sample s{started, SecondsBetween(started, Clock::now()), r.status, r.body,
             r.Header("Retry-After")};
    std::lock_guard lock(mu);
    into.push_back(std::move(s));
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      while (!stop) {
        HttpRequest request;
        request.target = target;
        request.bearer = account.token;
        request.timeout = std::chrono::seconds(30);
        auto started = Clock::now();
        record(job_samples, started, client.Send(request));
      }
    });
  }
  std::thread health([&] {
    while (!stop) {
      HttpRequest request;
      request.target = "/healthz";
      request.timeout = std::chrono::seconds(30);
      auto started = Clock::now();
      record(health_samples, started, client.Send(request));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto stall_start = Clock::now();
  {
    Frozen frozen(TestRedisPid());
    std::this_thread::sleep_for(std::chrono::seconds(10));
  }
  auto stall_end = Clock::now();
  // After SIGCONT: everything answers 200 again within a few seconds.
  bool recovered = false;
  auto recovery_deadline = Clock::now() + std::chrono::seconds(15);
  while (!recovered && Clock::now() < recovery_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::lock_guard lock(mu);
    int ok_after = 0;
    for (const Sample& s : job_samples)
      if (s.started > stall_end + std::chrono::seconds(1) && s.status == 200) ++ok_after;
    recovered = ok_after >= 20;
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  stop = true;
  for (auto& t : clients) t.join();
  health.join();

  // Liveness during the stall: p99 < 100 ms, and always 200.
  std::vector<double> health_during;
  for (const Sample& s : health_samples) {
    if (s.started < stall_start || s.started > stall_end) continue;
    EXPECT_EQ(s.status, 200) << "/healthz during the stall: " << s.body;
    health_during.push_back(s.seconds);
  }
  ASSERT_GE(health_during.size(), 100u) << "too few /healthz answers during the stall";
  double p99 = Percentile(health_during, 0.99);
  std::printf("[ stall    ] /healthz during the stall: %zu requests, p50 %.1f ms, p99 %.1f ms\n",
              health_during.size(), Percentile(health_during, 0.5) * 1000, p99 * 1000);
  EXPECT_LT(p99, 0.100);

  // Job requests during the stall: each answered within the bound, with 200 (Redis answered
  // before it stopped, or after it went on again in time) or 503 problem+json, with
  // Retry-After. Each of the 8 clients had one request wait out the stall: 8 503s at least.
  // Every request that was in flight at some point of the stall counts.
  int unavailable = 0;
  double slowest = 0;
  for (const Sample& s : job_samples) {
    auto ended = s.started + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(s.seconds));
    if (ended < stall_start || s.started > stall_end) continue;
    slowest = std::max(slowest, s.seconds);
    EXPECT_LE(s.seconds, kBound) << "a job request took " << s.seconds << " s: " << s.body;
    if (s.status == 200) continue;
    EXPECT_EQ(s.status, 503) << s.body;
    if (s.status != 503) continue;
    ++unavailable;
    json problem = json::parse(s.body, nullptr, false);
    EXPECT_EQ(problem.value("code", ""), "backend_unavailable") << s.body;
    EXPECT_TRUE(s.retry_after.has_value()) << "503 without Retry-After";
  }
  std::printf("[ stall    ] job requests during the stall: %d answered 503, slowest %.2f s\n",
              unavailable, slowest);
  EXPECT_GE(unavailable, 8) << "the stall never reached the job requests";
  EXPECT_GE(slowest, kRequestTimeout - 1.5) << "no request waited for Redis at all?";
  EXPECT_TRUE(recovered) << "job requests did not answer 200 again after SIGCONT";
}

}  // namespace
}  // namespace vmp3::itest
