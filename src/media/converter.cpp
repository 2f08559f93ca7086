#include "media/converter.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "media/avio.hpp"
#include "media/mp3_rates.hpp"
#include "media/parallel_encoder.hpp"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/intreadwrite.h>
#include <libavutil/opt.h>
}

namespace vmp3::media {
namespace {

// Tags carried into ID3v2, each with the other names containers use for it. FFmpeg's ID3v2
// writer maps the canonical names to frames (title -> TIT2, date -> TDRC, ...).
struct TagSpec {
  const char* canonical;
  std::array<const char*, 3> aliases;
};
constexpr std::array<TagSpec, 11> kTags = {{
    {"title", {"title", nullptr, nullptr}},
    {"artist", {"artist", "author", nullptr}},
    {"album_artist", {"album_artist", "album artist", nullptr}},
    {"album", {"album", nullptr, nullptr}},
    {"date", {"date", "year", "date_released"}},
    {"genre", {"genre", nullptr, nullptr}},
    {"track", {"track", "tracknumber", "part_number"}},
    {"disc", {"disc", "discnumber", nullptr}},
    {"comment", {"comment", "description", nullptr}},
    {"composer", {"composer", nullptr, nullptr}},
    {"copyright", {"copyright", nullptr, nullptr}},
}};

// Covers bigger than this are left out: they are not cover art but a way to bloat every output.
constexpr int kMaxCoverBytes = 16 * 1024 * 1024;

double Seconds(int64_t ts, AVRational tb) { return static_cast<double>(ts) * av_q2d(tb); }

bool IsCoverCodec(AVCodecID id) {
  return id == AV_CODEC_ID_MJPEG || id == AV_CODEC_ID_PNG || id == AV_CODEC_ID_BMP ||
         id == AV_CODEC_ID_GIF || id == AV_CODEC_ID_WEBP;
}

// One conversion, from open to trailer. Owns every FFmpeg object it creates.
class Conversion {
 public:
  Conversion(ByteSource& source, ByteSink& sink, const ConvertOptions& options,
             const ConvertControl& control)
      : source_(source), sink_(sink), options_(options), control_(control) {}

  Result<ConvertResult> Run();

 private:
  Status OpenSource();
  Status PickAudioStream();
  void PickCover();
  Status CheckDurationLimit(double seconds) const;
  Status OpenOutput(const AVCodecParameters& audio_par);
  Status RunCopy();
  Status RunEncode();
  Status OpenDecoder();
  Status SetUpEncoder(const AVFrame& first);
  Result<CodecContextPtr> OpenLame(int sample_rate, int channels) const;
  void MaybeStartParallel();
  void ReportParallelProgress();
  Status ConfigureResampler(const AVFrame& frame);
  Status OnDecodedFrame(const AVFrame& frame);
  Status DrainDecoder();
  Status EncodeFromFifo(bool final);
  Status SendToEncoder(AVFrame* frame);
  Status QueuePacket(AVPacket* pkt);
  Status WritePacket(AVPacket* pkt);
  Status WriteLastPacket();
  Status FinishOutput();
  void ReportProgress(const AVPacket& pkt);
  void ReportFraction(double done);
  Error OutputError(int averr, std::string_view what) const;
  bool Stopped() const { return control_.stop.stop_requested(); }

  ByteSource& source_;
  ByteSink& sink_;
  const ConvertOptions& options_;
  const ConvertControl& control_;

  OpenedInput input_;
  AVStream* audio_in_ = nullptr;
  AVStream* cover_in_ = nullptr;
  double duration_ = 0;  // seconds, 0 when unknown
  double last_progress_ = 0;

  std::unique_ptr<AvioWriter> writer_;
  OutputFormatPtr output_;
  AVStream* audio_out_ = nullptr;

  CodecContextPtr decoder_;
  CodecContextPtr encoder_;
  SwrPtr swr_;
  AudioFifoPtr fifo_;
  FramePtr decoded_;
  FramePtr to_encode_;
  PacketPtr packet_;
  PacketPtr pending_;  // the newest encoded packet, held back to mark end padding
  int64_t written_packets_ = 0;
  std::unique_ptr<ParallelEncoder> parallel_;  // set when this conversion encodes in segments
  int64_t expected_frames_ = 0;                // from the container's duration; 0 if unknown

  // Sample accounting for exact output length.
  int in_rate_ = 0;
  int64_t in_samples_ = 0;     // decoded samples per channel fed to the resampler
  int64_t sent_samples_ = 0;   // samples per channel sent to the encoder
  bool rate_changed_ = false;  // the source changed rate midway: no exact target exists

  ConvertResult result_;
};

Result<ConvertResult> Conversion::Run() {
  if (auto s = options_.Validate(); !s) return tl::unexpected(s.error());
  if (auto s = OpenSource(); !s) return tl::unexpected(s.error());
  if (auto s = PickAudioStream(); !s) return tl::unexpected(s.error());
  PickCover();

  packet_.reset(av_packet_alloc());
  decoded_.reset(av_frame_alloc());
  to_encode_.reset(av_frame_alloc());
  if (!packet_ || !decoded_ || !to_encode_) return MakeError(ErrorCode::kInternal, "out of memory");

  bool copy = audio_in_->codecpar->codec_id == AV_CODEC_ID_MP3 && !options_.RequestsChange();
  Status status = copy ? RunCopy() : RunEncode();
  if (!status) return tl::unexpected(status.error());
  if (control_.on_progress) control_.on_progress(1.0);
  return result_;
}

Status Conversion::OpenSource() {
  auto opened = OpenInput(source_, /*audio_only=*/true, control_.stop);
  if (!opened) return tl::unexpected(opened.error());
  input_ = std::move(*opened);
  return {};
}

Status Conversion::PickAudioStream() {
  AVFormatContext* ctx = input_.format.get();
  std::vector<int> audio;
  for (unsigned i = 0; i < ctx->nb_streams; ++i)
    if (ctx->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
      audio.push_back(static_cast<int>(i));
  if (audio.empty()) return MakeError(ErrorCode::kNoAudioStream, "input has no audio stream");

  int index = -1;
  if (options_.stream_index) {
    index = *options_.stream_index;
    if (std::find(audio.begin(), audio.end(), index) == audio.end()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("stream {} is not an audio stream of this input; its audio "
                                   "streams are: {}",
                                   index, fmt::join(audio, ", ")));
    }
  } else {
    index = av_find_best_stream(ctx, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
    if (index < 0) index = audio.front();
  }
  audio_in_ = ctx->streams[index];
  for (unsigned i = 0; i < ctx->nb_streams; ++i)
    ctx->streams[i]->discard = static_cast<int>(i) == index ? AVDISCARD_DEFAULT : AVDISCARD_ALL;

  result_.source_stream_index = index;
  result_.source_codec = avcodec_get_name(audio_in_->codecpar->codec_id);
  if (audio_in_->duration != AV_NOPTS_VALUE && audio_in_->duration > 0)
    duration_ = Seconds(audio_in_->duration, audio_in_->time_base);
  else if (ctx->duration != AV_NOPTS_VALUE && ctx->duration > 0)
    duration_ = static_cast<double>(ctx->duration) / AV_TIME_BASE;
  return CheckDurationLimit(duration_);
}

void Conversion::PickCover() {
  AVFormatContext* ctx = input_.format.get();
  for (unsigned i = 0; i < ctx->nb_streams; ++i) {
    AVStream* st = ctx->streams[i];
    if ((st->disposition & AV_DISPOSITION_ATTACHED_PIC) && IsCoverCodec(st->codecpar->codec_id) &&
        st->attached_pic.size > 0 && st->attached_pic.size <= kMaxCoverBytes) {
      cover_in_ = st;
      return;
    }
  }
}

Status Conversion::CheckDurationLimit(double seconds) const {
  if (options_.max_input_seconds > 0 && seconds > options_.max_input_seconds) {
    return MakeError(ErrorCode::kMediaTooLong,
                     fmt::format("input is {:.0f} s long; the limit is {:.0f} s", seconds,
                                 options_.max_input_seconds));
  }
  return {};
}

Error Conversion::OutputError(int averr, std::string_view what) const {
  if (Stopped()) return Error(ErrorCode::kCancelled, "conversion cancelled");
  if (writer_ && writer_->error()) return *writer_->error();
  return Error(ErrorCode::kInternal, fmt::format("{} ({})", what, AvErrorText(averr)));
}

Status Conversion::OpenOutput(const AVCodecParameters& audio_par) {
  writer_ = std::make_unique<AvioWriter>(sink_, options_.max_output_bytes);
  AVFormatContext* raw = nullptr;
  int err = avformat_alloc_output_context2(&raw, nullptr, "mp3", nullptr);
  if (err < 0 || !raw) return tl::unexpected(OutputError(err, "cannot create the MP3 muxer"));
  output_.reset(raw);
  raw->pb = writer_->context();
  raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  // FFmpeg's default flushes the I/O buffer after every packet: one write() per MP3 frame
  // (~25 000 for 10 minutes). The sink gets whole buffers instead.
  raw->flush_packets = 0;

  audio_out_ = avformat_new_stream(raw, nullptr);
  if (!audio_out_) return MakeError(ErrorCode::kInternal, "out of memory");
  avcodec_parameters_copy(audio_out_->codecpar, &audio_par);
  audio_out_->codecpar->codec_tag = 0;
  audio_out_->time_base = AVRational{1, audio_par.sample_rate};

  if (cover_in_) {
    AVStream* cover_out = avformat_new_stream(raw, nullptr);
    if (!cover_out) return MakeError(ErrorCode::kInternal, "out of memory");
    avcodec_parameters_copy(cover_out->codecpar, cover_in_->codecpar);
    cover_out->codecpar->codec_tag = 0;
    cover_out->disposition = AV_DISPOSITION_ATTACHED_PIC;
    av_dict_set(&cover_out->metadata, "comment", "Cover (front)", 0);
  }

  // Stream-level tags (MKV keeps titles there) first, container-level ones win.
  for (AVDictionary* from : {audio_in_->metadata, input_.format->metadata}) {
    for (const TagSpec& tag : kTags) {
      for (const char* alias : tag.aliases) {
        if (!alias) continue;
        if (const AVDictionaryEntry* e = av_dict_get(from, alias, nullptr, 0); e && *e->value) {
          av_dict_set(&raw->metadata, tag.canonical, e->value, 0);
          break;
        }
      }
    }
  }

  AVDictionary* mux_options = nullptr;
  av_dict_set(&mux_options, "id3v2_version", "4", 0);  // UTF-8 text frames
  err = avformat_write_header(raw, &mux_options);
  av_dict_free(&mux_options);
  if (err < 0) return tl::unexpected(OutputError(err, "cannot write the MP3 header"));

  if (cover_in_) {
    PacketPtr pic(av_packet_clone(&cover_in_->attached_pic));
    if (!pic) return MakeError(ErrorCode::kInternal, "out of memory");
    pic->stream_index = 1;
    if ((err = av_write_frame(raw, pic.get())) < 0)
      return tl::unexpected(OutputError(err, "cannot write the cover art"));
    result_.cover_art = true;
  }
  return {};
}

void Conversion::ReportProgress(const AVPacket& pkt) {
  if (parallel_) return;  // reading runs ahead of encoding: ReportParallelProgress counts frames
  if (!control_.on_progress || duration_ <= 0 || pkt.pts == AV_NOPTS_VALUE) return;
  int64_t start = audio_in_->start_time == AV_NOPTS_VALUE ? 0 : audio_in_->start_time;
  int64_t end = pkt.pts + std::max<int64_t>(pkt.duration, 0);
  ReportFraction(std::clamp(Seconds(end - start, audio_in_->time_base) / duration_, 0.0, 1.0));
}

void Conversion::ReportFraction(double done) {
  // A packet can hold more than 1% of a short input (a FLAC frame is ~0.1 s): report each whole
  // percent passed, so callers see at least one call per 1%.
  while (done - last_progress_ >= 0.01 && !Stopped()) {
    last_progress_ = std::floor(last_progress_ * 100 + 1 + 1e-9) / 100;
    if (last_progress_ > done) last_progress_ = done;
    control_.on_progress(last_progress_);
  }
}

Status Conversion::WritePacket(AVPacket* pkt) {
  pkt->stream_index = 0;
  int err = av_write_frame(output_.get(), pkt);
  if (err < 0) return tl::unexpected(OutputError(err, "cannot write MP3 data"));
  return {};
}

Status Conversion::FinishOutput() {
  int err = av_write_trailer(output_.get());
  if (err >= 0) avio_flush(writer_->context());
  if (err < 0 || writer_->error())
    return tl::unexpected(OutputError(err, "cannot finish the MP3 file"));
  result_.output_bytes = writer_->high_water();
  if (result_.duration_seconds > 0) {
    result_.bit_rate_kbps = static_cast<int>(std::lround(static_cast<double>(result_.output_bytes) *
                                                         8 / result_.duration_seconds / 1000));
  }
  return {};
}

// --- Stream copy -------------------------------------------------------------------------------

Status Conversion::RunCopy() {
  const AVCodecParameters& par = *audio_in_->codecpar;
  if (auto s = OpenOutput(par); !s) return s;
  result_.stream_copied = true;
  result_.sample_rate = par.sample_rate;
  result_.channels = par.ch_layout.nb_channels;

  AVFormatContext* ctx = input_.format.get();
  // Gapless bookkeeping: the muxer's LAME header carries the delay/padding the source declared
  // (as skip-samples side data); when it declared none, decoders still trim the standard
  // 529-sample MP3 decoder delay.
  int64_t samples = 0;
  int64_t leading_skip = 0;
  int64_t trailing_skip = 0;
  for (;;) {
    if (Stopped()) return MakeError(ErrorCode::kCancelled, "conversion cancelled");
    int err = av_read_frame(ctx, packet_.get());
    if (err == AVERROR(EAGAIN)) continue;
    if (err < 0) {
      if (err != AVERROR_EOF) {
        Error e = InputError(*input_.io, err, ErrorCode::kCorruptMedia, "", control_.stop);
        if (e.code != ErrorCode::kCorruptMedia) return tl::unexpected(e);
        ++result_.damaged_packets;  // a truncated tail: keep what was read, like a player would
      }
      break;
    }
    if (packet_->stream_index != audio_in_->index) {
      av_packet_unref(packet_.get());
      continue;
    }
    ReportProgress(*packet_);
    int64_t frame_samples =
        packet_->duration > 0
            ? av_rescale_q(packet_->duration, audio_in_->time_base, AVRational{1, par.sample_rate})
            : (par.frame_size > 0 ? par.frame_size : 1152);
    samples += frame_samples;
    size_t skip_size = 0;
    if (const uint8_t* skip =
            av_packet_get_side_data(packet_.get(), AV_PKT_DATA_SKIP_SAMPLES, &skip_size);
        skip && skip_size >= 8) {
      leading_skip = leading_skip ? leading_skip : AV_RL32(skip);
      trailing_skip += AV_RL32(skip + 4);
    }
    if (auto s = CheckDurationLimit(static_cast<double>(samples) / par.sample_rate); !s) return s;
    av_packet_rescale_ts(packet_.get(), audio_in_->time_base, audio_out_->time_base);
    packet_->pos = -1;
    Status s = WritePacket(packet_.get());
    av_packet_unref(packet_.get());
    if (!s) return s;
  }
  if (samples == 0)
    return MakeError(ErrorCode::kCorruptMedia, "input is damaged: its audio stream has no data");
  constexpr int64_t kMp3DecoderDelay = 528 + 1;
  result_.samples = std::max<int64_t>(
      0, samples - (leading_skip ? leading_skip : kMp3DecoderDelay) - trailing_skip);
  result_.duration_seconds = static_cast<double>(result_.samples) / par.sample_rate;
  return FinishOutput();
}

// --- Decode, resample, encode --------------------------------------------------------------------

Status Conversion::OpenDecoder() {
  const AVCodecParameters* par = audio_in_->codecpar;
  const AVCodec* codec = avcodec_find_decoder(par->codec_id);
  if (!codec) {
    return MakeError(ErrorCode::kUnsupportedMedia, fmt::format("audio codec '{}' is not supported",
                                                               avcodec_get_name(par->codec_id)));
  }
  decoder_.reset(avcodec_alloc_context3(codec));
  if (!decoder_) return MakeError(ErrorCode::kInternal, "out of memory");
  avcodec_parameters_to_context(decoder_.get(), par);
  decoder_->pkt_timebase = audio_in_->time_base;
  decoder_->thread_count = 1;
  int err = avcodec_open2(decoder_.get(), codec, nullptr);
  if (err < 0) {
    return MakeError(
        ErrorCode::kUnsupportedMedia,
        fmt::format("cannot decode the '{}' audio stream ({})", codec->name, AvErrorText(err)));
  }
  return {};
}

Status Conversion::RunEncode() {
  if (auto s = OpenDecoder(); !s) return s;
  AVFormatContext* ctx = input_.format.get();
  bool input_done = false;
  while (!input_done) {
    if (Stopped()) return MakeError(ErrorCode::kCancelled, "conversion cancelled");
    int err = av_read_frame(ctx, packet_.get());
    if (err == AVERROR(EAGAIN)) continue;
    if (err < 0) {
      if (err != AVERROR_EOF) {
        Error e = InputError(*input_.io, err, ErrorCode::kCorruptMedia, "", control_.stop);
        if (e.code != ErrorCode::kCorruptMedia) return tl::unexpected(e);
        ++result_.damaged_packets;
      }
      input_done = true;
      err = avcodec_send_packet(decoder_.get(), nullptr);
    } else if (packet_->stream_index != audio_in_->index) {
      av_packet_unref(packet_.get());
      continue;
    } else {
      ReportProgress(*packet_);
      err = avcodec_send_packet(decoder_.get(), packet_.get());
      av_packet_unref(packet_.get());
      if (err == AVERROR_INVALIDDATA) {  // a damaged packet: skip it, count it, go on
        ++result_.damaged_packets;
        continue;
      }
    }
    if (err < 0 && err != AVERROR_EOF) {
      return MakeError(ErrorCode::kCorruptMedia,
                       fmt::format("audio could not be decoded ({})", AvErrorText(err)));
    }
    if (auto s = DrainDecoder(); !s) return s;
  }

  if (!encoder_) {
    return MakeError(ErrorCode::kCorruptMedia,
                     "input is damaged or truncated: no audio could be decoded from it");
  }
  // Flush the resampler's delay line.
  if (in_rate_ != encoder_->sample_rate) {
    int out_capacity = swr_get_out_samples(swr_.get(), 0) + 32;
    FramePtr tail(av_frame_alloc());
    tail->nb_samples = out_capacity;
    tail->format = encoder_->sample_fmt;
    av_channel_layout_copy(&tail->ch_layout, &encoder_->ch_layout);
    if (av_frame_get_buffer(tail.get(), 0) < 0)
      return MakeError(ErrorCode::kInternal, "out of memory");
    int got = swr_convert(swr_.get(), tail->data, out_capacity, nullptr, 0);
    if (got > 0) av_audio_fifo_write(fifo_.get(), reinterpret_cast<void**>(tail->data), got);
  }
  if (auto s = EncodeFromFifo(/*final=*/true); !s) return s;
  if (auto s = SendToEncoder(nullptr); !s) return s;
  if (auto s = WriteLastPacket(); !s) return s;
  result_.samples = sent_samples_;
  result_.duration_seconds = static_cast<double>(sent_samples_) / encoder_->sample_rate;
  return FinishOutput();
}

Status Conversion::DrainDecoder() {
  for (;;) {
    int err = avcodec_receive_frame(decoder_.get(), decoded_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return {};
    if (err == AVERROR_INVALIDDATA) {
      ++result_.damaged_packets;
      continue;
    }
    if (err < 0) {
      return MakeError(ErrorCode::kCorruptMedia,
                       fmt::format("audio could not be decoded ({})", AvErrorText(err)));
    }
    Status s = OnDecodedFrame(*decoded_);
    av_frame_unref(decoded_.get());
    if (!s) return s;
  }
}

Result<CodecContextPtr> Conversion::OpenLame(int sample_rate, int channels) const {
  const AVCodec* codec = avcodec_find_encoder_by_name("libmp3lame");
  if (!codec)
    return MakeError(ErrorCode::kInternal, "this FFmpeg build has no LAME (libmp3lame) encoder");
  CodecContextPtr encoder(avcodec_alloc_context3(codec));
  if (!encoder) return MakeError(ErrorCode::kInternal, "out of memory");
  av_channel_layout_default(&encoder->ch_layout, channels);
  encoder->sample_rate = sample_rate;
  encoder->sample_fmt = AV_SAMPLE_FMT_FLTP;
  encoder->time_base = AVRational{1, sample_rate};
  if (options_.cbr_kbps) {
    encoder->bit_rate = static_cast<int64_t>(*options_.cbr_kbps) * 1000;
  } else {
    encoder->flags |= AV_CODEC_FLAG_QSCALE;
    encoder->global_quality = options_.vbr_quality.value_or(2) * FF_QP2LAMBDA;
  }
  int err = avcodec_open2(encoder.get(), codec, nullptr);
  if (err < 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("LAME refused these settings ({})", AvErrorText(err)));
  }
  return encoder;
}

Status Conversion::SetUpEncoder(const AVFrame& first) {
  bool mono = options_.mono || first.ch_layout.nb_channels == 1;
  auto encoder =
      OpenLame(options_.sample_rate.value_or(Mp3RateFor(first.sample_rate)), mono ? 1 : 2);
  if (!encoder) return tl::unexpected(encoder.error());
  encoder_ = std::move(*encoder);
  fifo_.reset(av_audio_fifo_alloc(encoder_->sample_fmt, encoder_->ch_layout.nb_channels,
                                  encoder_->frame_size * 4));
  if (!fifo_) return MakeError(ErrorCode::kInternal, "out of memory");

  // The encoder's parameters (including its delay, for the LAME header) go to the muxer.
  AVCodecParameters* par = avcodec_parameters_alloc();
  avcodec_parameters_from_context(par, encoder_.get());
  Status s = OpenOutput(*par);
  avcodec_parameters_free(&par);
  if (!s) return s;
  result_.sample_rate = encoder_->sample_rate;
  result_.channels = encoder_->ch_layout.nb_channels;
  MaybeStartParallel();
  return {};
}

// Encodes in segments on several threads when asked and the input is long enough to pay for the
// pre-roll. encoder_ stays open either way: its parameters describe the stream to the muxer.
void Conversion::MaybeStartParallel() {
  int threads = options_.threads > 0
                    ? options_.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads < 2) return;
  if (options_.segment_seconds <= 0 && duration_ < ParallelMinimumSeconds()) return;
  const int rate = encoder_->sample_rate;
  const int frame_samples = encoder_->frame_size;
  expected_frames_ =
      duration_ > 0 ? static_cast<int64_t>(std::ceil(duration_ * rate / frame_samples)) : 0;
  ParallelPlan plan =
      ParallelPlan::For(threads, encoder_->ch_layout.nb_channels, frame_samples, rate,
                        expected_frames_, options_.segment_seconds, options_.repair_seams,
                        /*vbr=*/!options_.cbr_kbps);
  const int channels = encoder_->ch_layout.nb_channels;
  parallel_ = std::make_unique<ParallelEncoder>(
      plan, [this, rate, channels] { return OpenLame(rate, channels); },
      [this, frame_samples](std::vector<uint8_t>&& bytes, int64_t index) -> Status {
        PacketPtr packet(av_packet_alloc());
        if (!packet || av_new_packet(packet.get(), static_cast<int>(bytes.size())) < 0)
          return MakeError(ErrorCode::kInternal, "out of memory");
        std::memcpy(packet->data, bytes.data(), bytes.size());
        // The timestamps libmp3lame gives (the muxer derives the LAME tag's delay from them).
        packet->pts = packet->dts = index * frame_samples - encoder_->initial_padding;
        packet->duration = frame_samples;
        if (index == 0) {
          // As libmp3lame does: the muxer takes the LAME tag's encoder delay from the first
          // packet's skip-samples side data (and writes a wrapped negative value without it).
          uint8_t* skip = av_packet_new_side_data(packet.get(), AV_PKT_DATA_SKIP_SAMPLES, 10);
          if (!skip) return MakeError(ErrorCode::kInternal, "out of memory");
          std::memset(skip, 0, 10);
          AV_WL32(skip, static_cast<uint32_t>(encoder_->initial_padding));
        }
        return QueuePacket(packet.get());
      },
      control_.stop);
  spdlog::debug("encoding in segments of {} frames on {} threads", plan.segment_frames, threads);
}

void Conversion::ReportParallelProgress() {
  if (!control_.on_progress || expected_frames_ <= 0) return;
  // 1.0 is reported once the trailer is written.
  ReportFraction(std::clamp(
      static_cast<double>(parallel_->frames_encoded()) / static_cast<double>(expected_frames_), 0.0,
      0.99));
}

Status Conversion::ConfigureResampler(const AVFrame& frame) {
  AVChannelLayout in_layout{};
  if (frame.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
    av_channel_layout_default(&in_layout, frame.ch_layout.nb_channels);
  else
    av_channel_layout_copy(&in_layout, &frame.ch_layout);
  SwrContext* raw = nullptr;
  int err = swr_alloc_set_opts2(
      &raw, &encoder_->ch_layout, encoder_->sample_fmt, encoder_->sample_rate, &in_layout,
      static_cast<AVSampleFormat>(frame.format), frame.sample_rate, 0, nullptr);
  av_channel_layout_uninit(&in_layout);
  if (err < 0 || !raw) return MakeError(ErrorCode::kInternal, "cannot set up the resampler");
  swr_.reset(raw);
  if (frame.sample_rate != encoder_->sample_rate) {
    av_opt_set(raw, "resampler", "soxr", 0);  // high quality, and fast
    av_opt_set_int(raw, "precision", 28, 0);
  }
  // Normalise the downmix matrix so 5.1 -> stereo (ITU coefficients: centre and surrounds at
  // -3 dB, LFE dropped) cannot clip.
  av_opt_set_double(raw, "rematrix_maxval", 1.0, 0);
  if ((err = swr_init(raw)) < 0) {
    return MakeError(ErrorCode::kUnsupportedMedia,
                     fmt::format("cannot convert this audio layout ({})", AvErrorText(err)));
  }
  return {};
}

Status Conversion::OnDecodedFrame(const AVFrame& frame) {
  if (frame.nb_samples <= 0) return {};
  if (frame.decode_error_flags) ++result_.damaged_packets;
  if (!encoder_) {
    if (auto s = SetUpEncoder(frame); !s) return s;
  }
  bool format_changed = !swr_ || frame.sample_rate != in_rate_;
  if (format_changed) {
    if (swr_ && frame.sample_rate != in_rate_) rate_changed_ = true;
    if (auto s = ConfigureResampler(frame); !s) return s;
    in_rate_ = frame.sample_rate;
  }
  in_samples_ += frame.nb_samples;
  if (auto s = CheckDurationLimit(static_cast<double>(in_samples_) / in_rate_); !s) return s;

  int capacity = swr_get_out_samples(swr_.get(), frame.nb_samples);
  if (to_encode_->nb_samples < capacity || !to_encode_->data[0]) {
    av_frame_unref(to_encode_.get());
    to_encode_->nb_samples = capacity;
    to_encode_->format = encoder_->sample_fmt;
    av_channel_layout_copy(&to_encode_->ch_layout, &encoder_->ch_layout);
    if (av_frame_get_buffer(to_encode_.get(), 0) < 0)
      return MakeError(ErrorCode::kInternal, "out of memory");
  }
  int got = swr_convert(swr_.get(), to_encode_->data, capacity,
                        const_cast<const uint8_t**>(frame.extended_data), frame.nb_samples);
  if (got < 0) return MakeError(ErrorCode::kInternal, "resampling failed");
  if (got > 0 &&
      av_audio_fifo_write(fifo_.get(), reinterpret_cast<void**>(to_encode_->data), got) < got)
    return MakeError(ErrorCode::kInternal, "out of memory");
  return EncodeFromFifo(/*final=*/false);
}

Status Conversion::EncodeFromFifo(bool final) {
  const int frame_size = encoder_->frame_size;
  int64_t target = -1;  // total samples the output must have, when known
  if (final && !rate_changed_ && in_rate_ > 0)
    target = av_rescale_rnd(in_samples_, encoder_->sample_rate, in_rate_, AV_ROUND_NEAR_INF);

  for (;;) {
    int available = av_audio_fifo_size(fifo_.get());
    int n = 0;
    if (!final) {
      if (available < frame_size) return {};
      n = frame_size;
    } else {
      int64_t wanted = target >= 0 ? target - sent_samples_ : available;
      if (wanted <= 0) return {};
      n = static_cast<int>(std::min<int64_t>(wanted, frame_size));
    }
    FramePtr frame(av_frame_alloc());
    frame->nb_samples = n;
    frame->format = encoder_->sample_fmt;
    frame->sample_rate = encoder_->sample_rate;
    av_channel_layout_copy(&frame->ch_layout, &encoder_->ch_layout);
    if (av_frame_get_buffer(frame.get(), 0) < 0)
      return MakeError(ErrorCode::kInternal, "out of memory");
    int got = av_audio_fifo_read(fifo_.get(), reinterpret_cast<void**>(frame->data), n);
    if (got < n) {  // the resampler gave a few samples fewer than the exact length: pad silence
      for (int ch = 0; ch < frame->ch_layout.nb_channels; ++ch)
        std::fill_n(reinterpret_cast<float*>(frame->extended_data[ch]) + std::max(got, 0),
                    n - std::max(got, 0), 0.0f);
    }
    frame->pts = sent_samples_;
    sent_samples_ += n;
    if (auto s = SendToEncoder(frame.get()); !s) return s;
  }
}

Status Conversion::SendToEncoder(AVFrame* frame) {
  if (parallel_) {
    Status s =
        frame ? parallel_->Push(*frame) : parallel_->Finish([this] { ReportParallelProgress(); });
    if (!s) return s;
    ReportParallelProgress();
    if (!frame) {
      result_.segments = parallel_->segments();
      result_.encoded_frames = parallel_->frames_lame_encoded();
      result_.inexact_seams = parallel_->inexact_seams();
    }
    return s;
  }
  int err = avcodec_send_frame(encoder_.get(), frame);
  if (err < 0)
    return MakeError(ErrorCode::kInternal, fmt::format("LAME failed ({})", AvErrorText(err)));
  for (;;) {
    err = avcodec_receive_packet(encoder_.get(), packet_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return {};
    if (err < 0)
      return MakeError(ErrorCode::kInternal, fmt::format("LAME failed ({})", AvErrorText(err)));
    ++result_.encoded_frames;
    if (auto s = QueuePacket(packet_.get()); !s) return s;
  }
}

// Writes the packet held back and holds `pkt` (taking its reference) in its place.
Status Conversion::QueuePacket(AVPacket* pkt) {
  av_packet_rescale_ts(pkt, encoder_->time_base, audio_out_->time_base);
  if (pending_) {
    Status s = WritePacket(pending_.get());
    av_packet_unref(pending_.get());
    if (!s) return s;
    ++written_packets_;
  } else {
    pending_.reset(av_packet_alloc());
    if (!pending_) return MakeError(ErrorCode::kInternal, "out of memory");
  }
  av_packet_move_ref(pending_.get(), pkt);
  return {};
}

Status Conversion::WriteLastPacket() {
  if (!pending_) return {};
  // The muxer's LAME header takes the end padding from the last packet's skip-samples side data.
  // LAME's own account of it is off for some lengths (its flush can add a frame), so state it
  // exactly: every frame's samples minus the encoder delay, the decoder delay and the payload.
  constexpr int64_t kDecoderDelay = 528 + 1;
  int64_t frames = written_packets_ + 1;
  result_.frames = frames;
  int64_t encoder_delay = encoder_->initial_padding - kDecoderDelay;
  int64_t end_padding =
      frames * encoder_->frame_size - encoder_delay - sent_samples_ - kDecoderDelay;
  if (end_padding >= 0) {
    size_t size = 0;
    uint8_t* side = av_packet_get_side_data(pending_.get(), AV_PKT_DATA_SKIP_SAMPLES, &size);
    if (!side || size < 10) {
      side = av_packet_new_side_data(pending_.get(), AV_PKT_DATA_SKIP_SAMPLES, 10);
      if (!side) return MakeError(ErrorCode::kInternal, "out of memory");
      std::memset(side, 0, 10);  // the start skip stays 0: the first packet stated the delay
    }
    AV_WL32(side + 4, static_cast<uint32_t>(end_padding));
  }
  Status s = WritePacket(pending_.get());
  pending_.reset();
  return s;
}

}  // namespace

Result<ConvertResult> Convert(ByteSource& source, ByteSink& sink, const ConvertOptions& options,
                              const ConvertControl& control) {
  Conversion conversion(source, sink, options, control);
  return conversion.Run();
}

}  // namespace vmp3::media
