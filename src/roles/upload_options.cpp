#include "roles/upload_options.hpp"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

namespace vmp3::roles {

Result<media::ConvertOptions> UploadOptions::ToConvertOptions() const {
  media::ConvertOptions options;
  if (quality && !quality->empty()) {
    auto q = media::ParseVbrQuality(*quality);
    if (!q) return tl::unexpected(q.error());
    options.vbr_quality = *q;
  }
  if (bitrate && !bitrate->empty()) {
    int kbps = 0;
    auto [ptr, ec] = std::from_chars(bitrate->data(), bitrate->data() + bitrate->size(), kbps);
    if (ec != std::errc() || ptr != bitrate->data() + bitrate->size())
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("bitrate '{}' is not a number", *bitrate));
    options.cbr_kbps = kbps;
  }
  if (auto s = options.Validate(); !s) return tl::unexpected(s.error());
  return options;
}

std::string UploadOptions::Json() const {
  nlohmann::json j = nlohmann::json::object();
  if (quality && !quality->empty()) j["quality"] = *quality;
  if (bitrate && !bitrate->empty()) j["bitrate"] = std::stoi(*bitrate);
  if (webhook_url && !webhook_url->empty()) j["webhook_url"] = *webhook_url;
  return j.dump();
}

Result<media::ConvertOptions> ConvertOptionsFromJson(std::string_view options_json) {
  media::ConvertOptions options;
  auto json = nlohmann::json::parse(options_json.empty() ? "{}" : options_json, nullptr, false);
  if (json.is_discarded()) return options;
  if (json.contains("quality") && json["quality"].is_string()) {
    auto q = media::ParseVbrQuality(json["quality"].get<std::string>());
    if (!q) return tl::unexpected(q.error());
    options.vbr_quality = *q;
  }
  if (json.contains("bitrate") && json["bitrate"].is_number_integer())
    options.cbr_kbps = json["bitrate"].get<int>();
  return options;
}

}  // namespace vmp3::roles
