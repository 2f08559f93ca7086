// What a user needs to know about an input to pick a stream: container, duration, streams, tags.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/io.hpp"

namespace vmp3::media {

struct StreamInfo {
  int index = 0;      // the container's stream index; `--stream N` takes this number
  std::string type;   // "audio", "video", "subtitle", "data", "attachment"
  std::string codec;  // FFmpeg codec name, e.g. "aac"
  std::optional<int> sample_rate;
  std::optional<int> channels;
  std::string channel_layout;  // e.g. "5.1(side)"
  std::optional<int> width;
  std::optional<int> height;
  std::optional<int64_t> bit_rate;
  std::string language;  // ISO 639-2 when the container says so
  bool is_default = false;
  bool is_cover_art = false;  // an attached picture
};

struct MediaInfo {
  std::string container;  // demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  std::string container_long_name;
  std::optional<double> duration_seconds;
  std::optional<int64_t> bit_rate;
  std::vector<StreamInfo> streams;
  std::map<std::string, std::string> tags;  // container-level tags, keys lower-cased
  std::optional<int> best_audio_stream;     // the stream `convert` picks by default
};

// Reads the container header (and a little more to find stream parameters). Errors:
// kEmptyInput, kNotMedia, kCorruptMedia.
Result<MediaInfo> Probe(ByteSource& source);

void to_json(nlohmann::json& j, const StreamInfo& s);
void to_json(nlohmann::json& j, const MediaInfo& m);

}  // namespace vmp3::media
