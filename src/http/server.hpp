// The HTTP/1.1 server: Boost.Beast on Asio C++20 coroutines, kept out of this header.
//
// Per connection (http/session.cpp): keep-alive, bounded headers (431 past the limit), an idle
// timeout between requests and a read/write timeout while a request is in flight, so a slow
// client cannot hold a thread (connections are coroutines; no thread is ever blocked on a
// socket). Handlers run on the I/O threads and must never block them: every call that can touch
// the network or disk goes to the bounded blocking pool (BlockingRunner::Blocking) with the
// request's deadline, so a stalled backend costs a request a 503 after `request_timeout`, never
// an I/O thread, and /healthz keeps answering in milliseconds.
//
// Shutdown: BeginDrain() stops accepting and tells event streams to finish; Stop() waits up to
// the drain timeout for in-flight requests, then stops the threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "http/router.hpp"

namespace vmp3::metrics {
class Registry;
}  // namespace vmp3::metrics

namespace vmp3::http {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0 picks a free port (see Server::port())
  int io_threads = 2;
  // The blocking pool: password hashing, storage, database and queue calls. Threads running at
  // once, and calls waiting for one; beyond that a request gets 503 at once.
  int blocking_threads = 8;
  size_t blocking_queue = 256;
  // How long a request may wait for its backends (queueing for a blocking thread included)
  // before it gets 503. Streaming routes (Route::streaming) get it per blocking call.
  std::chrono::milliseconds request_timeout{5000};
  // Peers whose X-Forwarded-For is believed (the gateway): the client's address is then the
  // rightmost address in it that is not itself a trusted proxy. CIDRs, e.g. "10.0.0.0/8".
  std::vector<std::string> trusted_proxies = {"127.0.0.0/8", "::1/128"};
  size_t max_header_bytes = 16 * 1024;
  std::chrono::seconds idle_timeout{60};  // between requests on a keep-alive connection
  std::chrono::seconds io_timeout{30};    // no progress reading or writing for this long
  std::chrono::seconds drain_timeout{15};
};

class Server {
 public:
  // `router` and `metrics` (may be null) must outlive the server.
  Server(ServerOptions options, const Router& router, metrics::Registry* metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving on background threads. kUnavailable when the address is taken.
  Status Start();
  uint16_t port() const;
  void BeginDrain();
  // Drains (bounded by drain_timeout) and joins the threads. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmp3::http
