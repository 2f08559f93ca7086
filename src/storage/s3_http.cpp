#include "storage/s3_http.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <thread>

#include "common/deadline.hpp"
#include "common/text.hpp"
#include "storage/s3_xml.hpp"
#include "storage/sigv4.hpp"

namespace vmp3::s3 {

// A curl easy handle and the socket of the connection it last opened. Connections live in the
// handle's own cache and are reused by its next requests.
struct PooledHandle {
  CURL* curl = nullptr;
  curl_socket_t socket = CURL_SOCKET_BAD;
};

namespace {

constexpr size_t kIdleHandles = 8;

void GlobalCurlInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Failures where the same request may succeed if sent again.
bool IsTransientCurlError(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
      return true;
    default:
      return false;
  }
}

struct BodySink {
  std::string* body;
  size_t limit;
  bool overflow = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  size_t n = size * count;
  if (sink->body->size() + n > sink->limit) {
    sink->overflow = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  sink->body->append(data, n);
  return n;
}

int OnSocketOpened(void* user, curl_socket_t socket, curlsocktype) {
  static_cast<PooledHandle*>(user)->socket = socket;
  return CURL_SOCKOPT_OK;
}

int OnSocketClose(void* user, curl_socket_t socket) {
  auto* pooled = static_cast<PooledHandle*>(user);
  if (pooled->socket == socket) pooled->socket = CURL_SOCKET_BAD;
  return ::close(socket);
}

// Some servers (Ceph RGW's beast frontend) send the response headers and a small body in two
// segments with Nagle's algorithm on, so on a reused connection the body waits for our delayed
// ACK of the headers: 40 ms per small GET. Setting TCP_QUICKACK once the headers are in sends
// that ACK at once.
void AckNow(const PooledHandle& pooled) {
  if (pooled.socket == CURL_SOCKET_BAD) return;
  int one = 1;
  ::setsockopt(pooled.socket, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

struct HeaderSink {
  Pairs* headers;
  const PooledHandle* pooled;
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<HeaderSink*>(user);
  Pairs* headers = sink->headers;
  size_t n = size * count;
  std::string_view line(data, n);
  // A new status line (after "100 Continue", say) starts a new header block.
  if (line.starts_with("HTTP/")) {
    headers->clear();
    return n;
  }
  if (line == "\r\n") {
    AckNow(*sink->pooled);
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  // The line ends with CRLF; the value loses it and its optional whitespace.
  headers->emplace_back(AsciiLowerCopy(line.substr(0, colon)),
                        std::string(TrimWhitespace(line.substr(colon + 1))));
  return n;
}

}  // namespace

int64_t HttpDateToUnix(const std::string& date) {
  if (date.empty()) return -1;
  return static_cast<int64_t>(curl_getdate(date.c_str(), nullptr));
}

namespace {

std::string Unquote(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

sigv4::Scope NowScope(const S3Config& config) {
  return sigv4::Scope{config.region, "s3", sigv4::FormatAmzDate(std::chrono::system_clock::now())};
}

// 5xx, 429, 408 and S3's "RequestTimeout" (a 400 sent when a connection idled mid-request) may
// pass; so may an <Error> that CompleteMultipartUpload sent after its 200.
bool IsRetryable(const Response& response, bool error_in_ok_body) {
  if (response.status >= 500 || response.status == 429 || response.status == 408) return true;
  if (response.status == 400) return response.S3ErrorCode() == "RequestTimeout";
  return error_in_ok_body && response.status == 200 && ParseError(response.body).has_value();
}

}  // namespace

std::string Response::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::string Response::S3ErrorCode() const {
  if (body.empty()) return {};
  auto error = ParseError(body);
  return error ? error->code : std::string();
}

HttpClient::HttpClient(S3Config config, S3Endpoint endpoint)
    : config_(std::move(config)), endpoint_(std::move(endpoint)) {
  GlobalCurlInit();
}

HttpClient::~HttpClient() {
  for (auto& pooled : idle_) curl_easy_cleanup(pooled->curl);
}

std::string HttpClient::FullKey(std::string_view key) const {
  return config_.prefix.empty() ? std::string(key) : config_.prefix + "/" + std::string(key);
}

std::string HttpClient::StoreKey(std::string_view full_key) const {
  if (config_.prefix.empty()) return std::string(full_key);
  return std::string(full_key.substr(std::min(full_key.size(), config_.prefix.size() + 1)));
}

Result<Response> HttpClient::Execute(const Request& request) {
  using std::chrono::milliseconds;
  // What one attempt may take before the deadline is considered: transfers are not capped.
  constexpr milliseconds kNoCap = milliseconds::max();
  const milliseconds cap = request.transfer ? kNoCap : config_.timeout;
  const std::string payload_hash =
      request.body.empty() ? std::string(sigv4::kEmptyPayloadHash) : sigv4::Sha256Hex(request.body);
  std::string problem;
  for (int attempt = 1;; ++attempt) {
    const milliseconds budget = TimeBudget(cap);
    if (budget <= milliseconds(0)) {
      if (attempt == 1) {
        return tl::unexpected(DeadlinePassed(fmt::format("object storage at {}", EndpointUrl())));
      }
      return Unavailable(fmt::format("{} (the request's deadline passed before a retry)", problem));
    }
    Response response;
    response.attempts = attempt;
    bool overflow = false;
    const auto rc = static_cast<CURLcode>(Perform(request, payload_hash,
                                                  budget == kNoCap ? milliseconds(0) : budget,
                                                  response, problem, overflow));
    if (overflow) {
      return MakeError(
          ErrorCode::kIo,
          fmt::format("object storage at {} sent a larger answer than expected", EndpointUrl()));
    }
    if (rc != CURLE_OK) {
      if (!IsTransientCurlError(rc)) return Unavailable(problem);
    } else if (IsRetryable(response, request.error_in_ok_body)) {
      std::string code = response.S3ErrorCode();
      problem = fmt::format("HTTP {}{}{}", response.status, code.empty() ? "" : " ", code);
    } else {
      return response;
    }
    if (attempt >= config_.max_attempts) return Unavailable(problem);
    const milliseconds delay = Backoff(attempt);
    if (auto deadline = CurrentDeadline(); deadline && DeadlineClock::now() + delay >= *deadline) {
      return Unavailable(
          fmt::format("{} (no time left for a retry before the request's deadline)", problem));
    }
    spdlog::warn("S3 {} failed ({}); retrying in {} ms", request.method, problem, delay.count());
    std::this_thread::sleep_for(delay);
  }
}

Error HttpClient::ErrorFor(const Response& response, std::string_view key) const {
  auto body = ParseError(response.body);
  const std::string code = body ? body->code : std::string();
  const std::string& bucket = config_.bucket;
  if (code == "SignatureDoesNotMatch") {
    return Error(ErrorCode::kPermissionDenied,
                 "S3 rejected the request signature: check AWS_SECRET_ACCESS_KEY");
  }
  if (code == "InvalidAccessKeyId") {
    return Error(ErrorCode::kPermissionDenied,
                 "S3 does not know the access key id: check AWS_ACCESS_KEY_ID");
  }
  if (code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired") {
    return Error(ErrorCode::kPermissionDenied,
                 "S3 rejected the session token: check AWS_SESSION_TOKEN");
  }
  if (code == "RequestTimeTooSkewed") {
    return Error(ErrorCode::kPermissionDenied,
                 "S3 rejected the request time: synchronise this machine's clock");
  }
  if (code == "AccessDenied" || (response.status == 403 && code.empty())) {
    return Error(ErrorCode::kPermissionDenied,
                 fmt::format("S3 denied access to bucket {}: check the permissions of the "
                             "access key in AWS_ACCESS_KEY_ID",
                             bucket));
  }
  if (code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" ||
      response.status == 301) {
    // AWS names the bucket's region in a header (and in the body of a signed request).
    std::string region = response.Header("x-amz-bucket-region");
    if (region.empty() && body) region = body->region;
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("bucket {} is not in region {}{}: set region= (and endpoint=) in "
                             "the storage URL",
                             bucket, config_.region,
                             region.empty() ? "" : fmt::format(" but in {}", region)));
  }
  if (code == "NoSuchBucket" || (response.status == 404 && code.empty() && key.empty())) {
    return Error(ErrorCode::kNotFound,
                 fmt::format("bucket {} does not exist at {}", bucket, EndpointUrl()));
  }
  if (code == "NoSuchKey" || (response.status == 404 && code.empty())) {
    return Error(ErrorCode::kNotFound, fmt::format("object {} does not exist", key));
  }
  if (code == "NoSuchUpload") {
    return Error(ErrorCode::kConflict,
                 fmt::format("the upload of object {} was aborted or has expired", key));
  }
  if (response.status == 412 || code == "PreconditionFailed") {
    return Error(ErrorCode::kConflict,
                 fmt::format("object {} was replaced while it was being read", key));
  }
  const std::string message = body ? body->message : std::string();
  return Error(
      ErrorCode::kIo,
      fmt::format("S3 refused a request about {} {}: HTTP {} {}{}{}",
                  key.empty() ? "bucket" : "object", key.empty() ? bucket : key, response.status,
                  code.empty() ? "(no error code)" : code, message.empty() ? "" : ": ", message));
}

Error HttpClient::HeadError(const Response& head, std::string_view key) {
  if (head.status != 404 && head.status >= 400) {
    Request get;
    get.key = key.empty() ? "" : FullKey(key);
    if (key.empty()) {
      get.query = {{"max-keys", "0"}};
    } else {
      get.headers = {{"Range", "bytes=0-0"}};
    }
    auto explained = Execute(get);
    if (explained && explained->status >= 400) return ErrorFor(*explained, key);
  }
  return ErrorFor(head, key);
}

Result<Head> HttpClient::HeadObject(std::string_view key) {
  Request request;
  request.method = "HEAD";
  request.key = FullKey(key);
  auto response = Execute(request);
  if (!response) return tl::unexpected(response.error());
  if (response->status != 200) return tl::unexpected(HeadError(*response, key));
  Head head;
  head.s3_etag = response->Header("etag");
  head.info.key = std::string(key);
  head.info.size = std::strtoull(response->Header("content-length").c_str(), nullptr, 10);
  std::string version = response->Header(kVersionHeader);
  head.info.etag = version.empty() ? Unquote(head.s3_etag) : version;
  head.info.modified_unix = HttpDateToUnix(response->Header("last-modified"));
  return head;
}

std::string HttpClient::PresignGet(std::string_view key, std::chrono::seconds expires) const {
  auto [host, path] = HostAndPath(FullKey(key));
  sigv4::Request request{.method = "GET", .path = path, .query = {}, .headers = {{"Host", host}}};
  std::string query =
      sigv4::PresignQuery(request, config_.credentials, NowScope(config_), expires.count());
  return endpoint_.scheme + "://" + host + sigv4::EncodePath(path) + "?" + query;
}

// Where a full key lives: path style "host/bucket/key", virtual host "bucket.host/key".
std::pair<std::string, std::string> HttpClient::HostAndPath(std::string_view full_key) const {
  if (config_.virtual_host) {
    return {config_.bucket + "." + endpoint_.authority, "/" + std::string(full_key)};
  }
  std::string path = "/" + config_.bucket;
  if (!full_key.empty()) path += "/" + std::string(full_key);
  return {endpoint_.authority, path};
}

tl::unexpected<Error> HttpClient::Unavailable(std::string_view problem) const {
  return MakeError(ErrorCode::kUnavailable,
                   fmt::format("object storage at {} is unavailable: {}", EndpointUrl(), problem));
}

// Exponential backoff with "equal jitter": half the delay fixed, half random, so retries of
// many clients spread out but never come back immediately.
std::chrono::milliseconds HttpClient::Backoff(int attempt) const {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  int64_t base = config_.retry_base_delay.count() << std::min(attempt - 1, 10);
  base = std::min<int64_t>(base, 10'000);
  int64_t half = base / 2;
  return std::chrono::milliseconds(
      half + (half > 0 ? std::uniform_int_distribution<int64_t>(0, half)(rng) : 0));
}

std::unique_ptr<PooledHandle> HttpClient::Acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto pooled = std::move(idle_.back());
      idle_.pop_back();
      return pooled;
    }
  }
  auto pooled = std::make_unique<PooledHandle>();
  pooled->curl = curl_easy_init();
  if (pooled->curl == nullptr) return nullptr;
  return pooled;
}

void HttpClient::Release(std::unique_ptr<PooledHandle> pooled) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < kIdleHandles) {
    idle_.push_back(std::move(pooled));
  } else {
    curl_easy_cleanup(pooled->curl);  // closes its connections (OnSocketClose) first
  }
}

int HttpClient::Perform(const Request& request, const std::string& payload_hash,
                        std::chrono::milliseconds total, Response& response, std::string& problem,
                        bool& overflow) {
  auto [host, path] = HostAndPath(request.key);
  sigv4::Request signed_request{.method = request.method,
                                .path = path,
                                .query = request.query,
                                .headers = request.headers,
                                .payload_hash = payload_hash};
  signed_request.headers.emplace_back("Host", host);
  signed_request.headers.emplace_back("x-amz-content-sha256", payload_hash);
  std::string authorization =
      sigv4::SignHeaders(signed_request, config_.credentials, NowScope(config_));

  std::string url = endpoint_.scheme + "://" + host + sigv4::EncodePath(path);
  if (!request.query.empty()) url += "?" + sigv4::CanonicalQueryString(request.query);

  curl_slist* headers = nullptr;
  for (const auto& [name, value] : signed_request.headers) {
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  headers = curl_slist_append(headers, ("Authorization: " + authorization).c_str());
  // No "Expect: 100-continue" round trip before each part.
  headers = curl_slist_append(headers, "Expect:");
  bool sends_body = request.method == "PUT" || request.method == "POST";
  if (sends_body) {
    headers = curl_slist_append(headers, ("Content-Type: " + request.content_type).c_str());
  }

  std::unique_ptr<PooledHandle> pooled = Acquire();
  if (pooled == nullptr) {
    curl_slist_free_all(headers);
    problem = "cannot create a curl handle";
    return CURLE_FAILED_INIT;
  }
  char error_buffer[CURL_ERROR_SIZE] = {};
  CURL* handle = pooled->curl;
  curl_easy_reset(handle);
  response.body.reserve(request.expected_body);
  BodySink sink{&response.body, request.max_response_body};
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer);
  const std::chrono::milliseconds connect =
      total.count() > 0 ? std::min(config_.timeout, total) : config_.timeout;
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect.count()));
  // 0: no cap on the whole transfer (only the low-speed limit below).
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(total.count()));
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(config_.low_speed_time.count()));
  curl_easy_setopt(handle, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(handle, CURLOPT_SOCKOPTFUNCTION, OnSocketOpened);
  curl_easy_setopt(handle, CURLOPT_SOCKOPTDATA, pooled.get());
  curl_easy_setopt(handle, CURLOPT_CLOSESOCKETFUNCTION, OnSocketClose);
  curl_easy_setopt(handle, CURLOPT_CLOSESOCKETDATA, pooled.get());
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, OnHeader);
  HeaderSink header_sink{&response.headers, pooled.get()};
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &header_sink);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &sink);
  if (request.method == "HEAD") {
    curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
  } else if (sends_body) {
    // POSTFIELDS sends the bytes from memory (a null pointer would mean "use a read callback").
    const char* data =
        request.body.empty() ? "" : reinterpret_cast<const char*>(request.body.data());
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method != "GET") {
    curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  CURLcode rc = curl_easy_perform(handle);
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &response.status);
  overflow = sink.overflow;
  if (rc != CURLE_OK) problem = error_buffer[0] ? error_buffer : curl_easy_strerror(rc);
  Release(std::move(pooled));
  curl_slist_free_all(headers);
  return rc;
}

}  // namespace vmp3::s3
