#include "support/audio_decode.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <complex>
#include <memory>
#include <numbers>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/samplefmt.h>
}

namespace vmp3::test {
namespace {

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};

std::string AvErr(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

uint64_t Fnv1a(const uint8_t* data, size_t size) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < size; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::map<std::string, std::string> Tags(const AVDictionary* dict) {
  std::map<std::string, std::string> out;
  const AVDictionaryEntry* e = nullptr;
  while ((e = av_dict_get(dict, "", e, AV_DICT_IGNORE_SUFFIX)) != nullptr) {
    std::string key = e->key;
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out[key] = e->value;
  }
  return out;
}

float SampleAt(const AVFrame* f, int channel, int i) {
  const auto fmt = static_cast<AVSampleFormat>(f->format);
  const bool planar = av_sample_fmt_is_planar(fmt) != 0;
  const int channels = f->ch_layout.nb_channels;
  const uint8_t* base = planar ? f->extended_data[channel] : f->extended_data[0];
  const int idx = planar ? i : i * channels + channel;
  switch (av_get_packed_sample_fmt(fmt)) {
    case AV_SAMPLE_FMT_U8:
      return (static_cast<float>(base[idx]) - 128.0f) / 128.0f;
    case AV_SAMPLE_FMT_S16:
      return static_cast<float>(reinterpret_cast<const int16_t*>(base)[idx]) / 32768.0f;
    case AV_SAMPLE_FMT_S32:
      return static_cast<float>(reinterpret_cast<const int32_t*>(base)[idx] / 2147483648.0);
    case AV_SAMPLE_FMT_S64:
      return static_cast<float>(static_cast<double>(reinterpret_cast<const int64_t*>(base)[idx]) /
                                9223372036854775808.0);
    case AV_SAMPLE_FMT_FLT:
      return reinterpret_cast<const float*>(base)[idx];
    case AV_SAMPLE_FMT_DBL:
      return static_cast<float>(reinterpret_cast<const double*>(base)[idx]);
    default:
      return 0.0f;
  }
}

class Decoder {
 public:
  Decoder(AVCodecContext* ctx, DecodedAudio& out, bool keep_pcm)
      : ctx_(ctx), out_(out), keep_pcm_(keep_pcm), frame_(av_frame_alloc()) {}

  // Sends one packet (nullptr flushes) and takes every frame it yields.
  void Feed(const AVPacket* pkt) {
    int ret = avcodec_send_packet(ctx_, pkt);
    while (ret == AVERROR(EAGAIN)) {
      Drain();
      ret = avcodec_send_packet(ctx_, pkt);
    }
    if (ret < 0 && ret != AVERROR_EOF) ++out_.decode_errors;
    Drain();
  }

 private:
  void Drain() {
    for (;;) {
      int ret = avcodec_receive_frame(ctx_, frame_.get());
      if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
      if (ret < 0) {
        ++out_.decode_errors;
        return;
      }
      if (frame_->decode_error_flags != 0 || (frame_->flags & AV_FRAME_FLAG_CORRUPT) != 0) {
        ++out_.decode_errors;
      }
      Take(frame_.get());
      av_frame_unref(frame_.get());
    }
  }

  void Take(const AVFrame* f) {
    const int channels = f->ch_layout.nb_channels;
    if (out_.samples == 0 && out_.sample_rate == 0) {
      out_.sample_rate = f->sample_rate;
      out_.channels = channels;
    }
    out_.samples += f->nb_samples;
    if (!keep_pcm_) return;
    if (out_.pcm.size() < static_cast<size_t>(channels)) out_.pcm.resize(channels);
    for (int c = 0; c < channels; ++c) {
      // No reserve(size + n) here: growing by exactly one frame each time copies the whole
      // channel per frame, quadratic on inputs of minutes; push_back's doubling is linear.
      auto& dst = out_.pcm[c];
      for (int i = 0; i < f->nb_samples; ++i) dst.push_back(SampleAt(f, c, i));
    }
  }

  AVCodecContext* ctx_;
  DecodedAudio& out_;
  bool keep_pcm_;
  std::unique_ptr<AVFrame, FrameFreer> frame_;
};

std::vector<double> CentralWindow(std::span<const float> pcm, size_t max_len) {
  const size_t n = std::min(pcm.size(), max_len);
  const size_t start = (pcm.size() - n) / 2;
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i) {
    const double w = n > 1 ? 0.5 - 0.5 * std::cos(2 * std::numbers::pi * i / (n - 1)) : 1.0;
    x[i] = w * pcm[start + i];
  }
  return x;
}

void Fft(std::vector<std::complex<double>>& a) {
  const size_t n = a.size();
  for (size_t i = 1, j = 0; i < n; ++i) {
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (size_t len = 2; len <= n; len <<= 1) {
    const double ang = -2 * std::numbers::pi / static_cast<double>(len);
    const std::complex<double> wlen(std::cos(ang), std::sin(ang));
    for (size_t i = 0; i < n; i += len) {
      std::complex<double> w(1);
      for (size_t j = 0; j < len / 2; ++j) {
        const auto u = a[i + j];
        const auto v = a[i + j + len / 2] * w;
        a[i + j] = u + v;
        a[i + j + len / 2] = u - v;
        w *= wlen;
      }
    }
  }
}

constexpr size_t kAnalysisWindow = size_t{1} << 16;

}  // namespace

Result<DecodedAudio> DecodeAudio(const std::filesystem::path& path, const DecodeOptions& options) {
  DecodedAudio out;
  AVFormatContext* raw = nullptr;
  int ret = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (ret < 0) {
    ErrorCode code = ret == AVERROR(ENOENT)       ? ErrorCode::kNotFound
                     : ret == AVERROR_INVALIDDATA ? ErrorCode::kNotMedia
                                                  : ErrorCode::kIo;
    return MakeError(code, fmt::format("cannot open {}: {}", path.string(), AvErr(ret)));
  }
  std::unique_ptr<AVFormatContext, FormatCloser> fmt_ctx(raw);
  if ((ret = avformat_find_stream_info(fmt_ctx.get(), nullptr)) < 0) {
    return MakeError(ErrorCode::kNotMedia,
                     fmt::format("cannot read stream info of {}: {}", path.string(), AvErr(ret)));
  }
  out.container = fmt_ctx->iformat->name;
  out.tags = Tags(fmt_ctx->metadata);
  if (fmt_ctx->duration != AV_NOPTS_VALUE) {
    out.container_duration = static_cast<double>(fmt_ctx->duration) / AV_TIME_BASE;
  }
  for (unsigned i = 0; i < fmt_ctx->nb_streams; ++i) {
    const AVStream* st = fmt_ctx->streams[i];
    if ((st->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0) {
      if (!out.has_cover) {
        out.has_cover = true;
        out.cover_codec = avcodec_get_name(st->codecpar->codec_id);
        out.cover_width = st->codecpar->width;
        out.cover_height = st->codecpar->height;
        out.cover_hash = Fnv1a(st->attached_pic.data, st->attached_pic.size);
      }
    } else if (st->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) {
      ++out.audio_streams;
    }
  }

  int index = options.stream_index.value_or(
      av_find_best_stream(fmt_ctx.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0));
  if (index < 0 || index >= static_cast<int>(fmt_ctx->nb_streams) ||
      fmt_ctx->streams[index]->codecpar->codec_type != AVMEDIA_TYPE_AUDIO) {
    return MakeError(ErrorCode::kNoAudioStream, fmt::format("{}: no audio stream", path.string()));
  }
  out.stream_index = index;
  AVStream* st = fmt_ctx->streams[index];
  for (unsigned i = 0; i < fmt_ctx->nb_streams; ++i) {
    if (static_cast<int>(i) != index) fmt_ctx->streams[i]->discard = AVDISCARD_ALL;
  }
  out.codec = avcodec_get_name(st->codecpar->codec_id);
  out.stream_tags = Tags(st->metadata);
  out.bit_rate = st->codecpar->bit_rate;

  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  if (codec == nullptr) {
    return MakeError(ErrorCode::kUnsupportedMedia, fmt::format("no decoder for {}", out.codec));
  }
  std::unique_ptr<AVCodecContext, CodecFreer> ctx(avcodec_alloc_context3(codec));
  if ((ret = avcodec_parameters_to_context(ctx.get(), st->codecpar)) < 0) {
    return MakeError(ErrorCode::kInternal, AvErr(ret));
  }
  ctx->pkt_timebase = st->time_base;
  ctx->thread_count = 1;
  if (options.strict) {
    ctx->err_recognition = AV_EF_CRCCHECK | AV_EF_BITSTREAM | AV_EF_BUFFER | AV_EF_EXPLODE;
  }
  if ((ret = avcodec_open2(ctx.get(), codec, nullptr)) < 0) {
    return MakeError(ErrorCode::kUnsupportedMedia,
                     fmt::format("cannot open decoder {}: {}", out.codec, AvErr(ret)));
  }

  Decoder decoder(ctx.get(), out, options.keep_pcm);
  std::unique_ptr<AVPacket, PacketFreer> pkt(av_packet_alloc());
  for (;;) {
    ret = av_read_frame(fmt_ctx.get(), pkt.get());
    if (ret < 0) {
      if (ret != AVERROR_EOF) ++out.decode_errors;  // a read error ends decoding early
      break;
    }
    if (pkt->stream_index == index) {
      ++out.packets;
      out.packet_hashes.push_back(Fnv1a(pkt->data, static_cast<size_t>(pkt->size)));
      if ((pkt->flags & AV_PKT_FLAG_CORRUPT) != 0) ++out.corrupt_packets;
      decoder.Feed(pkt.get());
    }
    av_packet_unref(pkt.get());
  }
  decoder.Feed(nullptr);

  if (out.sample_rate == 0) {  // nothing decoded: report what the stream claims
    out.sample_rate = ctx->sample_rate;
    out.channels = ctx->ch_layout.nb_channels;
  }
  char layout[128] = {};
  if (av_channel_layout_describe(&ctx->ch_layout, layout, sizeof(layout)) > 0) {
    out.channel_layout = layout;
  }
  return out;
}

double DominantFrequency(std::span<const float> pcm, int sample_rate) {
  if (pcm.size() < 64 || sample_rate <= 0) return 0;
  const std::vector<double> x = CentralWindow(pcm, kAnalysisWindow);
  size_t n = 1;
  while (n < 2 * x.size()) n <<= 1;  // zero-pad at least 2x for finer bins
  std::vector<std::complex<double>> a(n);
  for (size_t i = 0; i < x.size(); ++i) a[i] = x[i];
  Fft(a);

  const double bin_hz = static_cast<double>(sample_rate) / static_cast<double>(n);
  const double top = std::min(20000.0, sample_rate / 2.0);
  size_t lo = static_cast<size_t>(std::ceil(20.0 / bin_hz));
  size_t hi = std::min(static_cast<size_t>(top / bin_hz), n / 2 - 1);
  size_t best = 0;
  double best_mag = 0;
  for (size_t k = std::max<size_t>(lo, 1); k <= hi; ++k) {
    const double m = std::abs(a[k]);
    if (m > best_mag) {
      best_mag = m;
      best = k;
    }
  }
  if (best == 0 || best_mag < 1e-9) return 0;
  // Quadratic interpolation of log magnitudes (exact for a Gaussian peak, close for Hann).
  const double l = std::log(std::abs(a[best - 1]) + 1e-30);
  const double c = std::log(best_mag);
  const double r = std::log(std::abs(a[best + 1]) + 1e-30);
  const double denom = l - 2 * c + r;
  const double p = denom != 0 ? 0.5 * (l - r) / denom : 0;
  return (static_cast<double>(best) + p) * bin_hz;
}

double ToneAmplitude(std::span<const float> pcm, int sample_rate, double frequency) {
  if (pcm.empty() || sample_rate <= 0) return 0;
  const std::vector<double> x = CentralWindow(pcm, kAnalysisWindow);
  const double w = 2 * std::numbers::pi * frequency / sample_rate;
  std::complex<double> acc = 0;
  double window_sum = 0;
  const size_t n = x.size();
  for (size_t i = 0; i < n; ++i) {
    acc += x[i] * std::polar(1.0, -w * static_cast<double>(i));
    window_sum += n > 1 ? 0.5 - 0.5 * std::cos(2 * std::numbers::pi * i / (n - 1)) : 1.0;
  }
  return window_sum > 0 ? 2 * std::abs(acc) / window_sum : 0;
}

double Rms(std::span<const float> pcm) {
  if (pcm.empty()) return 0;
  double s = 0;
  for (float v : pcm) s += static_cast<double>(v) * v;
  return std::sqrt(s / static_cast<double>(pcm.size()));
}

double BestCorrelation(std::span<const float> a, std::span<const float> b, int max_lag,
                       int* best_lag) {
  // A central stretch of `a` keeps this O(window * lags) whatever the inputs' length.
  constexpr size_t kWindow = size_t{1} << 15;
  const size_t len = std::min(a.size(), kWindow);
  const size_t a0 = (a.size() - len) / 2;
  double best = -2;
  int best_at = 0;
  for (int lag = -max_lag; lag <= max_lag; ++lag) {
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    size_t n = 0;
    for (size_t i = a0; i < a0 + len; ++i) {
      const int64_t j = static_cast<int64_t>(i) + lag;
      if (j < 0 || j >= static_cast<int64_t>(b.size())) continue;
      const double x = a[i], y = b[static_cast<size_t>(j)];
      sa += x;
      sb += y;
      saa += x * x;
      sbb += y * y;
      sab += x * y;
      ++n;
    }
    if (n < 2) continue;
    const double cov = sab - sa * sb / n;
    const double va = saa - sa * sa / n, vb = sbb - sb * sb / n;
    if (va <= 0 || vb <= 0) continue;
    const double corr = cov / std::sqrt(va * vb);
    if (corr > best) {
      best = corr;
      best_at = lag;
    }
  }
  if (best_lag != nullptr) *best_lag = best_at;
  return best < -1 ? 0 : best;
}

}  // namespace vmp3::test
