// The download role: streams finished MP3s with Range support.
#include <fmt/format.h>

#include "http/conditional.hpp"
#include "http/content_disposition.hpp"
#include "http/problem.hpp"
#include "http/range.hpp"
#include "roles/download_role.hpp"
#include "roles/jobs.hpp"
#include "roles/route_binding.hpp"

namespace vmp3::roles {
namespace {

using http::Exchange;
using http::Response;

class DownloadRoutes {
 public:
  explicit DownloadRoutes(const DownloadRole& role) : role_(role) {}

  http::Awaitable<Response> Mp3(Exchange& ex) { return Serve(ex, ex.Param("id"), false); }
  http::Awaitable<Response> Seed(Exchange& ex) {
    return Serve(ex, ex.request().QueryParam("fid").value_or(""), true);
  }

  http::Awaitable<Response> Serve(Exchange& ex, std::string_view job_id, bool seed) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto job = co_await ex.Blocking<Result<Job>>(
        [&] { return OwnedJob(role_.metadata, job_id, claims->subject); });
    if (!job) co_return Response::Problem(job.error());
    if (job->status != JobStatus::kDone) {
      Error e(seed ? ErrorCode::kNotFound : ErrorCode::kConflict,
              fmt::format("the MP3 is not ready: the job is {}", JobStatusName(job->status)));
      co_return Response::Problem(e);
    }
    // Large deployments let clients fetch from object storage directly.
    // A URL that cannot be made falls back to streaming the MP3 from here.
    if (role_.presigned_urls) {
      auto url = role_.presigned_urls->PresignedGetUrl(job->output_key, std::chrono::minutes(10));
      if (url) {
        Response moved;
        moved.status = 302;
        moved.Header("Location", *url);
        moved.Header("Cache-Control", "no-store");
        co_return moved;
      }
    }
    auto reader = co_await ex.Blocking<Result<std::unique_ptr<ObjectReader>>>(
        [&] { return role_.storage.Open(job->output_key); });
    if (!reader) co_return Response::Problem(reader.error());
    const ObjectInfo& info = (*reader)->Info();
    std::string etag = fmt::format("\"{}\"", info.etag.empty() ? job->id : info.etag);

    Response r;
    r.Header("Content-Type", "audio/mpeg");
    r.Header("Accept-Ranges", "bytes");
    r.Header("ETag", etag);
    r.Header("Content-Disposition", http::AttachmentDisposition(http::Mp3NameFor(job->input_name)));
    r.Header("Cache-Control", "private, max-age=0");
    if (http::IfNoneMatchHits(ex.request().Header("If-None-Match"), etag)) {
      r.status = 304;
      co_return r;
    }
    http::RangeDecision range{http::RangeDecision::Kind::kWhole};
    std::string_view range_header = ex.request().Header("Range");
    std::string_view if_range = ex.request().Header("If-Range");
    if (!range_header.empty() && (if_range.empty() || http::IfRangeMatches(if_range, etag)))
      range = http::ParseRange(range_header, info.size);
    switch (range.kind) {
      case http::RangeDecision::Kind::kUnsatisfiable: {
        Error error(ErrorCode::kRangeNotSatisfiable,
                    fmt::format("range not satisfiable: the MP3 has {} bytes", info.size));
        Response bad = Response::Problem(error);
        bad.Header("Content-Range", http::UnsatisfiedContentRange(info.size));
        co_return bad;
      }
      case http::RangeDecision::Kind::kPartial:
        r.status = 206;
        r.offset = range.first;
        r.length = range.last - range.first + 1;
        r.Header("Content-Range", http::ContentRange(range.first, range.last, info.size));
        break;
      case http::RangeDecision::Kind::kWhole:
        r.length = info.size;
        break;
    }
    r.head_only = ex.request().method == "HEAD";
    r.stream = std::move(*reader);
    co_return r;
  }

 private:
  const DownloadRole& role_;
};

}  // namespace

void AddDownloadRoutes(http::Router& router, const DownloadRole* role) {
  auto routes = role ? std::make_shared<DownloadRoutes>(*role) : nullptr;
  router.Add({"GET", "/v1/jobs/{id}/mp3", Bind(routes, &DownloadRoutes::Mp3, "download"), 0,
              "The MP3 of a finished job (Range supported; HEAD too)", /*streaming=*/true});
  router.Add({"GET", "/download", Bind(routes, &DownloadRoutes::Seed, "download"), 0,
              "Seed-compatible download: ?fid=JOB_ID", /*streaming=*/true});
}

}  // namespace vmp3::roles
