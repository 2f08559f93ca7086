// The MetadataStore and JobEventBus implementations that metadata_store_contract_test.cpp runs
// against. To put a new backend under the same tests, write a harness (or bus factory) for it and
// add a row to MetadataStoreBackends() or JobEventBusBackends(); a backend that needs a server
// names the environment variable holding its URL, and its tests are skipped when it is unset.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "metadata/job_events.hpp"
#include "metadata/memory_metadata_store.hpp"
#include "metadata/redis_metadata_store.hpp"
#include "metadata/sqlite_metadata_store.hpp"
#include "support/fixtures.hpp"

namespace vmp3::test {

// The state one test runs against (a fresh database file, a fresh key prefix on a server),
// created by the harness's constructor and never shared with another test. Each Open() returns
// another handle on the same data, as another process or a restart sees it.
class MetadataStoreHarness {
 public:
  virtual ~MetadataStoreHarness() = default;
  virtual Result<std::unique_ptr<MetadataStore>> Open() = 0;
};

struct MetadataStoreBackend {
  std::string name;          // test-name suffix: letters and digits only
  std::string required_env;  // when set and the variable is unset, the tests are skipped
  // Called only when the backend is available, once per test.
  std::function<std::unique_ptr<MetadataStoreHarness>()> make;
};

inline void PrintTo(const MetadataStoreBackend& backend, std::ostream* os) { *os << backend.name; }

class SqliteMetadataStoreHarness final : public MetadataStoreHarness {
 public:
  Result<std::unique_ptr<MetadataStore>> Open() override {
    auto store = SqliteMetadataStore::Open(path_);
    if (!store) return tl::unexpected(store.error());
    return std::unique_ptr<MetadataStore>(std::move(*store));
  }

 private:
  std::filesystem::path path_ = TempDir() / "vmp3.db";
};

// Handles on one MemoryMetadataStore::State: what one handle wrote, the next one sees.
class MemoryMetadataStoreHarness final : public MetadataStoreHarness {
 public:
  Result<std::unique_ptr<MetadataStore>> Open() override {
    return std::unique_ptr<MetadataStore>(std::make_unique<MemoryMetadataStore>(state_));
  }

 private:
  std::shared_ptr<MemoryMetadataStore::State> state_ = MemoryMetadataStore().state();
};

// A fresh key prefix on the Redis server of VMP3_TEST_REDIS_URL for each test.
class RedisMetadataHarness final : public MetadataStoreHarness {
 public:
  Result<std::unique_ptr<MetadataStore>> Open() override {
    auto target = RedisTarget::Parse(std::getenv("VMP3_TEST_REDIS_URL"));
    if (!target) return tl::unexpected(target.error());
    target->prefix = prefix_;
    auto store = RedisMetadataStore::Open(*target);
    if (!store) return tl::unexpected(store.error());
    return std::unique_ptr<MetadataStore>(std::move(*store));
  }

 private:
  std::string prefix_ = "test-" + TempDir().filename().string();
};

inline std::vector<MetadataStoreBackend> MetadataStoreBackends() {
  return {
      {"Sqlite", "", [] { return std::make_unique<SqliteMetadataStoreHarness>(); }},
      {"Memory", "", [] { return std::make_unique<MemoryMetadataStoreHarness>(); }},
      {"Redis", "VMP3_TEST_REDIS_URL", [] { return std::make_unique<RedisMetadataHarness>(); }},
  };
}

struct JobEventBusBackend {
  std::string name;
  std::string required_env;
  // A fresh bus whose events no other test sees.
  std::function<std::unique_ptr<JobEventBus>()> make;
};

inline void PrintTo(const JobEventBusBackend& backend, std::ostream* os) { *os << backend.name; }

inline std::vector<JobEventBusBackend> JobEventBusBackends() {
  return {
      {"InProcess", "", [] { return std::make_unique<InProcessJobEventBus>(); }},
      {"Redis", "VMP3_TEST_REDIS_URL",
       []() -> std::unique_ptr<JobEventBus> {
         auto target = RedisTarget::Parse(std::getenv("VMP3_TEST_REDIS_URL"));
         if (!target) return nullptr;
         target->prefix = "test-" + TempDir().filename().string();
         auto bus = RedisJobEventBus::Open(*target);
         return bus ? std::move(*bus) : nullptr;
       }},
  };
}

}  // namespace vmp3::test
