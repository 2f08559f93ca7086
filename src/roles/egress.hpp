// The one egress policy of every outbound request the service makes for users (webhooks, push),
// configured once for every role that checks or calls such URLs: the upload role checks a job's
// webhook_url, the notifier checks endpoints and calls them. See notify/egress_policy.hpp.
#pragma once

#include <string>

#include "common/error.hpp"
#include "common/options.hpp"
#include "notify/egress_policy.hpp"

namespace vmp3::roles {

struct EgressConfig {
  // CIDRs outbound requests may reach although the policy refuses them otherwise (private,
  // loopback, ...): comma list. The cloud metadata addresses stay refused whatever is listed.
  std::string allow_cidrs;
  bool allow_http = false;  // plain http:// URLs (default: https only)

  void AddOptions(OptionList& options);
  Status Validate() const;
  // The policy; kInvalidArgument for a bad CIDR (Validate reports it first).
  Result<notify::EgressPolicy> Policy() const;
};

}  // namespace vmp3::roles
