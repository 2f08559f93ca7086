#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "media/avio.hpp"
#include "media/media_info.hpp"

extern "C" {
#include <libavutil/channel_layout.h>
}

namespace vmp3::media {
namespace {

std::string_view TypeName(AVMediaType type) {
  switch (type) {
    case AVMEDIA_TYPE_AUDIO:
      return "audio";
    case AVMEDIA_TYPE_VIDEO:
      return "video";
    case AVMEDIA_TYPE_SUBTITLE:
      return "subtitle";
    case AVMEDIA_TYPE_ATTACHMENT:
      return "attachment";
    default:
      return "data";
  }
}

}  // namespace

Result<MediaInfo> Probe(ByteSource& source) {
  auto opened = OpenInput(source, /*audio_only=*/false, {});
  if (!opened) return tl::unexpected(opened.error());
  AVFormatContext* ctx = opened->format.get();

  MediaInfo info;
  info.container = ctx->iformat->name;
  if (ctx->iformat->long_name) info.container_long_name = ctx->iformat->long_name;
  if (ctx->duration != AV_NOPTS_VALUE && ctx->duration > 0)
    info.duration_seconds = static_cast<double>(ctx->duration) / AV_TIME_BASE;
  if (ctx->bit_rate > 0) info.bit_rate = ctx->bit_rate;
  const AVDictionaryEntry* tag = nullptr;
  while ((tag = av_dict_get(ctx->metadata, "", tag, AV_DICT_IGNORE_SUFFIX)))
    info.tags[AsciiLowerCopy(tag->key)] = tag->value;

  for (unsigned i = 0; i < ctx->nb_streams; ++i) {
    const AVStream* st = ctx->streams[i];
    const AVCodecParameters* par = st->codecpar;
    StreamInfo s;
    s.index = static_cast<int>(i);
    s.type = TypeName(par->codec_type);
    s.codec = avcodec_get_name(par->codec_id);
    s.is_default = (st->disposition & AV_DISPOSITION_DEFAULT) != 0;
    s.is_cover_art = (st->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0;
    if (par->bit_rate > 0) s.bit_rate = par->bit_rate;
    if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
      s.sample_rate = par->sample_rate;
      s.channels = par->ch_layout.nb_channels;
      char layout[128] = {};
      if (av_channel_layout_describe(&par->ch_layout, layout, sizeof(layout)) > 0)
        s.channel_layout = layout;
    } else if (par->codec_type == AVMEDIA_TYPE_VIDEO && par->width > 0) {
      s.width = par->width;
      s.height = par->height;
    }
    if (auto* lang = av_dict_get(st->metadata, "language", nullptr, 0)) s.language = lang->value;
    info.streams.push_back(std::move(s));
  }
  int best = av_find_best_stream(ctx, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (best >= 0) info.best_audio_stream = best;
  return info;
}

void to_json(nlohmann::json& j, const StreamInfo& s) {
  j = nlohmann::json{{"index", s.index},
                     {"type", s.type},
                     {"codec", s.codec},
                     {"default", s.is_default},
                     {"cover_art", s.is_cover_art}};
  if (s.sample_rate) j["sample_rate"] = *s.sample_rate;
  if (s.channels) j["channels"] = *s.channels;
  if (!s.channel_layout.empty()) j["channel_layout"] = s.channel_layout;
  if (s.width) j["width"] = *s.width;
  if (s.height) j["height"] = *s.height;
  if (s.bit_rate) j["bit_rate"] = *s.bit_rate;
  if (!s.language.empty()) j["language"] = s.language;
}

void to_json(nlohmann::json& j, const MediaInfo& m) {
  j = nlohmann::json{{"container", m.container},
                     {"container_long_name", m.container_long_name},
                     {"streams", m.streams},
                     {"tags", m.tags}};
  j["duration"] = m.duration_seconds ? nlohmann::json(*m.duration_seconds) : nlohmann::json();
  if (m.bit_rate) j["bit_rate"] = *m.bit_rate;
  j["best_audio_stream"] =
      m.best_audio_stream ? nlohmann::json(*m.best_audio_stream) : nlohmann::json();
}

}  // namespace vmp3::media
