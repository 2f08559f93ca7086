#include "storage/s3_object_store.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <ctime>

#include "storage/s3_http.hpp"
#include "storage/s3_reader.hpp"
#include "storage/s3_writer.hpp"
#include "storage/s3_xml.hpp"

namespace vmp3 {
namespace {

constexpr size_t kMinPartSize = 5 * 1024 * 1024;  // S3's minimum for every part but the last
constexpr int64_t kMaxPresignSeconds = 7 * 24 * 60 * 60;  // SigV4's limit for X-Amz-Expires

}  // namespace

Result<std::unique_ptr<S3ObjectStore>> S3ObjectStore::FromConfig(S3Config config) {
  auto bad = [](std::string why) { return MakeError(ErrorCode::kInvalidArgument, std::move(why)); };
  if (!ValidS3BucketName(config.bucket))
    return bad(
        "an S3 bucket name must be 3 to 63 characters "
        "from a-z 0-9 . -");
  if (!config.prefix.empty()) {
    if (auto valid = ValidateObjectKey(config.prefix); !valid) {
      return bad("the S3 key prefix is not a valid object key: " + valid.error().message);
    }
  }
  if (config.credentials.access_key_id.empty() || config.credentials.secret_access_key.empty()) {
    return bad("s3 storage needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  if (config.part_size < kMinPartSize) {
    return bad(fmt::format("the S3 part size must be at least {} bytes", kMinPartSize));
  }
  if (config.read_window < 4096 || config.max_attempts < 1) {
    return bad("the S3 read window must be at least 4096 bytes and max_attempts at least 1");
  }
  if (config.timeout < std::chrono::milliseconds(1)) return bad("the S3 timeout must be positive");
  if (config.endpoint.empty()) {
    config.endpoint = fmt::format("https://s3.{}.amazonaws.com", config.region);
  }
  auto endpoint = ParseS3Endpoint(config.endpoint);
  if (!endpoint) return tl::unexpected(endpoint.error());
  if (config.virtual_host && endpoint->ip_literal) {
    return bad("virtual_host needs an endpoint with a host name, not an IP address");
  }
  auto client = std::make_unique<s3::HttpClient>(std::move(config), std::move(*endpoint));
  return std::unique_ptr<S3ObjectStore>(new S3ObjectStore(std::move(client)));
}

S3ObjectStore::S3ObjectStore(std::unique_ptr<s3::HttpClient> client) : client_(std::move(client)) {}
S3ObjectStore::~S3ObjectStore() = default;

const S3Config& S3ObjectStore::config() const { return client_->config(); }

Result<std::unique_ptr<ObjectWriter>> S3ObjectStore::Create(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  return s3::NewWriter(*client_, std::string(key));
}

Result<std::unique_ptr<ObjectReader>> S3ObjectStore::Open(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  auto head = client_->HeadObject(key);
  if (!head) return tl::unexpected(head.error());
  return s3::NewReader(*client_, std::move(*head));
}

Result<ObjectInfo> S3ObjectStore::Stat(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  auto head = client_->HeadObject(key);
  if (!head) return tl::unexpected(head.error());
  return std::move(head->info);
}

Status S3ObjectStore::Remove(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  s3::Request request;
  request.method = "DELETE";
  request.key = client_->FullKey(key);
  auto response = client_->Execute(request);
  if (!response) return tl::unexpected(response.error());
  // S3 answers 204 for a missing key too; some servers say 404.
  if (response->status == 204 || response->status == 200) return {};
  if (response->status == 404 && response->S3ErrorCode() != "NoSuchBucket") return {};
  return tl::unexpected(client_->ErrorFor(*response, key));
}

Result<ObjectListing> S3ObjectStore::List(std::string_view prefix, std::string_view start_after,
                                          int limit) {
  if (auto valid = ValidateListLimit(limit); !valid) return tl::unexpected(valid.error());
  s3::Request request;
  request.query = {{"list-type", "2"}, {"max-keys", std::to_string(limit)}};
  // FullKey puts the store's prefix in front; "" lists everything under it.
  if (std::string full_prefix = client_->FullKey(prefix); !full_prefix.empty()) {
    request.query.emplace_back("prefix", std::move(full_prefix));
  }
  if (!start_after.empty())
    request.query.emplace_back("start-after", client_->FullKey(start_after));
  auto response = client_->Execute(request);
  if (!response) return tl::unexpected(response.error());
  if (response->status != 200) return tl::unexpected(client_->ErrorFor(*response, ""));
  auto page = s3::ParseListObjectsV2(response->body);
  if (!page) return tl::unexpected(page.error());
  ObjectListing listing;
  for (s3::ListedObject& listed : page->objects) {
    std::string key = client_->StoreKey(listed.key);
    if (!ValidateObjectKey(key)) continue;  // written by another tool; not addressable here
    listing.objects.push_back(ObjectInfo{.key = std::move(key),
                                         .size = listed.size,
                                         .etag = std::move(listed.etag),
                                         .modified_unix = listed.modified_unix});
  }
  if (page->truncated) {
    if (page->objects.empty()) {
      return MakeError(ErrorCode::kIo,
                       fmt::format("object storage at {} sent an empty page of an unfinished "
                                   "listing",
                                   client_->EndpointUrl()));
    }
    // The last key S3 listed, even if it was skipped above: the next page starts after it.
    listing.next_start_after = client_->StoreKey(page->objects.back().key);
  }
  return listing;
}

Status S3ObjectStore::Ping() {
  s3::Request request;
  request.method = "HEAD";
  auto response = client_->Execute(request);
  if (!response) return tl::unexpected(response.error());
  if (response->status == 200) return {};
  return tl::unexpected(client_->HeadError(*response, ""));
}

std::string S3ObjectStore::Describe() const {
  const S3Config& c = client_->config();
  return fmt::format("s3://{}{}{} at {}", c.bucket, c.prefix.empty() ? "" : "/", c.prefix,
                     client_->EndpointUrl());
}

Result<std::string> S3ObjectStore::PresignedGetUrl(std::string_view key,
                                                   std::chrono::seconds expires) const {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  if (expires.count() < 1 || expires.count() > kMaxPresignSeconds) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("a presigned URL must expire within 1 to {} seconds, not {}",
                                 kMaxPresignSeconds, expires.count()));
  }
  return client_->PresignGet(key, expires);
}

Result<int> S3ObjectStore::AbortAbandonedWrites(std::chrono::seconds older_than) {
  auto uploads = ListMultipartUploads();
  if (!uploads) return tl::unexpected(uploads.error());
  const int64_t cutoff = static_cast<int64_t>(std::time(nullptr)) - older_than.count();
  int aborted = 0;
  for (const S3MultipartUpload& upload : *uploads) {
    if (upload.initiated_unix < 0 || upload.initiated_unix > cutoff) continue;
    s3::Request request;
    request.method = "DELETE";
    request.key = client_->FullKey(upload.key);
    request.query = {{"uploadId", upload.upload_id}};
    auto response = client_->Execute(request);
    if (!response) return tl::unexpected(response.error());
    if (response->status == 404) continue;  // completed or aborted meanwhile
    if (response->status != 204 && response->status != 200)
      return tl::unexpected(client_->ErrorFor(*response, upload.key));
    spdlog::info("aborted the multipart upload of object {} started at {} (abandoned)", upload.key,
                 upload.initiated_unix);
    ++aborted;
  }
  return aborted;
}

Result<std::vector<S3MultipartUpload>> S3ObjectStore::ListMultipartUploads() {
  std::vector<S3MultipartUpload> uploads;
  const std::string prefix = client_->config().prefix.empty() ? "" : client_->config().prefix + "/";
  std::string key_marker, upload_id_marker;
  for (;;) {
    s3::Request request;
    request.query = {{"uploads", ""}};
    if (!prefix.empty()) request.query.emplace_back("prefix", prefix);
    if (!key_marker.empty()) request.query.emplace_back("key-marker", key_marker);
    if (!upload_id_marker.empty()) request.query.emplace_back("upload-id-marker", upload_id_marker);
    auto response = client_->Execute(request);
    if (!response) return tl::unexpected(response.error());
    if (response->status != 200) return tl::unexpected(client_->ErrorFor(*response, ""));
    auto page = s3::ParseListMultipartUploads(response->body);
    if (!page) return tl::unexpected(page.error());
    for (s3::ListedUpload& upload : page->uploads) {
      uploads.push_back(S3MultipartUpload{client_->StoreKey(upload.key),
                                          std::move(upload.upload_id), upload.initiated_unix});
    }
    if (!page->truncated) break;
    key_marker = std::move(page->next_key_marker);
    upload_id_marker = std::move(page->next_upload_id_marker);
    if (key_marker.empty() && upload_id_marker.empty()) break;
  }
  return uploads;
}

Status S3ObjectStore::CreateBucketIfMissing() {
  const S3Config& c = client_->config();
  // us-east-1 is the default location and must not be named.
  const std::string xml = c.region == "us-east-1" ? "" : s3::CreateBucketConfigurationXml(c.region);
  s3::Request request;
  request.method = "PUT";
  request.body = std::as_bytes(std::span<const char>(xml.data(), xml.size()));
  request.content_type = "application/xml";
  auto response = client_->Execute(request);
  if (!response) return tl::unexpected(response.error());
  if (response->status == 200) return {};
  const std::string code = response->S3ErrorCode();
  if (code == "BucketAlreadyOwnedByYou") return {};
  if (code == "BucketAlreadyExists") {
    return MakeError(ErrorCode::kAlreadyExists,
                     fmt::format("bucket {} belongs to another account", c.bucket));
  }
  return tl::unexpected(client_->ErrorFor(*response, ""));
}

}  // namespace vmp3
