#include "queue/rabbitmq_job_queue.hpp"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "common/backend_url.hpp"

namespace vmp3 {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr amqp_channel_t kChannel = 1;
constexpr size_t kMaxJobIdLength = 200;
constexpr char kRoutingKey[] = "convert";
constexpr char kSpentHeader[] = "x-vmp3-attempt";  // attempts spent before a republish

constexpr size_t kMaxDeadLetters = 10000;
const timeval kRpcTimeout{5, 0};
constexpr milliseconds kConfirmTimeout(10000);
// How often a waiting Take looks at Interrupt() and lets other threads use its connection.
constexpr milliseconds kWaitSlice(50);

amqp_bytes_t Bytes(std::string_view s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}
std::string String(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

timeval TimeVal(milliseconds ms) {
  ms = std::max(ms, milliseconds(0));
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

milliseconds Until(Clock::time_point deadline) {
  return std::max(milliseconds(0),
                  std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
}

// Sleeps until `fd` has something to read or `timeout` passes.
void WaitReadable(int fd, milliseconds timeout) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  ::poll(&p, 1, static_cast<int>(timeout.count()));
}

int64_t HeaderInt(const amqp_basic_properties_t& props, std::string_view name) {
  if (!(props._flags & AMQP_BASIC_HEADERS_FLAG)) return 0;
  for (int i = 0; i < props.headers.num_entries; ++i) {
    const amqp_table_entry_t& e = props.headers.entries[i];
    if (String(e.key) != name) continue;
    switch (e.value.kind) {
      case AMQP_FIELD_KIND_I8:
        return e.value.value.i8;
      case AMQP_FIELD_KIND_U8:
        return e.value.value.u8;
      case AMQP_FIELD_KIND_I16:
        return e.value.value.i16;
      case AMQP_FIELD_KIND_U16:
        return e.value.value.u16;
      case AMQP_FIELD_KIND_I32:
        return e.value.value.i32;
      case AMQP_FIELD_KIND_U32:
        return e.value.value.u32;
      case AMQP_FIELD_KIND_I64:
        return e.value.value.i64;
      case AMQP_FIELD_KIND_U64:
        return static_cast<int64_t>(e.value.value.u64);
      default:
        return 0;
    }
  }
  return 0;
}

// The text of a channel.close or connection.close method.
std::string CloseText(const amqp_method_t& method) {
  if (method.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* m = static_cast<amqp_channel_close_t*>(method.decoded);
    return "channel closed by the broker: " + String(m->reply_text);
  }
  auto* m = static_cast<amqp_connection_close_t*>(method.decoded);
  return "connection closed by the broker: " + String(m->reply_text);
}

std::string ReplyText(const amqp_rpc_reply_t& reply) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD ||
          reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        return CloseText(reply.reply);
      }
      return "unexpected broker reply";
  }
  return "unknown";
}

bool IsClose(const amqp_frame_t& frame) {
  return frame.frame_type == AMQP_FRAME_METHOD &&
         (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
          frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD);
}

tl::unexpected<Error> LeaseLost(const Delivery& delivery, std::string_view why) {
  return MakeError(ErrorCode::kConflict, fmt::format("job {} no longer holds its queue lease ({})",
                                                     delivery.job_id, why));
}

struct Receipt {
  uint64_t consumer = 0, generation = 0, tag = 0;
};

// "consumer.generation.tag"
std::optional<Receipt> ParseReceipt(std::string_view text) {
  Receipt r;
  for (uint64_t* field : {&r.consumer, &r.generation, &r.tag}) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *field);
    if (ec != std::errc()) return std::nullopt;
    text.remove_prefix(end - text.data());
    if (field != &r.tag) {
      if (!text.starts_with('.')) return std::nullopt;
      text.remove_prefix(1);
    }
  }
  if (!text.empty()) return std::nullopt;
  return r;
}

std::atomic<uint64_t> next_consumer_id{1};

}  // namespace

Result<AmqpTarget> AmqpTarget::Parse(std::string_view url) {
  auto parts = ParseBackendUrl(url, "amqp", "RabbitMQ", {"prefix"});
  if (!parts) return tl::unexpected(parts.error());
  AmqpTarget t;
  if (!parts->host.empty()) t.host = parts->host;
  if (parts->port) t.port = *parts->port;
  if (parts->user) t.user = *parts->user;
  if (parts->password) t.password = *parts->password;
  if (!parts->path.empty()) t.vhost = parts->path;  // "%2f" decodes to "/"
  for (const auto& [name, value] : parts->params)
    if (name == "prefix") t.prefix = value;
  if (t.prefix.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty queue prefix");
  return t;
}

struct RabbitMqJobQueue::Message {
  uint64_t tag = 0;
  uint64_t generation = 0;  // of the consumer connection it came through
  std::string job_id;
  int64_t spent = 0;           // x-vmp3-attempt: attempts counted before a republish
  int64_t delivery_count = 0;  // x-delivery-count: returns by the broker after a taker died
};

// One AMQP connection with channel 1 open. Not thread-safe. Any failure marks it broken: the
// AMQP stream may be out of step, so it is not used again.
class RabbitMqJobQueue::Connection {
 public:
  // `heartbeat` in seconds (the broker may lower it); 0 keeps an idle connection open forever.
  static Result<std::unique_ptr<Connection>> Open(const AmqpTarget& t, int heartbeat) {
    std::unique_ptr<Connection> c(new Connection());
    c->state_ = amqp_new_connection();
    amqp_socket_t* socket = c->state_ ? amqp_tcp_socket_new(c->state_) : nullptr;
    if (!socket) return MakeError(ErrorCode::kInternal, "cannot create an AMQP socket");
    timeval timeout = kRpcTimeout;
    if (amqp_socket_open_noblock(socket, t.host.c_str(), t.port, &timeout) != AMQP_STATUS_OK) {
      return MakeError(ErrorCode::kUnavailable,
                       fmt::format("RabbitMQ at {}:{} is unavailable", t.host, t.port));
    }
    amqp_set_rpc_timeout(c->state_, &kRpcTimeout);
    amqp_rpc_reply_t reply = amqp_login(c->state_, t.vhost.c_str(), 0, 131072, heartbeat,
                                        AMQP_SASL_METHOD_PLAIN, t.user.c_str(), t.password.c_str());
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
      return MakeError(reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION
                           ? ErrorCode::kPermissionDenied
                           : ErrorCode::kUnavailable,
                       fmt::format("RabbitMQ at {}:{} refused the login of '{}' to vhost '{}': {}",
                                   t.host, t.port, t.user, t.vhost, ReplyText(reply)));
    }
    c->logged_in_ = true;
    amqp_channel_open(c->state_, kChannel);
    if (auto s = c->Check("opening a channel"); !s) return tl::unexpected(s.error());
    return c;
  }

  ~Connection() {
    if (!state_) return;
    if (logged_in_ && !broken_) {  // a clean close; a broken one is just dropped
      amqp_channel_close(state_, kChannel, AMQP_REPLY_SUCCESS);
      amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(state_);
  }

  bool broken() const { return broken_; }
  void MarkBroken() { broken_ = true; }
  amqp_connection_state_t state() { return state_; }

  // The outcome of the last synchronous call (declare, qos, ...).
  Status Check(std::string_view what) {
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(state_);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) return {};
    return Fail(what, ReplyText(reply));
  }

  Status EnableConfirms() {
    amqp_confirm_select(state_, kChannel);
    return Check("confirm.select");
  }

  struct Outgoing {
    std::string_view exchange, routing_key, body;
    const char* content_type = "text/plain";
    int spent_attempts = 0;  // the x-vmp3-attempt header, when positive
    milliseconds ttl{0};     // when positive, the message expires (is dead-lettered) after it
    bool mandatory = true;   // a message that no queue takes is an error, not silently dropped
  };

  // Publishes a persistent message and waits for the broker's confirm. Requires
  // EnableConfirms().
  Status Publish(const Outgoing& m) {
    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.delivery_mode = 2;  // persistent
    props.content_type = amqp_cstring_bytes(m.content_type);
    amqp_table_entry_t header{};
    if (m.spent_attempts > 0) {
      header.key = amqp_cstring_bytes(kSpentHeader);
      header.value.kind = AMQP_FIELD_KIND_I32;
      header.value.value.i32 = m.spent_attempts;
      props._flags |= AMQP_BASIC_HEADERS_FLAG;
      props.headers = amqp_table_t{1, &header};
    }
    const std::string expiration = std::to_string(m.ttl.count());
    if (m.ttl.count() > 0) {
      props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
      props.expiration = Bytes(expiration);
    }
    int rc = amqp_basic_publish(state_, kChannel, Bytes(m.exchange), Bytes(m.routing_key),
                                m.mandatory, 0, &props, Bytes(m.body));
    if (rc != AMQP_STATUS_OK) return Fail("publishing", amqp_error_string2(rc));
    const uint64_t seq = ++published_;  // the delivery tag of this publish's confirm

    const auto deadline = Clock::now() + kConfirmTimeout;
    bool returned = false;
    for (;;) {
      amqp_frame_t frame;
      timeval timeout = TimeVal(Until(deadline));
      amqp_maybe_release_buffers(state_);
      rc = amqp_simple_wait_frame_noblock(state_, &frame, &timeout);
      if (rc == AMQP_STATUS_TIMEOUT) return Fail("publishing", "no confirm from the broker");
      if (rc != AMQP_STATUS_OK) return Fail("publishing", amqp_error_string2(rc));
      if (frame.frame_type != AMQP_FRAME_METHOD) continue;
      if (IsClose(frame)) return Fail("publishing", CloseText(frame.payload.method));
      switch (frame.payload.method.id) {
        case AMQP_BASIC_RETURN_METHOD: {  // followed by the message's content: skip it
          amqp_message_t content;
          amqp_rpc_reply_t reply = amqp_read_message(state_, kChannel, &content, 0);
          if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
            return Fail("publishing", ReplyText(reply));
          }
          amqp_destroy_message(&content);
          returned = true;
          break;
        }
        case AMQP_BASIC_ACK_METHOD:
        case AMQP_BASIC_NACK_METHOD: {
          // Both start with delivery_tag (and multiple, which covers ours when the tag is).
          auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
          if (ack->delivery_tag < seq) break;  // an earlier publish's
          if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            return MakeError(ErrorCode::kUnavailable, "RabbitMQ could not store the message");
          }
          if (returned) {
            return MakeError(ErrorCode::kUnavailable,
                             fmt::format("RabbitMQ has no queue for exchange '{}', key '{}': was "
                                         "the queue deleted? Restart to declare it again",
                                         m.exchange, m.routing_key));
          }
          return {};
        }
        default:
          break;
      }
    }
  }

  // The next ready message of `queue`, unacknowledged.
  Result<std::optional<Message>> Get(const std::string& queue) {
    amqp_maybe_release_buffers(state_);
    amqp_rpc_reply_t reply = amqp_basic_get(state_, kChannel, Bytes(queue), /*no_ack=*/0);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return Fail("basic.get", ReplyText(reply));
    if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::nullopt;
    auto* ok = static_cast<amqp_basic_get_ok_t*>(reply.reply.decoded);
    return ReadContent(ok->delivery_tag);
  }

  // Starts a consumer on `queue` and returns its tag.
  Result<std::string> Consume(const std::string& queue) {
    amqp_basic_consume_ok_t* ok = amqp_basic_consume(state_, kChannel, Bytes(queue),
                                                     amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (!ok) return tl::unexpected(Check("basic.consume").error());
    return String(ok->consumer_tag);
  }

  // A delivery that has already arrived, without waiting for one.
  Result<std::optional<Message>> ArrivedDelivery() {
    for (;;) {
      amqp_frame_t frame;
      timeval zero{0, 0};
      amqp_maybe_release_buffers(state_);
      int rc = amqp_simple_wait_frame_noblock(state_, &frame, &zero);
      if (rc == AMQP_STATUS_TIMEOUT) return std::nullopt;
      if (rc != AMQP_STATUS_OK) return Fail("receiving", amqp_error_string2(rc));
      auto message = OnFrame(frame);
      if (!message || *message) return message;
    }
  }

  // The socket, to wait on for the next frame when nothing is buffered (after ArrivedDelivery).
  int fd() { return amqp_get_sockfd(state_); }

  // Cancels the consumer. A delivery that came before the broker confirmed the cancel is
  // returned: it is ours and unacknowledged, and must not be dropped.
  Result<std::optional<Message>> Cancel(const std::string& consumer_tag) {
    if (!amqp_basic_cancel(state_, kChannel, Bytes(consumer_tag))) {
      return tl::unexpected(Check("basic.cancel").error());
    }
    // The cancel call queued the frames that came before its reply; read them now.
    std::optional<Message> late;
    for (;;) {
      auto message = ArrivedDelivery();
      if (!message) return tl::unexpected(message.error());
      if (!*message) return late;
      if (late) {
        // Cannot happen with prefetch 1; if it did, the broker gets it back.
        if (auto s = Reject((*message)->tag); !s) return tl::unexpected(s.error());
        continue;
      }
      late = std::move(*message);
    }
  }

  Status Ack(uint64_t tag) {
    int rc = amqp_basic_ack(state_, kChannel, tag, 0);
    if (rc != AMQP_STATUS_OK) return Fail("acknowledging", amqp_error_string2(rc));
    return {};
  }

  // Gives a message back to its queue; the broker counts it as a delivery.
  Status Reject(uint64_t tag) {
    int rc = amqp_basic_reject(state_, kChannel, tag, /*requeue=*/1);
    if (rc != AMQP_STATUS_OK) return Fail("rejecting", amqp_error_string2(rc));
    return {};
  }

  // Gives back every unacknowledged message up to `last_tag`, each to its place in its queue.
  Status RequeueAll(uint64_t last_tag) {
    int rc = amqp_basic_nack(state_, kChannel, last_tag, /*multiple=*/1, /*requeue=*/1);
    if (rc != AMQP_STATUS_OK) return Fail("requeueing", amqp_error_string2(rc));
    return {};
  }

  // Tells the broker this connection, and so the leases taken through it, is alive.
  Status SendHeartbeat() {
    amqp_frame_t frame{};
    frame.frame_type = AMQP_FRAME_HEARTBEAT;
    frame.channel = 0;
    int rc = amqp_send_frame(state_, &frame);
    if (rc != AMQP_STATUS_OK) return Fail("sending a heartbeat", amqp_error_string2(rc));
    return {};
  }

  // Ready messages in `queue` (unacknowledged ones are not counted).
  Result<uint64_t> MessageCount(const std::string& queue) {
    amqp_queue_declare_ok_t* ok = amqp_queue_declare(state_, kChannel, Bytes(queue),
                                                     /*passive=*/1, 0, 0, 0, amqp_empty_table);
    if (!ok) return tl::unexpected(Check("counting the messages of " + queue).error());
    return ok->message_count;
  }

 private:
  Connection() = default;

  tl::unexpected<Error> Fail(std::string_view what, std::string_view why) {
    broken_ = true;
    return MakeError(ErrorCode::kUnavailable, fmt::format("RabbitMQ: {} failed: {}", what, why));
  }

  // Handles a frame while consuming: a delivery is read in full; closes break the connection.
  Result<std::optional<Message>> OnFrame(const amqp_frame_t& frame) {
    if (frame.frame_type != AMQP_FRAME_METHOD) return std::nullopt;
    if (IsClose(frame)) return Fail("receiving", CloseText(frame.payload.method));
    switch (frame.payload.method.id) {
      case AMQP_BASIC_DELIVER_METHOD: {
        auto* deliver = static_cast<amqp_basic_deliver_t*>(frame.payload.method.decoded);
        auto message = ReadContent(deliver->delivery_tag);
        if (!message) return tl::unexpected(message.error());
        return std::move(*message);
      }
      case AMQP_BASIC_CANCEL_METHOD:
        return Fail("receiving", "the broker cancelled the consumer (queue deleted?)");
      default:
        return std::nullopt;  // e.g. consume-ok
    }
  }

  // Reads the header and body that follow a deliver or get-ok.
  Result<Message> ReadContent(uint64_t tag) {
    amqp_message_t content;
    amqp_rpc_reply_t reply = amqp_read_message(state_, kChannel, &content, 0);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
      return Fail("reading a message", ReplyText(reply));
    }
    Message message{.tag = tag,
                    .job_id = String(content.body),
                    .spent = HeaderInt(content.properties, kSpentHeader),
                    .delivery_count = HeaderInt(content.properties, "x-delivery-count")};
    amqp_destroy_message(&content);
    return message;
  }

  amqp_connection_state_t state_ = nullptr;
  bool logged_in_ = false;
  bool broken_ = false;
  uint64_t published_ = 0;  // publishes on the channel: the broker numbers its confirms alike
};

struct RabbitMqJobQueue::Consumer {
  struct Held {
    std::string job_id;
    int attempt = 0;
  };

  const uint64_t id = next_consumer_id++;
  std::mutex mu;  // guards the members below; the connection is not thread-safe
  std::unique_ptr<Connection> connection;
  uint64_t generation = 0;        // bumps when the connection is dropped: its receipts are void
  std::map<uint64_t, Held> held;  // delivery tag → what was handed out, until settled
  bool consuming = false;         // a Take has a consumer open on the connection

  // Reads what the broker sent since, to notice that it closed the connection (an operator, or
  // its consumer_timeout) before trusting a lease. Only while no Take consumes: then no
  // delivery can come, and Take notices a close itself.
  Status CheckOpen() {
    if (consuming) return {};
    auto arrived = connection->ArrivedDelivery();
    if (!arrived) return tl::unexpected(arrived.error());
    if (*arrived) return connection->Reject((*arrived)->tag);  // cannot happen without a consumer
    return {};
  }

  // Drops the connection and the leases taken through it: the broker redelivers them.
  void Drop(std::atomic<int64_t>& held_count) {
    if (connection) connection->MarkBroken();  // no clean close: it may be out of step
    connection.reset();
    consuming = false;
    held_count -= static_cast<int64_t>(held.size());
    held.clear();
    ++generation;
  }

  // A new connection with prefetch 1: a consumer takes one message at a time.
  Status Connect(const AmqpTarget& target, int heartbeat, std::atomic<int64_t>& held_count) {
    Drop(held_count);
    auto opened = Connection::Open(target, heartbeat);
    if (!opened) return tl::unexpected(opened.error());
    amqp_basic_qos((*opened)->state(), kChannel, 0, 1, 0);
    if (auto s = (*opened)->Check("basic.qos"); !s) return s;
    connection = std::move(*opened);
    return {};
  }
};

struct RabbitMqJobQueue::Lease {
  Consumer* consumer = nullptr;
  uint64_t generation = 0;
  uint64_t tag = 0;
  std::string job_id;
  int attempt = 0;
};

namespace {

// The AMQP heartbeat of a consumer connection: half the lease, so that the broker drops a
// connection that went silent (a hung taker) after about a lease, as it allows one to two
// missed heartbeats.
int ConsumerHeartbeat(const JobQueueOptions& options) {
  int64_t seconds = (options.lease.count() + 1999) / 2000;
  return static_cast<int>(std::clamp<int64_t>(seconds, 1, 65535));
}

}  // namespace

RabbitMqJobQueue::RabbitMqJobQueue(AmqpTarget target, JobQueueOptions options)
    : target_(std::move(target)),
      options_(options),
      jobs_exchange_(target_.prefix + ".jobs"),
      dead_exchange_(target_.prefix + ".dead"),
      events_exchange_(target_.prefix + ".events"),
      queue_(target_.prefix + ".convert"),
      delay_queue_(target_.prefix + ".convert.retry"),
      dead_queue_(target_.prefix + ".convert.dead") {}

RabbitMqJobQueue::~RabbitMqJobQueue() = default;

Result<std::unique_ptr<RabbitMqJobQueue>> RabbitMqJobQueue::Open(const AmqpTarget& target,
                                                                 const JobQueueOptions& options) {
  if (auto s = ValidateJobQueueOptions(options); !s) return tl::unexpected(s.error());
  std::unique_ptr<RabbitMqJobQueue> q(new RabbitMqJobQueue(target, options));
  auto conn = Connection::Open(target, 0);
  if (!conn) return tl::unexpected(conn.error());
  Connection& c = **conn;
  auto declare_exchange = [&](const std::string& name, const char* type) {
    amqp_exchange_declare(c.state(), kChannel, Bytes(name), amqp_cstring_bytes(type), 0,
                          /*durable=*/1, 0, 0, amqp_empty_table);
    return c.Check("declaring exchange " + name);
  };
  auto declare_queue = [&](const std::string& name, std::vector<amqp_table_entry_t> args) {
    amqp_table_t table{static_cast<int>(args.size()), args.data()};
    amqp_queue_declare(c.state(), kChannel, Bytes(name), 0, /*durable=*/1, 0, 0, table);
    return c.Check("declaring queue " + name);
  };
  auto bind = [&](const std::string& queue, const std::string& exchange) {
    amqp_queue_bind(c.state(), kChannel, Bytes(queue), Bytes(exchange),
                    amqp_cstring_bytes(kRoutingKey), amqp_empty_table);
    return c.Check("binding queue " + queue);
  };
  auto str_arg = [](const char* key, const std::string& value) {
    amqp_table_entry_t e{};
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = Bytes(value);
    return e;
  };

  const std::string quorum = "quorum", routing_key = kRoutingKey;
  Status declared = declare_exchange(q->jobs_exchange_, "direct");
  if (declared) declared = declare_exchange(q->dead_exchange_, "direct");
  if (declared) declared = declare_exchange(q->events_exchange_, "topic");
  if (declared) {
    declared = declare_queue(q->queue_, {str_arg("x-queue-type", quorum),
                                         str_arg("x-dead-letter-exchange", q->dead_exchange_),
                                         str_arg("x-dead-letter-routing-key", routing_key)});
  }
  if (declared) {
    declared = declare_queue(q->delay_queue_, {str_arg("x-dead-letter-exchange", q->jobs_exchange_),
                                               str_arg("x-dead-letter-routing-key", routing_key)});
  }
  // Classic, so that browsing it (DeadLetters) puts every message back in its place.
  if (declared) declared = declare_queue(q->dead_queue_, {});
  if (declared) declared = bind(q->queue_, q->jobs_exchange_);
  if (declared) declared = bind(q->dead_queue_, q->dead_exchange_);
  if (declared) declared = c.EnableConfirms();
  if (!declared) return tl::unexpected(declared.error());
  q->publisher_ = std::move(*conn);
  return q;
}

Result<RabbitMqJobQueue::Connection*> RabbitMqJobQueue::Publisher() {
  if (publisher_ && !publisher_->broken()) return publisher_.get();
  publisher_.reset();
  auto conn = Connection::Open(target_, 0);
  if (!conn) return tl::unexpected(conn.error());
  if (auto s = (*conn)->EnableConfirms(); !s) return tl::unexpected(s.error());
  publisher_ = std::move(*conn);
  return publisher_.get();
}

template <typename Op>
auto RabbitMqJobQueue::WithPublisher(Op op) -> decltype(op(std::declval<Connection&>())) {
  std::lock_guard lock(publish_mu_);
  // A connection that broke while idle (e.g. the broker restarted) is only found out when used:
  // then try once more on a new one.
  for (int tries = 0;; ++tries) {
    auto conn = Publisher();
    if (!conn) return tl::unexpected(conn.error());
    auto result = op(**conn);
    if (result || !(*conn)->broken() || tries == 1) return result;
  }
}

Status RabbitMqJobQueue::PublishJob(const std::string& exchange, const std::string& routing_key,
                                    std::string_view job_id, int spent_attempts, milliseconds ttl) {
  return WithPublisher([&](Connection& c) {
    return c.Publish({.exchange = exchange,
                      .routing_key = routing_key,
                      .body = job_id,
                      .spent_attempts = spent_attempts,
                      .ttl = ttl});
  });
}

Status RabbitMqJobQueue::PublishDelayed(std::string_view job_id, int spent_attempts,
                                        milliseconds delay) {
  if (delay.count() <= 0) return PublishJob(jobs_exchange_, kRoutingKey, job_id, spent_attempts);
  // Straight into the delay queue through the default exchange.
  return PublishJob("", delay_queue_, job_id, spent_attempts, delay);
}

Status RabbitMqJobQueue::Publish(std::string_view job_id) {
  if (job_id.empty() || job_id.size() > kMaxJobIdLength) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("a queued job id must have 1 to {} bytes", kMaxJobIdLength));
  }
  return PublishJob(jobs_exchange_, kRoutingKey, job_id, 0);
}

void RabbitMqJobQueue::PublishLifecycle(std::string_view event, std::string_view json) {
  Status published = WithPublisher([&](Connection& c) {
    return c.Publish({.exchange = events_exchange_,
                      .routing_key = event,
                      .body = json,
                      .content_type = "application/json",
                      .mandatory = false});
  });
  if (!published) {
    spdlog::debug("queue: lifecycle event {} not published: {}", event, published.error().message);
  }
}

RabbitMqJobQueue::Consumer& RabbitMqJobQueue::ConsumerForThisThread() {
  std::lock_guard lock(consumers_mu_);
  auto& slot = consumers_[std::this_thread::get_id()];
  if (!slot) slot = std::make_unique<Consumer>();
  return *slot;
}

Result<std::optional<Delivery>> RabbitMqJobQueue::Take(milliseconds wait) {
  const auto deadline = Clock::now() + std::max(wait, milliseconds(0));
  Consumer& consumer = ConsumerForThisThread();
  for (;;) {
    if (interrupted_) return std::nullopt;
    auto message = Receive(consumer, deadline);
    if (!message) return tl::unexpected(message.error());
    if (!*message) return std::nullopt;
    auto delivery = HandOut(consumer, std::move(**message));
    if (!delivery || *delivery) return delivery;
  }
}

Result<std::optional<RabbitMqJobQueue::Message>> RabbitMqJobQueue::Receive(
    Consumer& c, Clock::time_point deadline) {
  std::unique_lock lock(c.mu);
  std::optional<Message> got;
  std::string consumer_tag;
  // The first ready message, or else a consumer to wait with.
  auto start = [&]() -> Status {
    auto first = c.connection->Get(queue_);
    if (!first) return tl::unexpected(first.error());
    got = std::move(*first);
    if (got || Clock::now() >= deadline) return {};
    auto tag = c.connection->Consume(queue_);
    if (!tag) return tl::unexpected(tag.error());
    consumer_tag = std::move(*tag);
    c.consuming = true;
    return {};
  };
  const int heartbeat = ConsumerHeartbeat(options_);
  const bool reused = c.connection && !c.connection->broken();
  if (!reused) {
    if (auto s = c.Connect(target_, heartbeat, held_); !s) return tl::unexpected(s.error());
  }
  Status started = start();
  if (!started && reused) {
    // It broke while idle (e.g. the broker restarted): once more on a new connection.
    if (auto s = c.Connect(target_, heartbeat, held_); !s) return tl::unexpected(s.error());
    started = start();
  }
  if (!started) {
    c.Drop(held_);
    return tl::unexpected(started.error());
  }
  const uint64_t generation = c.generation;
  auto lost = [] {
    return MakeError(ErrorCode::kUnavailable,
                     "RabbitMQ: the connection was lost while waiting for a job");
  };

  if (!consumer_tag.empty()) {
    // Wait on the socket without holding the connection, so that Ack and Heartbeat from other
    // threads are not held up, and look at Interrupt() every slice.
    while (!interrupted_) {
      auto next = c.connection->ArrivedDelivery();
      if (!next) {
        c.Drop(held_);
        return tl::unexpected(next.error());
      }
      got = std::move(*next);
      const milliseconds left = Until(deadline);
      if (got || left.count() == 0) break;
      const int fd = c.connection->fd();
      lock.unlock();
      WaitReadable(fd, std::min(kWaitSlice, left));
      lock.lock();
      if (c.generation != generation) return lost();
    }
    auto late = c.connection->Cancel(consumer_tag);
    c.consuming = false;
    if (!late) {
      c.Drop(held_);
      return tl::unexpected(late.error());
    }
    if (!got) got = std::move(*late);
  }
  if (got) got->generation = generation;
  return got;
}

Result<std::optional<Delivery>> RabbitMqJobQueue::HandOut(Consumer& c, Message message) {
  const int attempt = static_cast<int>(message.spent + message.delivery_count + 1);
  const bool dead = attempt > options_.max_attempts;
  if (dead || interrupted_) {
    // Out of attempts: its takers kept dying (the broker counted the deliveries), so it goes
    // to the dead letters rather than loop. Interrupted: it goes back untouched.
    Status moved = PublishJob(dead ? dead_exchange_ : jobs_exchange_, kRoutingKey, message.job_id,
                              attempt - 1);
    std::lock_guard lock(c.mu);
    if (c.generation == message.generation) {
      // Acknowledged once its copy is stored; else back to the queue, counting a delivery.
      Status settled = moved ? c.connection->Ack(message.tag) : c.connection->Reject(message.tag);
      if (!settled) c.Drop(held_);
    }
    if (!moved) return tl::unexpected(moved.error());
    if (dead) {
      spdlog::warn("queue: job {} dead-lettered: its taker was lost on each of {} attempts",
                   message.job_id, attempt - 1);
    }
    return std::nullopt;
  }
  std::lock_guard lock(c.mu);
  if (c.generation != message.generation) {
    return MakeError(ErrorCode::kUnavailable,
                     "RabbitMQ: the connection was lost while taking a job");
  }
  c.held.emplace(message.tag, Consumer::Held{message.job_id, attempt});
  ++held_;
  return Delivery{.job_id = std::move(message.job_id),
                  .attempt = attempt,
                  .receipt = fmt::format("{}.{}.{}", c.id, c.generation, message.tag)};
}

Result<RabbitMqJobQueue::Lease> RabbitMqJobQueue::FindLease(const Delivery& delivery, bool claim) {
  auto receipt = ParseReceipt(delivery.receipt);
  if (!receipt) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("malformed queue receipt for job {}", delivery.job_id));
  }
  Consumer* c = nullptr;
  {
    std::lock_guard lock(consumers_mu_);
    for (auto& [thread, consumer] : consumers_) {
      if (consumer->id == receipt->consumer) c = consumer.get();
    }
  }
  if (!c) return LeaseLost(delivery, "it was not taken through this queue handle");
  std::lock_guard lock(c->mu);
  if (c->generation != receipt->generation) {
    return LeaseLost(delivery, "the connection it was taken through was lost");
  }
  auto it = c->held.find(receipt->tag);
  if (it == c->held.end()) return LeaseLost(delivery, "it was acked, retried or released already");
  Lease lease{.consumer = c,
              .generation = receipt->generation,
              .tag = receipt->tag,
              .job_id = it->second.job_id,
              .attempt = it->second.attempt};
  if (claim) {
    c->held.erase(it);
    --held_;
  }
  return lease;
}

void RabbitMqJobQueue::GiveBack(const Lease& lease) {
  std::lock_guard lock(lease.consumer->mu);
  if (lease.consumer->generation != lease.generation) return;  // dropped already: requeued
  spdlog::warn("job {}: could not move it in the queue; giving it back to the broker",
               lease.job_id);
  lease.consumer->Drop(held_);
}

Status RabbitMqJobQueue::AckLease(const Lease& lease) {
  Consumer& c = *lease.consumer;
  std::lock_guard lock(c.mu);
  if (c.generation != lease.generation) {
    return MakeError(ErrorCode::kConflict,
                     fmt::format("job {} lost its queue lease: the connection it was taken "
                                 "through was lost, so the broker delivers it again",
                                 lease.job_id));
  }
  Status acked = c.CheckOpen();
  if (acked) acked = c.connection->Ack(lease.tag);
  if (!acked) {
    c.Drop(held_);
    return MakeError(ErrorCode::kConflict,
                     fmt::format("job {} lost its queue lease: {}; the broker delivers it again",
                                 lease.job_id, acked.error().message));
  }
  return {};
}

Status RabbitMqJobQueue::Ack(const Delivery& delivery) {
  auto lease = FindLease(delivery, /*claim=*/true);
  if (!lease) return tl::unexpected(lease.error());
  return AckLease(*lease);
}

Result<bool> RabbitMqJobQueue::Retry(const Delivery& delivery, milliseconds delay) {
  auto lease = FindLease(delivery, /*claim=*/true);
  if (!lease) return tl::unexpected(lease.error());
  // The attempt count comes from the lease, not from the caller's copy of the delivery.
  const bool dead = lease->attempt >= options_.max_attempts;
  Status moved = dead ? PublishJob(dead_exchange_, kRoutingKey, lease->job_id, lease->attempt)
                      : PublishDelayed(lease->job_id, lease->attempt, delay);
  if (!moved) {
    GiveBack(*lease);
    return tl::unexpected(moved.error());
  }
  if (auto acked = AckLease(*lease); !acked) return tl::unexpected(acked.error());
  return dead;
}

Status RabbitMqJobQueue::Release(const Delivery& delivery) {
  auto lease = FindLease(delivery, /*claim=*/true);
  if (!lease) return tl::unexpected(lease.error());
  if (auto moved = PublishJob(jobs_exchange_, kRoutingKey, lease->job_id, lease->attempt - 1);
      !moved) {
    GiveBack(*lease);
    return moved;
  }
  return AckLease(*lease);
}

Status RabbitMqJobQueue::Heartbeat(const Delivery& delivery) {
  auto lease = FindLease(delivery, /*claim=*/false);
  if (!lease) return tl::unexpected(lease.error());
  Consumer& c = *lease->consumer;
  std::lock_guard lock(c.mu);
  if (c.generation != lease->generation) {
    return LeaseLost(delivery, "the connection it was taken through was lost");
  }
  Status sent = c.CheckOpen();
  if (sent) sent = c.connection->SendHeartbeat();
  if (!sent) {
    c.Drop(held_);
    return LeaseLost(delivery, sent.error().message);
  }
  return {};
}

Result<uint64_t> RabbitMqJobQueue::Depth() {
  auto ready = WithPublisher([&](Connection& c) -> Result<uint64_t> {
    auto ready = c.MessageCount(queue_);
    if (!ready) return ready;
    auto delayed = c.MessageCount(delay_queue_);
    if (!delayed) return delayed;
    return *ready + *delayed;
  });
  if (!ready) return ready;
  return *ready + static_cast<uint64_t>(std::max<int64_t>(0, held_.load()));
}

Result<std::vector<std::string>> RabbitMqJobQueue::DeadLetters() {
  return WithPublisher([&](Connection& c) -> Result<std::vector<std::string>> {
    std::vector<std::string> ids;
    uint64_t last_tag = 0;
    while (ids.size() < kMaxDeadLetters) {
      auto message = c.Get(dead_queue_);
      if (!message) return tl::unexpected(message.error());
      if (!*message) break;
      last_tag = (*message)->tag;
      ids.push_back(std::move((*message)->job_id));
    }
    if (last_tag != 0) {
      if (auto s = c.RequeueAll(last_tag); !s) return tl::unexpected(s.error());
    }
    return ids;
  });
}

void RabbitMqJobQueue::Interrupt() { interrupted_ = true; }

Status RabbitMqJobQueue::Ping() {
  auto ready = WithPublisher([&](Connection& c) { return c.MessageCount(queue_); });
  if (!ready) return tl::unexpected(ready.error());
  return {};
}

std::string RabbitMqJobQueue::Describe() const {
  return fmt::format("amqp://{}@{}:{}/ (queue {})", target_.user, target_.host, target_.port,
                     queue_);
}

}  // namespace vmp3
