#include "http/session.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <memory>
#include <vector>

#include "common/text.hpp"
#include "http/problem.hpp"
#include "http/sse.hpp"
#include "metrics/registry.hpp"

namespace vmp3::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kStreamChunk = 256 * 1024;
constexpr size_t kBodyReadSize = 256 * 1024;

// The client behind a trusted proxy: the rightmost X-Forwarded-For address that is not a
// trusted proxy itself (the leftmost ones are whatever the client claimed). The peer's own
// address when the header is absent or malformed.
std::string ClientAddress(const ServerState& state, const asio::ip::address& peer,
                          std::string_view forwarded_for) {
  if (!state.Trusted(peer) || forwarded_for.empty()) return peer.to_string();
  std::string client = peer.to_string();
  while (!forwarded_for.empty()) {
    size_t comma = forwarded_for.rfind(',');
    std::string_view item =
        comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1);
    forwarded_for =
        comma == std::string_view::npos ? std::string_view() : forwarded_for.substr(0, comma);
    item = TrimSpaces(item);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(std::string(item), ec);
    if (ec) break;  // garbage: keep the last good hop
    client = address.to_string();
    if (!state.Trusted(address)) break;
  }
  return client;
}

// Fills RequestHead from Beast's parsed header. Returns false for a target we cannot parse.
bool BuildHead(const ServerState& state, const bhttp::request_parser<bhttp::buffer_body>& parser,
               const tcp::endpoint& peer, RequestHead& head) {
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
  head.remote_address = ClientAddress(state, peer.address(), head.Header("X-Forwarded-For"));
  return true;
}

// Runs `work` on the server's blocking pool with `deadline` and resumes the calling coroutine on
// its own executor with whether the work ran.
Awaitable<Status> RunOnPool(BlockingPool& pool, std::function<void()> work,
                            std::optional<DeadlineClock::time_point> deadline) {
  auto home = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Status)>(
      [&pool, &work, home, deadline](auto handler) {
        // The pool stores std::function, which must be copyable; the handler is move-only.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        pool.Submit(
            std::move(work),
            [shared, home](Status ran) {
              asio::post(home,
                         [shared, ran = std::move(ran)]() mutable { (*shared)(std::move(ran)); });
            },
            deadline);
      },
      asio::use_awaitable);
}

// The Exchange of one request on a Beast stream.
class BeastExchange final : public Exchange {
 public:
  BeastExchange(ServerState& state, beast::tcp_stream& stream, beast::flat_buffer& buffer,
                bhttp::request_parser<bhttp::buffer_body>& parser, RequestHead head, uint64_t limit,
                bool streaming)
      : state_(state),
        stream_(stream),
        buffer_(buffer),
        parser_(parser),
        head_(std::move(head)),
        limit_(limit),
        streaming_(streaming),
        deadline_(DeadlineClock::now() + state.options.request_timeout) {}

  const RequestHead& request() const override { return head_; }
  const std::map<std::string, std::string>& params() const override { return params_; }
  void set_params(std::map<std::string, std::string> p) { params_ = std::move(p); }
  bool body_complete() const { return !head_.has_body || parser_.is_done(); }

  Awaitable<Result<size_t>> ReadBody(std::span<std::byte> out) override {
    if (body_complete() || out.empty()) co_return size_t{0};
    const auto io_timeout = state_.options.io_timeout;
    if (!continue_sent_ && bhttp::token_list(head_.Header("Expect")).exists("100-continue")) {
      continue_sent_ = true;
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      stream_.expires_after(io_timeout);
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
      stream_.expires_after(io_timeout);
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
      if (state_.bytes_in) state_.bytes_in->Inc(static_cast<double>(got));
      if (total_ > limit_) {
        co_return MakeError(
            ErrorCode::kTooLarge,
            fmt::format("request body is larger than the limit of {} bytes", limit_));
      }
    }
    co_return filled;
  }

  // Blocking work for the response body (a streamed download) after the handler returned.
  Awaitable<Status> RunForResponse(std::function<void()> work) {
    return RunBlocking(std::move(work));
  }

 protected:
  Awaitable<Status> RunBlocking(std::function<void()> work) override {
    // A short request has one deadline for all its calls; a streaming one, one per call.
    auto deadline = streaming_ ? DeadlineClock::now() + state_.options.request_timeout : deadline_;
    return RunOnPool(state_.blocking, std::move(work), deadline);
  }

 private:
  ServerState& state_;
  beast::tcp_stream& stream_;
  beast::flat_buffer& buffer_;
  bhttp::request_parser<bhttp::buffer_body>& parser_;
  RequestHead head_;
  std::map<std::string, std::string> params_;
  uint64_t limit_;
  bool streaming_;
  DeadlineClock::time_point deadline_;
  uint64_t total_ = 0;
  bool continue_sent_ = false;
};

// Chunked Server-Sent Events on an open response.
class BeastEventStream final : public EventStream {
 public:
  BeastEventStream(ServerState& state, beast::tcp_stream& stream,
                   bhttp::response<bhttp::buffer_body>& res,
                   bhttp::response_serializer<bhttp::buffer_body>& sr)
      : state_(state), stream_(stream), res_(res), sr_(sr) {}

  Awaitable<Status> Send(std::string_view event, std::string_view data) override {
    co_return co_await Write(SseEvent(event, data));
  }
  Awaitable<Status> Comment(std::string_view text) override {
    co_return co_await Write(SseComment(text));
  }
  bool Draining() const override { return state_.draining.load(); }
  bool failed() const { return failed_; }

 protected:
  Awaitable<Status> RunBlocking(std::function<void()> work) override {
    return RunOnPool(state_.blocking, std::move(work),
                     DeadlineClock::now() + state_.options.request_timeout);
  }

 private:
  Awaitable<Status> Write(std::string text) {
    if (failed_) co_return MakeError(ErrorCode::kUnavailable, "client went away");
    res_.body().data = text.data();
    res_.body().size = text.size();
    res_.body().more = true;
    stream_.expires_after(state_.options.io_timeout);
    auto [ec, n] = co_await bhttp::async_write(stream_, sr_, kTuple);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      failed_ = true;
      co_return MakeError(ErrorCode::kUnavailable, "client went away");
    }
    co_return Status{};
  }

  ServerState& state_;
  beast::tcp_stream& stream_;
  bhttp::response<bhttp::buffer_body>& res_;
  bhttp::response_serializer<bhttp::buffer_body>& sr_;
  bool failed_ = false;
};

template <typename Message>
void ApplyHeaders(Message& msg, const Response& response) {
  for (const auto& [name, value] : response.headers) msg.insert(name, value);
}

// Writes a response whose body is a string (or none, for HEAD). Returns the body bytes sent,
// or nothing when the write failed.
Awaitable<std::optional<uint64_t>> WriteStringResponse(beast::tcp_stream& stream,
                                                       Response& response, bool keep_alive,
                                                       bool head_only) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(response.status), 11};
  ApplyHeaders(res, response);
  res.keep_alive(keep_alive);
  if (head_only) {
    // Content-Length as a GET would have it, and no body.
    if (res.find(bhttp::field::content_length) == res.end())
      res.content_length(response.body.size());
    bhttp::response_serializer<bhttp::string_body> sr{res};
    sr.split(true);
    auto [ec, n] = co_await bhttp::async_write_header(stream, sr, kTuple);
    if (ec) co_return std::nullopt;
    co_return uint64_t{0};
  }
  uint64_t size = response.body.size();
  res.body() = std::move(response.body);
  if (response.status != 204 && response.status != 304) res.prepare_payload();
  auto [ec, n] = co_await bhttp::async_write(stream, res, kTuple);
  if (ec) co_return std::nullopt;
  co_return size;
}

// Runs the producer of an event-stream response until it returns. False when the client went
// away (the connection cannot be reused).
Awaitable<bool> WriteEventStream(ServerState& state, beast::tcp_stream& stream, Response& response,
                                 bool keep_alive, std::string_view path) {
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
  if (wec) co_return false;
  BeastEventStream events(state, stream, res, sr);
  try {
    co_await response.events(events);
  } catch (const std::exception& e) {
    spdlog::error("event stream {} threw: {}", path, e.what());
  }
  if (events.failed()) co_return false;
  res.body().data = nullptr;
  res.body().more = false;
  stream.expires_after(state.options.io_timeout);
  auto [fec, fn] = co_await bhttp::async_write(stream, sr, kTuple);
  co_return !fec;
}

// Streams `response.length` bytes of `response.stream`, read on the blocking pool. Returns the
// body bytes sent, or nothing when the response could not be completed.
Awaitable<std::optional<uint64_t>> WriteStreamedResponse(ServerState& state,
                                                         beast::tcp_stream& stream,
                                                         BeastExchange& exchange,
                                                         Response& response, bool keep_alive,
                                                         bool head_only, std::string_view path) {
  bhttp::response<bhttp::buffer_body> res{static_cast<bhttp::status>(response.status), 11};
  ApplyHeaders(res, response);
  res.keep_alive(keep_alive);
  res.content_length(response.length);
  res.body().data = nullptr;
  res.body().more = !head_only && response.length > 0;
  bhttp::response_serializer<bhttp::buffer_body> sr{res};
  auto [wec, wn] = co_await bhttp::async_write_header(stream, sr, kTuple);
  if (wec) co_return std::nullopt;
  if (!res.body().more) co_return uint64_t{0};

  std::vector<std::byte> chunk(std::min<uint64_t>(kStreamChunk, response.length));
  ByteSource& source = *response.stream;
  uint64_t left = response.length;
  uint64_t sent = 0;
  bool first = true;
  while (left > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
    Result<size_t> got = MakeError(ErrorCode::kInternal, "not read");
    Status ran = co_await exchange.RunForResponse([&] {
      if (first && response.offset > 0) {
        if (Status seeked = source.Seek(response.offset); !seeked) {
          got = tl::unexpected(seeked.error());
          return;
        }
      }
      got = source.Read(std::span(chunk.data(), want));
    });
    first = false;
    if (!ran) got = tl::unexpected(ran.error());
    if (!got || *got == 0) {
      // The headers are out: all we can do is end the connection so the client sees a short
      // body rather than a complete one.
      spdlog::warn("stream for {} ended early: {}", path,
                   got ? "short object" : got.error().message);
      co_return std::nullopt;
    }
    left -= *got;
    res.body().data = chunk.data();
    res.body().size = *got;
    res.body().more = left > 0;
    stream.expires_after(state.options.io_timeout);
    auto [bec, bn] = co_await bhttp::async_write(stream, sr, kTuple);
    if (bec == bhttp::error::need_buffer) bec = {};
    if (bec) co_return std::nullopt;
    sent += *got;
  }
  res.body().data = nullptr;
  res.body().more = false;
  auto [fec, fn] = co_await bhttp::async_write(stream, sr, kTuple);
  if (fec) co_return std::nullopt;
  co_return sent;
}

// Lingering close: a client still sending a body we refused would get a reset, and with it lose
// our answer (say 413), if we closed with its bytes unread. Read and drop them for a bounded
// time and amount first, so the answer reaches it.
Awaitable<void> DrainRefusedBody(beast::tcp_stream& stream) {
  constexpr size_t kMaxDrain = 16 * 1024 * 1024;
  std::vector<char> sink(64 * 1024);
  size_t drained = 0;
  stream.expires_after(std::chrono::seconds(2));
  while (drained < kMaxDrain) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
    if (ec) break;
    drained += n;
  }
}

// The answer to a request that never reached a handler.
Response ProtocolProblem(ErrorCode code, std::string message) {
  return Response::Problem(Error(code, std::move(message)));
}

}  // namespace

Status ServerState::ParseTrustedProxies() {
  for (const std::string& cidr : options.trusted_proxies) {
    boost::system::error_code ec;
    if (cidr.find(':') != std::string::npos) {
      auto network = asio::ip::make_network_v6(cidr, ec);
      if (!ec) trusted_v6.push_back(network);
    } else {
      auto network = asio::ip::make_network_v4(cidr, ec);
      if (!ec) trusted_v4.push_back(network);
    }
    if (ec) {
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("trusted proxy '{}' is not a CIDR such as 10.0.0.0/8", cidr));
    }
  }
  return {};
}

bool ServerState::Trusted(const asio::ip::address& address) const {
  if (address.is_v4()) {
    auto v4 = address.to_v4();
    for (const auto& network : trusted_v4)
      if (asio::ip::make_network_v4(v4, network.prefix_length()).canonical() == network.canonical())
        return true;
    return false;
  }
  auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return Trusted(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
  for (const auto& network : trusted_v6)
    if (asio::ip::make_network_v6(v6, network.prefix_length()).canonical() == network.canonical())
      return true;
  return false;
}

asio::awaitable<void> ServeConnection(ServerState& state, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  beast::error_code peer_ec;
  tcp::endpoint peer = stream.socket().remote_endpoint(peer_ec);
  if (state.open_connections) state.open_connections->Inc();
  struct Closer {
    metrics::Gauge* g;
    ~Closer() {
      if (g) g->Dec();
    }
  } closer{state.open_connections};
  const ServerOptions& options = state.options;

  bool unread_body = false;  // the last request's body was refused (401, 413, ...) unread
  for (;;) {
    bhttp::request_parser<bhttp::buffer_body> parser;
    parser.header_limit(static_cast<uint32_t>(options.max_header_bytes));
    parser.body_limit(boost::none);
    stream.expires_after(options.idle_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    if (ec) {
      std::optional<Response> refusal;
      if (ec == bhttp::error::header_limit) {
        refusal = ProtocolProblem(ErrorCode::kHeadersTooLarge,
                                  fmt::format("request headers are larger than the {} bytes the "
                                              "server accepts",
                                              options.max_header_bytes));
      } else if (ec != asio::error::eof && ec != beast::error::timeout &&
                 ec != asio::error::operation_aborted && ec != asio::error::connection_reset) {
        refusal = ProtocolProblem(ErrorCode::kInvalidArgument, "malformed HTTP request");
      }
      if (refusal) co_await WriteStringResponse(stream, *refusal, false, false);
      break;
    }
    auto started = std::chrono::steady_clock::now();
    state.in_flight.fetch_add(1);
    struct InFlight {
      std::atomic<int>& n;
      ~InFlight() { n.fetch_sub(1); }
    } in_flight_guard{state.in_flight};

    RequestHead head;
    Response response;
    std::string route_label = "unmatched";
    const Route* route = nullptr;
    RouteMatch match;
    if (!BuildHead(state, parser, peer, head)) {
      response = ProtocolProblem(ErrorCode::kInvalidArgument, "malformed request target");
    } else {
      match = state.router.Match(head.method, head.path);
      route = match.route;
      if (!route && !match.allowed_methods.empty()) {
        std::string allowed = fmt::format("{}", fmt::join(match.allowed_methods, ", "));
        response = ProtocolProblem(
            ErrorCode::kMethodNotAllowed,
            fmt::format("{} is not allowed on {}; use {}", head.method, head.path, allowed));
        response.Header("Allow", allowed);
      } else if (!route) {
        response = Response::Problem(Error(ErrorCode::kNotFound, "no such resource"), head.path);
      }
    }
    bool is_head = head.method == "HEAD";
    BeastExchange exchange(state, stream, buffer, parser, head, route ? route->max_body : 0,
                           route && route->streaming);
    if (route) {
      route_label = route->pattern;
      exchange.set_params(std::move(match.params));
      if (head.content_length && *head.content_length > route->max_body) {
        response = ProtocolProblem(
            ErrorCode::kTooLarge,
            fmt::format("request body of {} bytes is larger than the limit of {} bytes",
                        *head.content_length, route->max_body));
      } else {
        try {
          response = co_await route->handler(exchange);
        } catch (const std::exception& e) {
          spdlog::error("handler {} {} threw: {}", head.method, head.path, e.what());
          response = ProtocolProblem(ErrorCode::kInternal, "internal error");
        }
      }
    }

    // A body the handler did not read leaves the connection unusable for another request.
    bool keep_alive =
        parser.get().keep_alive() && exchange.body_complete() && !state.draining.load();
    unread_body = !exchange.body_complete();
    bool head_only = is_head || response.head_only;
    stream.expires_after(options.io_timeout);
    std::optional<uint64_t> sent;
    if (response.events) {
      bool ok = co_await WriteEventStream(state, stream, response, keep_alive, head.path);
      sent = ok ? std::optional<uint64_t>(0) : std::nullopt;
    } else if (response.stream) {
      sent = co_await WriteStreamedResponse(state, stream, exchange, response, keep_alive,
                                            head_only, head.path);
    } else {
      sent = co_await WriteStringResponse(stream, response, keep_alive, head_only);
    }
    if (state.bytes_out && sent) state.bytes_out->Inc(static_cast<double>(*sent));

    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (state.requests) {
      state.requests
          ->WithLabels({"route", route_label}, {"method", head.method},
                       {"status", std::to_string(response.status)})
          .Inc();
    }
    if (state.latency) state.latency->WithLabels({"route", route_label}).Observe(seconds);
    if (!sent || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (unread_body) co_await DrainRefusedBody(stream);
}

}  // namespace vmp3::http
