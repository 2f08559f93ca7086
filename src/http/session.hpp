// One client connection of http::Server: reads requests, routes them, writes responses.
// Internal to src/http (it includes Asio): only server.cpp and session.cpp include it.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <vector>

#include "common/blocking_pool.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace vmp3::metrics {
class Counter;
class CounterFamily;
class Gauge;
class HistogramFamily;
}  // namespace vmp3::metrics

namespace vmp3::http {

// What every session of one server shares. Outlives the sessions (Server::Stop joins them).
struct ServerState {
  ServerOptions options;
  const Router& router;
  BlockingPool blocking;
  std::atomic<bool> draining{false};
  std::atomic<int> in_flight{0};  // requests being handled or answered

  // Null without a metrics registry.
  metrics::CounterFamily* requests = nullptr;
  metrics::HistogramFamily* latency = nullptr;
  metrics::Counter* bytes_in = nullptr;
  metrics::Counter* bytes_out = nullptr;
  metrics::Gauge* open_connections = nullptr;

  // Parsed ServerOptions::trusted_proxies.
  std::vector<boost::asio::ip::network_v4> trusted_v4;
  std::vector<boost::asio::ip::network_v6> trusted_v6;

  ServerState(ServerOptions o, const Router& r)
      : options(std::move(o)),
        router(r),
        blocking(BlockingPoolOptions{options.blocking_threads, options.blocking_queue}) {}

  // Parses the trusted proxies; kInvalidArgument naming a bad one.
  Status ParseTrustedProxies();
  bool Trusted(const boost::asio::ip::address& address) const;
};

// Serves requests on `socket` until the client closes, a timeout, an error, or draining.
boost::asio::awaitable<void> ServeConnection(ServerState& state,
                                             boost::asio::ip::tcp::socket socket);

}  // namespace vmp3::http
