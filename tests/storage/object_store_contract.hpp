// The ObjectStore implementations that object_store_contract_test.cpp runs against. To put a new
// backend under the same tests, write a harness for it and add a row to ObjectStoreBackends();
// a backend that needs a server names the environment variable holding its URL, and its tests
// are skipped when that variable is unset.
#pragma once

#include <fmt/format.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "storage/file_object_store.hpp"
#include "storage/memory_object_store.hpp"
#include "storage/s3_object_store.hpp"
#include "support/fixtures.hpp"

namespace vmp3::test {

// The state one test runs against: a fresh directory, bucket prefix, and so on, created by the
// harness's constructor and never shared with another test. Open() may be called more than once;
// each call returns another handle on the same objects, as another process or a restart sees
// them.
class ObjectStoreHarness {
 public:
  virtual ~ObjectStoreHarness() = default;
  virtual Result<std::unique_ptr<ObjectStore>> Open() = 0;
};

struct ObjectStoreBackend {
  std::string name;          // test-name suffix: letters and digits only
  std::string required_env;  // when set and the variable is unset, the tests are skipped
  // Called only when the backend is available, once per test.
  std::function<std::unique_ptr<ObjectStoreHarness>()> make;
};

inline void PrintTo(const ObjectStoreBackend& backend, std::ostream* os) { *os << backend.name; }

class FileObjectStoreHarness final : public ObjectStoreHarness {
 public:
  Result<std::unique_ptr<ObjectStore>> Open() override {
    auto store = FileObjectStore::OpenDirectory(root_);
    if (!store) return tl::unexpected(store.error());
    return std::unique_ptr<ObjectStore>(std::move(*store));
  }

 private:
  std::filesystem::path root_ = TempDir() / "objects";
};

// Handles on one MemoryObjectStore::State: what the first handle committed, the next one sees.
class MemoryObjectStoreHarness final : public ObjectStoreHarness {
 public:
  Result<std::unique_ptr<ObjectStore>> Open() override {
    return std::unique_ptr<ObjectStore>(std::make_unique<MemoryObjectStore>(state_));
  }

 private:
  std::shared_ptr<MemoryObjectStore::State> state_ = MemoryObjectStore().state();
};

// The S3 store on the server VMP3_TEST_S3_URL names (an s3:// storage URL), with credentials
// from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Each test gets a fresh random key prefix under
// the URL's own; the bucket is created when missing. Objects are left behind (test servers are
// thrown away).
class S3ObjectStoreHarness final : public ObjectStoreHarness {
 public:
  Result<std::unique_ptr<ObjectStore>> Open() override {
    auto store = OpenS3();
    if (!store) return tl::unexpected(store.error());
    return std::unique_ptr<ObjectStore>(std::move(*store));
  }

  // The concrete type, for S3-specific tests.
  Result<std::unique_ptr<S3ObjectStore>> OpenS3(const sigv4::Credentials* credentials = nullptr) {
    const char* url = std::getenv("VMP3_TEST_S3_URL");
    if (url == nullptr) return MakeError(ErrorCode::kInvalidArgument, "VMP3_TEST_S3_URL is unset");
    auto config = ParseS3Url(url);
    if (!config) return tl::unexpected(config.error());
    if (credentials) {
      config->credentials = *credentials;
    } else {
      auto from_env = S3CredentialsFromEnvironment();
      if (!from_env) return tl::unexpected(from_env.error());
      config->credentials = *from_env;
    }
    config->prefix = config->prefix.empty() ? prefix_ : config->prefix + "/" + prefix_;
    // Keep failing tests quick when the server is gone.
    config->retry_base_delay = std::chrono::milliseconds(50);
    auto store = S3ObjectStore::FromConfig(std::move(*config));
    if (!store) return tl::unexpected(store.error());
    if (!bucket_checked_ && !credentials) {
      if (auto made = (*store)->CreateBucketIfMissing(); !made) return tl::unexpected(made.error());
      bucket_checked_ = true;
    }
    return store;
  }

 private:
  static std::string RandomPrefix() {
    std::random_device random;
    return fmt::format("test-{:08x}{:08x}", random(), random());
  }

  std::string prefix_ = RandomPrefix();
  bool bucket_checked_ = false;
};

inline std::vector<ObjectStoreBackend> ObjectStoreBackends() {
  return {
      {"File", "", [] { return std::make_unique<FileObjectStoreHarness>(); }},
      {"Memory", "", [] { return std::make_unique<MemoryObjectStoreHarness>(); }},
      {"S3", "VMP3_TEST_S3_URL", [] { return std::make_unique<S3ObjectStoreHarness>(); }},
  };
}

}  // namespace vmp3::test
