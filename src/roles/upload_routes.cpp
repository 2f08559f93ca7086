// The upload role: streams an upload into object storage, records the job, queues it.
// Memory stays bounded: the body flows through one fixed buffer into the object writer.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "http/content_disposition.hpp"
#include "http/multipart.hpp"
#include "media/converter.hpp"
#include "roles/route_binding.hpp"
#include "roles/upload_options.hpp"
#include "roles/upload_role.hpp"

namespace vmp3::roles {
namespace {

using http::Exchange;
using http::Response;

constexpr size_t kChunk = 256 * 1024;
constexpr uint64_t kMultipartOverhead = 64 * 1024;

// Receives multipart events: the `file` part streams into the object writer; small fields are
// collected as options.
class UploadSink final : public http::MultipartHandler {
 public:
  explicit UploadSink(ObjectWriter& writer) : writer_(writer) {}

  Status OnPartBegin(const http::PartHeaders& headers) override {
    field_.clear();
    current_ = headers.name;
    in_file_ = headers.is_file() && headers.name == "file";
    if (in_file_) {
      if (seen_file_) return MakeError(ErrorCode::kInvalidArgument, "send exactly one 'file' part");
      seen_file_ = true;
      filename = headers.filename.value_or("");
    }
    return {};
  }
  Status OnPartData(std::span<const std::byte> data) override {
    if (in_file_) {
      bytes += data.size();
      return writer_.Write(data);
    }
    if (field_.size() + data.size() > 1024)
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("form field '{}' is too long", current_));
    field_.append(reinterpret_cast<const char*>(data.data()), data.size());
    return {};
  }
  Status OnPartEnd() override {
    if (current_ == "quality") options.quality = field_;
    if (current_ == "bitrate") options.bitrate = field_;
    if (current_ == "webhook_url") options.webhook_url = field_;
    in_file_ = false;
    return {};
  }

  std::string filename;
  uint64_t bytes = 0;
  bool seen_file_ = false;
  UploadOptions options;

 private:
  ObjectWriter& writer_;
  std::string current_;
  std::string field_;
  bool in_file_ = false;
};

class UploadRoutes {
 public:
  explicit UploadRoutes(const UploadRole& role)
      : role_(role),
        uploads_(role.metrics.AddCounter("vmp3_upload_bytes_total", "Bytes uploaded into storage.")
                     .WithLabels()) {}

  // Streams the body into storage and creates + queues the job.
  http::Awaitable<Result<Job>> Receive(Exchange& ex, const auth::Claims& claims) {
    const auto& req = ex.request();
    if (!req.has_body)
      co_return MakeError(ErrorCode::kInvalidArgument, "the upload is empty: send a video file");
    Job job;
    job.id = NewId();
    job.owner_id = claims.subject;
    job.input_key = InputKey(job.id);
    // Refuse early what the quota would refuse at the end, before the bytes are sent (a client
    // that sent Expect: 100-continue has sent none yet). CreateJobWithin checks again,
    // atomically, once the size is known.
    auto writer = co_await ex.Blocking<Result<std::unique_ptr<ObjectWriter>>>(
        [&]() -> Result<std::unique_ptr<ObjectWriter>> {
          auto usage = role_.metadata.GetUsage(claims.subject);
          if (!usage) return tl::unexpected(usage.error());
          usage->active_jobs += 1;
          usage->stored_bytes += req.content_length.value_or(0);
          if (auto within = CheckUsageLimits(*usage, role_.quota.Limits()); !within)
            return tl::unexpected(within.error());
          return role_.storage.Create(job.input_key);
        });
    if (!writer) co_return tl::unexpected(writer.error());

    UploadSink sink(**writer);
    std::string_view content_type = req.Header("Content-Type");
    bool multipart = StartsWithIgnoringAsciiCase(content_type, "multipart/form-data");
    std::optional<http::MultipartParser> parser;
    if (multipart) {
      auto boundary = http::BoundaryFromContentType(content_type);
      if (!boundary) co_return tl::unexpected(boundary.error());
      parser.emplace(*boundary, sink);
    } else {
      sink.filename = std::string(req.QueryParam("filename").value_or("upload"));
      sink.seen_file_ = true;
      if (auto q = req.QueryParam("quality")) sink.options.quality = std::string(*q);
      if (auto b = req.QueryParam("bitrate")) sink.options.bitrate = std::string(*b);
      if (auto w = req.QueryParam("webhook_url")) sink.options.webhook_url = std::string(*w);
      // Refused before the body is read (checked again below, with the form's fields).
      if (sink.options.webhook_url && !sink.options.webhook_url->empty()) {
        if (Status s = role_.egress.CheckUrl(*sink.options.webhook_url); !s)
          co_return tl::unexpected(s.error());
      }
    }

    std::vector<std::byte> buffer(kChunk);
    uint64_t limit = role_.config.max_upload_bytes;
    for (;;) {
      auto n = co_await ex.ReadBody(buffer);
      if (!n) {
        if (n.error().code == ErrorCode::kTooLarge)
          co_return MakeError(
              ErrorCode::kTooLarge,
              fmt::format("the upload is larger than the limit of {} bytes", limit));
        co_return tl::unexpected(n.error());
      }
      if (*n == 0) break;
      std::span<const std::byte> piece(buffer.data(), *n);
      Status fed = co_await ex.Blocking<Status>([&]() -> Status {
        if (parser) return parser->Feed(piece);
        sink.bytes += piece.size();
        return (*writer)->Write(piece);
      });
      if (!fed) co_return tl::unexpected(fed.error());
      if (sink.bytes > limit)
        co_return MakeError(ErrorCode::kTooLarge,
                            fmt::format("the upload is larger than the limit of {} bytes", limit));
    }
    if (parser) {
      if (auto s = parser->Finish(); !s) co_return tl::unexpected(s.error());
      if (!sink.seen_file_)
        co_return MakeError(ErrorCode::kInvalidArgument,
                            "the form has no 'file' part: attach the video as 'file'");
    }
    if (sink.bytes == 0)
      co_return MakeError(ErrorCode::kInvalidArgument, "the uploaded file is empty");
    auto options = sink.options.ToConvertOptions();
    if (!options) co_return tl::unexpected(options.error());
    if (sink.options.webhook_url && !sink.options.webhook_url->empty()) {
      if (Status s = role_.egress.CheckUrl(*sink.options.webhook_url); !s)
        co_return tl::unexpected(s.error());
    }

    uploads_.Inc(static_cast<double>(sink.bytes));
    // Names are untrusted bytes; invalid UTF-8 would make every JSON rendering of the job throw.
    job.input_name = http::DropInvalidUtf8(sink.filename);
    if (job.input_name.empty()) job.input_name = "upload";
    job.input_size = sink.bytes;
    job.options_json = sink.options.Json();
    job.status = JobStatus::kQueued;
    job.created_at = job.updated_at = role_.now_ms();
    job.expires_at = job.created_at + role_.retention.retention_seconds * 1000;
    Status stored = co_await ex.Blocking<Status>([&]() -> Status {
      auto committed = (*writer)->Commit();
      if (!committed) return tl::unexpected(committed.error());
      if (auto s = role_.metadata.CreateJobWithin(job, role_.quota.Limits()); !s) {
        RemoveInputAfterFailure(job);
        return s;
      }
      // The job is acknowledged only once the queue holds it durably. If the queue cannot take
      // it, nothing stays behind: the record goes first (a record without a message would stay
      // queued forever), then the input (the orphan sweep removes it if this fails).
      if (auto s = role_.queue.Publish(job.id); !s) {
        if (Status d = role_.metadata.DeleteJob(job.id); !d) {
          spdlog::error("job {}: the queue refused it and its record cannot be deleted: {}", job.id,
                        d.error().message);
        }
        RemoveInputAfterFailure(job);
        return s;
      }
      return {};
    });
    if (!stored) co_return tl::unexpected(stored.error());
    // Best effort, like every lifecycle event; off the I/O thread, since it talks to the broker.
    if (role_.lifecycle) {
      Status announced = co_await ex.Blocking<Status>(
          [&] { return role_.lifecycle->Publish("job.queued", JobJson(job).dump()); });
      if (!announced)
        spdlog::warn("job {}: lifecycle event job.queued not published: {}", job.id,
                     announced.error().message);
    }
    spdlog::info("job {} queued: {} bytes from user {}", job.id, job.input_size, claims.subject);
    co_return job;
  }

  void RemoveInputAfterFailure(const Job& job) {
    if (Status s = role_.storage.Remove(job.input_key); !s) {
      spdlog::warn(
          "job {}: the upload failed and its input cannot be removed yet (the janitor's "
          "orphan sweep will): {}",
          job.id, s.error().message);
    }
  }

  http::Awaitable<Response> Create(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto job = co_await Receive(ex, *claims);
    if (!job) co_return Response::Problem(job.error());
    Response r = Response::Json(202, JobJson(*job).dump());
    r.Header("Location", "/v1/jobs/" + job->id);
    co_return r;
  }

  http::Awaitable<Response> CreateSeed(Exchange& ex) {
    auto claims = co_await role_.api.Authorize(ex);
    if (!claims) co_return Response::Problem(claims.error());
    auto job = co_await Receive(ex, *claims);
    if (!job) co_return Response::Problem(job.error());
    co_return Response::Text(200, job->id);
  }

 private:
  const UploadRole& role_;
  metrics::Counter& uploads_;
};

}  // namespace

void UploadConfig::AddOptions(OptionList& options) {
  options.push_back({"--max-upload-bytes", "VMP3_MAX_UPLOAD_BYTES",
                     "Largest upload accepted, bytes (413 beyond)", &max_upload_bytes});
}

Status UploadConfig::Validate() const {
  if (max_upload_bytes == 0)
    return MakeError(ErrorCode::kInvalidArgument, "--max-upload-bytes must be positive");
  return {};
}

void AddUploadRoutes(http::Router& router, const UploadConfig& config, const UploadRole* role) {
  auto routes = role ? std::make_shared<UploadRoutes>(*role) : nullptr;
  uint64_t max_body = config.max_upload_bytes + kMultipartOverhead;
  router.Add({"POST", "/v1/jobs", Bind(routes, &UploadRoutes::Create, "upload"), max_body,
              "Upload a video (multipart part 'file', or a raw body with ?filename=) and queue its "
              "conversion",
              /*streaming=*/true});
  router.Add({"POST", "/upload", Bind(routes, &UploadRoutes::CreateSeed, "upload"), max_body,
              "Seed-compatible upload: answers with the job id as plain text",
              /*streaming=*/true});
}

}  // namespace vmp3::roles
