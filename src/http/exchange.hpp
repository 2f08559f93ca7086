// What a route handler sees of one HTTP request, and what it answers. Deliberately free of
// Boost.Beast: only the server (http/server.cpp) includes Beast, so handlers compile fast.
//
// Threading: an Exchange belongs to one connection coroutine; use it only from the handler.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/io.hpp"

namespace vmp3::http {

template <typename T>
using Awaitable = boost::asio::awaitable<T>;

// Header names compare case-insensitively; values are kept as sent.
struct CaseInsensitiveLess {
  bool operator()(std::string_view a, std::string_view b) const;
};
using HeaderMap = std::multimap<std::string, std::string, CaseInsensitiveLess>;

struct RequestHead {
  std::string method;                        // "GET", "POST", ...
  std::string target;                        // as sent: path and query
  std::string path;                          // percent-decoded path
  std::map<std::string, std::string> query;  // decoded query parameters (last one wins)
  HeaderMap headers;
  std::optional<uint64_t> content_length;  // absent for chunked bodies
  bool has_body = false;
  // The client's address: the peer's, or, when the peer is a trusted proxy
  // (ServerOptions::trusted_proxies), the one it reports in X-Forwarded-For.
  std::string remote_address;

  // The first value of a header, or empty.
  std::string_view Header(std::string_view name) const;
  std::optional<std::string_view> QueryParam(std::string_view name) const;
};

// Moves blocking work (a backend call, password hashing) off the I/O threads. Both a request
// (Exchange) and an event stream (EventStream) can; the server gives the work a deadline.
class BlockingRunner {
 public:
  virtual ~BlockingRunner() = default;

  // Runs `work` on the server's bounded blocking pool and resumes here with its result. `work`
  // runs inside the request's deadline (common/deadline.hpp): backend clients bound their waits
  // by it. T is a Result or Status: when the pool refuses the work (it is full, or the deadline
  // passed before a thread was free), `work` never runs and the result is that kUnavailable
  // error, which the handler answers with 503. `work` may capture the caller's locals by
  // reference: the caller is suspended until `work` has returned.
  template <typename T>
  Awaitable<T> Blocking(std::function<T()> work);

 protected:
  // Runs `work` on the pool; the Status says whether it ran.
  virtual Awaitable<Status> RunBlocking(std::function<void()> work) = 0;
};

template <typename T>
Awaitable<T> BlockingRunner::Blocking(std::function<T()> work) {
  static_assert(std::is_constructible_v<T, tl::unexpected<Error>>,
                "Blocking work returns a Result or Status, so a refusal can be reported");
  std::optional<T> result;
  Status ran = co_await RunBlocking([&] { result.emplace(work()); });
  if (!ran) co_return T(tl::unexpected(ran.error()));
  co_return std::move(*result);
}

// Writes Server-Sent Events. Each call flushes one event to the client.
class EventStream : public BlockingRunner {
 public:
  // Fails (kUnavailable) once the client is gone; the producer should then return. Framed by
  // http/sse.hpp: line breaks in `data` reach the client as "\n".
  virtual Awaitable<Status> Send(std::string_view event, std::string_view data) = 0;
  virtual Awaitable<Status> Comment(std::string_view text) = 0;  // keep-alive ping
  // True when the server drains for shutdown: finish promptly.
  virtual bool Draining() const = 0;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // used when neither stream nor events is set

  // A streamed body: `length` bytes from `stream` starting at `offset`.
  std::unique_ptr<ByteSource> stream;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool head_only = false;  // HEAD: headers (with Content-Length) but no body

  // Server-Sent Events: the server sends headers, then runs the producer until it returns.
  std::function<Awaitable<void>(EventStream&)> events;

  Response& Header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  static Response Json(int status, std::string body);
  static Response Text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  // application/problem+json for an error, with the status mapped from its code (http/problem).
  static Response Problem(const Error& error, std::string_view instance = "");
  static Response NoContent();
};

// One request being served.
class Exchange : public BlockingRunner {
 public:
  virtual const RequestHead& request() const = 0;
  // Path parameters matched by the router, e.g. {"id": "..."}.
  virtual const std::map<std::string, std::string>& params() const = 0;
  std::string_view Param(std::string_view name) const;

  // Reads the next piece of the request body into `out`; 0 at the end. Sends "100 Continue"
  // first when the client asked for it. Fails with kTooLarge past `limit` bytes in total,
  // kInvalidArgument on a malformed body, kUnavailable when the client goes away or stalls.
  virtual Awaitable<Result<size_t>> ReadBody(std::span<std::byte> out) = 0;
  // Reads the whole body as a string (small bodies only: JSON forms). kTooLarge past `limit`.
  Awaitable<Result<std::string>> ReadSmallBody(size_t limit = 64 * 1024);
};

using Handler = std::function<Awaitable<Response>(Exchange&)>;

}  // namespace vmp3::http
