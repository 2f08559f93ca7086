// The metadata role: a user's jobs, their live events, and deletion.
#include <fmt/format.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>

#include "roles/metadata_role.hpp"
#include "roles/route_binding.hpp"

namespace vmp3::roles {
namespace {

using http::Exchange;
using http::Response;

// Events from the bus, handed from the publisher's thread to the SSE coroutine.
struct EventInbox {
  std::mutex mu;
  std::deque<JobEvent> events;
};

class MetadataRoutes {
 public:
  explicit MetadataRoutes(const MetadataRole& role) : role_(role) {}

  http::Awaitable<Response> List(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    int limit = 20;
    if (auto text = ex.request().QueryParam("limit")) {
      auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), limit);
      if (ec != std::errc() || limit < 1 || limit > 100)
        co_return Response::Problem(Error(ErrorCode::kInvalidArgument, "limit must be 1..100"));
    }
    std::string cursor(ex.request().QueryParam("cursor").value_or(""));
    auto page = co_await ex.Blocking<Result<JobPage>>(
        [&] { return role_.metadata.ListJobs(claims->subject, limit, cursor); });
    if (!page) co_return Response::Problem(page.error());
    nlohmann::json jobs = nlohmann::json::array();
    for (const Job& job : page->jobs) jobs.push_back(JobJson(job));
    nlohmann::json out{{"jobs", jobs}};
    out["next_cursor"] =
        page->next_cursor.empty() ? nlohmann::json() : nlohmann::json(page->next_cursor);
    co_return Response::Json(200, out.dump());
  }

  http::Awaitable<Response> Get(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto job = co_await ex.Blocking<Result<Job>>(
        [&] { return OwnedJob(role_.metadata, ex.Param("id"), claims->subject); });
    if (!job) co_return Response::Problem(job.error());
    co_return Response::Json(200, JobJson(*job).dump());
  }

  http::Awaitable<Response> Events(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    std::string id(ex.Param("id"));
    auto inbox = std::make_shared<EventInbox>();
    // Subscribe before reading the state, so no change between the two is missed.
    auto subscription =
        std::shared_ptr<Subscription>(role_.events.Subscribe(id, [inbox](const JobEvent& event) {
          std::lock_guard lock(inbox->mu);
          if (inbox->events.size() < 1024) inbox->events.push_back(event);
        }));
    auto job = co_await ex.Blocking<Result<Job>>(
        [&] { return OwnedJob(role_.metadata, id, claims->subject); });
    if (!job) co_return Response::Problem(job.error());
    Response r;
    r.Header("X-Accel-Buffering", "no");  // nginx: do not buffer the stream
    const MetadataRole& role = role_;
    r.events = [&role, subscription, inbox,
                initial = *job](http::EventStream& stream) -> http::Awaitable<void> {
      auto executor = co_await boost::asio::this_coro::executor;
      boost::asio::steady_timer timer(executor);
      if (!co_await stream.Send("status", JobJson(initial).dump())) co_return;
      if (IsTerminal(initial.status)) co_return;
      auto last_ping = std::chrono::steady_clock::now();
      auto last_check = last_ping;
      for (;;) {
        std::deque<JobEvent> batch;
        {
          std::lock_guard lock(inbox->mu);
          batch.swap(inbox->events);
        }
        for (const JobEvent& event : batch) {
          if (!co_await stream.Send(event.type, event.data.dump())) co_return;
          if (event.type == "status" && event.data.contains("status")) {
            auto status = ParseJobStatus(event.data["status"].get<std::string>());
            if (status && IsTerminal(*status)) co_return;
          }
        }
        if (stream.Draining()) co_return;
        auto now = std::chrono::steady_clock::now();
        if (now - last_ping > std::chrono::seconds(15)) {
          if (!co_await stream.Comment("ping")) co_return;
          last_ping = now;
        }
        // A safety net for events lost between processes: re-read the job now and then.
        if (now - last_check > std::chrono::seconds(5)) {
          last_check = now;
          auto job = co_await stream.Blocking<Result<Job>>(
              [&] { return role.metadata.GetJob(initial.id); });
          if (!job) {
            // A backend hiccup is no reason to drop the stream; a deleted job is.
            if (job.error().code == ErrorCode::kNotFound) co_return;
            continue;
          }
          if (IsTerminal(job->status)) {
            co_await stream.Send("status", JobJson(*job).dump());
            co_return;
          }
        }
        timer.expires_after(std::chrono::milliseconds(100));
        co_await timer.async_wait(boost::asio::use_awaitable);
      }
    };
    co_return r;
  }

  // The caller's account: who, what they use, and the limits that apply.
  http::Awaitable<Response> Account(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    struct Found {
      User user;
      Usage usage;
    };
    auto found = co_await ex.Blocking<Result<Found>>([&]() -> Result<Found> {
      auto user = role_.metadata.GetUser(claims->subject);
      if (!user) return tl::unexpected(user.error());
      auto usage = role_.metadata.GetUsage(claims->subject);
      if (!usage) return tl::unexpected(usage.error());
      return Found{std::move(*user), *usage};
    });
    if (!found) co_return Response::Problem(found.error());
    auto limit = [](uint64_t value) { return value ? nlohmann::json(value) : nlohmann::json(); };
    nlohmann::json rate = nullptr;
    if (const auth::RateLimiter* limiter = role_.api.limiter();
        limiter && limiter->limit().enabled())
      rate = {{"per_second", limiter->limit().per_second}, {"burst", limiter->limit().burst}};
    nlohmann::json out{
        {"id", found->user.id},
        {"username", found->user.username},
        {"email", found->user.email.empty() ? nlohmann::json() : nlohmann::json(found->user.email)},
        {"created_at", found->user.created_at / 1000.0},
        {"usage",
         {{"active_jobs", found->usage.active_jobs}, {"stored_bytes", found->usage.stored_bytes}}},
        {"limits",
         {{"max_active_jobs", limit(role_.quota.max_active_jobs)},
          {"max_stored_bytes", limit(role_.quota.max_user_bytes)},
          {"rate", rate},
          {"retention_seconds", role_.retention.retention_seconds}}}};
    co_return Response::Json(200, out.dump());
  }

  http::Awaitable<Response> Delete(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    std::string id(ex.Param("id"));
    Status deleted = co_await ex.Blocking<Status>([&]() -> Status {
      auto job = OwnedJob(role_.metadata, id, claims->subject);
      if (!job) return tl::unexpected(job.error());
      // First record the deletion: cancelled (a converter working on it sees this and stops)
      // and expired now, so that if anything below fails, the janitor finishes the deletion.
      int64_t now = role_.now_ms();
      auto marked = role_.metadata.UpdateJob(id, [&](Job& j) -> Status {
        if (!IsTerminal(j.status)) {
          j.status = JobStatus::kCancelled;
          j.finished_at = now;
        }
        j.updated_at = now;
        j.expires_at = now;
        return {};
      });
      if (!marked) return tl::unexpected(marked.error());
      if (job->status != marked->status) {
        role_.events.Publish({id, claims->subject, "status", JobJson(*marked)});
      }
      // Then the objects, then the record that names them.
      for (const std::string& key : {marked->input_key, marked->output_key}) {
        if (key.empty()) continue;
        if (Status s = role_.storage.Remove(key); !s) {
          return MakeError(s.error().code,
                           fmt::format("the job is cancelled, but its files cannot be removed "
                                       "yet ({}); they will be removed automatically, or retry",
                                       s.error().message));
        }
      }
      return role_.metadata.DeleteJob(id);
    });
    if (!deleted) co_return Response::Problem(deleted.error());
    co_return Response::NoContent();
  }

  // GET /v1/events?after=CURSOR&limit=N: the caller's job events, oldest first, kept 30 days;
  // for clients that poll instead of receiving webhooks. next_cursor is where to continue.
  http::Awaitable<Response> EventLog(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    int limit = 50;
    if (auto text = ex.request().QueryParam("limit")) {
      auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), limit);
      if (ec != std::errc() || ptr != text->data() + text->size() || limit < 1 || limit > 100)
        co_return Response::Problem(Error(ErrorCode::kInvalidArgument, "limit must be 1..100"));
    }
    std::string after(ex.request().QueryParam("after").value_or(""));
    auto page = co_await ex.Blocking<Result<EventPage>>(
        [&] { return role_.metadata.ReadEvents(claims->subject, after, limit); });
    if (!page) co_return Response::Problem(page.error());
    const int64_t oldest = role_.now_ms() - kEventRetentionMs;
    nlohmann::json events = nlohmann::json::array();
    for (const StoredEvent& event : page->events) {
      if (event.created_at < oldest) continue;  // a backend that prunes lazily still has it
      nlohmann::json data;
      try {
        data = JobJson(nlohmann::json::parse(event.job).get<Job>());
      } catch (const nlohmann::json::exception&) {
        continue;
      }
      events.push_back({{"id", event.id},
                        {"type", event.type},
                        {"timestamp", event.created_at / 1000.0},
                        {"data", std::move(data)}});
    }
    co_return Response::Json(
        200, nlohmann::json{{"events", events}, {"next_cursor", page->next_cursor}}.dump());
  }

 private:
  const MetadataRole& role_;
};

}  // namespace

void AddMetadataRoutes(http::Router& router, const MetadataRole* role) {
  auto routes = role ? std::make_shared<MetadataRoutes>(*role) : nullptr;
  router.Add({"GET", "/v1/jobs/{id}", Bind(routes, &MetadataRoutes::Get, "metadata"), 0,
              "A job's status, progress, error, input and output"});
  router.Add({"GET", "/v1/jobs/{id}/events", Bind(routes, &MetadataRoutes::Events, "metadata"), 0,
              "Server-Sent Events: progress and status until the job ends",
              /*streaming=*/true});
  router.Add({"DELETE", "/v1/jobs/{id}", Bind(routes, &MetadataRoutes::Delete, "metadata"), 0,
              "Cancel a job and delete its files and record"});
  router.Add({"GET", "/v1/events", Bind(routes, &MetadataRoutes::EventLog, "metadata"), 0,
              "The caller's job events, oldest first, kept 30 days (after, limit)"});
  router.Add({"GET", "/v1/account", Bind(routes, &MetadataRoutes::Account, "metadata"), 0,
              "The caller's account: usage (unfinished jobs, stored bytes) and limits"});
}

void AddJobListRoute(http::Router& router, const MetadataRole* role) {
  auto routes = role ? std::make_shared<MetadataRoutes>(*role) : nullptr;
  router.Add({"GET", "/v1/jobs", Bind(routes, &MetadataRoutes::List, "metadata"), 0,
              "The caller's jobs, newest first (limit, cursor)"});
}

}  // namespace vmp3::roles
