#include "metadata/redis_metadata_store.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "common/backend_url.hpp"
#include "common/deadline.hpp"
#include "common/text.hpp"

namespace vmp3 {
namespace {

// Enough for 8 writers hammering one job; each conflict backs off up to 6.4 ms.
constexpr int kTransactionAttempts = 100;

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;
using Command = std::vector<std::string>;

Error Unavailable(const redisContext* c) {
  // A socket timeout shows as EAGAIN: say what it means.
  if (c && c->err == REDIS_ERR_IO && std::string_view(c->errstr) == std::strerror(EAGAIN))
    return Error(ErrorCode::kUnavailable, "Redis did not answer in time (stalled or overloaded)");
  return Error(ErrorCode::kUnavailable,
               fmt::format("Redis is unavailable: {}", c && c->err ? c->errstr : "no reply"));
}

std::optional<std::string> StringOf(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_STRING) return std::nullopt;
  return std::string(reply->str, reply->len);
}

}  // namespace

Result<RedisTarget> RedisTarget::Parse(std::string_view url) {
  auto parts = ParseBackendUrl(url, "redis", "Redis", {"prefix", "timeout_ms"});
  if (!parts) return tl::unexpected(parts.error());
  RedisTarget t;
  if (!parts->host.empty()) t.host = parts->host;
  if (parts->port) t.port = *parts->port;
  if (!parts->path.empty()) {
    const std::string& db = parts->path;
    auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), t.db);
    if (ec != std::errc() || end != db.data() + db.size() || t.db < 0)
      return MakeError(ErrorCode::kInvalidArgument, "bad Redis database number");
  }
  // redis://:PASSWORD@host, and the older redis://PASSWORD@host.
  t.password = parts->password ? *parts->password : parts->user.value_or("");
  for (const auto& [name, value] : parts->params) {
    if (name == "prefix") t.prefix = value;
    if (name == "timeout_ms") {
      int64_t ms = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
      if (ec != std::errc() || end != value.data() + value.size() || ms < 1 || ms > 600000)
        return MakeError(ErrorCode::kInvalidArgument, "Redis timeout_ms must be 1..600000");
      t.timeout = std::chrono::milliseconds(ms);
    }
  }
  if (t.prefix.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty key prefix");
  return t;
}

namespace {

constexpr std::chrono::milliseconds kConnectTimeout{2000};

timeval ToTimeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

}  // namespace

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
  // Sends the commands in one write and reads every reply. kUnavailable when Redis fails (the
  // connection is then dropped) or answers a command with an error.
  Result<std::vector<ReplyPtr>> Pipeline(const std::vector<Command>& commands) {
    // Bounded by the client's timeout and by the deadline of the request this runs for.
    auto budget = TimeBudget(pool->target().timeout);
    if (budget.count() <= 0) return tl::unexpected(DeadlinePassed(pool->Describe()));
    redisSetTimeout(c, ToTimeval(budget));
    for (const Command& command : commands) {
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (const std::string& arg : command) {
        argv.push_back(arg.data());
        lens.push_back(arg.size());
      }
      if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
          REDIS_OK) {
        broken = true;
        return tl::unexpected(Unavailable(c));
      }
    }
    std::vector<ReplyPtr> replies;
    for (size_t i = 0; i < commands.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
        broken = true;
        return tl::unexpected(Unavailable(c));
      }
      replies.emplace_back(static_cast<redisReply*>(raw));
    }
    for (const ReplyPtr& reply : replies) {
      if (reply->type == REDIS_REPLY_ERROR) {
        return MakeError(ErrorCode::kUnavailable,
                         fmt::format("Redis error: {}", std::string(reply->str, reply->len)));
      }
    }
    return replies;
  }
  Result<ReplyPtr> Run(const Command& command) {
    auto replies = Pipeline({command});
    if (!replies) return tl::unexpected(replies.error());
    return std::move(replies->front());
  }
};

RedisPool::~RedisPool() {
  for (redisContext* c : idle_) redisFree(c);
}

std::string RedisPool::Describe() const {
  return fmt::format("Redis at {}:{}", target_.host, target_.port);
}

Result<redisContext*> RedisPool::Connect() const {
  auto budget = TimeBudget(std::min<std::chrono::milliseconds>(target_.timeout, kConnectTimeout));
  if (budget.count() <= 0) return tl::unexpected(DeadlinePassed(Describe()));
  redisContext* c = redisConnectWithTimeout(target_.host.c_str(), target_.port, ToTimeval(budget));
  if (!c || c->err) {
    Error e(ErrorCode::kUnavailable,
            fmt::format("Redis at {}:{} is unavailable{}", target_.host, target_.port,
                        c ? fmt::format(": {}", c->errstr) : ""));
    if (c) redisFree(c);
    return tl::unexpected(e);
  }
  redisSetTimeout(c, ToTimeval(TimeBudget(target_.timeout)));
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
  if (target_.db != 0 &&
      !check(static_cast<redisReply*>(redisCommand(c, "SELECT %d", target_.db)))) {
    redisFree(c);
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("Redis has no database {}", target_.db));
  }
  return c;
}

namespace {

// An idle connection is only good if Redis has not closed it meanwhile (a restart, a timeout):
// the peer's close shows as end-of-file without reading, and an idle connection has no reply
// pending, so any readable byte means it is out of step too.
bool StillOpen(const redisContext* c) {
  if (c->err) return false;
  char byte;
  ssize_t n = ::recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

Result<std::unique_ptr<RedisPool::Lease>> RedisPool::Acquire() {
  redisContext* c = nullptr;
  std::vector<redisContext*> stale;
  {
    std::lock_guard lock(mu_);
    while (!c && !idle_.empty()) {
      c = idle_.back();
      idle_.pop_back();
      if (!StillOpen(c)) {
        stale.push_back(c);
        c = nullptr;
      }
    }
  }
  for (redisContext* s : stale) redisFree(s);
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

namespace {

std::string EncodeJson(const nlohmann::json& json) {
  // Replace rather than throw on invalid UTF-8 (an uploaded file's name can hold anything).
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

template <typename T>
Result<T> DecodeJson(const std::string& doc) {
  try {
    return nlohmann::json::parse(doc).get<T>();
  } catch (const nlohmann::json::exception& e) {
    return MakeError(ErrorCode::kInternal, fmt::format("a stored record is corrupt: {}", e.what()));
  }
}

// A job from the values of JobKeys(): nullopt when there is no such job.
Result<std::optional<Job>> JobFrom(const std::optional<std::string>& doc,
                                   const std::optional<std::string>& progress) {
  if (!doc) return std::nullopt;
  auto job = DecodeJson<Job>(*doc);
  if (!job) return tl::unexpected(job.error());
  if (progress)
    std::from_chars(progress->data(), progress->data() + progress->size(), job->progress);
  return *job;
}

// Fixed-width created_at, so that byte order is (created_at, id) order.
std::string OwnerMember(const Job& job) { return fmt::format("{:013}:{}", job.created_at, job.id); }

bool IsOwnerMember(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return false;
  int64_t created_at = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + colon, created_at);
  return ec == std::errc() && end == text.data() + colon;
}

}  // namespace

std::string RedisMetadataStore::Key(std::string_view kind, std::string_view name) const {
  return name.empty() ? fmt::format("{}:{}", pool_.target().prefix, kind)
                      : fmt::format("{}:{}:{}", pool_.target().prefix, kind, name);
}

std::vector<std::string> RedisMetadataStore::JobKeys(std::string_view id) const {
  return {Key("job", id), Key("progress", id)};
}

Status RedisMetadataStore::Transact(
    const std::vector<std::string>& keys,
    const std::function<Result<std::vector<Command>>(const Values&)>& plan) {
  thread_local std::minstd_rand random(std::random_device{}());
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  RedisPool::Lease& l = **lease;
  Command watch = {"WATCH"};
  Command mget = {"MGET"};
  watch.insert(watch.end(), keys.begin(), keys.end());
  mget.insert(mget.end(), keys.begin(), keys.end());
  for (int attempt = 0; attempt < kTransactionAttempts; ++attempt) {
    auto read = l.Pipeline({watch, mget});
    if (!read) {
      l.broken = true;  // it may still be watching
      return tl::unexpected(read.error());
    }
    Values values;
    for (size_t i = 0; i < (*read)[1]->elements; ++i)
      values.push_back(StringOf((*read)[1]->element[i]));
    auto commands = plan(values);
    if (!commands) {
      if (!l.Run({"UNWATCH"})) l.broken = true;
      return tl::unexpected(commands.error());
    }
    commands->insert(commands->begin(), {"MULTI"});
    commands->push_back({"EXEC"});
    auto written = l.Pipeline(*commands);
    if (!written) {
      l.broken = true;
      return tl::unexpected(written.error());
    }
    // EXEC answers nil when a watched key changed: nothing was written.
    const redisReply* exec = written->back().get();
    if (exec->type != REDIS_REPLY_NIL) {
      for (size_t i = 0; i < exec->elements; ++i) {
        if (exec->element[i]->type == REDIS_REPLY_ERROR) {
          return MakeError(ErrorCode::kUnavailable,
                           fmt::format("Redis error: {}", exec->element[i]->str));
        }
      }
      return {};
    }
    int max_wait_us = 100 << std::min(attempt, 6);
    std::this_thread::sleep_for(
        std::chrono::microseconds(std::uniform_int_distribution(0, max_wait_us)(random)));
  }
  return MakeError(ErrorCode::kUnavailable, "too many concurrent writers; try again");
}

std::vector<RedisMetadataStore::Command> RedisMetadataStore::WriteJob(const Job* before,
                                                                      const Job* after) const {
  const std::string& id = after ? after->id : before->id;
  std::vector<Command> commands = {{"DEL", Key("progress", id)}};  // folded in, or gone
  if (before) {
    commands.push_back({"ZREM", Key("owner", before->owner_id), OwnerMember(*before)});
    commands.push_back({"ZREM", Key("status", JobStatusName(before->status)), id});
    commands.push_back({"ZREM", Key("expiry"), id});
  }
  if (!after) {
    Usage was = UsageOf(*before);
    if (was.active_jobs > 0)
      commands.push_back(
          {"DECRBY", Key("usage", before->owner_id + ":active"), std::to_string(was.active_jobs)});
    if (was.stored_bytes > 0)
      commands.push_back(
          {"DECRBY", Key("usage", before->owner_id + ":bytes"), std::to_string(was.stored_bytes)});
    commands.push_back({"DEL", Key("job", id)});
    return commands;
  }
  // The owner's usage moves by the difference of the job's share (UsageOf) before and after.
  const std::string& owner = after->owner_id;
  Usage was = before ? UsageOf(*before) : Usage{};
  Usage now = UsageOf(*after);
  if (now.active_jobs != was.active_jobs) {
    commands.push_back({"INCRBY", Key("usage", owner + ":active"),
                        std::to_string(static_cast<int64_t>(now.active_jobs) -
                                       static_cast<int64_t>(was.active_jobs))});
  }
  if (now.stored_bytes != was.stored_bytes) {
    commands.push_back({"INCRBY", Key("usage", owner + ":bytes"),
                        std::to_string(static_cast<int64_t>(now.stored_bytes) -
                                       static_cast<int64_t>(was.stored_bytes))});
  }
  if (auto type = StatusEventType(before, *after)) {
    auto events = EventCommands(
        MakeStoredEvent(std::move(*type), *after, before ? after->updated_at : after->created_at));
    commands.insert(commands.end(), events.begin(), events.end());
  }
  commands.push_back({"SET", Key("job", id), EncodeJson(*after)});
  commands.push_back({"ZADD", Key("owner", after->owner_id), "0", OwnerMember(*after)});
  commands.push_back(
      {"ZADD", Key("status", JobStatusName(after->status)), std::to_string(after->created_at), id});
  if (after->expires_at > 0)
    commands.push_back({"ZADD", Key("expiry"), std::to_string(after->expires_at), id});
  return commands;
}

std::vector<RedisMetadataStore::Command> RedisMetadataStore::EventCommands(
    const StoredEvent& event) const {
  // Inside MULTI/EXEC, so `*` ids follow commit order (see the header). Each owner's stream keeps
  // its newest ~10000 events; the global one is trimmed by PruneEvents.
  auto xadd = [&](std::vector<std::string> head) {
    Command command = std::move(head);
    for (std::string_view field : {"id", event.id.c_str()}) command.emplace_back(field);
    command.insert(command.end(),
                   {"type", event.type, "owner", event.owner_id, "job_id", event.job_id, "at",
                    std::to_string(event.created_at), "job", event.job});
    return command;
  };
  return {xadd({"XADD", Key("events"), "*"}),
          xadd({"XADD", Key("events", event.owner_id), "MAXLEN", "~", "10000", "*"})};
}

Result<std::vector<Job>> RedisMetadataStore::LoadJobs(const std::vector<std::string>& ids) {
  if (ids.empty()) return std::vector<Job>{};
  Command mget = {"MGET"};
  for (const std::string& id : ids) mget.push_back(Key("job", id));
  for (const std::string& id : ids) mget.push_back(Key("progress", id));
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto reply = (*lease)->Run(mget);
  if (!reply) return tl::unexpected(reply.error());
  std::vector<Job> jobs;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto job = JobFrom(StringOf((*reply)->element[i]), StringOf((*reply)->element[ids.size() + i]));
    if (!job) return tl::unexpected(job.error());
    if (*job) jobs.push_back(std::move(**job));  // else deleted since its index entry was read
  }
  return jobs;
}

Status RedisMetadataStore::CreateUser(const User& user) {
  if (user.id.empty() || user.username.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "a user needs an id and a username");
  }
  return Transact({Key("user", user.id), Key("username", AsciiLowerCopy(user.username))},
                  [&](const Values& values) -> Result<std::vector<Command>> {
                    if (values[0]) {
                      return MakeError(ErrorCode::kAlreadyExists,
                                       fmt::format("user {} exists", user.id));
                    }
                    if (values[1]) {
                      return MakeError(ErrorCode::kAlreadyExists,
                                       fmt::format("the username {} is taken", user.username));
                    }
                    return std::vector<Command>{
                        {"SET", Key("user", user.id), EncodeJson(user)},
                        {"SET", Key("username", AsciiLowerCopy(user.username)), user.id}};
                  });
}

Result<User> RedisMetadataStore::GetUser(std::string_view id) {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto reply = (*lease)->Run({"GET", Key("user", id)});
  if (!reply) return tl::unexpected(reply.error());
  auto doc = StringOf(reply->get());
  if (!doc) return MakeError(ErrorCode::kNotFound, fmt::format("user {} does not exist", id));
  return DecodeJson<User>(*doc);
}

Result<User> RedisMetadataStore::FindUserByName(std::string_view username) {
  std::optional<std::string> id;
  {
    auto lease = pool_.Acquire();
    if (!lease) return tl::unexpected(lease.error());
    auto reply = (*lease)->Run({"GET", Key("username", AsciiLowerCopy(username))});
    if (!reply) return tl::unexpected(reply.error());
    id = StringOf(reply->get());
  }
  if (!id) return MakeError(ErrorCode::kNotFound, fmt::format("no user is named {}", username));
  return GetUser(*id);
}

namespace {

uint64_t CounterValue(const std::optional<std::string>& text) {
  if (!text) return 0;
  int64_t value = 0;
  std::from_chars(text->data(), text->data() + text->size(), value);
  return value > 0 ? static_cast<uint64_t>(value) : 0;  // never negative, whatever was written
}

}  // namespace

Status RedisMetadataStore::CreateJobWithin(const Job& job, const UsageLimits& limits) {
  if (job.id.empty() || job.owner_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "a job needs an id and an owner");
  }
  std::vector<std::string> keys = JobKeys(job.id);
  keys.push_back(Key("usage", job.owner_id + ":active"));
  keys.push_back(Key("usage", job.owner_id + ":bytes"));
  return Transact(keys, [&](const Values& values) -> Result<std::vector<Command>> {
    if (values[0])
      return MakeError(ErrorCode::kAlreadyExists, fmt::format("job {} exists", job.id));
    Usage share = UsageOf(job);
    Usage usage{CounterValue(values[2]) + share.active_jobs,
                CounterValue(values[3]) + share.stored_bytes};
    if (auto within = CheckUsageLimits(usage, limits); !within)
      return tl::unexpected(within.error());
    return WriteJob(nullptr, &job);
  });
}

Result<Usage> RedisMetadataStore::GetUsage(std::string_view owner_id) {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  std::string owner(owner_id);
  auto reply =
      (*lease)->Run({"MGET", Key("usage", owner + ":active"), Key("usage", owner + ":bytes")});
  if (!reply) return tl::unexpected(reply.error());
  return Usage{CounterValue(StringOf((*reply)->element[0])),
               CounterValue(StringOf((*reply)->element[1]))};
}

Result<Job> RedisMetadataStore::GetJob(std::string_view id) {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  Command mget = {"MGET"};
  for (std::string& key : JobKeys(id)) mget.push_back(std::move(key));
  auto reply = (*lease)->Run(mget);
  if (!reply) return tl::unexpected(reply.error());
  auto job = JobFrom(StringOf((*reply)->element[0]), StringOf((*reply)->element[1]));
  if (!job) return tl::unexpected(job.error());
  if (!*job) return JobNotFound(id);
  return std::move(**job);
}

Result<Job> RedisMetadataStore::UpdateJob(std::string_view id,
                                          const std::function<Status(Job&)>& mutate) {
  Job job;
  auto written = Transact(JobKeys(id), [&](const Values& values) -> Result<std::vector<Command>> {
    auto current = JobFrom(values[0], values[1]);
    if (!current) return tl::unexpected(current.error());
    if (!*current) return JobNotFound(id);
    job = **current;
    if (auto mutated = mutate(job); !mutated) return tl::unexpected(mutated.error());
    if (job.id != (*current)->id || job.owner_id != (*current)->owner_id) {
      return MakeError(ErrorCode::kInternal,
                       fmt::format("an update of job {} tried to change its id or owner", id));
    }
    return WriteJob(&**current, &job);
  });
  if (!written) return tl::unexpected(written.error());
  return job;
}

Status RedisMetadataStore::SetProgress(std::string_view id, double progress) {
  if (std::isnan(progress)) {
    return MakeError(ErrorCode::kInvalidArgument, "job progress must be a number");
  }
  // One round trip, atomic: only an unfinished job's progress is recorded.
  static constexpr const char* kScript = R"lua(
    local job = redis.call('GET', KEYS[1])
    if not job then return -1 end
    local status = cjson.decode(job)['status']
    if status == 'queued' or status == 'converting' then
      redis.call('SET', KEYS[2], ARGV[1])
      return 1
    end
    return 0)lua";
  std::vector<std::string> keys = JobKeys(id);
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto r = (*lease)->Run(
      {"EVAL", kScript, "2", keys[0], keys[1], fmt::format("{}", std::clamp(progress, 0.0, 1.0))});
  if (!r) return tl::unexpected(r.error());
  if ((*r)->type == REDIS_REPLY_INTEGER && (*r)->integer < 0) return JobNotFound(id);
  return {};
}

Result<JobPage> RedisMetadataStore::ListJobs(std::string_view owner_id, int limit,
                                             std::string_view cursor) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  if (!cursor.empty() && !IsOwnerMember(cursor)) {
    return MakeError(ErrorCode::kInvalidArgument, "malformed job list cursor");
  }
  // One member more than asked tells whether another page follows.
  std::vector<std::string> members;
  {
    auto lease = pool_.Acquire();
    if (!lease) return tl::unexpected(lease.error());
    std::string max = cursor.empty() ? "+" : fmt::format("({}", cursor);
    auto r = (*lease)->Run({"ZREVRANGEBYLEX", Key("owner", owner_id), max, "-", "LIMIT", "0",
                            std::to_string(static_cast<int64_t>(limit) + 1)});
    if (!r) return tl::unexpected(r.error());
    for (size_t i = 0; i < (*r)->elements; ++i) members.push_back(*StringOf((*r)->element[i]));
  }
  JobPage page;
  if (members.size() > static_cast<size_t>(limit)) {
    members.resize(static_cast<size_t>(limit));
    page.next_cursor = members.back();
  }
  std::vector<std::string> ids;
  for (const std::string& member : members) ids.push_back(member.substr(member.find(':') + 1));
  auto jobs = LoadJobs(ids);
  if (!jobs) return tl::unexpected(jobs.error());
  page.jobs = std::move(*jobs);
  return page;
}

Status RedisMetadataStore::DeleteJob(std::string_view id) {
  return Transact(JobKeys(id), [&](const Values& values) -> Result<std::vector<Command>> {
    auto current = JobFrom(values[0], values[1]);
    if (!current) return tl::unexpected(current.error());
    if (!*current) return JobNotFound(id);
    return WriteJob(&**current, nullptr);
  });
}

Status RedisMetadataStore::ExpireJob(std::string_view id, int64_t now_ms) {
  return Transact(JobKeys(id), [&](const Values& values) -> Result<std::vector<Command>> {
    auto current = JobFrom(values[0], values[1]);
    if (!current) return tl::unexpected(current.error());
    if (!*current) return JobNotFound(id);
    auto commands = WriteJob(&**current, nullptr);
    JobStatus status = (*current)->status;
    if (status == JobStatus::kDone || status == JobStatus::kFailed) {
      auto events = EventCommands(MakeStoredEvent("job.expired", **current, now_ms));
      commands.insert(commands.end(), events.begin(), events.end());
    }
    return commands;
  });
}

namespace {

// A stream entry id: "MS-SEQ".
bool IsStreamId(std::string_view text) {
  size_t dash = text.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == text.size()) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return IsAsciiDigit(c) || c == '-'; }) &&
         text.find('-', dash + 1) == std::string_view::npos;
}

}  // namespace

Result<EventPage> RedisMetadataStore::ReadEvents(std::string_view owner_id, std::string_view after,
                                                 int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  if (!after.empty() && !IsStreamId(after))
    return MakeError(ErrorCode::kInvalidArgument, "malformed event cursor");
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  std::string key = owner_id.empty() ? Key("events") : Key("events", owner_id);
  std::string start = after.empty() ? "-" : fmt::format("({}", after);
  auto r = (*lease)->Run({"XRANGE", key, start, "+", "COUNT", std::to_string(limit)});
  if (!r) return tl::unexpected(r.error());
  EventPage page{{}, std::string(after)};
  for (size_t i = 0; i < (*r)->elements; ++i) {
    const redisReply* entry = (*r)->element[i];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
      return MakeError(ErrorCode::kInternal, "Redis answered XRANGE with something else");
    StoredEvent event;
    event.cursor = StringOf(entry->element[0]).value_or("");
    const redisReply* fields = entry->element[1];
    for (size_t f = 0; f + 1 < fields->elements; f += 2) {
      std::string name = StringOf(fields->element[f]).value_or("");
      std::string value = StringOf(fields->element[f + 1]).value_or("");
      if (name == "id")
        event.id = std::move(value);
      else if (name == "type")
        event.type = std::move(value);
      else if (name == "owner")
        event.owner_id = std::move(value);
      else if (name == "job_id")
        event.job_id = std::move(value);
      else if (name == "at")
        std::from_chars(value.data(), value.data() + value.size(), event.created_at);
      else if (name == "job")
        event.job = std::move(value);
    }
    page.events.push_back(std::move(event));
  }
  if (!page.events.empty()) page.next_cursor = page.events.back().cursor;
  return page;
}

Status RedisMetadataStore::PruneEvents(int64_t before_ms) {
  // Entry ids begin with Redis's clock in ms when the event was added, which is within moments
  // of the event's own time.
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto r = (*lease)->Run({"XTRIM", Key("events"), "MINID", fmt::format("{}-0", before_ms)});
  if (!r) return tl::unexpected(r.error());
  return {};
}

Result<std::vector<Job>> RedisMetadataStore::ListExpired(int64_t now_ms, int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  std::vector<std::string> ids;
  {
    auto lease = pool_.Acquire();
    if (!lease) return tl::unexpected(lease.error());
    auto r = (*lease)->Run({"ZRANGEBYSCORE", Key("expiry"), "(0", std::to_string(now_ms), "LIMIT",
                            "0", std::to_string(limit)});
    if (!r) return tl::unexpected(r.error());
    for (size_t i = 0; i < (*r)->elements; ++i) ids.push_back(*StringOf((*r)->element[i]));
  }
  return LoadJobs(ids);
}

Result<std::map<JobStatus, uint64_t>> RedisMetadataStore::CountByStatus() {
  constexpr JobStatus kStatuses[] = {JobStatus::kQueued, JobStatus::kConverting, JobStatus::kDone,
                                     JobStatus::kFailed, JobStatus::kCancelled};
  std::vector<Command> commands;
  for (JobStatus s : kStatuses) commands.push_back({"ZCARD", Key("status", JobStatusName(s))});
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto replies = (*lease)->Pipeline(commands);
  if (!replies) return tl::unexpected(replies.error());
  std::map<JobStatus, uint64_t> counts;
  for (size_t i = 0; i < std::size(kStatuses); ++i)
    counts[kStatuses[i]] = static_cast<uint64_t>((*replies)[i]->integer);
  return counts;
}

Status RedisMetadataStore::Ping() {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto r = (*lease)->Run({"PING"});
  if (!r) return tl::unexpected(r.error());
  return {};
}

std::string RedisMetadataStore::Describe() const {
  return fmt::format("redis://{}:{}/{} (prefix {})", pool_.target().host, pool_.target().port,
                     pool_.target().db, pool_.target().prefix);
}

Result<std::string> RedisMetadataStore::UpdateLimit(
    std::string_view key, std::chrono::milliseconds ttl,
    const std::function<std::string(std::string_view current)>& update) {
  if (auto valid = ValidateLimitKey(key); !valid) return tl::unexpected(valid.error());
  if (ttl.count() <= 0) return MakeError(ErrorCode::kInvalidArgument, "a limit TTL must be > 0");
  std::string record_key = Key("limit", key);
  std::string next;
  auto written = Transact({record_key}, [&](const Values& values) -> Result<std::vector<Command>> {
    next = update(values[0] ? std::string_view(*values[0]) : std::string_view());
    if (next.empty()) return std::vector<Command>{{"DEL", record_key}};
    return std::vector<Command>{{"SET", record_key, next, "PX", std::to_string(ttl.count())}};
  });
  if (!written) return tl::unexpected(written.error());
  return next;
}

Result<std::string> RedisMetadataStore::GetLimit(std::string_view key) {
  if (auto valid = ValidateLimitKey(key); !valid) return tl::unexpected(valid.error());
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto reply = (*lease)->Run({"GET", Key("limit", key)});
  if (!reply) return tl::unexpected(reply.error());
  return StringOf(reply->get()).value_or("");
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
  nlohmann::json message{{"job_id", event.job_id},
                         {"owner_id", event.owner_id},
                         {"type", event.type},
                         {"data", event.data}};
  auto lease = pool_.Acquire();
  if (!lease) {
    spdlog::warn("events: {}", lease.error().message);
    return;
  }
  if (auto r = (*lease)->Run({"PUBLISH", channel_, EncodeJson(message)}); !r)
    spdlog::warn("events: {}", r.error().message);
}

std::unique_ptr<Subscription> RedisJobEventBus::Subscribe(
    std::string job_id, std::function<void(const JobEvent&)> callback) {
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
    if (auto* r = static_cast<redisReply*>(
            redisCommand(c, "SUBSCRIBE %b", channel_.data(), channel_.size()))) {
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
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
          reply->element[2]->type != REDIS_REPLY_STRING)
        continue;
      auto json = nlohmann::json::parse(std::string(reply->element[2]->str, reply->element[2]->len),
                                        nullptr, false);
      if (json.is_discarded() || !json.is_object()) continue;
      JobEvent event{json.value("job_id", ""), json.value("owner_id", ""), json.value("type", ""),
                     json.value("data", nlohmann::json())};
      local_.Publish(event);
    }
    listener_fd_ = -1;
    redisFree(c);
  }
}

// ---- NotificationStore ----

namespace {

nlohmann::json RecordJson(const Record& r) {
  return {{"id", r.id},         {"owner_id", r.owner_id},
          {"parent", r.parent}, {"created_at", r.created_at},
          {"due_at", r.due_at}, {"body", r.body}};
}

Result<Record> RecordFromJson(const std::string& doc) {
  try {
    auto j = nlohmann::json::parse(doc);
    return Record{.id = j.at("id").get<std::string>(),
                  .owner_id = j.at("owner_id").get<std::string>(),
                  .parent = j.at("parent").get<std::string>(),
                  .created_at = j.at("created_at").get<int64_t>(),
                  .due_at = j.at("due_at").get<int64_t>(),
                  .body = j.at("body").get<std::string>()};
  } catch (const nlohmann::json::exception& e) {
    return MakeError(ErrorCode::kInternal, fmt::format("a stored record is corrupt: {}", e.what()));
  }
}

std::string RecordMember(const Record& r) { return fmt::format("{:013}:{}", r.created_at, r.id); }

}  // namespace

std::string RedisMetadataStore::RecordKey(std::string_view kind, std::string_view id) const {
  return Key(fmt::format("rec:{}", kind), id);
}

std::string RedisMetadataStore::RecordIndexKey(std::string_view kind, ListBy by,
                                               std::string_view key) const {
  return Key(fmt::format("recs:{}:{}", kind, by == ListBy::kOwner ? "owner" : "parent"), key);
}

std::vector<RedisMetadataStore::Command> RedisMetadataStore::WriteRecord(
    std::string_view kind, const Record* before, const Record* after) const {
  std::vector<Command> commands;
  const Record& any = after ? *after : *before;
  std::string due = Key(fmt::format("due:{}", kind));
  if (before && !after) {
    commands.push_back({"DEL", RecordKey(kind, any.id)});
    commands.push_back(
        {"ZREM", RecordIndexKey(kind, ListBy::kOwner, any.owner_id), RecordMember(any)});
    if (!any.parent.empty())
      commands.push_back(
          {"ZREM", RecordIndexKey(kind, ListBy::kParent, any.parent), RecordMember(any)});
    commands.push_back({"ZREM", due, any.id});
    commands.push_back({"ZREM", Key(fmt::format("created:{}", kind)), any.id});
    return commands;
  }
  commands.push_back({"SET", RecordKey(kind, any.id), EncodeJson(RecordJson(*after))});
  if (!before) {
    commands.push_back(
        {"ZADD", Key(fmt::format("created:{}", kind)), std::to_string(any.created_at), any.id});
    commands.push_back(
        {"ZADD", RecordIndexKey(kind, ListBy::kOwner, any.owner_id), "0", RecordMember(any)});
    if (!any.parent.empty())
      commands.push_back(
          {"ZADD", RecordIndexKey(kind, ListBy::kParent, any.parent), "0", RecordMember(any)});
  }
  if (after->due_at > 0) {
    commands.push_back({"ZADD", due, std::to_string(after->due_at), any.id});
  } else {
    commands.push_back({"ZREM", due, any.id});
  }
  return commands;
}

Status RedisMetadataStore::Insert(std::string_view kind, const Record& record) {
  if (auto valid = CheckRecord(kind, record); !valid) return valid;
  return Transact(
      {RecordKey(kind, record.id)}, [&](const Values& values) -> Result<std::vector<Command>> {
        if (values[0])
          return MakeError(ErrorCode::kAlreadyExists, fmt::format("{} {} exists", kind, record.id));
        return WriteRecord(kind, nullptr, &record);
      });
}

Result<Record> RedisMetadataStore::Get(std::string_view kind, std::string_view id) {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto reply = (*lease)->Run({"GET", RecordKey(kind, id)});
  if (!reply) return tl::unexpected(reply.error());
  auto doc = StringOf(reply->get());
  if (!doc) return MakeError(ErrorCode::kNotFound, fmt::format("{} {} does not exist", kind, id));
  return RecordFromJson(*doc);
}

Result<Record> RedisMetadataStore::Update(std::string_view kind, std::string_view id,
                                          const std::function<Status(Record&)>& mutate) {
  Record record;
  auto written =
      Transact({RecordKey(kind, id)}, [&](const Values& values) -> Result<std::vector<Command>> {
        if (!values[0])
          return MakeError(ErrorCode::kNotFound, fmt::format("{} {} does not exist", kind, id));
        auto current = RecordFromJson(*values[0]);
        if (!current) return tl::unexpected(current.error());
        record = *current;
        if (auto mutated = mutate(record); !mutated) return tl::unexpected(mutated.error());
        if (auto kept = CheckRecordUpdate(kind, *current, record); !kept)
          return tl::unexpected(kept.error());
        return WriteRecord(kind, &*current, &record);
      });
  if (!written) return tl::unexpected(written.error());
  return record;
}

Status RedisMetadataStore::Remove(std::string_view kind, std::string_view id) {
  return Transact({RecordKey(kind, id)}, [&](const Values& values) -> Result<std::vector<Command>> {
    if (!values[0])
      return MakeError(ErrorCode::kNotFound, fmt::format("{} {} does not exist", kind, id));
    auto current = RecordFromJson(*values[0]);
    if (!current) return tl::unexpected(current.error());
    return WriteRecord(kind, &*current, nullptr);
  });
}

Result<RecordPage> RedisMetadataStore::List(std::string_view kind, ListBy by, std::string_view key,
                                            int limit, std::string_view cursor) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  std::string member;
  if (!cursor.empty()) {
    auto decoded = DecodeJobCursor(cursor);
    if (!decoded) return MakeError(ErrorCode::kInvalidArgument, "malformed list cursor");
    member = fmt::format("{:013}:{}", decoded->created_at, decoded->id);
  }
  std::vector<std::string> ids;
  RecordPage page;
  {
    auto lease = pool_.Acquire();
    if (!lease) return tl::unexpected(lease.error());
    std::string max = cursor.empty() ? "+" : fmt::format("({}", member);
    auto r = (*lease)->Run({"ZREVRANGEBYLEX", RecordIndexKey(kind, by, key), max, "-", "LIMIT", "0",
                            std::to_string(static_cast<int64_t>(limit) + 1)});
    if (!r) return tl::unexpected(r.error());
    for (size_t i = 0; i < (*r)->elements; ++i) {
      std::string m = *StringOf((*r)->element[i]);
      ids.push_back(m.substr(m.find(':') + 1));
    }
  }
  bool more = ids.size() > static_cast<size_t>(limit);
  if (more) ids.resize(static_cast<size_t>(limit));
  if (ids.empty()) return page;
  Command mget = {"MGET"};
  for (const std::string& id : ids) mget.push_back(RecordKey(kind, id));
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto reply = (*lease)->Run(mget);
  if (!reply) return tl::unexpected(reply.error());
  for (size_t i = 0; i < ids.size(); ++i) {
    auto doc = StringOf((*reply)->element[i]);
    if (!doc) continue;  // removed since its index entry was read
    auto record = RecordFromJson(*doc);
    if (!record) return tl::unexpected(record.error());
    page.records.push_back(std::move(*record));
  }
  if (more && !page.records.empty()) page.next_cursor = EncodeRecordCursor(page.records.back());
  return page;
}

Result<std::vector<Record>> RedisMetadataStore::ClaimDue(std::string_view kind, int64_t now_ms,
                                                         int64_t lease_ms, int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  if (lease_ms <= 0) return MakeError(ErrorCode::kInvalidArgument, "a lease must be > 0");
  std::vector<std::string> ids;
  {
    auto lease = pool_.Acquire();
    if (!lease) return tl::unexpected(lease.error());
    auto r = (*lease)->Run({"ZRANGEBYSCORE", Key(fmt::format("due:{}", kind)), "(0",
                            std::to_string(now_ms), "LIMIT", "0", std::to_string(limit)});
    if (!r) return tl::unexpected(r.error());
    for (size_t i = 0; i < (*r)->elements; ++i) ids.push_back(*StringOf((*r)->element[i]));
  }
  // Each one claimed in its own transaction: a record another claimer took meanwhile (its due
  // time moved past now) or removed is skipped.
  std::vector<Record> claimed;
  for (const std::string& id : ids) {
    std::optional<Record> got;
    auto written =
        Transact({RecordKey(kind, id)}, [&](const Values& values) -> Result<std::vector<Command>> {
          got.reset();
          if (!values[0]) return std::vector<Command>{};
          auto current = RecordFromJson(*values[0]);
          if (!current) return tl::unexpected(current.error());
          if (current->due_at <= 0 || current->due_at > now_ms) return std::vector<Command>{};
          Record record = *current;
          record.due_at = now_ms + lease_ms;
          got = record;
          return WriteRecord(kind, &*current, &record);
        });
    if (!written) return tl::unexpected(written.error());
    if (got) claimed.push_back(std::move(*got));
  }
  return claimed;
}

Result<int> RedisMetadataStore::PruneRecords(std::string_view kind, int64_t before_ms, int limit) {
  if (auto valid = CheckListLimit(limit); !valid) return tl::unexpected(valid.error());
  std::vector<std::string> ids;
  {
    auto lease = pool_.Acquire();
    if (!lease) return tl::unexpected(lease.error());
    // Oldest first; due ones are skipped below, so look a little further than `limit`.
    auto r = (*lease)->Run({"ZRANGEBYSCORE", Key(fmt::format("created:{}", kind)), "-inf",
                            fmt::format("({}", before_ms), "LIMIT", "0",
                            std::to_string(static_cast<int64_t>(limit) * 2)});
    if (!r) return tl::unexpected(r.error());
    for (size_t i = 0; i < (*r)->elements; ++i) ids.push_back(*StringOf((*r)->element[i]));
  }
  int removed = 0;
  for (const std::string& id : ids) {
    if (removed == limit) break;
    bool gone = false;
    auto written =
        Transact({RecordKey(kind, id)}, [&](const Values& values) -> Result<std::vector<Command>> {
          gone = false;
          if (!values[0])  // removed meanwhile: drop its stale index entry
            return std::vector<Command>{{"ZREM", Key(fmt::format("created:{}", kind)), id}};
          auto current = RecordFromJson(*values[0]);
          if (!current) return tl::unexpected(current.error());
          if (current->due_at != 0) return std::vector<Command>{};
          gone = true;
          return WriteRecord(kind, &*current, nullptr);
        });
    if (!written) return tl::unexpected(written.error());
    removed += gone ? 1 : 0;
  }
  return removed;
}

Result<std::string> RedisMetadataStore::GetCursor(std::string_view name) {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto reply = (*lease)->Run({"GET", Key("cursor", name)});
  if (!reply) return tl::unexpected(reply.error());
  return StringOf(reply->get()).value_or("");
}

Status RedisMetadataStore::SetCursor(std::string_view name, std::string_view value) {
  auto lease = pool_.Acquire();
  if (!lease) return tl::unexpected(lease.error());
  auto reply = (*lease)->Run({"SET", Key("cursor", name), std::string(value)});
  if (!reply) return tl::unexpected(reply.error());
  return {};
}

}  // namespace vmp3
