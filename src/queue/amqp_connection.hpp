// One AMQP 0-9-1 connection to RabbitMQ (rabbitmq-c underneath), with the waits bounded: what
// RabbitMqJobQueue builds its queue semantics on. It knows frames, confirms and the broker's
// notifications, nothing about jobs.
//
// Every wait is bounded by TimeBudget(target.timeout) (common/deadline.hpp): the configured
// timeout, or less when the calling thread's deadline is nearer. A call that finds the budget
// spent fails with DeadlinePassed("RabbitMQ") before it sends anything. A wait that runs out
// breaks the connection (its state is unknown: a reply may still come), and so does any other
// failure that may have left the AMQP stream out of step; a broken connection is never used
// again. Sends of a frame are not bounded (they only wait when the socket's send buffer is
// full, which small frames do not fill).
//
// Resource alarms: the connection announces the "connection.blocked" capability, so when
// RabbitMQ runs low on memory or disk it answers the first publish with connection.blocked
// (holding that message, not refusing it) and stops reading from the connection until
// connection.unblocked. Publish then fails at once with kUnavailable and the alarm's text, and
// keeps failing at once, without sending, until the broker unblocks the connection. The message
// that was in flight when the block came is not lost or refused: the broker takes it when the
// alarm clears, even if this connection is gone by then (at-least-once: it may arrive after the
// caller was told it failed).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

struct amqp_connection_state_t_;

namespace vmp3 {

// Where the broker is and how long a call may wait for it.
struct AmqpTarget {
  std::string host = "127.0.0.1";
  int port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  std::string prefix = "vmp3";  // of the exchanges and queues RabbitMqJobQueue declares
  // The longest a call waits for the broker: connecting and logging in, a publisher confirm, any
  // other reply. A whole JobQueue call is bounded by it too (Take: its wait plus this).
  std::chrono::milliseconds timeout{5000};

  // amqp://user:pass@host:port/vhost?prefix=NAME&timeout_ms=N (vhost percent-encoded; "%2f" is
  // "/"; timeout_ms 1 to 3600000, default 5000).
  static Result<AmqpTarget> Parse(std::string_view url);
};

// A message taken from a queue, unacknowledged until acked or rejected by its delivery tag.
struct AmqpMessage {
  uint64_t delivery_tag = 0;
  std::string body;
  std::vector<std::pair<std::string, int64_t>> int_headers;  // the integer-valued headers

  // The value of an integer header, 0 when absent.
  int64_t IntHeader(std::string_view name) const;
};

// A message to publish: persistent, waiting for the broker's confirm.
struct AmqpOutgoing {
  std::string_view exchange, routing_key, body;
  const char* content_type = "text/plain";
  std::string_view int_header_name;  // when set, one integer header
  int32_t int_header_value = 0;
  std::chrono::milliseconds ttl{0};  // when positive, the message expires (dead-letters) after it
  bool mandatory = true;  // a message that no queue takes is an error, not silently dropped
};

// Not thread-safe: one thread at a time (AmqpSharedConnection shares one among threads).
class AmqpConnection {
 public:
  struct Options {
    // AMQP heartbeat in seconds (the broker may lower it); 0: none, an idle connection stays
    // open until used.
    int heartbeat_seconds = 0;
    // confirm.select on the channel, required by Publish.
    bool confirms = false;
    // basic.qos: unacknowledged deliveries the broker sends this channel at most; 0: no limit.
    int prefetch = 0;
  };

  // Connects, logs in and opens channel 1, all within one TimeBudget(target.timeout).
  // kUnavailable when the broker cannot be reached or does not answer in time,
  // kPermissionDenied when it refuses the login.
  static Result<std::unique_ptr<AmqpConnection>> Open(const AmqpTarget& target,
                                                      const Options& options);
  // Closes cleanly (within a second at most) unless broken or blocked; then just drops it.
  ~AmqpConnection();
  AmqpConnection(const AmqpConnection&) = delete;
  AmqpConnection& operator=(const AmqpConnection&) = delete;

  bool broken() const { return broken_; }
  // Marks the connection unusable: it is dropped without a clean close.
  void MarkBroken() { broken_ = true; }
  // True from connection.blocked until connection.unblocked, as far as frames read so far tell.
  bool blocked() const { return blocked_; }
  // The socket, to wait on for the next frame (after ArrivedDelivery found none).
  int fd() const;

  // Topology, declared durable. args: string-valued queue arguments (x-queue-type, ...).
  Status DeclareExchange(const std::string& name, const char* type);
  Status DeclareQueue(const std::string& name,
                      const std::vector<std::pair<std::string, std::string>>& args);
  Status BindQueue(const std::string& queue, const std::string& exchange,
                   const std::string& routing_key);
  // Ready messages in `queue` (unacknowledged ones are not counted).
  Result<uint64_t> MessageCount(const std::string& queue);

  // Publishes and waits for the broker's confirm (Options::confirms). kUnavailable when the
  // broker did not store it (nack, no queue for a mandatory message), when a resource alarm
  // blocks the connection (at once; the connection stays usable and unblocks with the alarm),
  // or when no confirm came in time (the connection breaks: the message may still be stored).
  Status Publish(const AmqpOutgoing& message);

  // The next ready message of `queue`, unacknowledged.
  Result<std::optional<AmqpMessage>> Get(const std::string& queue);
  // Starts a consumer on `queue` (manual acks) and returns its tag.
  Result<std::string> Consume(const std::string& queue);
  // A delivery that has already arrived, without waiting for one.
  Result<std::optional<AmqpMessage>> ArrivedDelivery();
  // Cancels the consumer. A delivery that came before the broker confirmed the cancel is
  // returned: it is the caller's, unacknowledged, and must not be dropped.
  Result<std::optional<AmqpMessage>> Cancel(const std::string& consumer_tag);
  // Reads what the broker sent meanwhile without waiting (notifications, a close), so that a
  // connection it closed is noticed before it is trusted. On a connection without a consumer.
  Status Poll();

  Status Ack(uint64_t delivery_tag);
  // Gives a message back to its queue; the broker counts it as a delivery.
  Status Reject(uint64_t delivery_tag);
  // Gives back every unacknowledged message up to `last_tag`, each to its place in its queue.
  Status RequeueAll(uint64_t last_tag);
  // Tells the broker the connection is alive.
  Status SendHeartbeat();

 private:
  struct Frame;

  AmqpConnection(const AmqpTarget& target);

  // Sets the library's wait for the next synchronous call to the budget; DeadlinePassed when
  // there is none left.
  Status StartRpc();
  // The outcome of the last synchronous call; a failure breaks the connection.
  Status CheckRpc(std::string_view what);
  // The next frame within `timeout` (nullopt when none came), after handling what concerns the
  // connection itself: blocked/unblocked, a close from the broker (an error), a returned
  // message (its content is read and remembered for the publish waiting on its confirm).
  Result<std::optional<Frame>> NextFrame(std::chrono::milliseconds timeout);
  Result<std::optional<AmqpMessage>> OnConsumerFrame(const Frame& frame);
  Result<AmqpMessage> ReadContent(uint64_t delivery_tag);
  tl::unexpected<Error> Fail(std::string_view what, std::string_view why);
  Error Blocked() const;

  const std::string host_;
  const int port_;
  const std::chrono::milliseconds timeout_;
  amqp_connection_state_t_* state_ = nullptr;
  bool logged_in_ = false;
  bool broken_ = false;
  bool blocked_ = false;
  std::string blocked_reason_;          // the broker's, e.g. "low on memory"
  std::chrono::milliseconds rpc_wait_;  // of the synchronous call under way, for its error
  uint64_t published_ = 0;       // publishes on the channel: the broker numbers its confirms alike
  bool return_pending_ = false;  // a basic.return came; the confirm that follows is for it
};

// One connection that threads take turns on, opened on first use and reopened once broken.
// Thread-safe.
class AmqpSharedConnection {
 public:
  AmqpSharedConnection(AmqpTarget target, AmqpConnection::Options options)
      : target_(std::move(target)), options_(options) {}

  // Uses `connection` (e.g. the one that declared the topology) until it breaks.
  void Adopt(std::unique_ptr<AmqpConnection> connection) {
    std::lock_guard lock(mu_);
    connection_ = std::move(connection);
  }

  // Runs op(AmqpConnection&) -> Result<T> on the connection under the lock. A connection that
  // broke while idle (the broker restarted) is only found out when used: when op fails and
  // leaves the connection broken, it runs once more on a new one if the budget allows.
  template <typename Op>
  auto Run(Op op) -> decltype(op(std::declval<AmqpConnection&>())) {
    std::lock_guard lock(mu_);
    for (int tries = 0;; ++tries) {
      if (!connection_ || connection_->broken()) {
        connection_.reset();
        auto opened = AmqpConnection::Open(target_, options_);
        if (!opened) return tl::unexpected(opened.error());
        connection_ = std::move(*opened);
      }
      auto result = op(*connection_);
      if (result || !connection_->broken() || tries == 1 || !TimeLeft()) return result;
    }
  }

 private:
  bool TimeLeft() const;

  const AmqpTarget target_;
  const AmqpConnection::Options options_;
  std::mutex mu_;
  std::unique_ptr<AmqpConnection> connection_;
};

}  // namespace vmp3
