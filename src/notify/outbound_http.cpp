#include "notify/outbound_http.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <charconv>
#include <memory>
#include <mutex>

#include "common/deadline.hpp"
#include "common/text.hpp"

namespace vmp3::notify {
namespace {

void OutboundCurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct OutboundCurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct OutboundSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

bool IsOutboundTokenChar(char c) {
  return IsAsciiAlnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

struct OutboundSink {
  OutboundResponse* response;
  size_t limit;
};

size_t OnOutboundBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<OutboundSink*>(user);
  const size_t n = size * count;
  std::string& body = sink->response->body;
  const size_t room = sink->limit - std::min(sink->limit, body.size());
  body.append(data, std::min(n, room));
  if (n > room) {
    sink->response->body_truncated = true;
    return 0;  // stops the transfer (CURLE_WRITE_ERROR): the rest is not worth reading
  }
  return n;
}

size_t OnOutboundHeader(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<OutboundResponse*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {  // a new header block (after a 1xx answer)
    response->retry_after.reset();
    response->location.clear();
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string_view name = line.substr(0, colon);
  std::string_view value = TrimWhitespace(line.substr(colon + 1));
  if (EqualsIgnoringAsciiCase(name, "retry-after")) {
    response->retry_after = ParseRetryAfter(value, std::chrono::system_clock::now());
  } else if (EqualsIgnoringAsciiCase(name, "location")) {
    response->location = std::string(value);
  }
  return n;
}

// The host of a URL for messages (the rest may hold a token).
std::string OutboundHost(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return "the endpoint";
  return std::string(parsed->encoded_host());
}

bool IsOutboundTlsError(CURLcode rc) {
  switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
      return true;
    default:
      return false;
  }
}

Error OutboundFailure(CURLcode rc, std::string_view host, std::string_view detail,
                      std::chrono::milliseconds budget) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return Error(ErrorCode::kDeadlineExceeded,
                   fmt::format("no complete answer from {} within {} ms", host, budget.count()));
    case CURLE_COULDNT_RESOLVE_HOST:
      return Error(ErrorCode::kUnavailable,
                   fmt::format("DNS lookup of {} failed: {}", host, detail));
    case CURLE_COULDNT_CONNECT:
      return Error(ErrorCode::kUnavailable,
                   fmt::format("could not connect to {}: {}", host, detail));
    case CURLE_GOT_NOTHING:
      return Error(ErrorCode::kUnavailable,
                   fmt::format("{} closed the connection without answering", host));
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
      return Error(ErrorCode::kUnavailable,
                   fmt::format("the connection to {} broke: {}", host, detail));
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return Error(ErrorCode::kUnavailable,
                   fmt::format("{} did not answer in valid HTTP: {}", host, detail));
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return Error(ErrorCode::kUrlRefused, fmt::format("the URL cannot be called: {}", detail));
    default:
      if (IsOutboundTlsError(rc)) {
        return Error(ErrorCode::kUnavailable, fmt::format("TLS error with {}: {}", host, detail));
      }
      return Error(ErrorCode::kUnavailable, fmt::format("POST to {} failed: {}", host, detail));
  }
}

}  // namespace

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value,
                                                    std::chrono::system_clock::time_point now) {
  value = TrimWhitespace(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), IsAsciiDigit)) {
    int64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc()) return std::nullopt;  // beyond int64: nobody means that
    return std::chrono::seconds(seconds);
  }
  const std::string date(value);
  const time_t at = curl_getdate(date.c_str(), nullptr);
  if (at == -1) return std::nullopt;
  const auto delta = std::chrono::system_clock::from_time_t(at) - now;
  return std::max(std::chrono::seconds(0), std::chrono::ceil<std::chrono::seconds>(delta));
}

Result<OutboundResponse> Post(const EgressPolicy& policy, const OutboundRequest& request) {
  if (Status allowed = policy.CheckUrl(request.url); !allowed) {
    return tl::unexpected(allowed.error());
  }
  const std::string host = OutboundHost(request.url);

  std::unique_ptr<curl_slist, OutboundSlistDeleter> headers;
  auto add_header = [&headers](const std::string& line) {
    curl_slist* list = curl_slist_append(headers.get(), line.c_str());
    if (list == nullptr) return false;
    headers.release();
    headers.reset(list);
    return true;
  };
  bool has_content_type = false;
  bool has_user_agent = false;
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), IsOutboundTokenChar) ||
        value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("the outbound header '{}' is malformed", name.substr(0, 64)));
    }
    has_content_type |= EqualsIgnoringAsciiCase(name, "content-type");
    has_user_agent |= EqualsIgnoringAsciiCase(name, "user-agent");
    // "Name;" is curl's way to send a header with an empty value ("Name:" would remove it).
    if (!add_header(value.empty() ? name + ";" : name + ": " + value)) {
      return MakeError(ErrorCode::kInternal, "out of memory building request headers");
    }
  }
  // No "Expect: 100-continue" round trip; no form Content-Type curl would otherwise invent.
  if (!add_header("Expect:") || (!has_content_type && !add_header("Content-Type:")) ||
      (!has_user_agent && !add_header("User-Agent: vmp3"))) {
    return MakeError(ErrorCode::kInternal, "out of memory building request headers");
  }

  const std::chrono::milliseconds budget = TimeBudget(request.timeout);
  if (budget <= std::chrono::milliseconds(0)) return tl::unexpected(DeadlinePassed(host));

  OutboundCurlGlobalInit();
  std::unique_ptr<CURL, OutboundCurlDeleter> curl(curl_easy_init());
  if (!curl) return MakeError(ErrorCode::kInternal, "cannot initialise libcurl");
  CURL* handle = curl.get();
  EgressGuard guard;
  policy.ApplyTo(handle, guard);

  OutboundResponse response;
  OutboundSink sink{&response, request.max_response_bytes};
  char error_buffer[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(handle, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(handle, CURLOPT_POSTFIELDS, request.body.data());
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(budget.count()));
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(budget.count()));
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, &OnOutboundHeader);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &response);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &OnOutboundBody);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &sink);

  const auto start = std::chrono::steady_clock::now();
  const CURLcode rc = curl_easy_perform(handle);
  response.latency = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  long status = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);

  if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && response.body_truncated)) return response;
  if (rc == CURLE_COULDNT_CONNECT && !guard.refusal.empty()) {
    return MakeError(ErrorCode::kUrlRefused,
                     fmt::format("refused to connect to {}: {}", host, guard.refusal));
  }
  return tl::unexpected(
      OutboundFailure(rc, host, error_buffer[0] ? error_buffer : curl_easy_strerror(rc), budget));
}

}  // namespace vmp3::notify
