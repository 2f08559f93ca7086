#include "storage/s3_reader.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <system_error>

namespace vmp3::s3 {
namespace {

class Reader final : public ObjectReader {
 public:
  Reader(HttpClient& client, Head head)
      : client_(client),
        info_(std::move(head.info)),
        s3_etag_(std::move(head.s3_etag)),
        full_key_(client_.FullKey(info_.key)),
        next_size_(client_.config().read_window) {}

  // A fetch still running is waited for (the future's destructor): it uses this reader.
  ~Reader() override = default;

  Result<size_t> Read(std::span<std::byte> out) override {
    if (position_ >= info_.size || out.empty()) return 0;
    if (position_ < window_start_ || position_ >= window_start_ + window_.size()) {
      if (auto loaded = Load(position_); !loaded) return tl::unexpected(loaded.error());
    }
    size_t offset = static_cast<size_t>(position_ - window_start_);
    size_t n = std::min(out.size(), window_.size() - offset);
    std::memcpy(out.data(), window_.data() + offset, n);
    position_ += n;
    return n;
  }

  Status Seek(uint64_t offset) override {
    position_ = offset;
    return {};
  }

  bool Seekable() const override { return true; }
  std::optional<uint64_t> Size() const override { return info_.size; }
  std::string Describe() const override { return info_.key; }
  const ObjectInfo& Info() const override { return info_; }
  void ReadAhead(size_t max_bytes) override { read_ahead_ = max_bytes; }

 private:
  // Makes the window hold `offset`: the prefetched window when it does, else one fetched now.
  // Then, when reading goes on front to back, starts fetching the window after it.
  Status Load(uint64_t offset) {
    const size_t base = client_.config().read_window;
    bool sequential = offset == window_start_ + window_.size();
    if (prefetch_.valid() && offset >= prefetch_start_ &&
        offset < prefetch_start_ + prefetch_size_) {
      Result<std::string> fetched = prefetch_.get();
      if (!fetched) return tl::unexpected(fetched.error());
      window_ = std::move(*fetched);
      window_start_ = prefetch_start_;
      sequential = true;
    } else {
      // A running fetch cannot be abandoned; its bytes are not needed after a seek.
      if (prefetch_.valid()) prefetch_.wait();
      prefetch_ = {};
      if (!sequential) next_size_ = base;
      window_.clear();
      window_.shrink_to_fit();  // at most two windows in memory, this and the prefetched one
      Result<std::string> fetched = Fetch(offset, sequential ? next_size_ : base);
      if (!fetched) return tl::unexpected(fetched.error());
      window_ = std::move(*fetched);
      window_start_ = offset;
    }
    const uint64_t next = window_start_ + window_.size();
    if (read_ahead_ > 0 && sequential && next < info_.size) {
      next_size_ = std::min(std::max(base, read_ahead_), next_size_ * 2);
      prefetch_start_ = next;
      prefetch_size_ = static_cast<size_t>(std::min<uint64_t>(next_size_, info_.size - next));
      try {
        prefetch_ = std::async(std::launch::async,
                               [this, next, size = prefetch_size_] { return Fetch(next, size); });
      } catch (const std::system_error& e) {
        // No thread to spare: read on without read-ahead (this runs under FFmpeg's C frames,
        // which an exception must not cross).
        spdlog::warn("S3 read-ahead of object {} is off: {}", info_.key, e.what());
        read_ahead_ = 0;
      }
    }
    return {};
  }

  // The bytes [offset, offset + size) of the version opened (fewer at the end of the object).
  // Touches no member that changes: safe to run beside Read.
  Result<std::string> Fetch(uint64_t offset, size_t size) const {
    const uint64_t last = std::min<uint64_t>(offset + size, info_.size) - 1;
    const size_t expected = static_cast<size_t>(last - offset + 1);
    Request request;
    request.key = full_key_;
    request.transfer = true;
    request.headers = {{"Range", fmt::format("bytes={}-{}", offset, last)}};
    if (!s3_etag_.empty()) request.headers.emplace_back("If-Match", s3_etag_);
    // About one window: a server that ignores Range and answers 200 with the whole object is
    // only followed when the window is the whole object. Error answers (412 and so on) carry an
    // XML body that may be longer than a small window.
    request.max_response_body = std::max<size_t>(expected, kMaxErrorBody);
    request.expected_body = expected;
    auto response = client_.Execute(request);
    if (!response) return tl::unexpected(response.error());
    if (response->status == 416) {
      return MakeError(ErrorCode::kConflict,
                       fmt::format("object {} was replaced while it was being read", info_.key));
    }
    if (response->status != 206 && response->status != 200) {
      return tl::unexpected(client_.ErrorFor(*response, info_.key));
    }
    std::string etag = response->Header("etag");
    if (!s3_etag_.empty() && !etag.empty() && etag != s3_etag_) {
      return MakeError(ErrorCode::kConflict,
                       fmt::format("object {} was replaced while it was being read", info_.key));
    }
    if (response->status == 200 && offset != 0) {
      return MakeError(ErrorCode::kIo,
                       fmt::format("object storage at {} ignored a Range request for object {}",
                                   client_.EndpointUrl(), info_.key));
    }
    if (response->body.size() != expected) {
      return MakeError(ErrorCode::kIo,
                       fmt::format("S3 sent {} bytes of object {} where {} were asked for",
                                   response->body.size(), info_.key, expected));
    }
    return std::move(response->body);
  }

  HttpClient& client_;
  const ObjectInfo info_;
  const std::string s3_etag_;
  const std::string full_key_;
  uint64_t position_ = 0;
  std::string window_;  // bytes [window_start_, window_start_ + window_.size())
  uint64_t window_start_ = 0;
  size_t read_ahead_ = 0;                      // 0: no background fetches
  size_t next_size_;                           // the size of the next sequential fetch
  std::future<Result<std::string>> prefetch_;  // bytes [prefetch_start_, + prefetch_size_)
  uint64_t prefetch_start_ = 0;
  size_t prefetch_size_ = 0;
};

}  // namespace

std::unique_ptr<ObjectReader> NewReader(HttpClient& client, Head head) {
  return std::make_unique<Reader>(client, std::move(head));
}

}  // namespace vmp3::s3
