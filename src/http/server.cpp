#include "http/server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "http/sse.hpp"
#include "metrics/registry.hpp"

namespace vmp3::http {

using metrics::Counter;
using metrics::CounterFamily;
using metrics::Gauge;
using metrics::HistogramFamily;
using metrics::Registry;
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kStreamChunk = 256 * 1024;
constexpr size_t kBodyReadSize = 256 * 1024;

// Fills RequestHead from Beast's parsed header. Returns false for a target we cannot parse.
bool BuildHead(const bhttp::request_parser<bhttp::buffer_body>& parser, const tcp::endpoint& peer,
               RequestHead& head) {
  const auto& req = parser.get();
  head.method = std::string(req.method_string());
  head.target = std::string(req.target());
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) return false;
  head.path = std::string(url->path());
  for (auto param : url->params()) head.query[std::string(param.key)] = std::string(param.value);
  for (const auto& field : req)
    head.headers.emplace(std::string(field.name_string()), std::string(field.value()));
  if (parser.content_length()) head.content_length = *parser.content_length();
  head.has_body = parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
  head.remote_address = peer.address().to_string();
  return true;
}

class SessionState;

}  // namespace

struct Server::Impl {
  ServerOptions options;
  const Router& router;
  asio::io_context ioc;
  asio::thread_pool blocking;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::atomic<bool> draining{false};
  std::atomic<int> in_flight{0};
  std::atomic<bool> stopped{false};
  uint16_t bound_port = 0;

  CounterFamily* requests = nullptr;
  HistogramFamily* latency = nullptr;
  Counter* bytes_in = nullptr;
  Counter* bytes_out = nullptr;
  Gauge* open_connections = nullptr;

  Impl(ServerOptions o, const Router& r, Registry* metrics)
      : options(std::move(o)),
        router(r),
        ioc(std::max(1, options.io_threads)),
        blocking(static_cast<size_t>(std::max(1, options.blocking_threads))) {
    if (metrics) {
      requests = &metrics->AddCounter("vmp3_http_requests_total",
                                      "HTTP requests by route, method and status.");
      latency = &metrics->AddHistogram(
          "vmp3_http_request_duration_seconds", "HTTP request latency by route.",
          {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
      bytes_in =
          &metrics->AddCounter("vmp3_http_request_body_bytes_total", "Request body bytes received.")
               .WithLabels();
      bytes_out =
          &metrics->AddCounter("vmp3_http_response_body_bytes_total", "Response body bytes sent.")
               .WithLabels();
      open_connections =
          &metrics->AddGauge("vmp3_http_open_connections", "Open client connections.").WithLabels();
    }
  }

  asio::awaitable<void> Accept();
  asio::awaitable<void> Session(tcp::socket socket);
};

namespace {

// The Exchange of one request on a Beast stream.
class BeastExchange final : public Exchange {
 public:
  BeastExchange(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                bhttp::request_parser<bhttp::buffer_body>& parser, RequestHead head,
                asio::thread_pool& blocking, std::chrono::seconds io_timeout, uint64_t limit,
                Counter* bytes_in)
      : stream_(stream),
        buffer_(buffer),
        parser_(parser),
        head_(std::move(head)),
        blocking_(blocking),
        io_timeout_(io_timeout),
        limit_(limit),
        bytes_in_(bytes_in) {}

  const RequestHead& request() const override { return head_; }
  const std::map<std::string, std::string>& params() const override { return params_; }
  void set_params(std::map<std::string, std::string> p) { params_ = std::move(p); }
  bool body_complete() const { return !head_.has_body || parser_.is_done(); }

  Awaitable<Result<size_t>> ReadBody(std::span<std::byte> out) override {
    if (body_complete() || out.empty()) co_return size_t{0};
    if (!continue_sent_ && bhttp::token_list(head_.Header("Expect")).exists("100-continue")) {
      continue_sent_ = true;
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      stream_.expires_after(io_timeout_);
      auto [ec, n] = co_await bhttp::async_write(stream_, cont, kTuple);
      if (ec) co_return MakeError(ErrorCode::kUnavailable, "client went away");
    }
    // Beast reads the socket into `buffer_` and only as much as its free capacity (at least 512
    // bytes): give it room for large reads, or an upload crawls in tiny recv()s.
    if (buffer_.capacity() - buffer_.size() < kBodyReadSize)
      buffer_.reserve(buffer_.size() + kBodyReadSize);
    // Fill `out` (fewer bytes only at the end of the body), so callers handle few large pieces.
    size_t filled = 0;
    while (filled < out.size() && !parser_.is_done()) {
      parser_.get().body().data = out.data() + filled;
      parser_.get().body().size = out.size() - filled;
      stream_.expires_after(io_timeout_);
      auto [ec, n] = co_await bhttp::async_read_some(stream_, buffer_, parser_, kTuple);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        if (ec == beast::error::timeout)
          co_return MakeError(ErrorCode::kUnavailable, "the upload stalled and timed out");
        if (ec == bhttp::error::partial_message || ec == asio::error::eof ||
            ec == asio::error::connection_reset)
          co_return MakeError(ErrorCode::kUnavailable, "client closed the connection mid-upload");
        co_return MakeError(ErrorCode::kInvalidArgument,
                            fmt::format("malformed request body ({})", ec.message()));
      }
      size_t got = out.size() - filled - parser_.get().body().size;
      filled += got;
      total_ += got;
      if (bytes_in_) bytes_in_->Inc(static_cast<double>(got));
      if (total_ > limit_) {
        co_return MakeError(
            ErrorCode::kTooLarge,
            fmt::format("request body is larger than the limit of {} bytes", limit_));
      }
    }
    co_return filled;
  }

 protected:
  Awaitable<void> RunBlocking(std::function<void()> work) override {
    auto home = co_await asio::this_coro::executor;
    co_await asio::post(blocking_.get_executor(), asio::use_awaitable);
    work();
    co_await asio::post(home, asio::use_awaitable);
  }

 private:
  beast::tcp_stream& stream_;
  beast::flat_buffer& buffer_;
  bhttp::request_parser<bhttp::buffer_body>& parser_;
  RequestHead head_;
  std::map<std::string, std::string> params_;
  asio::thread_pool& blocking_;
  std::chrono::seconds io_timeout_;
  uint64_t limit_;
  uint64_t total_ = 0;
  bool continue_sent_ = false;
  Counter* bytes_in_;
};

// Chunked Server-Sent Events on an open response.
class BeastEventStream final : public EventStream {
 public:
  BeastEventStream(beast::tcp_stream& stream, bhttp::response<bhttp::buffer_body>& res,
                   bhttp::response_serializer<bhttp::buffer_body>& sr, std::chrono::seconds timeout,
                   const std::atomic<bool>& draining)
      : stream_(stream), res_(res), sr_(sr), timeout_(timeout), draining_(draining) {}

  Awaitable<Status> Send(std::string_view event, std::string_view data) override {
    co_return co_await Write(SseEvent(event, data));
  }
  Awaitable<Status> Comment(std::string_view text) override {
    co_return co_await Write(SseComment(text));
  }
  bool Draining() const override { return draining_.load(); }
  bool failed() const { return failed_; }

 private:
  Awaitable<Status> Write(std::string text) {
    if (failed_) co_return MakeError(ErrorCode::kUnavailable, "client went away");
    res_.body().data = text.data();
    res_.body().size = text.size();
    res_.body().more = true;
    stream_.expires_after(timeout_);
    auto [ec, n] = co_await bhttp::async_write(stream_, sr_, kTuple);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      failed_ = true;
      co_return MakeError(ErrorCode::kUnavailable, "client went away");
    }
    co_return Status{};
  }

  beast::tcp_stream& stream_;
  bhttp::response<bhttp::buffer_body>& res_;
  bhttp::response_serializer<bhttp::buffer_body>& sr_;
  std::chrono::seconds timeout_;
  const std::atomic<bool>& draining_;
  bool failed_ = false;
};

template <typename Message>
void ApplyHeaders(Message& msg, const Response& response) {
  for (const auto& [name, value] : response.headers) msg.insert(name, value);
}

}  // namespace

asio::awaitable<void> Server::Impl::Accept() {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(ioc, Session(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> Server::Impl::Session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  tcp::endpoint peer = stream.socket().remote_endpoint();
  if (open_connections) open_connections->Inc();
  struct Closer {
    Gauge* g;
    ~Closer() {
      if (g) g->Dec();
    }
  } closer{open_connections};

  bool unread_body = false;  // the last request's body was refused (401, 413, ...) unread
  for (;;) {
    bhttp::request_parser<bhttp::buffer_body> parser;
    parser.header_limit(static_cast<uint32_t>(options.max_header_bytes));
    parser.body_limit(boost::none);
    stream.expires_after(options.idle_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    if (ec) {
      if (ec == bhttp::error::header_limit) {
        bhttp::response<bhttp::string_body> res{bhttp::status::request_header_fields_too_large, 11};
        res.set(bhttp::field::content_type, "application/problem+json");
        res.body() =
            R"({"type":"about:blank","title":"Request Header Fields Too Large","status":431,"detail":"request headers are larger than the server accepts"})";
        res.keep_alive(false);
        res.prepare_payload();
        co_await bhttp::async_write(stream, res, kTuple);
      } else if (ec != asio::error::eof && ec != beast::error::timeout &&
                 ec != asio::error::operation_aborted && ec != asio::error::connection_reset) {
        bhttp::response<bhttp::string_body> res{bhttp::status::bad_request, 11};
        res.set(bhttp::field::content_type, "application/problem+json");
        res.body() =
            R"({"type":"about:blank","title":"Bad Request","status":400,"detail":"malformed HTTP request"})";
        res.keep_alive(false);
        res.prepare_payload();
        co_await bhttp::async_write(stream, res, kTuple);
      }
      break;
    }
    auto started = std::chrono::steady_clock::now();
    in_flight.fetch_add(1);
    struct InFlight {
      std::atomic<int>& n;
      ~InFlight() { n.fetch_sub(1); }
    } in_flight_guard{in_flight};

    RequestHead head;
    Response response;
    std::string route_label = "unmatched";
    const Route* route = nullptr;
    RouteMatch match;
    bool head_ok = BuildHead(parser, peer, head);
    if (!head_ok) {
      response = Response::Problem(Error(ErrorCode::kInvalidArgument, "malformed request target"));
    } else {
      match = router.Match(head.method, head.path);
      route = match.route;
      if (!route && !match.allowed_methods.empty()) {
        response = Response::Problem(
            Error(ErrorCode::kInvalidArgument,
                  fmt::format("{} is not allowed on {}", head.method, head.path)));
        response.status = 405;
        response.body = fmt::format(
            R"({{"type":"about:blank","title":"Method Not Allowed","status":405,"detail":"{} is not allowed here; use {}"}})",
            head.method, fmt::join(match.allowed_methods, ", "));
        response.Header("Allow", fmt::format("{}", fmt::join(match.allowed_methods, ", ")));
      } else if (!route) {
        response = Response::Problem(Error(ErrorCode::kNotFound, "no such resource"), head.path);
      }
    }
    bool is_head = head.method == "HEAD";
    BeastExchange exchange(stream, buffer, parser, head, blocking, options.io_timeout,
                           route ? route->max_body : 0, bytes_in);
    if (route) {
      route_label = route->pattern;
      exchange.set_params(std::move(match.params));
      if (head.content_length && *head.content_length > route->max_body) {
        response = Response::Problem(Error(
            ErrorCode::kTooLarge, fmt::format("request body of {} bytes is larger than the limit "
                                              "of {} bytes",
                                              *head.content_length, route->max_body)));
      } else {
        try {
          response = co_await route->handler(exchange);
        } catch (const std::exception& e) {
          spdlog::error("handler {} {} threw: {}", head.method, head.path, e.what());
          response = Response::Problem(Error(ErrorCode::kInternal, "internal error"));
        }
      }
    }

    // A body the handler did not read leaves the connection unusable for another request.
    bool keep_alive = parser.get().keep_alive() && exchange.body_complete() && !draining.load();
    unread_body = !exchange.body_complete();
    uint64_t sent = 0;
    bool write_ok = true;
    stream.expires_after(options.io_timeout);
    if (response.events) {
      bhttp::response<bhttp::buffer_body> res{static_cast<bhttp::status>(response.status), 11};
      ApplyHeaders(res, response);
      res.set(bhttp::field::content_type, "text/event-stream");
      res.set(bhttp::field::cache_control, "no-cache");
      res.keep_alive(keep_alive);
      res.chunked(true);
      res.body().data = nullptr;
      res.body().more = true;
      bhttp::response_serializer<bhttp::buffer_body> sr{res};
      auto [wec, wn] = co_await bhttp::async_write_header(stream, sr, kTuple);
      if (!wec) {
        BeastEventStream events(stream, res, sr, options.io_timeout, draining);
        try {
          co_await response.events(events);
        } catch (const std::exception& e) {
          spdlog::error("event stream {} threw: {}", head.path, e.what());
        }
        if (!events.failed()) {
          res.body().data = nullptr;
          res.body().more = false;
          stream.expires_after(options.io_timeout);
          auto [fec, fn] = co_await bhttp::async_write(stream, sr, kTuple);
          write_ok = !fec;
        } else {
          write_ok = false;
        }
      } else {
        write_ok = false;
      }
    } else if (response.stream) {
      bhttp::response<bhttp::buffer_body> res{static_cast<bhttp::status>(response.status), 11};
      ApplyHeaders(res, response);
      res.keep_alive(keep_alive);
      res.content_length(response.length);
      res.body().data = nullptr;
      res.body().more = !is_head && !response.head_only && response.length > 0;
      bhttp::response_serializer<bhttp::buffer_body> sr{res};
      auto [wec, wn] = co_await bhttp::async_write_header(stream, sr, kTuple);
      write_ok = !wec;
      if (write_ok && res.body().more) {
        std::vector<std::byte> chunk(std::min<uint64_t>(kStreamChunk, response.length));
        ByteSource& source = *response.stream;
        Status seeked = response.offset == 0 ? Status{} : source.Seek(response.offset);
        uint64_t left = response.length;
        write_ok = seeked.has_value();
        while (write_ok && left > 0) {
          size_t want = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
          Result<size_t> got = co_await exchange.Blocking<Result<size_t>>(
              [&] { return source.Read(std::span(chunk.data(), want)); });
          if (!got || *got == 0) {
            spdlog::warn("stream for {} ended early: {}", head.path,
                         got ? "short object" : got.error().message);
            write_ok = false;
            break;
          }
          left -= *got;
          res.body().data = chunk.data();
          res.body().size = *got;
          res.body().more = left > 0;
          stream.expires_after(options.io_timeout);
          auto [bec, bn] = co_await bhttp::async_write(stream, sr, kTuple);
          if (bec == bhttp::error::need_buffer) bec = {};
          if (bec) write_ok = false;
          sent += *got;
        }
        if (write_ok) {
          res.body().data = nullptr;
          res.body().more = false;
          auto [fec, fn] = co_await bhttp::async_write(stream, sr, kTuple);
          write_ok = !fec;
        }
      }
    } else {
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(response.status), 11};
      ApplyHeaders(res, response);
      res.keep_alive(keep_alive);
      sent = response.body.size();
      if (is_head || response.head_only) {
        // Content-Length as a GET would have it, and no body.
        if (res.find(bhttp::field::content_length) == res.end())
          res.content_length(response.body.size());
        bhttp::response_serializer<bhttp::string_body> sr{res};
        sr.split(true);
        auto [wec, wn] = co_await bhttp::async_write_header(stream, sr, kTuple);
        write_ok = !wec;
        sent = 0;
      } else {
        res.body() = std::move(response.body);
        if (response.status != 204 && response.status != 304) res.prepare_payload();
        auto [wec, wn] = co_await bhttp::async_write(stream, res, kTuple);
        write_ok = !wec;
      }
    }
    if (bytes_out) bytes_out->Inc(static_cast<double>(sent));

    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (requests) {
      requests
          ->WithLabels({"route", route_label}, {"method", head.method},
                       {"status", std::to_string(response.status)})
          .Inc();
    }
    if (latency) latency->WithLabels({"route", route_label}).Observe(seconds);
    if (!write_ok || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (unread_body) {
    // Lingering close: a client still sending a body we refused would get a reset, and with it
    // lose our answer (say 413), if we closed with its bytes unread. Read and drop them for a
    // bounded time and amount first, so the answer reaches it.
    constexpr size_t kMaxDrain = 16 * 1024 * 1024;
    std::vector<char> sink(64 * 1024);
    size_t drained = 0;
    stream.expires_after(std::chrono::seconds(2));
    while (drained < kMaxDrain) {
      auto [rec, rn] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
      if (rec) break;
      drained += rn;
    }
  }
}

Server::Server(ServerOptions options, const Router& router, Registry* metrics)
    : impl_(std::make_unique<Impl>(std::move(options), router, metrics)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("'{}' is not an IP address", impl_->options.address));
  }
  tcp::endpoint endpoint(address, impl_->options.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return MakeError(ErrorCode::kUnavailable,
                     fmt::format("cannot listen on {}:{}: {}", impl_->options.address,
                                 impl_->options.port, ec.message()));
  }
  impl_->bound_port = acceptor.local_endpoint().port();
  asio::co_spawn(impl_->ioc, impl_->Accept(), asio::detached);
  for (int i = 0; i < std::max(1, impl_->options.io_threads); ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  return {};
}

uint16_t Server::port() const { return impl_->bound_port; }

void Server::BeginDrain() {
  if (impl_->draining.exchange(true)) return;
  asio::post(impl_->ioc, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
}

void Server::Stop() {
  if (impl_->stopped.exchange(true)) return;
  BeginDrain();
  auto deadline = std::chrono::steady_clock::now() + impl_->options.drain_timeout;
  while (impl_->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->blocking.stop();
  impl_->blocking.join();
}

}  // namespace vmp3::http
