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
#include <boost/asio/use_awaitable.hpp>
#include <thread>
#include <vector>

#include "http/session.hpp"
#include "metrics/registry.hpp"

namespace vmp3::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

}  // namespace

struct Server::Impl {
  ServerState state;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};
  uint16_t bound_port = 0;

  Impl(ServerOptions o, const Router& r, metrics::Registry* registry)
      : state(std::move(o), r), ioc(std::max(1, state.options.io_threads)) {
    if (!registry) return;
    state.requests = &registry->AddCounter("vmp3_http_requests_total",
                                           "HTTP requests by route, method and status.");
    state.latency = &registry->AddHistogram(
        "vmp3_http_request_duration_seconds", "HTTP request latency by route.",
        {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
    state.bytes_in =
        &registry->AddCounter("vmp3_http_request_body_bytes_total", "Request body bytes received.")
             .WithLabels();
    state.bytes_out =
        &registry->AddCounter("vmp3_http_response_body_bytes_total", "Response body bytes sent.")
             .WithLabels();
    state.open_connections =
        &registry->AddGauge("vmp3_http_open_connections", "Open client connections.").WithLabels();
    BlockingPool& pool = state.blocking;
    registry->AddCallbackGauge("vmp3_blocking_pool_queued",
                               "Blocking calls (backends, hashing) waiting for a thread.",
                               [&pool] { return static_cast<double>(pool.queued()); });
    registry->AddCallbackGauge("vmp3_blocking_pool_running", "Blocking calls running.",
                               [&pool] { return static_cast<double>(pool.running()); });
    registry->AddCallbackGauge(
        "vmp3_blocking_pool_refused",
        "Blocking calls refused so far (pool full, or the request's deadline passed while "
        "waiting): each was answered 503.",
        [&pool] { return static_cast<double>(pool.refused()); });
  }

  asio::awaitable<void> Accept();
};

asio::awaitable<void> Server::Impl::Accept() {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    asio::co_spawn(ioc, ServeConnection(state, std::move(socket)), asio::detached);
  }
}

Server::Server(ServerOptions options, const Router& router, metrics::Registry* metrics)
    : impl_(std::make_unique<Impl>(std::move(options), router, metrics)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  if (auto parsed = impl_->state.ParseTrustedProxies(); !parsed) return parsed;
  boost::system::error_code ec;
  const ServerOptions& options = impl_->state.options;
  auto address = asio::ip::make_address(options.address, ec);
  if (ec) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("'{}' is not an IP address", options.address));
  }
  tcp::endpoint endpoint(address, options.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return MakeError(
        ErrorCode::kUnavailable,
        fmt::format("cannot listen on {}:{}: {}", options.address, options.port, ec.message()));
  }
  impl_->bound_port = acceptor.local_endpoint().port();
  asio::co_spawn(impl_->ioc, impl_->Accept(), asio::detached);
  for (int i = 0; i < std::max(1, options.io_threads); ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  return {};
}

uint16_t Server::port() const { return impl_->bound_port; }

void Server::BeginDrain() {
  if (impl_->state.draining.exchange(true)) return;
  asio::post(impl_->ioc, [this] {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
  });
}

void Server::Stop() {
  if (impl_->stopped.exchange(true)) return;
  BeginDrain();
  auto deadline = std::chrono::steady_clock::now() + impl_->state.options.drain_timeout;
  while (impl_->state.in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->state.blocking.Stop();
}

}  // namespace vmp3::http
