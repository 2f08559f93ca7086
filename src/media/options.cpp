#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "media/converter.hpp"
#include "media/mp3_rates.hpp"

namespace vmp3::media {

Result<int> ParseVbrQuality(std::string_view text) {
  std::string_view digits = text;
  if (!digits.empty() && (digits.front() == 'V' || digits.front() == 'v')) digits.remove_prefix(1);
  if (digits.size() == 1 && IsAsciiDigit(digits[0])) return digits[0] - '0';
  return MakeError(ErrorCode::kInvalidArgument,
                   fmt::format("quality '{}' is not one of V0 (best) .. V9 (smallest)", text));
}

Status ConvertOptions::Validate() const {
  if (vbr_quality && (*vbr_quality < 0 || *vbr_quality > 9))
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("quality V{} is out of range: use V0 (best) .. V9", *vbr_quality));
  if (cbr_kbps && !IsMp3Bitrate(*cbr_kbps))
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("bit rate {} kbps is not an MP3 bit rate: use one of {}",
                                 *cbr_kbps, fmt::join(kMp3Bitrates, ", ")));
  if (vbr_quality && cbr_kbps)
    return MakeError(ErrorCode::kInvalidArgument,
                     "choose either a VBR quality or a constant bit rate, not both");
  if (sample_rate && !IsMp3SampleRate(*sample_rate))
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("sample rate {} Hz cannot be carried by MP3: use one of {}",
                                 *sample_rate, fmt::join(kMp3SampleRates, ", ")));
  if (cbr_kbps && sample_rate && *sample_rate < 32000 && *cbr_kbps > 160)
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("{} kbps is above the 160 kbps MP3 allows at {} Hz", *cbr_kbps, *sample_rate));
  if (stream_index && *stream_index < 0)
    return MakeError(ErrorCode::kInvalidArgument, "stream index must be 0 or more");
  if (threads < 0 || threads > 256)
    return MakeError(ErrorCode::kInvalidArgument, "threads must be 0 (one per core) .. 256");
  if (segment_seconds < 0)
    return MakeError(ErrorCode::kInvalidArgument, "segment length must be positive");
  if (max_input_seconds < 0)
    return MakeError(ErrorCode::kInvalidArgument, "maximum input duration must be positive");
  return {};
}

bool ConvertOptions::RequestsChange() const {
  return vbr_quality.has_value() || cbr_kbps.has_value() || sample_rate.has_value() || mono ||
         force_reencode;
}

void to_json(nlohmann::json& j, const ConvertResult& r) {
  j = nlohmann::json{{"source_stream", r.source_stream_index},
                     {"source_codec", r.source_codec},
                     {"stream_copied", r.stream_copied},
                     {"sample_rate", r.sample_rate},
                     {"channels", r.channels},
                     {"samples", r.samples},
                     {"duration", r.duration_seconds},
                     {"bytes", r.output_bytes},
                     {"bitrate_kbps", r.bit_rate_kbps},
                     {"damaged_packets", r.damaged_packets},
                     {"cover_art", r.cover_art},
                     {"segments", r.segments},
                     {"frames", r.frames},
                     {"encoded_frames", r.encoded_frames},
                     {"inexact_seams", r.inexact_seams}};
}

}  // namespace vmp3::media
