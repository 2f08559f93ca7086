#include "storage/s3_writer.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <random>

#include "storage/s3_xml.hpp"

namespace vmp3::s3 {
namespace {

std::string RandomVersion() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

class Writer final : public ObjectWriter {
 public:
  Writer(HttpClient& client, std::string key)
      : client_(client),
        key_(std::move(key)),
        full_key_(client_.FullKey(key_)),
        version_(RandomVersion()) {}
  ~Writer() override { Abort(); }

  Status Write(std::span<const std::byte> data) override {
    if (state_ != State::kOpen) return NotOpen();
    const size_t part_size = client_.config().part_size;
    while (!data.empty()) {
      size_t n = std::min(part_size - buffer_.size(), data.size());
      if (buffer_.size() + n > buffer_.capacity()) {
        // Grow geometrically, but never past one part: that is the memory bound.
        buffer_.reserve(std::min(part_size, std::max(buffer_.size() + n, 2 * buffer_.capacity())));
      }
      buffer_.insert(buffer_.end(), data.begin(), data.begin() + static_cast<ptrdiff_t>(n));
      data = data.subspan(n);
      position_ += n;
      if (buffer_.size() == part_size) {
        if (auto sent = SendPart(); !sent) {
          Abort();
          return sent;
        }
      }
    }
    return {};
  }

  uint64_t Position() const override { return position_; }

  Result<ObjectInfo> Commit() override {
    if (state_ != State::kOpen) return NotOpen();
    auto info = upload_id_.empty() ? PutWhole() : CompleteUpload();
    if (!info) {
      Abort();
      return info;
    }
    state_ = State::kCommitted;
    buffer_ = {};
    return info;
  }

  void Abort() override {
    if (state_ != State::kOpen) return;
    state_ = State::kAborted;
    buffer_ = {};
    if (upload_id_.empty()) return;
    Request request;
    request.method = "DELETE";
    request.key = full_key_;
    request.query = {{"uploadId", upload_id_}};
    auto response = client_.Execute(request);
    // 204 normally; 404 NoSuchUpload when it is gone already.
    if (!response ||
        (response->status != 204 && response->status != 200 && response->status != 404)) {
      spdlog::warn(
          "could not abort the multipart upload of object {}: {}; its parts stay until "
          "the bucket's lifecycle rule removes them",
          key_, response ? client_.ErrorFor(*response, key_).message : response.error().message);
    }
    upload_id_.clear();
  }

 private:
  enum class State { kOpen, kCommitted, kAborted };

  tl::unexpected<Error> NotOpen() const {
    return MakeError(ErrorCode::kConflict,
                     fmt::format("the writer of object {} is already {}", key_,
                                 state_ == State::kCommitted ? "committed" : "aborted"));
  }

  Request VersionedRequest(std::string method) const {
    Request request;
    request.method = std::move(method);
    request.key = full_key_;
    request.headers = {{std::string(kVersionHeader), version_}};
    return request;
  }

  ObjectInfo InfoFrom(const Response& response) const {
    int64_t modified = HttpDateToUnix(response.Header("date"));
    return ObjectInfo{.key = key_,
                      .size = position_,
                      .etag = version_,
                      .modified_unix = modified >= 0 ? modified : std::time(nullptr)};
  }

  // A small object: one PUT.
  Result<ObjectInfo> PutWhole() {
    Request request = VersionedRequest("PUT");
    request.body = buffer_;
    request.transfer = true;
    auto response = client_.Execute(request);
    if (!response) return tl::unexpected(response.error());
    if (response->status != 200) return tl::unexpected(client_.ErrorFor(*response, key_));
    return InfoFrom(*response);
  }

  // Sends buffer_ as the next part, starting the multipart upload first if needed.
  Status SendPart() {
    if (upload_id_.empty()) {
      // The version header goes on the upload; S3 gives it to the completed object.
      Request start = VersionedRequest("POST");
      start.query = {{"uploads", ""}};
      auto response = client_.Execute(start);
      if (!response) return tl::unexpected(response.error());
      if (response->status != 200) return tl::unexpected(client_.ErrorFor(*response, key_));
      auto upload_id = ParseInitiateMultipartUpload(response->body);
      if (!upload_id) {
        return MakeError(ErrorCode::kIo, fmt::format("cannot start the upload of object {}: {}",
                                                     key_, upload_id.error().message));
      }
      upload_id_ = std::move(*upload_id);
    }
    Request request;
    request.method = "PUT";
    request.key = full_key_;
    request.query = {{"partNumber", std::to_string(part_etags_.size() + 1)},
                     {"uploadId", upload_id_}};
    request.body = buffer_;
    request.transfer = true;
    auto response = client_.Execute(request);
    if (!response) return tl::unexpected(response.error());
    if (response->status != 200) return tl::unexpected(client_.ErrorFor(*response, key_));
    std::string etag = response->Header("etag");
    if (etag.empty()) {
      return MakeError(ErrorCode::kIo,
                       fmt::format("S3 accepted a part of object {} without an ETag", key_));
    }
    part_etags_.push_back(std::move(etag));
    buffer_.clear();  // keeps the capacity for the next part
    return {};
  }

  Result<ObjectInfo> CompleteUpload() {
    // The last part may be smaller than part_size; it may also be empty when the object is an
    // exact multiple of the part size, and then there is nothing more to send.
    if (!buffer_.empty()) {
      if (auto sent = SendPart(); !sent) return tl::unexpected(sent.error());
    }
    const std::string xml = CompleteMultipartUploadXml(part_etags_);
    Request request;
    request.method = "POST";
    request.key = full_key_;
    request.query = {{"uploadId", upload_id_}};
    request.body = std::as_bytes(std::span<const char>(xml.data(), xml.size()));
    request.content_type = "application/xml";
    request.error_in_ok_body = true;
    auto response = client_.Execute(request);
    if (!response) return tl::unexpected(response.error());
    if (response->status == 200) {
      upload_id_.clear();
      return InfoFrom(*response);
    }
    // A retry after a lost answer finds the upload completed already: the object is there, and it
    // is ours if it carries our version.
    if (response->attempts > 1 && response->S3ErrorCode() == "NoSuchUpload") {
      auto head = client_.HeadObject(key_);
      if (head && head->info.etag == version_) {
        upload_id_.clear();
        return InfoFrom(*response);
      }
    }
    return tl::unexpected(client_.ErrorFor(*response, key_));
  }

  HttpClient& client_;
  std::string key_;
  std::string full_key_;
  std::string version_;
  std::vector<std::byte> buffer_;  // at most one part
  std::string upload_id_;          // set once the multipart upload has started
  std::vector<std::string> part_etags_;
  uint64_t position_ = 0;
  State state_ = State::kOpen;
};

}  // namespace

std::unique_ptr<ObjectWriter> NewWriter(HttpClient& client, std::string key) {
  return std::make_unique<Writer>(client, std::move(key));
}

}  // namespace vmp3::s3
