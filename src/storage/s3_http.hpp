// The signed HTTP client under S3ObjectStore: builds S3 requests (path or virtual-host style),
// signs them with SigV4 (storage/sigv4.hpp), sends them with libcurl over pooled connections,
// retries what may pass, and maps S3's answers to vmp3 errors. No libcurl type leaks from here.
//
// Retries: 5xx, 429, 408, S3's 400 RequestTimeout, connection failures and timeouts are retried
// with exponential backoff and jitter, up to S3Config::max_attempts attempts in all; other 4xx
// never are. Every retry is signed again.
//
// Time: connecting may take S3Config::timeout. One attempt of a small request (the default)
// may take S3Config::timeout in all; a transfer (Request::transfer) has no total cap, only the
// low-speed limit (1 KiB/s for S3Config::low_speed_time), so large objects stream as long as
// they move. When the calling thread has a deadline (common/deadline.hpp: the HTTP server sets
// one around the work of a request), every attempt is capped by the time left, a request is not
// sent at all once it has passed (kUnavailable, DeadlinePassed), and no retry starts whose
// backoff would end after it.
//
// Threading: thread-safe; requests from many threads share a small pool of curl handles (and so
// their connections). Every call blocks the calling thread for the duration of its requests.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "storage/object_store.hpp"
#include "storage/s3_config.hpp"

namespace vmp3::s3 {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// User metadata that makes every commit's etag unique (see storage/s3_object_store.hpp).
inline constexpr std::string_view kVersionHeader = "x-amz-meta-vmp3-version";
// S3's XML answers (errors, listings, upload ids) are far smaller than this.
inline constexpr size_t kMaxXmlBody = 1024 * 1024;
inline constexpr size_t kMaxErrorBody = 64 * 1024;

struct Request {
  std::string method = "GET";
  std::string key;  // the full S3 key (prefix included); "" addresses the bucket
  Pairs query;
  Pairs headers;  // besides Host and the x-amz-* headers signing adds
  std::span<const std::byte> body;
  std::string content_type = "application/octet-stream";
  size_t max_response_body = kMaxXmlBody;
  size_t expected_body = 0;  // reserved up front, so a large body is not copied while it grows
  // CompleteMultipartUpload may fail after answering 200: its body is then an <Error>.
  bool error_in_ok_body = false;
  // Moves object bytes (a window of a GET, a part, a whole small object): no total time cap
  // unless a deadline sets one (see the top of this file).
  bool transfer = false;
};

struct Response {
  long status = 0;
  Pairs headers;  // lower-case names
  std::string body;
  int attempts = 0;

  // The value of the first header with this (lower-case) name, or "".
  std::string Header(std::string_view lower_name) const;
  // The <Code> of an <Error> body, or "" (no body, or not an error document).
  std::string S3ErrorCode() const;
};

// What a HEAD of an object tells.
struct Head {
  ObjectInfo info;
  std::string s3_etag;  // as S3 sent it, quotes included (for If-Match)
};

// An HTTP date (Date, Last-Modified) in seconds since the epoch; -1 when empty or unreadable.
int64_t HttpDateToUnix(const std::string& date);

struct PooledHandle;  // a curl handle and its connection (s3_http.cpp)

class HttpClient {
 public:
  // `config` has been checked (S3ObjectStore::FromConfig); `endpoint` is its endpoint, parsed.
  HttpClient(S3Config config, S3Endpoint endpoint);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const S3Config& config() const { return config_; }
  // "scheme://host[:port]": how messages name the service. Never holds a secret.
  std::string EndpointUrl() const { return endpoint_.scheme + "://" + endpoint_.authority; }

  // The S3 key of an ObjectStore key (the URL's prefix in front), and back.
  std::string FullKey(std::string_view key) const;
  std::string StoreKey(std::string_view full_key) const;

  // Sends the request, retrying transient failures. Any HTTP status that is not retried is
  // returned as a Response; only exhausted retries (kUnavailable) and local failures are errors.
  Result<Response> Execute(const Request& request);

  // Maps an unsuccessful (non-retried) response to an error. key is the ObjectStore key, or ""
  // for requests about the bucket:
  //   signature mismatch, unknown key id, denied, expired token, skewed clock -> kPermissionDenied
  //   missing bucket or object -> kNotFound, naming it
  //   missing multipart upload, failed precondition -> kConflict
  //   bucket in another region -> kInvalidArgument, naming the region when S3 does
  //   anything else -> kIo with S3's error code and message.
  Error ErrorFor(const Response& response, std::string_view key) const;

  // ErrorFor for a HEAD: HEAD answers carry no error body, so a failed HEAD (other than 404) is
  // repeated as a small GET to learn S3's error code.
  Error HeadError(const Response& head, std::string_view key);

  // HEAD of an object: size, etag (our version header, or S3's ETag), modification time.
  Result<Head> HeadObject(std::string_view key);

  // A URL that lets anyone holding it GET the object for `expires` (checked by the caller).
  std::string PresignGet(std::string_view key, std::chrono::seconds expires) const;

 private:
  std::pair<std::string, std::string> HostAndPath(std::string_view full_key) const;
  tl::unexpected<Error> Unavailable(std::string_view problem) const;
  std::chrono::milliseconds Backoff(int attempt) const;
  std::unique_ptr<PooledHandle> Acquire();
  void Release(std::unique_ptr<PooledHandle> pooled);
  // One attempt, taking at most `total` (0: no cap). Returns libcurl's result code (0 on
  // success), fills `response`, and sets `problem` to a description of a failure.
  int Perform(const Request& request, const std::string& payload_hash,
              std::chrono::milliseconds total, Response& response, std::string& problem,
              bool& overflow);

  const S3Config config_;
  const S3Endpoint endpoint_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<PooledHandle>> idle_;
};

}  // namespace vmp3::s3
