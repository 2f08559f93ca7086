#include "common/http_get.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

namespace vmp3 {
namespace {

size_t Append(char* data, size_t size, size_t count, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() + size * count > (1 << 20)) return 0;  // a JWKS is small; refuse floods
  body->append(data, size * count);
  return size * count;
}

}  // namespace

Result<std::string> HttpGet(const std::string& url, std::chrono::seconds timeout) {
  CURL* curl = curl_easy_init();
  if (!curl) return MakeError(ErrorCode::kInternal, "cannot initialise libcurl");
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK)
    return MakeError(ErrorCode::kUnavailable,
                     fmt::format("GET {} failed: {}", url, curl_easy_strerror(rc)));
  if (status < 200 || status >= 300)
    return MakeError(ErrorCode::kUnavailable, fmt::format("GET {} answered {}", url, status));
  return body;
}

}  // namespace vmp3
