#include "roles/egress.hpp"

#include <fmt/format.h>

#include "common/text.hpp"

namespace vmp3::roles {

void EgressConfig::AddOptions(OptionList& options) {
  options.push_back({"--egress-allow-cidr", "VMP3_EGRESS_ALLOW_CIDR",
                     "Comma list of CIDRs webhooks may reach although private or loopback (e.g. "
                     "an internal receiver's network); cloud metadata addresses stay refused",
                     &allow_cidrs});
  options.push_back({"--egress-allow-http", "VMP3_EGRESS_ALLOW_HTTP",
                     "Allow plain http:// webhook URLs (default: https only)", &allow_http});
}

Result<notify::EgressPolicy> EgressConfig::Policy() const {
  notify::EgressPolicyConfig config;
  config.allow_http = allow_http;
  for (std::string_view cidr : SplitList(allow_cidrs)) config.allow_cidrs.emplace_back(cidr);
  return notify::EgressPolicy::Make(config);
}

Status EgressConfig::Validate() const {
  if (auto policy = Policy(); !policy)
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("--egress-allow-cidr: {}", policy.error().message));
  return {};
}

}  // namespace vmp3::roles
