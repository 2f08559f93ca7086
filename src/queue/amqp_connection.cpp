#include "queue/amqp_connection.hpp"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <fmt/format.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>

#include "common/backend_url.hpp"
#include "common/deadline.hpp"

namespace vmp3 {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr amqp_channel_t kChannel = 1;
constexpr milliseconds kMaxTimeout(3600000);
// The longest a destructor waits for the broker to acknowledge a clean close.
constexpr milliseconds kCloseWait(1000);

amqp_bytes_t Bytes(std::string_view s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}
std::string String(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

timeval TimeVal(milliseconds ms) {
  ms = std::max(ms, milliseconds(0));
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

std::optional<int64_t> IntValue(const amqp_field_value_t& v) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_I8:
      return v.value.i8;
    case AMQP_FIELD_KIND_U8:
      return v.value.u8;
    case AMQP_FIELD_KIND_I16:
      return v.value.i16;
    case AMQP_FIELD_KIND_U16:
      return v.value.u16;
    case AMQP_FIELD_KIND_I32:
      return v.value.i32;
    case AMQP_FIELD_KIND_U32:
      return v.value.u32;
    case AMQP_FIELD_KIND_I64:
      return v.value.i64;
    case AMQP_FIELD_KIND_U64:
      return static_cast<int64_t>(v.value.u64);
    default:
      return std::nullopt;
  }
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

bool IsClose(const amqp_method_t& method) {
  return method.id == AMQP_CHANNEL_CLOSE_METHOD || method.id == AMQP_CONNECTION_CLOSE_METHOD;
}

std::string ReplyText(const amqp_rpc_reply_t& reply, milliseconds waited) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      if (reply.library_error == AMQP_STATUS_TIMEOUT) {
        return fmt::format("no answer within {} ms: the broker is stalled or overloaded",
                           waited.count());
      }
      return amqp_error_string2(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (IsClose(reply.reply)) return CloseText(reply.reply);
      return "unexpected broker reply";
  }
  return "unknown";
}

// The client properties that ask for connection.blocked/unblocked notifications (merged by
// rabbitmq-c into its default properties and capabilities).
struct BlockedCapability {
  amqp_table_entry_t capability{};
  amqp_table_entry_t capabilities{};
  amqp_table_t properties{};

  BlockedCapability() {
    capability.key = amqp_cstring_bytes("connection.blocked");
    capability.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    capability.value.value.boolean = 1;
    capabilities.key = amqp_cstring_bytes("capabilities");
    capabilities.value.kind = AMQP_FIELD_KIND_TABLE;
    capabilities.value.value.table = amqp_table_t{1, &capability};
    properties = amqp_table_t{1, &capabilities};
  }
};

}  // namespace

Result<AmqpTarget> AmqpTarget::Parse(std::string_view url) {
  auto parts = ParseBackendUrl(url, "amqp", "RabbitMQ", {"prefix", "timeout_ms"});
  if (!parts) return tl::unexpected(parts.error());
  AmqpTarget t;
  if (!parts->host.empty()) t.host = parts->host;
  if (parts->port) t.port = *parts->port;
  if (parts->user) t.user = *parts->user;
  if (parts->password) t.password = *parts->password;
  if (!parts->path.empty()) t.vhost = parts->path;  // "%2f" decodes to "/"
  for (const auto& [name, value] : parts->params) {
    if (name == "prefix") t.prefix = value;
    if (name == "timeout_ms") {
      int64_t ms = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
      if (ec != std::errc() || end != value.data() + value.size() || ms < 1 ||
          ms > kMaxTimeout.count()) {
        return MakeError(ErrorCode::kInvalidArgument,
                         fmt::format("the RabbitMQ URL has a bad timeout_ms (expected "
                                     "milliseconds, 1 to {})",
                                     kMaxTimeout.count()));
      }
      t.timeout = milliseconds(ms);
    }
  }
  if (t.prefix.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty queue prefix");
  return t;
}

int64_t AmqpMessage::IntHeader(std::string_view name) const {
  for (const auto& [key, value] : int_headers)
    if (key == name) return value;
  return 0;
}

struct AmqpConnection::Frame {
  amqp_frame_t frame;
};

AmqpConnection::AmqpConnection(const AmqpTarget& target)
    : host_(target.host), port_(target.port), timeout_(target.timeout) {}

Result<std::unique_ptr<AmqpConnection>> AmqpConnection::Open(const AmqpTarget& t,
                                                             const Options& options) {
  const milliseconds budget = TimeBudget(t.timeout);
  if (budget.count() <= 0) return tl::unexpected(DeadlinePassed("RabbitMQ"));
  const auto deadline = Clock::now() + budget;
  std::unique_ptr<AmqpConnection> c(new AmqpConnection(t));
  c->state_ = amqp_new_connection();
  amqp_socket_t* socket = c->state_ ? amqp_tcp_socket_new(c->state_) : nullptr;
  if (!socket) return MakeError(ErrorCode::kInternal, "cannot create an AMQP socket");
  timeval wait = TimeVal(TimeLeft(deadline));
  if (int rc = amqp_socket_open_noblock(socket, t.host.c_str(), t.port, &wait);
      rc != AMQP_STATUS_OK) {
    return MakeError(ErrorCode::kUnavailable,
                     fmt::format("RabbitMQ at {}:{} is unavailable: {}", t.host, t.port,
                                 rc == AMQP_STATUS_TIMEOUT
                                     ? fmt::format("no connection within {} ms", budget.count())
                                     : amqp_error_string2(rc)));
  }
  wait = TimeVal(TimeLeft(deadline));
  amqp_set_handshake_timeout(c->state_, &wait);
  BlockedCapability capability;
  amqp_rpc_reply_t reply = amqp_login_with_properties(
      c->state_, t.vhost.c_str(), 0, 131072, options.heartbeat_seconds, &capability.properties,
      AMQP_SASL_METHOD_PLAIN, t.user.c_str(), t.password.c_str());
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_TIMEOUT) {
      return MakeError(ErrorCode::kUnavailable,
                       fmt::format("RabbitMQ at {}:{} accepted the connection but did not "
                                   "complete the login within {} ms: the broker is stalled or "
                                   "overloaded",
                                   t.host, t.port, budget.count()));
    }
    return MakeError(reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION
                         ? ErrorCode::kPermissionDenied
                         : ErrorCode::kUnavailable,
                     fmt::format("RabbitMQ at {}:{} refused the login of '{}' to vhost '{}': {}",
                                 t.host, t.port, t.user, t.vhost, ReplyText(reply, budget)));
  }
  c->logged_in_ = true;
  if (auto s = c->StartRpc(); !s) return tl::unexpected(s.error());
  amqp_channel_open(c->state_, kChannel);
  if (auto s = c->CheckRpc("opening a channel"); !s) return tl::unexpected(s.error());
  if (options.prefetch > 0) {
    if (auto s = c->StartRpc(); !s) return tl::unexpected(s.error());
    amqp_basic_qos(c->state_, kChannel, 0, static_cast<uint16_t>(options.prefetch), 0);
    if (auto s = c->CheckRpc("basic.qos"); !s) return tl::unexpected(s.error());
  }
  if (options.confirms) {
    if (auto s = c->StartRpc(); !s) return tl::unexpected(s.error());
    amqp_confirm_select(c->state_, kChannel);
    if (auto s = c->CheckRpc("confirm.select"); !s) return tl::unexpected(s.error());
  }
  return c;
}

AmqpConnection::~AmqpConnection() {
  if (!state_) return;
  // A blocked connection is not read by the broker until the alarm clears: it would not answer.
  if (logged_in_ && !broken_ && !blocked_) {
    timeval wait = TimeVal(std::min(kCloseWait, timeout_));
    amqp_set_rpc_timeout(state_, &wait);
    // Closing the connection closes its channel. A close that fails only means the broker
    // drops the connection itself: nothing to report.
    amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(state_);
}

int AmqpConnection::fd() const { return amqp_get_sockfd(state_); }

tl::unexpected<Error> AmqpConnection::Fail(std::string_view what, std::string_view why) {
  broken_ = true;
  return MakeError(ErrorCode::kUnavailable, fmt::format("RabbitMQ: {} failed: {}", what, why));
}

Error AmqpConnection::Blocked() const {
  return Error(ErrorCode::kUnavailable,
               fmt::format("RabbitMQ refuses new messages: a resource alarm is active (memory "
                           "or disk){}; publishing works again once the broker has room (see "
                           "`rabbitmqctl status`, section Alarms)",
                           blocked_reason_.empty() ? "" : ": " + blocked_reason_));
}

Status AmqpConnection::StartRpc() {
  rpc_wait_ = TimeBudget(timeout_);
  if (rpc_wait_.count() <= 0) return tl::unexpected(DeadlinePassed("RabbitMQ"));
  timeval wait = TimeVal(rpc_wait_);
  amqp_set_rpc_timeout(state_, &wait);
  amqp_maybe_release_buffers(state_);
  return {};
}

Status AmqpConnection::CheckRpc(std::string_view what) {
  amqp_rpc_reply_t reply = amqp_get_rpc_reply(state_);
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return {};
  return Fail(what, ReplyText(reply, rpc_wait_));
}

Status AmqpConnection::DeclareExchange(const std::string& name, const char* type) {
  if (auto s = StartRpc(); !s) return s;
  amqp_exchange_declare(state_, kChannel, Bytes(name), amqp_cstring_bytes(type), 0,
                        /*durable=*/1, 0, 0, amqp_empty_table);
  return CheckRpc("declaring exchange " + name);
}

Status AmqpConnection::DeclareQueue(const std::string& name,
                                    const std::vector<std::pair<std::string, std::string>>& args) {
  std::vector<amqp_table_entry_t> entries;
  for (const auto& [key, value] : args) {
    amqp_table_entry_t e{};
    e.key = Bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = Bytes(value);
    entries.push_back(e);
  }
  if (auto s = StartRpc(); !s) return s;
  amqp_queue_declare(state_, kChannel, Bytes(name), 0, /*durable=*/1, 0, 0,
                     amqp_table_t{static_cast<int>(entries.size()), entries.data()});
  return CheckRpc("declaring queue " + name);
}

Status AmqpConnection::BindQueue(const std::string& queue, const std::string& exchange,
                                 const std::string& routing_key) {
  if (auto s = StartRpc(); !s) return s;
  amqp_queue_bind(state_, kChannel, Bytes(queue), Bytes(exchange), Bytes(routing_key),
                  amqp_empty_table);
  return CheckRpc("binding queue " + queue);
}

Result<uint64_t> AmqpConnection::MessageCount(const std::string& queue) {
  if (auto s = StartRpc(); !s) return tl::unexpected(s.error());
  amqp_queue_declare_ok_t* ok = amqp_queue_declare(state_, kChannel, Bytes(queue),
                                                   /*passive=*/1, 0, 0, 0, amqp_empty_table);
  if (!ok) return tl::unexpected(CheckRpc("counting the messages of " + queue).error());
  return ok->message_count;
}

Result<std::optional<AmqpConnection::Frame>> AmqpConnection::NextFrame(milliseconds timeout) {
  for (;;) {
    Frame f;
    timeval wait = TimeVal(timeout);
    amqp_maybe_release_buffers(state_);
    int rc = amqp_simple_wait_frame_noblock(state_, &f.frame, &wait);
    if (rc == AMQP_STATUS_TIMEOUT) return std::nullopt;
    if (rc != AMQP_STATUS_OK) return Fail("receiving", amqp_error_string2(rc));
    if (f.frame.frame_type != AMQP_FRAME_METHOD) return f;
    const amqp_method_t& method = f.frame.payload.method;
    if (IsClose(method)) return Fail("receiving", CloseText(method));
    switch (method.id) {
      case AMQP_CONNECTION_BLOCKED_METHOD:
        blocked_ = true;
        blocked_reason_ = String(static_cast<amqp_connection_blocked_t*>(method.decoded)->reason);
        return f;
      case AMQP_CONNECTION_UNBLOCKED_METHOD:
        blocked_ = false;
        blocked_reason_.clear();
        continue;
      case AMQP_BASIC_RETURN_METHOD: {  // followed by the message's content: skip it
        amqp_message_t content;
        amqp_rpc_reply_t reply = amqp_read_message(state_, kChannel, &content, 0);
        if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
          return Fail("receiving a returned message", ReplyText(reply, timeout));
        }
        amqp_destroy_message(&content);
        return_pending_ = true;
        continue;
      }
      default:
        return f;
    }
  }
}

Status AmqpConnection::Publish(const AmqpOutgoing& m) {
  // An unblocked that came since the last publish (or a close) is read first.
  if (auto s = Poll(); !s) return s;
  if (blocked_) return tl::unexpected(Blocked());
  const milliseconds budget = TimeBudget(timeout_);
  if (budget.count() <= 0) return tl::unexpected(DeadlinePassed("RabbitMQ"));
  const auto deadline = Clock::now() + budget;

  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2;  // persistent
  props.content_type = amqp_cstring_bytes(m.content_type);
  amqp_table_entry_t header{};
  if (!m.int_header_name.empty()) {
    header.key = Bytes(m.int_header_name);
    header.value.kind = AMQP_FIELD_KIND_I32;
    header.value.value.i32 = m.int_header_value;
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
  return_pending_ = false;

  for (;;) {
    auto frame = NextFrame(TimeLeft(deadline));
    if (!frame) return tl::unexpected(frame.error());
    if (!*frame) {
      broken_ = true;  // the confirm may still come: out of step
      return MakeError(ErrorCode::kUnavailable,
                       fmt::format("RabbitMQ at {}:{} did not confirm a message within {} ms: "
                                   "the broker is stalled or overloaded (whether it stored the "
                                   "message is unknown; the connection is reset)",
                                   host_, port_, budget.count()));
    }
    // Held, not refused: the broker reads nothing more until the alarm clears.
    if (blocked_) return tl::unexpected(Blocked());
    const amqp_frame_t& f = (*frame)->frame;
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    const amqp_method_number_t id = f.payload.method.id;
    if (id != AMQP_BASIC_ACK_METHOD && id != AMQP_BASIC_NACK_METHOD) continue;
    // Both start with delivery_tag (and multiple, which covers ours when the tag is).
    auto* ack = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
    if (ack->delivery_tag < seq) {  // an earlier publish's, and so any return before it
      return_pending_ = false;
      continue;
    }
    if (id == AMQP_BASIC_NACK_METHOD) {
      return MakeError(ErrorCode::kUnavailable, "RabbitMQ could not store the message (nack)");
    }
    if (return_pending_) {
      return_pending_ = false;
      return MakeError(ErrorCode::kUnavailable,
                       fmt::format("RabbitMQ has no queue for exchange '{}', key '{}': was the "
                                   "queue deleted? Restart to declare it again",
                                   m.exchange, m.routing_key));
    }
    return {};
  }
}

Result<std::optional<AmqpMessage>> AmqpConnection::Get(const std::string& queue) {
  if (auto s = StartRpc(); !s) return tl::unexpected(s.error());
  amqp_rpc_reply_t reply = amqp_basic_get(state_, kChannel, Bytes(queue), /*no_ack=*/0);
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    return Fail("basic.get", ReplyText(reply, rpc_wait_));
  }
  if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::nullopt;
  auto* ok = static_cast<amqp_basic_get_ok_t*>(reply.reply.decoded);
  return ReadContent(ok->delivery_tag);
}

Result<std::string> AmqpConnection::Consume(const std::string& queue) {
  if (auto s = StartRpc(); !s) return tl::unexpected(s.error());
  amqp_basic_consume_ok_t* ok = amqp_basic_consume(state_, kChannel, Bytes(queue), amqp_empty_bytes,
                                                   0, 0, 0, amqp_empty_table);
  if (!ok) return tl::unexpected(CheckRpc("basic.consume").error());
  return String(ok->consumer_tag);
}

Result<std::optional<AmqpMessage>> AmqpConnection::ArrivedDelivery() {
  for (;;) {
    auto frame = NextFrame(milliseconds(0));
    if (!frame) return tl::unexpected(frame.error());
    if (!*frame) return std::nullopt;
    auto message = OnConsumerFrame(**frame);
    if (!message || *message) return message;
  }
}

Result<std::optional<AmqpMessage>> AmqpConnection::OnConsumerFrame(const Frame& f) {
  if (f.frame.frame_type != AMQP_FRAME_METHOD) return std::nullopt;
  switch (f.frame.payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD: {
      auto* deliver = static_cast<amqp_basic_deliver_t*>(f.frame.payload.method.decoded);
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

Result<std::optional<AmqpMessage>> AmqpConnection::Cancel(const std::string& consumer_tag) {
  if (auto s = StartRpc(); !s) return tl::unexpected(s.error());
  if (!amqp_basic_cancel(state_, kChannel, Bytes(consumer_tag))) {
    return tl::unexpected(CheckRpc("basic.cancel").error());
  }
  // The cancel call queued the frames that came before its reply; read them now.
  std::optional<AmqpMessage> late;
  for (;;) {
    auto message = ArrivedDelivery();
    if (!message) return tl::unexpected(message.error());
    if (!*message) return late;
    if (late) {
      // Cannot happen with prefetch 1; if it did, the broker gets it back.
      if (auto s = Reject((*message)->delivery_tag); !s) return tl::unexpected(s.error());
      continue;
    }
    late = std::move(*message);
  }
}

Status AmqpConnection::Poll() {
  auto arrived = ArrivedDelivery();
  if (!arrived) return tl::unexpected(arrived.error());
  // Cannot happen without a consumer; if it did, the broker gets it back.
  if (*arrived) return Reject((*arrived)->delivery_tag);
  return {};
}

Result<AmqpMessage> AmqpConnection::ReadContent(uint64_t tag) {
  amqp_message_t content;
  amqp_rpc_reply_t reply = amqp_read_message(state_, kChannel, &content, 0);
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    return Fail("reading a message", ReplyText(reply, timeout_));
  }
  AmqpMessage message{.delivery_tag = tag, .body = String(content.body)};
  const amqp_basic_properties_t& props = content.properties;
  if (props._flags & AMQP_BASIC_HEADERS_FLAG) {
    for (int i = 0; i < props.headers.num_entries; ++i) {
      const amqp_table_entry_t& e = props.headers.entries[i];
      if (auto value = IntValue(e.value)) message.int_headers.emplace_back(String(e.key), *value);
    }
  }
  amqp_destroy_message(&content);
  return message;
}

Status AmqpConnection::Ack(uint64_t tag) {
  int rc = amqp_basic_ack(state_, kChannel, tag, 0);
  if (rc != AMQP_STATUS_OK) return Fail("acknowledging", amqp_error_string2(rc));
  return {};
}

Status AmqpConnection::Reject(uint64_t tag) {
  int rc = amqp_basic_reject(state_, kChannel, tag, /*requeue=*/1);
  if (rc != AMQP_STATUS_OK) return Fail("rejecting", amqp_error_string2(rc));
  return {};
}

Status AmqpConnection::RequeueAll(uint64_t last_tag) {
  int rc = amqp_basic_nack(state_, kChannel, last_tag, /*multiple=*/1, /*requeue=*/1);
  if (rc != AMQP_STATUS_OK) return Fail("requeueing", amqp_error_string2(rc));
  return {};
}

Status AmqpConnection::SendHeartbeat() {
  amqp_frame_t frame{};
  frame.frame_type = AMQP_FRAME_HEARTBEAT;
  frame.channel = 0;
  int rc = amqp_send_frame(state_, &frame);
  if (rc != AMQP_STATUS_OK) return Fail("sending a heartbeat", amqp_error_string2(rc));
  return {};
}

bool AmqpSharedConnection::TimeLeft() const { return TimeBudget(target_.timeout).count() > 0; }

}  // namespace vmp3
