#include "http/exchange.hpp"

#include "common/text.hpp"
#include "http/problem.hpp"

namespace vmp3::http {

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
  return LessIgnoringAsciiCase(a, b);
}

std::string_view RequestHead::Header(std::string_view name) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? std::string_view() : std::string_view(it->second);
}

std::optional<std::string_view> RequestHead::QueryParam(std::string_view name) const {
  auto it = query.find(std::string(name));
  if (it == query.end()) return std::nullopt;
  return std::string_view(it->second);
}

Response Response::Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.Header("Content-Type", "application/json");
  return r;
}

Response Response::Text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.Header("Content-Type", std::move(content_type));
  return r;
}

Response Response::Problem(const Error& error, std::string_view instance) {
  Response r;
  r.status = HttpStatusFor(error.code);
  r.body = ProblemJson(error, r.status, instance);
  r.Header("Content-Type", std::string(kProblemContentType));
  // RFC 9110 §11.6.1: a 401 names the scheme to use. Bearer tokens, except where a route
  // replaces it (the login routes ask for Basic).
  if (r.status == 401) r.Header("WWW-Authenticate", R"(Bearer realm="vmp3")");
  // RFC 9110 §10.2.3: when to come back, for 429 and 503 (and other transient errors).
  if (int64_t retry_after = RetryAfterFor(error); retry_after > 0)
    r.Header("Retry-After", std::to_string(retry_after));
  return r;
}

Response Response::NoContent() {
  Response r;
  r.status = 204;
  return r;
}

std::string_view Exchange::Param(std::string_view name) const {
  auto it = params().find(std::string(name));
  return it == params().end() ? std::string_view() : std::string_view(it->second);
}

Awaitable<Result<std::string>> Exchange::ReadSmallBody(size_t limit) {
  std::string body;
  std::byte buf[16 * 1024];
  for (;;) {
    auto n = co_await ReadBody(std::span(buf));
    if (!n) co_return tl::unexpected(n.error());
    if (*n == 0) break;
    if (body.size() + *n > limit)
      co_return MakeError(ErrorCode::kTooLarge, "request body is too large");
    body.append(reinterpret_cast<const char*>(buf), *n);
  }
  co_return body;
}

}  // namespace vmp3::http
