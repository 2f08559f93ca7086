#include "storage/s3_object_store.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <system_error>
#include <thread>

#include "common/markup.hpp"

namespace vmp3 {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// User metadata that makes every commit's etag unique (see the header).
constexpr std::string_view kVersionHeader = "x-amz-meta-vmp3-version";
// S3's XML answers (errors, listings, upload ids) are far smaller than this.
constexpr size_t kMaxXmlBody = 1024 * 1024;
constexpr size_t kMaxErrorBody = 64 * 1024;
constexpr size_t kMinPartSize = 5 * 1024 * 1024;  // S3's minimum for every part but the last
constexpr int64_t kMaxPresignSeconds = 7 * 24 * 60 * 60;  // SigV4's limit for X-Amz-Expires
constexpr size_t kIdleHandles = 8;

// ---------------------------------------------------------------------------------------------
// Minimal XML. S3's responses are small and flat, and the elements read here (Code, Message,
// UploadId, Upload/Key, IsTruncated, Next*Marker) carry no attributes and no CDATA, so finding
// "<Tag>" and "</Tag>" and decoding the five predefined entities (and numeric references) is
// enough. No general XML parser is needed or attempted.

std::string XmlUnescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    size_t end = s.find(';', i);
    if (end == std::string_view::npos) {
      out.push_back('&');
      continue;
    }
    std::string_view entity = s.substr(i + 1, end - i - 1);
    if (entity == "amp") {
      out.push_back('&');
    } else if (entity == "lt") {
      out.push_back('<');
    } else if (entity == "gt") {
      out.push_back('>');
    } else if (entity == "quot") {
      out.push_back('"');
    } else if (entity == "apos") {
      out.push_back('\'');
    } else if (entity.size() > 1 && entity[0] == '#') {
      // Numeric references; only ASCII ones occur in what is read here.
      long code = entity[1] == 'x'
                      ? std::strtol(std::string(entity.substr(2)).c_str(), nullptr, 16)
                      : std::strtol(std::string(entity.substr(1)).c_str(), nullptr, 10);
      if (code > 0 && code < 128) out.push_back(static_cast<char>(code));
    } else {
      out.append(s.substr(i, end - i + 1));
    }
    i = end;
  }
  return out;
}

// The raw content of the first <tag>...</tag> at or after *from (advanced past it).
std::optional<std::string_view> XmlRaw(std::string_view xml, std::string_view tag,
                                       size_t* from = nullptr) {
  std::string open = fmt::format("<{}>", tag);
  std::string close = fmt::format("</{}>", tag);
  size_t start = xml.find(open, from ? *from : 0);
  if (start == std::string_view::npos) return std::nullopt;
  start += open.size();
  size_t end = xml.find(close, start);
  if (end == std::string_view::npos) return std::nullopt;
  if (from) *from = end + close.size();
  return xml.substr(start, end - start);
}

// The decoded text of the first <tag>...</tag>, or "" when absent.
std::string XmlText(std::string_view xml, std::string_view tag) {
  auto raw = XmlRaw(xml, tag);
  return raw ? XmlUnescape(*raw) : std::string();
}

// ---------------------------------------------------------------------------------------------
// URL parsing.

// S3's bucket naming rules: 3-63 characters of a-z 0-9 . -, starting and ending with a letter or
// digit.
bool ValidBucketName(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(b.front()) || !alnum(b.back())) return false;
  return std::all_of(b.begin(), b.end(), [&](char c) { return alnum(c) || c == '.' || c == '-'; });
}

Result<bool> ParseBool(std::string_view name, std::string_view value) {
  if (value == "true" || value == "1" || value.empty()) return true;
  if (value == "false" || value == "0") return false;
  return MakeError(ErrorCode::kInvalidArgument,
                   fmt::format("the s3 storage URL parameter {} must be true or false", name));
}

struct Endpoint {
  std::string scheme;     // "http" or "https"
  std::string authority;  // "host[:port]", as written
  bool ip_literal = false;
};

Result<Endpoint> ParseEndpoint(std::string_view text) {
  auto bad = [](std::string_view why) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("the s3 storage URL's endpoint {}; write it as "
                                 "endpoint=http://host:port",
                                 why));
  };
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return bad("is not a URL");
  boost::urls::url_view u = *parsed;
  std::string scheme(u.scheme());
  if (scheme != "http" && scheme != "https") return bad("must start with http:// or https://");
  if (u.has_userinfo()) return bad("must not carry credentials (use AWS_ACCESS_KEY_ID)");
  if (!u.encoded_path().empty() && u.encoded_path() != "/") return bad("must not have a path");
  if (u.has_query() || u.has_fragment()) return bad("must not have a query or fragment");
  if (u.encoded_host().empty()) return bad("has no host");
  Endpoint endpoint;
  endpoint.scheme = scheme;
  endpoint.authority = std::string(u.encoded_host_and_port());
  endpoint.ip_literal = u.host_type() == boost::urls::host_type::ipv4 ||
                        u.host_type() == boost::urls::host_type::ipv6;
  return endpoint;
}

// ---------------------------------------------------------------------------------------------
// libcurl plumbing.

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

// A curl easy handle and the socket of the connection it last opened. Connections live in the
// handle's own cache and are reused by its next requests.
struct PooledHandle {
  CURL* curl = nullptr;
  curl_socket_t socket = CURL_SOCKET_BAD;
};

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
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  headers->emplace_back(std::move(name), std::string(value));
  return n;
}

int64_t HttpDateToUnix(const std::string& date) {
  if (date.empty()) return -1;
  return static_cast<int64_t>(curl_getdate(date.c_str(), nullptr));
}

// S3's XML timestamps, "2026-11-21T09:00:00.000Z" (UTC); -1 for anything else.
int64_t IsoTimeToUnix(const std::string& text) {
  std::tm tm{};
  if (text.empty() || text.back() != 'Z' ||
      std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    return -1;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(::timegm(&tm));
}

std::string RandomVersion() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

std::string Unquote(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

class S3ObjectStore::Client {
 public:
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
  };

  struct Response {
    long status = 0;
    Pairs headers;  // lower-case names
    std::string body;
    int attempts = 0;

    std::string Header(std::string_view lower_name) const {
      for (const auto& [name, value] : headers) {
        if (name == lower_name) return value;
      }
      return {};
    }
  };

  struct Head {
    ObjectInfo info;
    std::string s3_etag;  // as S3 sent it, quotes included (for If-Match)
  };

  Client(S3Config config, Endpoint endpoint)
      : config_(std::move(config)), endpoint_(std::move(endpoint)) {}

  ~Client() {
    for (auto& pooled : idle_) curl_easy_cleanup(pooled->curl);
  }

  const S3Config& config() const { return config_; }
  std::string EndpointUrl() const { return endpoint_.scheme + "://" + endpoint_.authority; }

  std::string FullKey(std::string_view key) const {
    return config_.prefix.empty() ? std::string(key) : config_.prefix + "/" + std::string(key);
  }
  std::string StoreKey(std::string_view full_key) const {
    if (config_.prefix.empty()) return std::string(full_key);
    return std::string(full_key.substr(std::min(full_key.size(), config_.prefix.size() + 1)));
  }

  // Sends the request, retrying transient failures (see the header). Any HTTP status that is not
  // retried is returned as a Response; only exhausted retries and local failures are errors.
  Result<Response> Execute(const Request& request) {
    const std::string payload_hash = request.body.empty() ? std::string(sigv4::kEmptyPayloadHash)
                                                          : sigv4::Sha256Hex(request.body);
    std::string problem;
    for (int attempt = 1;; ++attempt) {
      Response response;
      response.attempts = attempt;
      char error_buffer[CURL_ERROR_SIZE] = {};
      bool overflow = false;
      CURLcode rc = Perform(request, payload_hash, response, error_buffer, overflow);
      if (overflow) {
        return MakeError(
            ErrorCode::kIo,
            fmt::format("object storage at {} sent a larger answer than expected", EndpointUrl()));
      }
      if (rc != CURLE_OK) {
        problem = error_buffer[0] ? error_buffer : curl_easy_strerror(rc);
        if (!IsTransientCurlError(rc)) return Unavailable(problem);
      } else if (IsRetryable(response, request.error_in_ok_body)) {
        std::string code = XmlText(response.body, "Code");
        problem = fmt::format("HTTP {}{}{}", response.status, code.empty() ? "" : " ", code);
      } else {
        return response;
      }
      if (attempt >= config_.max_attempts) return Unavailable(problem);
      auto delay = Backoff(attempt);
      spdlog::warn("S3 {} failed ({}); retrying in {} ms", request.method, problem, delay.count());
      std::this_thread::sleep_for(delay);
    }
  }

  // 5xx, 429 and S3's "RequestTimeout" (a 400 sent when a connection idled mid-request) may pass.
  static bool IsRetryable(const Response& response, bool error_in_ok_body) {
    if (response.status >= 500 || response.status == 429 || response.status == 408) return true;
    if (response.status == 400) return XmlText(response.body, "Code") == "RequestTimeout";
    return error_in_ok_body && response.status == 200 && XmlRaw(response.body, "Error");
  }

  // Maps an unsuccessful (non-retried) response to an error. key is the ObjectStore key, or ""
  // for requests about the bucket.
  Error ErrorFor(const Response& response, std::string_view key) const {
    const std::string code = XmlText(response.body, "Code");
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
      if (region.empty()) region = XmlText(response.body, "Region");
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
    std::string message = XmlText(response.body, "Message");
    return Error(
        ErrorCode::kIo,
        fmt::format("S3 refused a request about {} {}: HTTP {} {}{}{}",
                    key.empty() ? "bucket" : "object", key.empty() ? bucket : key, response.status,
                    code.empty() ? "(no error code)" : code, message.empty() ? "" : ": ", message));
  }

  // A HEAD response has no body, so S3's error code is missing. To tell a bad signature from an
  // unknown key id or a denied bucket, the request is repeated as a GET whose answer is small.
  Error HeadError(const Response& head, std::string_view key) {
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

  Result<Head> HeadObject(std::string_view key) {
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

  Result<std::string> PresignGet(std::string_view key, std::chrono::seconds expires) const {
    auto [host, path] = HostAndPath(FullKey(key));
    sigv4::Request request{.method = "GET", .path = path, .query = {}, .headers = {{"Host", host}}};
    std::string query =
        sigv4::PresignQuery(request, config_.credentials, NowScope(), expires.count());
    return endpoint_.scheme + "://" + host + sigv4::EncodePath(path) + "?" + query;
  }

 private:
  // Where a full key lives: path style "host/bucket/key", virtual host "bucket.host/key".
  std::pair<std::string, std::string> HostAndPath(std::string_view full_key) const {
    if (config_.virtual_host) {
      return {config_.bucket + "." + endpoint_.authority, "/" + std::string(full_key)};
    }
    std::string path = "/" + config_.bucket;
    if (!full_key.empty()) path += "/" + std::string(full_key);
    return {endpoint_.authority, path};
  }

  sigv4::Scope NowScope() const {
    return sigv4::Scope{config_.region, "s3",
                        sigv4::FormatAmzDate(std::chrono::system_clock::now())};
  }

  tl::unexpected<Error> Unavailable(std::string_view problem) const {
    return MakeError(ErrorCode::kUnavailable, fmt::format("object storage at {} is unavailable: {}",
                                                          EndpointUrl(), problem));
  }

  // Exponential backoff with "equal jitter": half the delay fixed, half random, so retries of
  // many clients spread out but never come back immediately.
  std::chrono::milliseconds Backoff(int attempt) const {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    int64_t base = config_.retry_base_delay.count() << std::min(attempt - 1, 10);
    base = std::min<int64_t>(base, 10'000);
    int64_t half = base / 2;
    return std::chrono::milliseconds(
        half + (half > 0 ? std::uniform_int_distribution<int64_t>(0, half)(rng) : 0));
  }

  std::unique_ptr<PooledHandle> Acquire() {
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

  void Release(std::unique_ptr<PooledHandle> pooled) {
    std::lock_guard lock(mutex_);
    if (idle_.size() < kIdleHandles) {
      idle_.push_back(std::move(pooled));
    } else {
      curl_easy_cleanup(pooled->curl);  // closes its connections (OnSocketClose) first
    }
  }

  CURLcode Perform(const Request& request, const std::string& payload_hash, Response& response,
                   char* error_buffer, bool& overflow) {
    auto [host, path] = HostAndPath(request.key);
    sigv4::Request signed_request{.method = request.method,
                                  .path = path,
                                  .query = request.query,
                                  .headers = request.headers,
                                  .payload_hash = payload_hash};
    signed_request.headers.emplace_back("Host", host);
    signed_request.headers.emplace_back("x-amz-content-sha256", payload_hash);
    std::string authorization = sigv4::SignHeaders(signed_request, config_.credentials, NowScope());

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
      std::strcpy(error_buffer, "cannot create a curl handle");
      return CURLE_FAILED_INIT;
    }
    CURL* handle = pooled->curl;
    curl_easy_reset(handle);
    response.body.reserve(request.expected_body);
    BodySink sink{&response.body, request.max_response_body};
    curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
    curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(config_.connect_timeout.count()));
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
    Release(std::move(pooled));
    curl_slist_free_all(headers);
    return rc;
  }

  const S3Config config_;
  const Endpoint endpoint_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<PooledHandle>> idle_;
};

namespace {

using Client = S3ObjectStore::Client;

// ---------------------------------------------------------------------------------------------

class S3ObjectWriter final : public ObjectWriter {
 public:
  S3ObjectWriter(Client& client, std::string key)
      : client_(client),
        key_(std::move(key)),
        full_key_(client_.FullKey(key_)),
        version_(RandomVersion()) {}
  ~S3ObjectWriter() override { Abort(); }

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
    Client::Request request;
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

  Client::Request VersionedRequest(std::string method) const {
    Client::Request request;
    request.method = std::move(method);
    request.key = full_key_;
    request.headers = {{std::string(kVersionHeader), version_}};
    return request;
  }

  ObjectInfo InfoFrom(const Client::Response& response) const {
    int64_t modified = HttpDateToUnix(response.Header("date"));
    return ObjectInfo{.key = key_,
                      .size = position_,
                      .etag = version_,
                      .modified_unix = modified >= 0 ? modified : std::time(nullptr)};
  }

  // A small object: one PUT.
  Result<ObjectInfo> PutWhole() {
    Client::Request request = VersionedRequest("PUT");
    request.body = buffer_;
    auto response = client_.Execute(request);
    if (!response) return tl::unexpected(response.error());
    if (response->status != 200) return tl::unexpected(client_.ErrorFor(*response, key_));
    return InfoFrom(*response);
  }

  // Sends buffer_ as the next part, starting the multipart upload first if needed.
  Status SendPart() {
    if (upload_id_.empty()) {
      // The version header goes on the upload; S3 gives it to the completed object.
      Client::Request start = VersionedRequest("POST");
      start.query = {{"uploads", ""}};
      auto response = client_.Execute(start);
      if (!response) return tl::unexpected(response.error());
      if (response->status != 200) return tl::unexpected(client_.ErrorFor(*response, key_));
      upload_id_ = XmlText(response->body, "UploadId");
      if (upload_id_.empty()) {
        return MakeError(
            ErrorCode::kIo,
            fmt::format("S3 started an upload of object {} without an upload id", key_));
      }
    }
    Client::Request request;
    request.method = "PUT";
    request.key = full_key_;
    request.query = {{"partNumber", std::to_string(part_etags_.size() + 1)},
                     {"uploadId", upload_id_}};
    request.body = buffer_;
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
    std::string xml = "<CompleteMultipartUpload>";
    for (size_t i = 0; i < part_etags_.size(); ++i) {
      xml += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", i + 1,
                         EscapeMarkup(part_etags_[i]));
    }
    xml += "</CompleteMultipartUpload>";
    Client::Request request;
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
    if (response->attempts > 1 && XmlText(response->body, "Code") == "NoSuchUpload") {
      auto head = client_.HeadObject(key_);
      if (head && head->info.etag == version_) {
        upload_id_.clear();
        return InfoFrom(*response);
      }
    }
    return tl::unexpected(client_.ErrorFor(*response, key_));
  }

  Client& client_;
  std::string key_;
  std::string full_key_;
  std::string version_;
  std::vector<std::byte> buffer_;  // at most one part
  std::string upload_id_;          // set once the multipart upload has started
  std::vector<std::string> part_etags_;
  uint64_t position_ = 0;
  State state_ = State::kOpen;
};

// ---------------------------------------------------------------------------------------------

// Reads through a window of the object fetched with one ranged GET. With ReadAhead(), while
// reads go on front to back it fetches the next window in the background (one std::async task
// at a time), each twice the size of the last, up to the read-ahead: the converter then decodes
// one window while the next is on the wire instead of waiting for every GET in turn.
class S3ObjectReader final : public ObjectReader {
 public:
  S3ObjectReader(Client& client, Client::Head head)
      : client_(client),
        info_(std::move(head.info)),
        s3_etag_(std::move(head.s3_etag)),
        full_key_(client_.FullKey(info_.key)),
        next_size_(client_.config().read_window) {}

  // A fetch still running is waited for (the future's destructor): it uses this reader.
  ~S3ObjectReader() override = default;

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
    Client::Request request;
    request.key = full_key_;
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

  Client& client_;
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

// ---------------------------------------------------------------------------------------------

Result<S3Config> ParseS3Url(std::string_view url) {
  // Messages never repeat the URL: it may carry secrets by mistake.
  auto bad = [](std::string_view why) {
    return MakeError(ErrorCode::kInvalidArgument, fmt::format("the s3 storage URL {}", why));
  };
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return bad("is not a valid URL");
  boost::urls::url_view u = *parsed;
  if (u.scheme() != "s3") return bad("must start with s3://");
  if (u.has_userinfo()) {
    return bad("must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  if (u.has_port()) return bad("must name a bucket, not host:port; put the address in endpoint=");
  if (u.has_fragment()) return bad("must not have a fragment");

  S3Config config;
  config.bucket = std::string(u.encoded_host());
  if (!ValidBucketName(config.bucket)) {
    return bad("must name a bucket of 3 to 63 characters from a-z 0-9 . - (s3://bucket?...)");
  }
  std::string path = u.path();
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (!path.empty()) {
    if (auto valid = ValidateObjectKey(path); !valid) {
      return bad("has a prefix that is not a valid object key: " + valid.error().message);
    }
    config.prefix = path;
  }

  bool has_endpoint = false;
  for (auto param : u.params()) {
    std::string_view name = param.key;
    std::string_view value = param.value;
    if (name == "endpoint") {
      auto endpoint = ParseEndpoint(value);
      if (!endpoint) return tl::unexpected(endpoint.error());
      config.endpoint = endpoint->scheme + "://" + endpoint->authority;
      has_endpoint = true;
    } else if (name == "region") {
      if (value.empty() || value.size() > 64 ||
          !std::all_of(value.begin(), value.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
          })) {
        return bad("has an invalid region (expected something like us-east-1)");
      }
      config.region = std::string(value);
    } else if (name == "virtual_host") {
      auto flag = ParseBool(name, value);
      if (!flag) return tl::unexpected(flag.error());
      config.virtual_host = *flag;
    } else if (name == "presign") {
      auto flag = ParseBool(name, value);
      if (!flag) return tl::unexpected(flag.error());
      config.presign_downloads = *flag;
    } else {
      std::string shown(name.substr(0, 32));
      return bad(
          fmt::format("has an unknown parameter '{}' (known: endpoint, region, "
                      "virtual_host, presign)",
                      shown));
    }
  }
  if (!has_endpoint) config.endpoint = fmt::format("https://s3.{}.amazonaws.com", config.region);
  return config;
}

Result<sigv4::Credentials> S3CredentialsFromEnvironment() {
  auto get = [](const char* name) {
    const char* value = std::getenv(name);
    return value ? std::string(value) : std::string();
  };
  sigv4::Credentials credentials{get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"),
                                 get("AWS_SESSION_TOKEN")};
  if (credentials.access_key_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "s3 storage needs credentials: set AWS_ACCESS_KEY_ID");
  }
  if (credentials.secret_access_key.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "s3 storage needs credentials: set AWS_SECRET_ACCESS_KEY");
  }
  return credentials;
}

Result<std::unique_ptr<S3ObjectStore>> S3ObjectStore::FromConfig(S3Config config) {
  auto bad = [](std::string why) { return MakeError(ErrorCode::kInvalidArgument, std::move(why)); };
  if (!ValidBucketName(config.bucket))
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
  if (config.endpoint.empty()) {
    config.endpoint = fmt::format("https://s3.{}.amazonaws.com", config.region);
  }
  auto endpoint = ParseEndpoint(config.endpoint);
  if (!endpoint) return tl::unexpected(endpoint.error());
  if (config.virtual_host && endpoint->ip_literal) {
    return bad("virtual_host needs an endpoint with a host name, not an IP address");
  }
  GlobalCurlInit();
  auto client = std::make_unique<Client>(std::move(config), std::move(*endpoint));
  return std::unique_ptr<S3ObjectStore>(new S3ObjectStore(std::move(client)));
}

S3ObjectStore::S3ObjectStore(std::unique_ptr<Client> client) : client_(std::move(client)) {}
S3ObjectStore::~S3ObjectStore() = default;

const S3Config& S3ObjectStore::config() const { return client_->config(); }

Result<std::unique_ptr<ObjectWriter>> S3ObjectStore::Create(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  return std::make_unique<S3ObjectWriter>(*client_, std::string(key));
}

Result<std::unique_ptr<ObjectReader>> S3ObjectStore::Open(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  auto head = client_->HeadObject(key);
  if (!head) return tl::unexpected(head.error());
  return std::make_unique<S3ObjectReader>(*client_, std::move(*head));
}

Result<ObjectInfo> S3ObjectStore::Stat(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  auto head = client_->HeadObject(key);
  if (!head) return tl::unexpected(head.error());
  return std::move(head->info);
}

Status S3ObjectStore::Remove(std::string_view key) {
  if (auto valid = ValidateObjectKey(key); !valid) return tl::unexpected(valid.error());
  Client::Request request;
  request.method = "DELETE";
  request.key = client_->FullKey(key);
  auto response = client_->Execute(request);
  if (!response) return tl::unexpected(response.error());
  // S3 answers 204 for a missing key too; some servers say 404.
  if (response->status == 204 || response->status == 200) return {};
  if (response->status == 404 && XmlText(response->body, "Code") != "NoSuchBucket") return {};
  return tl::unexpected(client_->ErrorFor(*response, key));
}

Status S3ObjectStore::Ping() {
  Client::Request request;
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

Result<std::string> S3ObjectStore::PresignGet(std::string_view key,
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
    Client::Request request;
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
    Client::Request request;
    request.query = {{"uploads", ""}};
    if (!prefix.empty()) request.query.emplace_back("prefix", prefix);
    if (!key_marker.empty()) request.query.emplace_back("key-marker", key_marker);
    if (!upload_id_marker.empty()) request.query.emplace_back("upload-id-marker", upload_id_marker);
    auto response = client_->Execute(request);
    if (!response) return tl::unexpected(response.error());
    if (response->status != 200) return tl::unexpected(client_->ErrorFor(*response, ""));
    std::string_view xml = response->body;
    size_t from = 0;
    while (auto upload = XmlRaw(xml, "Upload", &from)) {
      uploads.push_back(S3MultipartUpload{client_->StoreKey(XmlText(*upload, "Key")),
                                          XmlText(*upload, "UploadId"),
                                          IsoTimeToUnix(XmlText(*upload, "Initiated"))});
    }
    if (XmlText(xml, "IsTruncated") != "true") break;
    key_marker = XmlText(xml, "NextKeyMarker");
    upload_id_marker = XmlText(xml, "NextUploadIdMarker");
    if (key_marker.empty() && upload_id_marker.empty()) break;
  }
  return uploads;
}

Status S3ObjectStore::CreateBucketIfMissing() {
  const S3Config& c = client_->config();
  std::string xml;
  // us-east-1 is the default location and must not be named.
  if (c.region != "us-east-1") {
    xml = fmt::format(
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
        EscapeMarkup(c.region));
  }
  Client::Request request;
  request.method = "PUT";
  request.body = std::as_bytes(std::span<const char>(xml.data(), xml.size()));
  request.content_type = "application/xml";
  auto response = client_->Execute(request);
  if (!response) return tl::unexpected(response.error());
  if (response->status == 200) return {};
  std::string code = XmlText(response->body, "Code");
  if (code == "BucketAlreadyOwnedByYou") return {};
  if (code == "BucketAlreadyExists") {
    return MakeError(ErrorCode::kAlreadyExists,
                     fmt::format("bucket {} belongs to another account", c.bucket));
  }
  return tl::unexpected(client_->ErrorFor(*response, ""));
}

Result<std::string> S3ObjectStore::RedirectUrl(std::string_view key, std::chrono::seconds expires) {
  if (!config().presign_downloads) return std::string();
  return PresignGet(key, expires);
}

}  // namespace vmp3
