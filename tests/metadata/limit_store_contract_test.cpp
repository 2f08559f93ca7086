// The LimitStore contract, run against every implementation: memory, SQLite, and Redis when the
// test servers run (VMP3_TEST_REDIS_URL). Also the throttle and rate limiter on each, since
// sharing their counts across processes is the point of keeping them in a backend.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "auth/login_throttle.hpp"
#include "auth/rate_limiter.hpp"
#include "metadata/memory_limit_store.hpp"
#include "metadata/metadata_store_contract.hpp"

namespace vmp3::test {
namespace {

using namespace std::chrono_literals;

struct LimitBackend {
  std::string name;
  std::string required_env;
  // Two handles on one fresh store, as two processes see it.
  std::function<std::pair<std::shared_ptr<LimitStore>, std::shared_ptr<LimitStore>>()> make;
};

void PrintTo(const LimitBackend& backend, std::ostream* os) { *os << backend.name; }

std::vector<LimitBackend> LimitBackends() {
  return {
      {"Memory", "",
       [] {
         auto store = std::make_shared<MemoryLimitStore>();
         return std::make_pair<std::shared_ptr<LimitStore>, std::shared_ptr<LimitStore>>(store,
                                                                                         store);
       }},
      {"Sqlite", "",
       [] {
         auto path = TempDir() / "limits.db";
         std::shared_ptr<LimitStore> a(SqliteMetadataStore::Open(path).value().release());
         std::shared_ptr<LimitStore> b(SqliteMetadataStore::Open(path).value().release());
         return std::make_pair(a, b);
       }},
      {"Redis", "VMP3_TEST_REDIS_URL",
       [] {
         auto target = RedisTarget::Parse(std::getenv("VMP3_TEST_REDIS_URL")).value();
         target.prefix = "test-" + TempDir().filename().string();
         std::shared_ptr<LimitStore> a(RedisMetadataStore::Open(target).value().release());
         std::shared_ptr<LimitStore> b(RedisMetadataStore::Open(target).value().release());
         return std::make_pair(a, b);
       }},
  };
}

class LimitStoreContract : public ::testing::TestWithParam<LimitBackend> {
 protected:
  void SetUp() override {
    const LimitBackend& backend = GetParam();
    if (!backend.required_env.empty() && !std::getenv(backend.required_env.c_str()))
      GTEST_SKIP() << backend.required_env << " is not set";
    std::tie(a_, b_) = backend.make();
  }
  std::shared_ptr<LimitStore> a_, b_;
};

std::function<std::string(std::string_view)> Set(std::string value) {
  return [value](std::string_view) { return value; };
}

TEST_P(LimitStoreContract, AbsentRecordsReadEmpty) {
  auto got = a_->GetLimit("nothing-here");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(*got, "");
}

TEST_P(LimitStoreContract, UpdateSeesTheCurrentRecordAndReturnsTheNewOne) {
  std::string seen = "unset";
  auto first = a_->UpdateLimit("k", 60s, [&](std::string_view current) {
    seen = std::string(current);
    return std::string("one");
  });
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(*first, "one");
  EXPECT_EQ(seen, "");
  auto second = b_->UpdateLimit("k", 60s, [&](std::string_view current) {
    seen = std::string(current);
    return std::string(current) + "+two";
  });
  ASSERT_TRUE(second);
  EXPECT_EQ(seen, "one");
  EXPECT_EQ(*second, "one+two");
  EXPECT_EQ(a_->GetLimit("k").value(), "one+two");
}

TEST_P(LimitStoreContract, AnEmptyResultDeletes) {
  ASSERT_TRUE(a_->UpdateLimit("k", 60s, Set("x")));
  ASSERT_TRUE(a_->UpdateLimit("k", 60s, Set("")));
  EXPECT_EQ(b_->GetLimit("k").value(), "");
}

TEST_P(LimitStoreContract, RecordsExpire) {
  ASSERT_TRUE(a_->UpdateLimit("short", 150ms, Set("x")));
  ASSERT_TRUE(a_->UpdateLimit("long", 60s, Set("y")));
  EXPECT_EQ(b_->GetLimit("short").value(), "x");
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(b_->GetLimit("short").value(), "");
  EXPECT_EQ(b_->GetLimit("long").value(), "y");
  std::string seen = "unset";
  ASSERT_TRUE(a_->UpdateLimit("short", 60s, [&](std::string_view current) {
    seen = std::string(current);
    return std::string("z");
  }));
  EXPECT_EQ(seen, "") << "an expired record must read as absent";
}

TEST_P(LimitStoreContract, KeysAreValidated) {
  EXPECT_EQ(a_->GetLimit("").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(a_->UpdateLimit(std::string(kMaxLimitKeyBytes + 1, 'k'), 60s, Set("x")).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(a_->UpdateLimit(std::string(kMaxLimitKeyBytes, 'k'), 60s, Set("x")));
  EXPECT_EQ(a_->UpdateLimit("k", 0ms, Set("x")).error().code, ErrorCode::kInvalidArgument);
}

TEST_P(LimitStoreContract, ConcurrentUpdatesFromTwoHandlesAreAtomic) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      LimitStore& store = t % 2 ? *a_ : *b_;
      for (int i = 0; i < 50; ++i) {
        auto r = store.UpdateLimit("counter", 60s, [](std::string_view current) {
          int n = current.empty() ? 0 : std::stoi(std::string(current));
          return std::to_string(n + 1);
        });
        ASSERT_TRUE(r) << r.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(a_->GetLimit("counter").value(), "200");
}

TEST_P(LimitStoreContract, TheLoginThrottleIsSharedByTwoProcesses) {
  auth::LoginThrottle first(*a_), second(*b_);
  const int64_t now = 1'700'000'000;
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE((i % 2 ? first : second).RecordFailure("user:alice", now));
  EXPECT_EQ(first.RetryAfterSeconds("user:alice", now).value(), 0);
  ASSERT_TRUE(second.RecordFailure("user:alice", now));
  EXPECT_EQ(first.RetryAfterSeconds("user:alice", now).value(), 15 * 60);
  EXPECT_EQ(second.RetryAfterSeconds("user:bob", now).value(), 0);
  ASSERT_TRUE(first.RecordSuccess("user:alice"));
  EXPECT_EQ(second.RetryAfterSeconds("user:alice", now).value(), 0);
}

TEST_P(LimitStoreContract, TheRateLimitIsSharedByTwoProcesses) {
  auth::RateLimit limit{.per_second = 1, .burst = 4};
  auth::RateLimiter first(*a_, limit), second(*b_, limit);
  const int64_t now = 1'700'000'000'000;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE((i % 2 ? first : second).Take("user-1", now)) << i;
  Status refused = first.Take("user-1", now);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kRateLimited);
  EXPECT_EQ(refused.error().retry_after_seconds, 1);
  EXPECT_TRUE(second.Take("user-2", now)) << "another user has a bucket of their own";
  EXPECT_TRUE(second.Take("user-1", now + 1000)) << "a second refills one token";
  EXPECT_FALSE(first.Take("user-1", now + 1000));
}

INSTANTIATE_TEST_SUITE_P(Backends, LimitStoreContract, ::testing::ValuesIn(LimitBackends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace vmp3::test
