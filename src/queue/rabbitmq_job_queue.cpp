#include "queue/rabbitmq_job_queue.hpp"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/time.h>

#include <charconv>
#include <cstring>

namespace vmp3 {
namespace {

constexpr amqp_channel_t kChannel = 1;

amqp_bytes_t Bytes(std::string_view s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}
std::string String(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

timeval TimeVal(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

std::string PercentDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      int value = 0;
      auto [p, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, value, 16);
      if (ec == std::errc() && p == in.data() + i + 3) {
        out += static_cast<char>(value);
        i += 2;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

int64_t HeaderInt(const amqp_basic_properties_t& props, std::string_view name) {
  if (!(props._flags & AMQP_BASIC_HEADERS_FLAG)) return 0;
  for (int i = 0; i < props.headers.num_entries; ++i) {
    const amqp_table_entry_t& e = props.headers.entries[i];
    if (String(e.key) != name) continue;
    switch (e.value.kind) {
      case AMQP_FIELD_KIND_I8: return e.value.value.i8;
      case AMQP_FIELD_KIND_U8: return e.value.value.u8;
      case AMQP_FIELD_KIND_I16: return e.value.value.i16;
      case AMQP_FIELD_KIND_U16: return e.value.value.u16;
      case AMQP_FIELD_KIND_I32: return e.value.value.i32;
      case AMQP_FIELD_KIND_U32: return e.value.value.u32;
      case AMQP_FIELD_KIND_I64: return e.value.value.i64;
      case AMQP_FIELD_KIND_U64: return static_cast<int64_t>(e.value.value.u64);
      default: return 0;
    }
  }
  return 0;
}

std::string ReplyText(const amqp_rpc_reply_t& reply) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL: return "ok";
    case AMQP_RESPONSE_NONE: return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION: return amqp_error_string2(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
        return fmt::format("connection closed by broker: {}", String(m->reply_text));
      }
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* m = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
        return fmt::format("channel closed by broker: {}", String(m->reply_text));
      }
      return "broker error";
  }
  return "unknown";
}

}  // namespace

Result<AmqpTarget> AmqpTarget::Parse(std::string_view url) {
  AmqpTarget t;
  std::string_view rest = url;
  if (!rest.starts_with("amqp://"))
    return MakeError(ErrorCode::kInvalidArgument, "a RabbitMQ URL starts with amqp://");
  rest.remove_prefix(7);
  size_t q = rest.find('?');
  std::string_view query = q == std::string_view::npos ? "" : rest.substr(q + 1);
  rest = rest.substr(0, q);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos && slash + 1 < rest.size())
    t.vhost = PercentDecode(rest.substr(slash + 1));
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    t.user = PercentDecode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) t.password = PercentDecode(userinfo.substr(colon + 1));
  }
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos) {
    auto port = authority.substr(colon + 1);
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), t.port);
    if (ec != std::errc() || t.port <= 0 || t.port > 65535)
      return MakeError(ErrorCode::kInvalidArgument, "bad port in the RabbitMQ URL");
    authority = authority.substr(0, colon);
  }
  if (!authority.empty()) t.host = std::string(authority);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (pair.starts_with("prefix=")) t.prefix = std::string(pair.substr(7));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  if (t.prefix.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty queue prefix");
  return t;
}

// One AMQP connection with channel 1 open.
class RabbitMqJobQueue::Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const AmqpTarget& t) {
    std::unique_ptr<Connection> c(new Connection());
    c->state_ = amqp_new_connection();
    amqp_socket_t* socket = amqp_tcp_socket_new(c->state_);
    if (!socket) return MakeError(ErrorCode::kInternal, "cannot create an AMQP socket");
    timeval timeout = TimeVal(std::chrono::seconds(5));
    if (amqp_socket_open_noblock(socket, t.host.c_str(), t.port, &timeout) != AMQP_STATUS_OK) {
      return MakeError(ErrorCode::kUnavailable,
                       fmt::format("RabbitMQ at {}:{} is unavailable", t.host, t.port));
    }
    c->open_ = true;
    amqp_set_rpc_timeout(c->state_, &timeout);
    amqp_rpc_reply_t reply = amqp_login(c->state_, t.vhost.c_str(), 0, 131072, 30,
                                        AMQP_SASL_METHOD_PLAIN, t.user.c_str(), t.password.c_str());
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
      return MakeError(ErrorCode::kPermissionDenied,
                       fmt::format("RabbitMQ refused the login of '{}': {}", t.user, ReplyText(reply)));
    }
    amqp_channel_open(c->state_, kChannel);
    if (auto s = c->Check("open channel"); !s) return tl::unexpected(s.error());
    return c;
  }

  ~Connection() {
    if (!state_) return;
    if (open_) {
      amqp_channel_close(state_, kChannel, AMQP_REPLY_SUCCESS);
      amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(state_);
  }

  amqp_connection_state_t state() { return state_; }

  Status Check(std::string_view what) {
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(state_);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) return {};
    broken_ = true;
    return MakeError(ErrorCode::kUnavailable, fmt::format("RabbitMQ: {} failed: {}", what, ReplyText(reply)));
  }
  bool broken() const { return broken_; }
  void MarkBroken() { broken_ = true; }

  Status EnableConfirms() {
    amqp_confirm_select(state_, kChannel);
    return Check("confirm.select");
  }

  // Publishes persistently and waits for the broker's confirm.
  Status PublishConfirmed(const std::string& exchange, std::string_view routing_key,
                          std::string_view body, int spent_attempts,
                          std::optional<std::chrono::milliseconds> ttl) {
    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.delivery_mode = 2;  // persistent
    props.content_type = amqp_cstring_bytes("text/plain");
    amqp_table_entry_t header{};
    std::string expiration;
    if (spent_attempts > 0) {
      header.key = amqp_cstring_bytes("x-vmp3-attempt");
      header.value.kind = AMQP_FIELD_KIND_I32;
      header.value.value.i32 = spent_attempts;
      props._flags |= AMQP_BASIC_HEADERS_FLAG;
      props.headers.num_entries = 1;
      props.headers.entries = &header;
    }
    if (ttl) {
      expiration = std::to_string(std::max<int64_t>(1, ttl->count()));
      props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
      props.expiration = Bytes(expiration);
    }
    int rc = amqp_basic_publish(state_, kChannel, Bytes(exchange), Bytes(routing_key), 0, 0, &props,
                                Bytes(body));
    if (rc != AMQP_STATUS_OK) {
      broken_ = true;
      return MakeError(ErrorCode::kUnavailable,
                       fmt::format("RabbitMQ: publish failed: {}", amqp_error_string2(rc)));
    }
    // Wait for basic.ack (confirm) for this publish.
    for (;;) {
      amqp_frame_t frame;
      timeval timeout = TimeVal(std::chrono::seconds(10));
      amqp_maybe_release_buffers(state_);
      rc = amqp_simple_wait_frame_noblock(state_, &frame, &timeout);
      if (rc != AMQP_STATUS_OK) {
        broken_ = true;
        return MakeError(ErrorCode::kUnavailable, "RabbitMQ did not confirm the publish");
      }
      if (frame.frame_type != AMQP_FRAME_METHOD) continue;
      if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) return {};
      if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD)
        return MakeError(ErrorCode::kUnavailable, "RabbitMQ refused to store the message");
      if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
          frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
        broken_ = true;
        return MakeError(ErrorCode::kUnavailable, "RabbitMQ closed the channel while publishing");
      }
    }
  }

 private:
  Connection() = default;
  amqp_connection_state_t state_ = nullptr;
  bool open_ = false;
  bool broken_ = false;
};

struct RabbitMqJobQueue::Consumer {
  std::mutex mu;
  uint64_t id = 0;
  std::unique_ptr<Connection> connection;
  uint64_t generation = 0;  // bumps on reconnect: older receipts are void
};

namespace {
std::atomic<uint64_t> next_consumer_id{1};
}

RabbitMqJobQueue::RabbitMqJobQueue(AmqpTarget target, JobQueueOptions options)
    : target_(std::move(target)), options_(options) {}

RabbitMqJobQueue::~RabbitMqJobQueue() = default;

Result<std::unique_ptr<RabbitMqJobQueue>> RabbitMqJobQueue::Open(const AmqpTarget& target,
                                                                  const JobQueueOptions& options) {
  if (auto s = ValidateJobQueueOptions(options); !s) return tl::unexpected(s.error());
  std::unique_ptr<RabbitMqJobQueue> q(new RabbitMqJobQueue(target, options));
  auto conn = Connection::Open(target);
  if (!conn) return tl::unexpected(conn.error());
  amqp_connection_state_t s = (*conn)->state();
  const std::string& p = target.prefix;
  auto declare_exchange = [&](const std::string& name, const char* type) {
    amqp_exchange_declare(s, kChannel, Bytes(name), amqp_cstring_bytes(type), 0, 1, 0, 0, amqp_empty_table);
    return (*conn)->Check("declare exchange " + name);
  };
  auto declare_queue = [&](const std::string& name, std::vector<amqp_table_entry_t> args) {
    amqp_table_t table{static_cast<int>(args.size()), args.data()};
    amqp_queue_declare(s, kChannel, Bytes(name), 0, 1, 0, 0, table);
    return (*conn)->Check("declare queue " + name);
  };
  auto bind = [&](const std::string& queue, const std::string& exchange) {
    amqp_queue_bind(s, kChannel, Bytes(queue), Bytes(exchange), amqp_cstring_bytes("convert"), amqp_empty_table);
    return (*conn)->Check("bind " + queue);
  };
  auto str_arg = [](const char* key, const std::string& value) {
    amqp_table_entry_t e{};
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = Bytes(value);
    return e;
  };
  auto int_arg = [](const char* key, int64_t value) {
    amqp_table_entry_t e{};
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_I64;
    e.value.value.i64 = value;
    return e;
  };
  std::string jobs = p + ".jobs", retry = p + ".retry", dead = p + ".dead", events = p + ".events";
  std::string quorum = "quorum", convert = "convert";
  Status s1 = declare_exchange(jobs, "direct");
  if (s1) s1 = declare_exchange(retry, "direct");
  if (s1) s1 = declare_exchange(dead, "direct");
  if (s1) s1 = declare_exchange(events, "topic");
  if (s1) {
    s1 = declare_queue(p + ".convert", {str_arg("x-queue-type", quorum),
                                        int_arg("x-delivery-limit", options.max_attempts),
                                        str_arg("x-dead-letter-exchange", dead),
                                        str_arg("x-dead-letter-routing-key", convert)});
  }
  if (s1) {
    s1 = declare_queue(p + ".convert.retry", {str_arg("x-dead-letter-exchange", jobs),
                                              str_arg("x-dead-letter-routing-key", convert)});
  }
  if (s1) s1 = declare_queue(p + ".convert.dead", {str_arg("x-queue-type", quorum)});
  if (s1) s1 = bind(p + ".convert", jobs);
  if (s1) s1 = bind(p + ".convert.retry", retry);
  if (s1) s1 = bind(p + ".convert.dead", dead);
  if (s1) s1 = (*conn)->EnableConfirms();
  if (!s1) return tl::unexpected(s1.error());
  q->publisher_ = std::move(*conn);
  return q;
}

Status RabbitMqJobQueue::Republish(const std::string& exchange, std::string_view job_id,
                                   int spent_attempts, std::optional<std::chrono::milliseconds> ttl) {
  std::lock_guard lock(publish_mu_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!publisher_ || publisher_->broken()) {
      publisher_.reset();
      auto conn = Connection::Open(target_);
      if (!conn) return tl::unexpected(conn.error());
      if (auto s = (*conn)->EnableConfirms(); !s) return s;
      publisher_ = std::move(*conn);
    }
    Status s = publisher_->PublishConfirmed(exchange, "convert", job_id, spent_attempts, ttl);
    if (s || !publisher_->broken()) return s;
  }
  return MakeError(ErrorCode::kUnavailable, "RabbitMQ is unavailable");
}

Status RabbitMqJobQueue::Publish(std::string_view job_id) {
  if (job_id.empty() || job_id.size() > 200)
    return MakeError(ErrorCode::kInvalidArgument, "job id must be 1..200 bytes");
  return Republish(target_.prefix + ".jobs", job_id, 0, std::nullopt);
}

void RabbitMqJobQueue::PublishLifecycle(std::string_view event, std::string_view json) {
  std::lock_guard lock(publish_mu_);
  if (!publisher_ || publisher_->broken()) return;  // best effort: never blocks a job on it
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2;
  props.content_type = amqp_cstring_bytes("application/json");
  std::string exchange = target_.prefix + ".events";
  if (amqp_basic_publish(publisher_->state(), kChannel, Bytes(exchange), Bytes(event), 0, 0, &props,
                         Bytes(json)) != AMQP_STATUS_OK) {
    publisher_->MarkBroken();
    return;
  }
  // The channel is in confirm mode: consume this publish's confirm so later waits stay in step.
  amqp_frame_t frame;
  timeval timeout = TimeVal(std::chrono::seconds(5));
  while (amqp_simple_wait_frame_noblock(publisher_->state(), &frame, &timeout) == AMQP_STATUS_OK) {
    if (frame.frame_type == AMQP_FRAME_METHOD &&
        (frame.payload.method.id == AMQP_BASIC_ACK_METHOD || frame.payload.method.id == AMQP_BASIC_NACK_METHOD))
      return;
  }
  publisher_->MarkBroken();
}

Result<RabbitMqJobQueue::Consumer*> RabbitMqJobQueue::ConsumerForThisThread() {
  std::lock_guard lock(consumers_mu_);
  auto& slot = consumers_[std::this_thread::get_id()];
  if (!slot) {
    slot = std::make_unique<Consumer>();
    slot->id = next_consumer_id++;
  }
  return slot.get();
}

Result<std::optional<Delivery>> RabbitMqJobQueue::Take(std::chrono::milliseconds wait) {
  auto consumer = ConsumerForThisThread();
  if (!consumer) return tl::unexpected(consumer.error());
  Consumer& c = **consumer;
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (interrupted_) return std::optional<Delivery>();
    std::unique_lock lock(c.mu);
    if (!c.connection || c.connection->broken()) {
      c.connection.reset();
      auto conn = Connection::Open(target_);
      if (!conn) return tl::unexpected(conn.error());
      amqp_basic_qos((*conn)->state(), kChannel, 0, 1, 0);  // prefetch 1: one job per converter
      if (auto s = (*conn)->Check("basic.qos"); !s) return tl::unexpected(s.error());
      std::string queue = target_.prefix + ".convert";
      amqp_basic_consume((*conn)->state(), kChannel, Bytes(queue), amqp_empty_bytes, 0, 0, 0,
                         amqp_empty_table);
      if (auto s = (*conn)->Check("basic.consume"); !s) return tl::unexpected(s.error());
      c.connection = std::move(*conn);
      ++c.generation;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto slice = std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(100));
    amqp_envelope_t envelope;
    timeval timeout = TimeVal(slice);
    amqp_maybe_release_buffers(c.connection->state());
    amqp_rpc_reply_t reply = amqp_consume_message(c.connection->state(), &envelope, &timeout, 0);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
      std::string job_id = String(envelope.message.body);
      int attempt = static_cast<int>(HeaderInt(envelope.message.properties, "x-vmp3-attempt") +
                                     HeaderInt(envelope.message.properties, "x-delivery-count") + 1);
      uint64_t tag = envelope.delivery_tag;
      amqp_destroy_envelope(&envelope);
      if (attempt > options_.max_attempts) {
        // Its taker kept dying: dead-letter it rather than loop.
        lock.unlock();
        if (auto s = Republish(target_.prefix + ".dead", job_id, attempt - 1, std::nullopt); !s)
          return tl::unexpected(s.error());
        lock.lock();
        amqp_basic_ack(c.connection->state(), kChannel, tag, 0);
        continue;
      }
      ++held_;
      return std::optional<Delivery>(Delivery{
          job_id, attempt, fmt::format("{}:{}:{}", c.id, c.generation, tag)});
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_TIMEOUT) {
      if (std::chrono::steady_clock::now() >= deadline) return std::optional<Delivery>();
      continue;
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      // A non-delivery frame (e.g. a confirm or a heartbeat): read and drop it.
      amqp_frame_t frame;
      timeval zero = TimeVal(std::chrono::milliseconds(0));
      if (amqp_simple_wait_frame_noblock(c.connection->state(), &frame, &zero) == AMQP_STATUS_OK &&
          frame.frame_type == AMQP_FRAME_METHOD &&
          (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
           frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        c.connection->MarkBroken();
      }
      continue;
    }
    c.connection->MarkBroken();
    return MakeError(ErrorCode::kUnavailable, fmt::format("RabbitMQ: consume failed: {}", ReplyText(reply)));
  }
}

Result<RabbitMqJobQueue::Consumer*> RabbitMqJobQueue::ConsumerFor(const Delivery& delivery, uint64_t* tag) {
  uint64_t id = 0, generation = 0;
  if (std::sscanf(delivery.receipt.c_str(), "%lu:%lu:%lu", &id, &generation, tag) != 3)
    return MakeError(ErrorCode::kInvalidArgument, "malformed delivery receipt");
  std::lock_guard lock(consumers_mu_);
  for (auto& [thread, consumer] : consumers_) {
    if (consumer->id != id) continue;
    if (consumer->generation != generation || !consumer->connection || consumer->connection->broken())
      return MakeError(ErrorCode::kConflict, "the delivery's lease was lost (connection closed)");
    return consumer.get();
  }
  return MakeError(ErrorCode::kConflict, "unknown delivery");
}

Status RabbitMqJobQueue::Settle(const Delivery& delivery, bool ack) {
  uint64_t tag = 0;
  auto consumer = ConsumerFor(delivery, &tag);
  if (!consumer) return tl::unexpected(consumer.error());
  std::lock_guard lock((*consumer)->mu);
  int rc = ack ? amqp_basic_ack((*consumer)->connection->state(), kChannel, tag, 0)
               : amqp_basic_nack((*consumer)->connection->state(), kChannel, tag, 0, 1);
  --held_;
  if (rc != AMQP_STATUS_OK) {
    (*consumer)->connection->MarkBroken();
    return MakeError(ErrorCode::kUnavailable, "RabbitMQ: acknowledgement failed");
  }
  return {};
}

Status RabbitMqJobQueue::Ack(const Delivery& delivery) { return Settle(delivery, true); }

Result<bool> RabbitMqJobQueue::Retry(const Delivery& delivery, std::chrono::milliseconds delay) {
  uint64_t tag = 0;
  if (auto c = ConsumerFor(delivery, &tag); !c) return tl::unexpected(c.error());
  bool dead = delivery.attempt >= options_.max_attempts;
  Status s = dead ? Republish(target_.prefix + ".dead", delivery.job_id, delivery.attempt, std::nullopt)
                  : Republish(target_.prefix + ".retry", delivery.job_id, delivery.attempt, delay);
  if (!s) return tl::unexpected(s.error());
  if (auto a = Settle(delivery, true); !a) return tl::unexpected(a.error());
  return dead;
}

Status RabbitMqJobQueue::Release(const Delivery& delivery) {
  uint64_t tag = 0;
  if (auto c = ConsumerFor(delivery, &tag); !c) return tl::unexpected(c.error());
  if (auto s = Republish(target_.prefix + ".jobs", delivery.job_id, delivery.attempt - 1, std::nullopt); !s)
    return s;
  return Settle(delivery, true);
}

Status RabbitMqJobQueue::Heartbeat(const Delivery& delivery) {
  uint64_t tag = 0;
  auto c = ConsumerFor(delivery, &tag);
  if (!c) return tl::unexpected(c.error());
  return {};  // the open channel is the lease
}

Result<uint64_t> RabbitMqJobQueue::Depth() {
  std::lock_guard lock(publish_mu_);
  if (!publisher_ || publisher_->broken()) {
    publisher_.reset();
    auto conn = Connection::Open(target_);
    if (!conn) return tl::unexpected(conn.error());
    if (auto s = (*conn)->EnableConfirms(); !s) return tl::unexpected(s.error());
    publisher_ = std::move(*conn);
  }
  std::string queue = target_.prefix + ".convert";
  auto* ok = amqp_queue_declare(publisher_->state(), kChannel, Bytes(queue), 1, 0, 0, 0, amqp_empty_table);
  if (!ok) {
    Status s = publisher_->Check("queue depth");
    return tl::unexpected(s ? Error(ErrorCode::kUnavailable, "RabbitMQ: queue depth failed") : s.error());
  }
  return static_cast<uint64_t>(ok->message_count) + static_cast<uint64_t>(std::max<int64_t>(0, held_.load()));
}

Result<std::vector<std::string>> RabbitMqJobQueue::DeadLetters() {
  // Browse without removing: get each message unacked, then close the channel (they return).
  auto conn = Connection::Open(target_);
  if (!conn) return tl::unexpected(conn.error());
  std::vector<std::string> ids;
  std::string queue = target_.prefix + ".convert.dead";
  for (int i = 0; i < 10000; ++i) {
    amqp_rpc_reply_t reply = amqp_basic_get((*conn)->state(), kChannel, Bytes(queue), 0);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL)
      return MakeError(ErrorCode::kUnavailable, "RabbitMQ: cannot read the dead-letter queue");
    if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) break;
    amqp_message_t message;
    if (amqp_read_message((*conn)->state(), kChannel, &message, 0).reply_type != AMQP_RESPONSE_NORMAL)
      return MakeError(ErrorCode::kUnavailable, "RabbitMQ: cannot read a dead letter");
    ids.push_back(String(message.body));
    amqp_destroy_message(&message);
  }
  return ids;
}

void RabbitMqJobQueue::Interrupt() { interrupted_ = true; }

Status RabbitMqJobQueue::Ping() {
  auto depth = Depth();
  if (!depth) return tl::unexpected(depth.error());
  return {};
}

std::string RabbitMqJobQueue::Describe() const {
  return fmt::format("amqp://{}@{}:{}/ (queue {}.convert)", target_.user, target_.host, target_.port,
                     target_.prefix);
}

}  // namespace vmp3
