#include "media/avio.hpp"

#include <fmt/format.h>

#include <limits>

namespace vmp3::media {
namespace {

constexpr int kIoBufferSize = 64 * 1024;

// The absolute offset an AVIO seek asks for, or a negative AVERROR.
int64_t SeekTarget(int64_t offset, int whence, uint64_t position, std::optional<uint64_t> size) {
  int64_t target = 0;
  switch (whence) {
    case SEEK_SET:
      target = offset;
      break;
    case SEEK_CUR:
      target = static_cast<int64_t>(position) + offset;
      break;
    case SEEK_END:
      if (!size) return AVERROR(ENOSYS);
      target = static_cast<int64_t>(*size) + offset;
      break;
    default:
      return AVERROR(EINVAL);
  }
  return target < 0 ? AVERROR(EINVAL) : target;
}

int InterruptCallback(void* opaque) {
  return static_cast<std::stop_token*>(opaque)->stop_requested() ? 1 : 0;
}

// AVFormatContext::io_open for inputs: refuses to open anything (see OpenInput). The name is
// the uploader's text, so it is not logged.
int RefuseNestedOpen(AVFormatContext* context, AVIOContext** /*pb*/, const char* /*url*/,
                     int /*flags*/, AVDictionary** /*options*/) {
  av_log(context, AV_LOG_WARNING, "refused to open a resource that the input names\n");
  return AVERROR(EPERM);
}

}  // namespace

AvioReader::AvioReader(ByteSource& source) : source_(source) {
  auto* buffer = static_cast<unsigned char*>(av_malloc(kIoBufferSize));
  ctx_ = avio_alloc_context(buffer, kIoBufferSize, 0, this, &AvioReader::Read, nullptr,
                            source.Seekable() ? &AvioReader::Seek : nullptr);
  if (ctx_ && !source.Seekable()) ctx_->seekable = 0;
}

AvioReader::~AvioReader() {
  if (ctx_) av_freep(&ctx_->buffer);
  avio_context_free(&ctx_);
}

int AvioReader::Read(void* opaque, uint8_t* buf, int size) {
  auto* self = static_cast<AvioReader*>(opaque);
  auto n =
      self->source_.Read(std::span(reinterpret_cast<std::byte*>(buf), static_cast<size_t>(size)));
  if (!n) {
    if (!self->error_) self->error_ = n.error();
    return AVERROR(EIO);
  }
  if (*n == 0) return AVERROR_EOF;
  self->position_ += *n;
  return static_cast<int>(*n);
}

int64_t AvioReader::Seek(void* opaque, int64_t offset, int whence) {
  auto* self = static_cast<AvioReader*>(opaque);
  std::optional<uint64_t> size = self->source_.Size();
  whence &= ~AVSEEK_FORCE;
  if (whence == AVSEEK_SIZE) return size ? static_cast<int64_t>(*size) : AVERROR(ENOSYS);
  int64_t target = SeekTarget(offset, whence, self->position_, size);
  if (target < 0) return target;
  if (auto s = self->source_.Seek(static_cast<uint64_t>(target)); !s) {
    if (!self->error_) self->error_ = s.error();
    return AVERROR(EIO);
  }
  self->position_ = static_cast<uint64_t>(target);
  return target;
}

AvioWriter::AvioWriter(ByteSink& sink, uint64_t max_bytes) : sink_(sink), max_bytes_(max_bytes) {
  auto* buffer = static_cast<unsigned char*>(av_malloc(kIoBufferSize));
  ctx_ = avio_alloc_context(buffer, kIoBufferSize, 1, this, nullptr, &AvioWriter::Write,
                            sink.Seekable() ? &AvioWriter::Seek : nullptr);
  if (ctx_) ctx_->seekable = sink.Seekable() ? AVIO_SEEKABLE_NORMAL : 0;
}

AvioWriter::~AvioWriter() {
  if (ctx_) av_freep(&ctx_->buffer);
  avio_context_free(&ctx_);
}

int AvioWriter::Write(void* opaque, uint8_t* buf, int size) {
  auto* self = static_cast<AvioWriter*>(opaque);
  if (self->error_) return AVERROR(EIO);
  uint64_t end = self->position_ + static_cast<uint64_t>(size);
  if (self->max_bytes_ && end > self->max_bytes_) {
    self->error_ =
        Error(ErrorCode::kOutputTooLarge,
              fmt::format("output would exceed the limit of {} bytes", self->max_bytes_));
    return AVERROR(EFBIG);
  }
  auto s = self->sink_.Write(
      std::span(reinterpret_cast<const std::byte*>(buf), static_cast<size_t>(size)));
  if (!s) {
    self->error_ = s.error();
    return AVERROR(EIO);
  }
  self->position_ = end;
  self->high_water_ = std::max(self->high_water_, end);
  return size;
}

int64_t AvioWriter::Seek(void* opaque, int64_t offset, int whence) {
  auto* self = static_cast<AvioWriter*>(opaque);
  whence &= ~AVSEEK_FORCE;
  if (whence == AVSEEK_SIZE) return static_cast<int64_t>(self->high_water_);
  int64_t target = SeekTarget(offset, whence, self->position_, self->high_water_);
  if (target < 0) return target;
  if (auto s = self->sink_.Seek(static_cast<uint64_t>(target)); !s) {
    if (!self->error_) self->error_ = s.error();
    return AVERROR(EIO);
  }
  self->position_ = static_cast<uint64_t>(target);
  return target;
}

Error InputError(const AvioReader& io, int averr, ErrorCode fallback, std::string_view what,
                 std::stop_token stop) {
  if (stop.stop_requested() || averr == AVERROR_EXIT)
    return Error(ErrorCode::kCancelled, "conversion cancelled");
  if (io.error()) return *io.error();
  return Error(fallback, fmt::format("{} ({})", what, AvErrorText(averr)));
}

Result<OpenedInput> OpenInput(ByteSource& source, bool audio_only, std::stop_token stop) {
  InstallFfmpegLogBridge();
  if (source.Size() && *source.Size() == 0)
    return MakeError(ErrorCode::kEmptyInput, "input is empty (0 bytes)");

  OpenedInput in;
  in.stop = std::make_unique<std::stop_token>(stop);
  in.io = std::make_unique<AvioReader>(source);
  if (!in.io->context()) return MakeError(ErrorCode::kInternal, "out of memory");

  // Detect the format from the content alone. A weak guess (score at or below
  // AVPROBE_SCORE_RETRY) on arbitrary bytes is how random data gets mistaken for MPEG audio, so
  // such guesses count as "not media".
  const AVInputFormat* format = nullptr;
  int score = av_probe_input_buffer2(in.io->context(), &format, "", nullptr, 0, 0);
  if (score < 0 || !format) {
    if (in.io->error()) return tl::unexpected(*in.io->error());
    if (score == AVERROR_EOF) return MakeError(ErrorCode::kEmptyInput, "input is empty (0 bytes)");
    return MakeError(ErrorCode::kNotMedia,
                     "input is not a media file that vmp3 can read (unrecognised format)");
  }
  if (score <= AVPROBE_SCORE_RETRY) {
    return MakeError(ErrorCode::kNotMedia,
                     "input is not a media file that vmp3 can read (unrecognised format)");
  }

  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) return MakeError(ErrorCode::kInternal, "out of memory");
  raw->pb = in.io->context();
  raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  raw->interrupt_callback.callback = &InterruptCallback;
  raw->interrupt_callback.opaque = in.stop.get();
  // The input is the uploaded bytes and nothing else. Some formats name other resources: an HLS
  // or DASH playlist its segments, a concat list its files. Opening those would let an upload
  // read the server's files or make it fetch URLs of the uploader's choosing, so every such open
  // is refused, both through this context (io_open) and through the nested contexts that concat
  // opens, which inherit only the protocol whitelist ("none" matches no protocol).
  raw->io_open = &RefuseNestedOpen;
  AVDictionary* options = nullptr;
  av_dict_set(&options, "protocol_whitelist", "none", 0);
  int err = avformat_open_input(&raw, "", format, &options);
  av_dict_free(&options);
  if (err < 0) {  // avformat_open_input frees the context on failure
    return tl::unexpected(InputError(*in.io, err, ErrorCode::kCorruptMedia,
                                     fmt::format("input is damaged or truncated: cannot read its "
                                                 "{} header",
                                                 format->name),
                                     stop));
  }
  in.format.reset(raw);

  if (audio_only) {
    for (unsigned i = 0; i < raw->nb_streams; ++i) {
      if (raw->streams[i]->codecpar->codec_type != AVMEDIA_TYPE_AUDIO)
        raw->streams[i]->discard = AVDISCARD_ALL;
    }
  }
  err = avformat_find_stream_info(raw, nullptr);
  if (err < 0) {
    return tl::unexpected(InputError(*in.io, err, ErrorCode::kCorruptMedia,
                                     "input is damaged or truncated: cannot find its streams",
                                     stop));
  }
  return in;
}

}  // namespace vmp3::media
