#include "storage/memory_object_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>

namespace vmp3 {

namespace {

// One committed version: its bytes never change, so readers share them without a lock.
struct Version {
  std::shared_ptr<const std::string> bytes;
  ObjectInfo info;
};

tl::unexpected<Error> NotFound(std::string_view key) {
  return MakeError(ErrorCode::kNotFound, fmt::format("object {} does not exist", key));
}

}  // namespace

class MemoryObjectStore::State {
 public:
  std::mutex mu;
  std::map<std::string, Version, std::less<>> objects;  // by key, in byte order
  uint64_t commits = 0;                                 // the last etag handed out
};

namespace {

class MemoryObjectWriter final : public ObjectWriter {
 public:
  MemoryObjectWriter(std::shared_ptr<MemoryObjectStore::State> state, std::string key)
      : state_(std::move(state)), key_(std::move(key)) {}

  Status Write(std::span<const std::byte> data) override {
    if (state_ == nullptr) return NotOpen();
    bytes_.append(reinterpret_cast<const char*>(data.data()), data.size());
    return {};
  }

  uint64_t Position() const override { return bytes_.size(); }

  Result<ObjectInfo> Commit() override {
    if (state_ == nullptr) return NotOpen();
    Version version{.bytes = std::make_shared<const std::string>(std::move(bytes_)),
                    .info = ObjectInfo{.key = key_, .modified_unix = std::time(nullptr)}};
    version.info.size = version.bytes->size();
    {
      std::lock_guard lock(state_->mu);
      version.info.etag = fmt::format("m{:x}", ++state_->commits);
      state_->objects.insert_or_assign(key_, version);
    }
    state_ = nullptr;
    bytes_.clear();
    return version.info;
  }

  void Abort() override {
    state_ = nullptr;
    bytes_ = std::string();
  }

 private:
  tl::unexpected<Error> NotOpen() const {
    return MakeError(ErrorCode::kConflict,
                     fmt::format("the writer of object {} was committed or aborted", key_));
  }

  std::shared_ptr<MemoryObjectStore::State> state_;  // null once committed or aborted
  std::string key_;
  std::string bytes_;
};

class MemoryObjectReader final : public ObjectReader {
 public:
  explicit MemoryObjectReader(Version version) : version_(std::move(version)) {}

  Result<size_t> Read(std::span<std::byte> out) override {
    const std::string& bytes = *version_.bytes;
    if (position_ >= bytes.size()) return size_t{0};
    size_t n = std::min<uint64_t>(out.size(), bytes.size() - position_);
    std::memcpy(out.data(), bytes.data() + position_, n);
    position_ += n;
    return n;
  }
  Status Seek(uint64_t offset) override {
    position_ = offset;
    return {};
  }
  bool Seekable() const override { return true; }
  std::optional<uint64_t> Size() const override { return version_.bytes->size(); }
  std::string Describe() const override { return version_.info.key; }
  const ObjectInfo& Info() const override { return version_.info; }

 private:
  Version version_;
  uint64_t position_ = 0;
};

}  // namespace

MemoryObjectStore::MemoryObjectStore() : state_(std::make_shared<State>()) {}
MemoryObjectStore::MemoryObjectStore(std::shared_ptr<State> state) : state_(std::move(state)) {}
MemoryObjectStore::~MemoryObjectStore() = default;

Result<std::unique_ptr<ObjectWriter>> MemoryObjectStore::Create(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  return std::make_unique<MemoryObjectWriter>(state_, std::string(key));
}

Result<std::unique_ptr<ObjectReader>> MemoryObjectStore::Open(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  std::lock_guard lock(state_->mu);
  auto it = state_->objects.find(key);
  if (it == state_->objects.end()) return NotFound(key);
  return std::make_unique<MemoryObjectReader>(it->second);
}

Result<ObjectInfo> MemoryObjectStore::Stat(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  std::lock_guard lock(state_->mu);
  auto it = state_->objects.find(key);
  if (it == state_->objects.end()) return NotFound(key);
  return it->second.info;
}

Status MemoryObjectStore::Remove(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  std::lock_guard lock(state_->mu);
  if (auto it = state_->objects.find(key); it != state_->objects.end()) state_->objects.erase(it);
  return {};
}

Result<ObjectListing> MemoryObjectStore::List(std::string_view prefix, std::string_view start_after,
                                              int limit) {
  if (auto valid = ValidateListLimit(limit); !valid) return tl::unexpected(valid.error());
  ObjectListing listing;
  std::lock_guard lock(state_->mu);
  auto it = start_after < prefix ? state_->objects.lower_bound(prefix)
                                 : state_->objects.upper_bound(start_after);
  for (; it != state_->objects.end() && it->first.starts_with(prefix); ++it) {
    if (listing.objects.size() == static_cast<size_t>(limit)) {
      // Another object follows: this page is not the last.
      listing.next_start_after = listing.objects.back().key;
      break;
    }
    listing.objects.push_back(it->second.info);
  }
  return listing;
}

Status MemoryObjectStore::Ping() { return {}; }

std::string MemoryObjectStore::Describe() const { return "memory"; }

}  // namespace vmp3
