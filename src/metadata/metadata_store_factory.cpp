#include "metadata/metadata_store_factory.hpp"

#include <fmt/format.h>

#include "metadata/memory_metadata_store.hpp"
#include "metadata/redis_metadata_store.hpp"
#include "metadata/sqlite_metadata_store.hpp"

namespace vmp3 {

Result<MetadataBackend> MakeMetadataBackend(std::string_view url,
                                            const std::filesystem::path& data_dir) {
  if (url == "memory") {
    auto memory = std::make_shared<MemoryMetadataStore>();
    return MetadataBackend{memory, memory, memory};
  }
  std::filesystem::path path;
  if (url.empty() || url == "sqlite") {
    path = data_dir / "vmp3.db";
  } else if (url.starts_with("sqlite://")) {
    std::string_view rest = url.substr(std::string_view("sqlite://").size());
    if (!rest.starts_with('/') || rest.size() < 2) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a sqlite metadata URL needs an absolute path, as in "
                       "sqlite:///var/lib/vmp3/vmp3.db");
    }
    path = std::filesystem::path(rest);
  } else if (url.starts_with("redis://")) {
    auto target = RedisTarget::Parse(url);
    if (!target) return tl::unexpected(target.error());
    auto store = RedisMetadataStore::Open(*target);
    if (!store) return tl::unexpected(store.error());
    std::shared_ptr<RedisMetadataStore> shared = std::move(*store);
    return MetadataBackend{shared, shared, shared};
  } else {
    return tl::unexpected(
        UnsupportedUrlScheme("metadata", url, "sqlite, sqlite:///path, redis://, memory"));
  }
  auto store = SqliteMetadataStore::Open(path);
  if (!store) return tl::unexpected(store.error());
  std::shared_ptr<SqliteMetadataStore> shared = std::move(*store);
  return MetadataBackend{shared, shared, shared};
}

Result<std::shared_ptr<MetadataStore>> MakeMetadataStore(std::string_view url,
                                                         const std::filesystem::path& data_dir) {
  auto backend = MakeMetadataBackend(url, data_dir);
  if (!backend) return tl::unexpected(backend.error());
  return backend->store;
}

}  // namespace vmp3

namespace vmp3 {

Result<std::shared_ptr<JobEventBus>> MakeJobEventBus(std::string_view metadata_url) {
  if (metadata_url.starts_with("redis://")) {
    auto target = RedisTarget::Parse(metadata_url);
    if (!target) return tl::unexpected(target.error());
    auto bus = RedisJobEventBus::Open(*target);
    if (!bus) return tl::unexpected(bus.error());
    return std::shared_ptr<JobEventBus>(std::move(*bus));
  }
  return std::shared_ptr<JobEventBus>(std::make_shared<InProcessJobEventBus>());
}

}  // namespace vmp3
