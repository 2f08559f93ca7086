#include "metadata/redis_metadata_store.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

namespace vmp3 {
namespace {

constexpr int64_t kTtlGraceSeconds = 24 * 3600;
constexpr int kUpdateRetries = 50;

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Error Unavailable(const redisContext* c) {
  return Error(ErrorCode::kUnavailable,
               fmt::format("Redis is unavailable: {}", c && c->err ? c->errstr : "no reply"));
}

}  // namespace

Result<RedisTarget> RedisTarget::Parse(std::string_view url) {
  RedisTarget t;
  if (!url.starts_with("redis://"))
    return MakeError(ErrorCode::kInvalidArgument, "a Redis URL starts with redis://");
  url.remove_prefix(8);
  size_t q = url.find('?');
  std::string_view query = q == std::string_view::npos ? "" : url.substr(q + 1);
  url = url.substr(0, q);
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos && slash + 1 < url.size()) {
    auto db = url.substr(slash + 1);
    auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), t.db);
    if (ec != std::errc() || t.db < 0) return MakeError(ErrorCode::kInvalidArgument, "bad Redis database number");
  }
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    auto userinfo = authority.substr(0, at);
    size_t colon = userinfo.find(':');
    t.password = std::string(colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1));
    authority = authority.substr(at + 1);
  }
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos) {
    auto port = authority.substr(colon + 1);
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), t.port);
    if (ec != std::errc() || t.port <= 0 || t.port > 65535)
      return MakeError(ErrorCode::kInvalidArgument, "bad port in the Redis URL");
    authority = authority.substr(0, colon);
  }
  if (!authority.empty()) t.host = std::string(authority);
  if (query.starts_with("prefix=")) t.prefix = std::string(query.substr(7, query.find('&') - 7));
  if (t.prefix.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty key prefix");
  return t;
}

struct RedisPool::Lease {
  RedisPool* pool;
  redisContext* c;
  bool broken = false;
  ~Lease() {
    if (broken || c->err) {
      redisFree(c);
    } else {
      pool->Return(c);
    }
  }
  // Runs a command; kUnavailable when Redis fails (and the connection is dropped).
  template <typename... Args>
  Result<ReplyPtr> Command(const char* format, Args... args) {
    ReplyPtr reply(static_cast<redisReply*>(redisCommand(c, format, args...)));
    if (!reply) {
      broken = true;
      return tl::unexpected(Unavailable(c));
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      return MakeError(ErrorCode::kUnavailable, fmt::format("Redis error: {}", std::string(reply->str, reply->len)));
    }
    return reply;
  }
  Result<ReplyPtr> CommandArgv(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    ReplyPtr reply(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data())));
    if (!reply) {
      broken = true;
      return tl::unexpected(Unavailable(c));
    }
    if (reply->type == REDIS_REPLY_ERROR)
      return MakeError(ErrorCode::kUnavailable, fmt::format("Redis error: {}", std::string(reply->str, reply->len)));
    return reply;
  }
};

RedisPool::~RedisPool() {
  for (redisContext* c : idle_) redisFree(c);
}

Result<redisContext*> RedisPool::Connect() const {
  timeval connect_timeout{2, 0};
  redisContext* c = redisConnectWithTimeout(target_.host.c_str(), target_.port, connect_timeout);
  if (!c || c->err) {
    Error e(ErrorCode::kUnavailable, fmt::format("Redis at {}:{} is unavailable{}", target_.host,
                                                 target_.port, c ? fmt::format(": {}", c->errstr) : ""));
    if (c) redisFree(c);
    return tl::unexpected(e);
  }
  timeval command_timeout{5, 0};
  redisSetTimeout(c, command_timeout);
  redisEnableKeepAlive(c);
  auto check = [&](redisReply* r) {
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    return ok;
  };
  if (!target_.password.empty() &&
      !check(static_cast<redisReply*>(redisCommand(c, "AUTH %s", target_.password.c_str())))) {
    redisFree(c);
    return MakeError(ErrorCode::kPermissionDenied, "Redis refused the password");
  }
  if (target_.db != 0 && !check(static_cast<redisReply*>(redisCommand(c, "SELECT %d", target_.db)))) {
    redisFree(c);
    return MakeError(ErrorCode::kInvalidArgument, fmt::format("Redis has no database {}", target_.db));
  }
  return c;
}

Result<std::unique_ptr<RedisPool::Lease>> RedisPool::Acquire() {
  redisContext* c = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      c = idle_.back();
      idle_.pop_back();
    }
  }
  if (!c) {
    auto fresh = Connect();
    if (!fresh) return tl::unexpected(fresh.error());
    c = *fresh;
  }
  return std::unique_ptr<Lease>(new Lease{this, c});
}

void RedisPool::Return(redisContext* c) {
  std::lock_guard lock(mu_);
  if (idle_.size() < 32) {
    idle_.push_back(c);
  } else {
    redisFree(c);
  }
}

RedisMetadataStore::RedisMetadataStore(RedisTarget target) : pool_(std::move(target)) {}
RedisMetadataStore::~RedisMetadataStore() = default;

Result<std::unique_ptr<RedisMetadataStore>> RedisMetadataStore::Open(const RedisTarget& target) {
  std::unique_ptr<RedisMetadataStore> store(new RedisMetadataStore(target));
  if (auto s = store->Ping(); !s) return tl::unexpected(s.error());
  return store;
}

std::string RedisMetadataStore::Key(std::string_view a, std::string_view b) const {
  return b.empty() ? fmt::format("{}:{}", pool_.target().prefix, a)
                   : fmt::format("{}:{}:{}", pool_.target().prefix, a, b);
}

Status RedisMetadataStore::CreateUser(const User& user) {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto& l = **lease;
  auto claimed = l.CommandArgv({"SET", Key("username", Lower(user.username)), user.id, "NX"});
  if (!claimed) return tl::unexpected(claimed.error());
  if ((*claimed)->type == REDIS_REPLY_NIL)
    return MakeError(ErrorCode::kAlreadyExists, fmt::format("username '{}' is taken", user.username));
  auto stored = l.CommandArgv({"SET", Key("user", user.id), nlohmann::json(user).dump()});
  if (!stored) return tl::unexpected(stored.error());
  return {};
}

Result<User> RedisMetadataStore::GetUser(std::string_view id) {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto reply = (*lease)->CommandArgv({"GET", Key("user", id)});
  if (!reply) return tl::unexpected(reply.error());
  if ((*reply)->type != REDIS_REPLY_STRING) return MakeError(ErrorCode::kNotFound, "no such user");
  auto json = nlohmann::json::parse(std::string((*reply)->str, (*reply)->len), nullptr, false);
  if (json.is_discarded()) return MakeError(ErrorCode::kInternal, "corrupt user record");
  try {
    return json.get<User>();
  } catch (const std::exception&) {
    return MakeError(ErrorCode::kInternal, "corrupt user record");
  }
}

Result<User> RedisMetadataStore::FindUserByName(std::string_view username) {
  std::string id;
  {
    auto lease = pool_.Acquire();
    if (!lease) return tl::unexpected(lease.error());
    auto reply = (*lease)->CommandArgv({"GET", Key("username", Lower(username))});
    if (!reply) return tl::unexpected(reply.error());
    if ((*reply)->type != REDIS_REPLY_STRING) return MakeError(ErrorCode::kNotFound, "no such user");
    id.assign((*reply)->str, (*reply)->len);
  }
  return GetUser(id);
}

namespace {

Result<Job> ParseJob(const redisReply* reply) {
  if (!reply || reply->type != REDIS_REPLY_STRING) return MakeError(ErrorCode::kNotFound, "no such job");
  auto json = nlohmann::json::parse(std::string(reply->str, reply->len), nullptr, false);
  if (json.is_discarded()) return MakeError(ErrorCode::kInternal, "corrupt job record");
  try {
    return json.get<Job>();
  } catch (const std::exception&) {
    return MakeError(ErrorCode::kInternal, "corrupt job record");
  }
}

std::string OwnerMember(const Job& job) { return fmt::format("{:013}:{}", job.created_at, job.id); }

}  // namespace

Status RedisMetadataStore::CreateJob(const Job& job) {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto& l = **lease;
  auto set = l.CommandArgv({"SET", Key("job", job.id), nlohmann::json(job).dump(), "NX"});
  if (!set) return tl::unexpected(set.error());
  if ((*set)->type == REDIS_REPLY_NIL) return MakeError(ErrorCode::kAlreadyExists, "job id exists");
  std::vector<std::vector<std::string>> commands = {
      {"ZADD", Key("owner", job.owner_id), "0", OwnerMember(job)},
      {"SADD", Key("status", JobStatusName(job.status)), job.id},
  };
  if (job.expires_at > 0) {
    commands.push_back({"ZADD", Key("expiry"), std::to_string(job.expires_at), job.id});
    commands.push_back({"PEXPIREAT", Key("job", job.id), std::to_string(job.expires_at + kTtlGraceSeconds * 1000)});
  }
  for (const auto& c : commands)
    if (auto r = l.CommandArgv(c); !r) return tl::unexpected(r.error());
  return {};
}

Result<Job> RedisMetadataStore::GetJob(std::string_view id) {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto reply = (*lease)->CommandArgv({"MGET", Key("job", id), Key("job", std::string(id) + ":progress")});
  if (!reply) return tl::unexpected(reply.error());
  if ((*reply)->elements != 2) return MakeError(ErrorCode::kInternal, "unexpected Redis reply");
  auto job = ParseJob((*reply)->element[0]);
  if (!job) return job;
  const redisReply* progress = (*reply)->element[1];
  if (!IsTerminal(job->status) && progress->type == REDIS_REPLY_STRING)
    job->progress = std::strtod(std::string(progress->str, progress->len).c_str(), nullptr);
  return job;
}

Result<Job> RedisMetadataStore::UpdateJob(std::string_view id, const std::function<Status(Job&)>& mutate) {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto& l = **lease;
  std::string key = Key("job", id);
  for (int attempt = 0; attempt < kUpdateRetries; ++attempt) {
    if (auto w = l.CommandArgv({"WATCH", key}); !w) return tl::unexpected(w.error());
    auto current = l.CommandArgv({"GET", key});
    if (!current) return tl::unexpected(current.error());
    auto job = ParseJob(current->get());
    if (!job) {
      l.CommandArgv({"UNWATCH"});
      return job;
    }
    Job before = *job;
    if (auto s = mutate(*job); !s) {
      l.CommandArgv({"UNWATCH"});
      return tl::unexpected(s.error());
    }
    if (job->id != before.id || job->owner_id != before.owner_id) {
      l.CommandArgv({"UNWATCH"});
      return MakeError(ErrorCode::kInternal, "a job update may not change its id or owner");
    }
    std::vector<std::vector<std::string>> commands = {{"MULTI"}, {"SET", key, nlohmann::json(*job).dump(), "KEEPTTL"}};
    if (job->status != before.status) {
      commands.push_back({"SREM", Key("status", JobStatusName(before.status)), job->id});
      commands.push_back({"SADD", Key("status", JobStatusName(job->status)), job->id});
    }
    if (job->expires_at != before.expires_at && job->expires_at > 0) {
      commands.push_back({"ZADD", Key("expiry"), std::to_string(job->expires_at), job->id});
      commands.push_back({"PEXPIREAT", key, std::to_string(job->expires_at + kTtlGraceSeconds * 1000)});
    }
    if (IsTerminal(job->status)) commands.push_back({"DEL", Key("job", job->id + ":progress")});
    commands.push_back({"EXEC"});
    Result<ReplyPtr> exec;
    for (const auto& c : commands) {
      exec = l.CommandArgv(c);
      if (!exec) return tl::unexpected(exec.error());
    }
    if ((*exec)->type != REDIS_REPLY_NIL) return *job;  // committed; nil means a concurrent write
  }
  return MakeError(ErrorCode::kUnavailable, "the job is being updated too often; try again");
}

Status RedisMetadataStore::SetProgress(std::string_view id, double progress) {
  if (std::isnan(progress)) return MakeError(ErrorCode::kInvalidArgument, "progress is not a number");
  // One round trip, atomic: only a running job's progress is recorded.
  static constexpr const char* kScript = R"lua(
    local job = redis.call('GET', KEYS[1])
    if not job then return -1 end
    local status = cjson.decode(job)['status']
    if status == 'queued' or status == 'converting' then
      redis.call('SET', KEYS[2], ARGV[1], 'EX', 86400)
      return 1
    end
    return 0)lua";
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto r = (*lease)->CommandArgv({"EVAL", kScript, "2", Key("job", id), Key("job", std::string(id) + ":progress"),
                                  fmt::format("{:.6f}", std::clamp(progress, 0.0, 1.0))});
  if (!r) return tl::unexpected(r.error());
  if ((*r)->type == REDIS_REPLY_INTEGER && (*r)->integer < 0) return MakeError(ErrorCode::kNotFound, "no such job");
  return {};
}

Result<JobPage> RedisMetadataStore::ListJobs(std::string_view owner_id, int limit, std::string_view cursor) {
  limit = std::clamp(limit, 1, 1000);
  std::vector<std::string> members;
  {
    auto lease = pool_.Acquire();
    if (!lease) return tl::unexpected(lease.error());
    std::string max = cursor.empty() ? "+" : "(" + std::string(cursor);
    auto r = (*lease)->CommandArgv({"ZREVRANGEBYLEX", Key("owner", owner_id), max, "-", "LIMIT", "0",
                                    std::to_string(limit + 1)});
    if (!r) return tl::unexpected(r.error());
    for (size_t i = 0; i < (*r)->elements; ++i)
      members.emplace_back((*r)->element[i]->str, (*r)->element[i]->len);
  }
  JobPage page;
  for (size_t i = 0; i < members.size() && static_cast<int>(page.jobs.size()) < limit; ++i) {
    std::string id = members[i].substr(members[i].find(':') + 1);
    auto job = GetJob(id);
    if (!job) {
      if (job.error().code == ErrorCode::kNotFound) continue;  // deleted meanwhile
      return tl::unexpected(job.error());
    }
    page.jobs.push_back(*job);
    if (static_cast<int>(page.jobs.size()) == limit && members.size() > static_cast<size_t>(limit))
      page.next_cursor = members[i];
  }
  return page;
}

Status RedisMetadataStore::DeleteJob(std::string_view id) {
  auto job = GetJob(id);
  if (!job) return tl::unexpected(job.error());
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto& l = **lease;
  for (const auto& c : std::vector<std::vector<std::string>>{
           {"DEL", Key("job", id), Key("job", std::string(id) + ":progress")},
           {"ZREM", Key("owner", job->owner_id), OwnerMember(*job)},
           {"ZREM", Key("expiry"), std::string(id)},
           {"SREM", Key("status", JobStatusName(job->status)), std::string(id)}}) {
    if (auto r = l.CommandArgv(c); !r) return tl::unexpected(r.error());
  }
  return {};
}

Result<std::vector<Job>> RedisMetadataStore::ListExpired(int64_t now_ms, int limit) {
  std::vector<std::string> ids;
  {
    auto lease = pool_.Acquire();
    if (!lease) return tl::unexpected(lease.error());
    auto r = (*lease)->CommandArgv({"ZRANGEBYSCORE", Key("expiry"), "-inf", std::to_string(now_ms), "LIMIT",
                                    "0", std::to_string(std::max(1, limit))});
    if (!r) return tl::unexpected(r.error());
    for (size_t i = 0; i < (*r)->elements; ++i) ids.emplace_back((*r)->element[i]->str, (*r)->element[i]->len);
  }
  std::vector<Job> jobs;
  for (const auto& id : ids) {
    auto job = GetJob(id);
    if (job) {
      jobs.push_back(*job);
    } else if (job.error().code == ErrorCode::kNotFound) {
      // Redis expired the record itself (janitor was down): drop the index entry.
      if (auto lease = pool_.Acquire()) (*lease)->CommandArgv({"ZREM", Key("expiry"), id});
    } else {
      return tl::unexpected(job.error());
    }
  }
  return jobs;
}

Result<std::vector<Job>> RedisMetadataStore::ListByStatus(JobStatus status, int limit) {
  std::vector<std::string> ids;
  {
    auto lease = pool_.Acquire();
    if (!lease) return tl::unexpected(lease.error());
    auto r = (*lease)->CommandArgv({"SMEMBERS", Key("status", JobStatusName(status))});
    if (!r) return tl::unexpected(r.error());
    for (size_t i = 0; i < (*r)->elements && static_cast<int>(ids.size()) < limit; ++i)
      ids.emplace_back((*r)->element[i]->str, (*r)->element[i]->len);
  }
  std::vector<Job> jobs;
  for (const auto& id : ids)
    if (auto job = GetJob(id)) jobs.push_back(*job);
  return jobs;
}

Result<std::map<JobStatus, uint64_t>> RedisMetadataStore::CountByStatus() {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  std::map<JobStatus, uint64_t> counts;
  for (JobStatus s : {JobStatus::kQueued, JobStatus::kConverting, JobStatus::kDone, JobStatus::kFailed,
                      JobStatus::kCancelled}) {
    auto r = (*lease)->CommandArgv({"SCARD", Key("status", JobStatusName(s))});
    if (!r) return tl::unexpected(r.error());
    counts[s] = static_cast<uint64_t>((*r)->integer);
  }
  return counts;
}

Status RedisMetadataStore::Ping() {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto r = (*lease)->CommandArgv({"PING"});
  if (!r) return tl::unexpected(r.error());
  return {};
}

std::string RedisMetadataStore::Describe() const {
  return fmt::format("redis://{}:{}/{} (prefix {})", pool_.target().host, pool_.target().port,
                     pool_.target().db, pool_.target().prefix);
}

// --- Events --------------------------------------------------------------------------------------

RedisJobEventBus::RedisJobEventBus(RedisTarget target)
    : pool_(std::move(target)), channel_(pool_.target().prefix + ":events") {}

RedisJobEventBus::~RedisJobEventBus() {
  listener_.request_stop();
  if (int fd = listener_fd_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
  if (listener_.joinable()) listener_.join();
}

Result<std::unique_ptr<RedisJobEventBus>> RedisJobEventBus::Open(const RedisTarget& target) {
  std::unique_ptr<RedisJobEventBus> bus(new RedisJobEventBus(target));
  auto probe = bus->pool_.Acquire();
  if (!probe) return tl::unexpected(probe.error());
  probe->reset();
  bus->listener_ = std::jthread([b = bus.get()](std::stop_token stop) { b->Listen(stop); });
  // Return once subscribed, so no event published after Open is missed.
  std::unique_lock lock(bus->ready_mu_);
  if (!bus->ready_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return bus->subscribed_; }))
    return MakeError(ErrorCode::kUnavailable, "Redis did not confirm the events subscription");
  return bus;
}

void RedisJobEventBus::Publish(const JobEvent& event) {
  nlohmann::json message{{"job_id", event.job_id}, {"owner_id", event.owner_id},
                         {"type", event.type}, {"data", event.data}};
  auto lease = pool_.Acquire();
  if (!lease) {
    spdlog::warn("events: {}", lease.error().message);
    return;
  }
  if (auto r = (*lease)->CommandArgv({"PUBLISH", channel_, message.dump()}); !r)
    spdlog::warn("events: {}", r.error().message);
}

std::unique_ptr<Subscription> RedisJobEventBus::Subscribe(std::string job_id,
                                                          std::function<void(const JobEvent&)> callback) {
  return local_.Subscribe(std::move(job_id), std::move(callback));
}

void RedisJobEventBus::Listen(std::stop_token stop) {
  int backoff_ms = 100;
  while (!stop.stop_requested()) {
    auto connected = pool_.Connect();
    if (!connected) {
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min(backoff_ms * 2, 2000);
      continue;
    }
    backoff_ms = 100;
    redisContext* c = *connected;
    timeval no_timeout{0, 0};
    redisSetTimeout(c, no_timeout);  // block for messages; the destructor shuts the socket down
    listener_fd_ = c->fd;
    if (auto* r = static_cast<redisReply*>(redisCommand(c, "SUBSCRIBE %b", channel_.data(), channel_.size()))) {
      freeReplyObject(r);  // the subscription is confirmed: events published from now on arrive
      {
        std::lock_guard lock(ready_mu_);
        subscribed_ = true;
      }
      ready_cv_.notify_all();
    }
    while (!stop.stop_requested()) {
      void* raw = nullptr;
      if (redisGetReply(c, &raw) != REDIS_OK) break;  // reconnect
      ReplyPtr reply(static_cast<redisReply*>(raw));
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) continue;
      auto json = nlohmann::json::parse(std::string(reply->element[2]->str, reply->element[2]->len), nullptr, false);
      if (json.is_discarded() || !json.is_object()) continue;
      JobEvent event{json.value("job_id", ""), json.value("owner_id", ""), json.value("type", ""),
                     json.value("data", nlohmann::json())};
      local_.Publish(event);
    }
    listener_fd_ = -1;
    redisFree(c);
  }
}

}  // namespace vmp3
