// Picks the MetadataStore implementation from a metadata URL (the --metadata setting).
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "metadata/job_events.hpp"
#include "metadata/limit_store.hpp"
#include "metadata/metadata_store.hpp"
#include "metadata/notification_store.hpp"

namespace vmp3 {

// url:
//   "sqlite" or ""        data_dir/vmp3.db
//   "sqlite:///abs/path"  that database file
//   "redis://..."         Redis (see RedisTarget::Parse)
//   "memory"              a new MemoryMetadataStore: this process only, gone when it exits (demos)
// Any other URL fails with kInvalidArgument. Error messages name only the URL's scheme, since a
// URL may carry credentials.
Result<std::shared_ptr<MetadataStore>> MakeMetadataStore(std::string_view url,
                                                         const std::filesystem::path& data_dir);

// The metadata backend with its capabilities: the store, the LimitStore the same backend
// provides (abuse limits shared by every process on it), and the NotificationStore (the
// notifier's records).
struct MetadataBackend {
  std::shared_ptr<MetadataStore> store;
  std::shared_ptr<LimitStore> limits;
  std::shared_ptr<NotificationStore> notifications;
};
Result<MetadataBackend> MakeMetadataBackend(std::string_view url,
                                            const std::filesystem::path& data_dir);

// The event bus that goes with a metadata URL: Redis pub/sub for redis://, so every process
// sees every converter's events; in-process otherwise.
Result<std::shared_ptr<JobEventBus>> MakeJobEventBus(std::string_view metadata_url);

}  // namespace vmp3
