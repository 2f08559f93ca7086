// The one egress policy every outbound request of the service passes (webhooks, Web Push, later
// URL imports), so that a URL a user hands us cannot reach what only the service can reach:
// loopback, the private network, the cloud metadata service (server-side request forgery).
//
// Two checks, because a name's addresses are only known when connecting:
//  - CheckUrl, when a URL is registered and again before each request: https only (unless
//    allow_http), no user info, a host, and when the host is an IP literal in any form curl or
//    the resolver would take (127.0.0.1, [::1], 2130706433, 0x7f.1, 0177.0.0.1) its address;
//  - ApplyTo, on the curl handle of each request: every address curl is about to connect to is
//    checked just before connect() (so DNS rebinding and names that resolve to loopback are
//    refused too), environment proxies are ignored and redirects are not followed.
//
// Refused: IPv4 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24,
// 192.88.99/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4, 240/4 (with
// 255.255.255.255); IPv6 ::, ::1, everything outside 2000::/3 (fc00::/7 unique-local, fe80::/10
// link-local, ff00::/8 multicast, ...), and inside it Teredo 2001::/32, 2001:2::/48,
// ORCHID 2001:10::/28 and 2001:20::/28, documentation 2001:db8::/32 and 3fff::/20. IPv6 forms
// that embed an IPv4 address (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, NAT64
// 64:ff9b::/96, 6to4 2002::/16) are judged by the IPv4 address they embed.
// `allow_cidrs` opens ranges (an internal receiver, tests on 127.0.0.1); the cloud metadata
// addresses (169.254.169.254, fd00:ec2::254, Alibaba's 100.100.100.200) stay refused whatever
// it says.
//
// Every refusal is Error(kUrlRefused, reason) with a reason a user can act on ("address
// 10.0.0.1 is private (10.0.0.0/8)"). An EgressPolicy is immutable: share it between threads.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

typedef void CURL;  // libcurl's easy handle, as curl/curl.h declares it

namespace vmp3::notify {

struct EgressPolicyConfig {
  // Lets http:// URLs through (tests, receivers inside a trusted network). Default: https only.
  bool allow_http = false;
  // Ranges opened although the policy refuses them otherwise: "127.0.0.1/32", "10.20.0.0/16",
  // "fd12:3456::/32"; a bare address is the range of that one address. Bits past the prefix must
  // be zero. Never opens the cloud metadata addresses.
  std::vector<std::string> allow_cidrs;
};

// An IPv4 or IPv6 network: the first 4 (IPv4) or 16 (IPv6) bytes of `bytes`, `prefix` bits.
struct IpNetwork {
  int family = 0;  // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};
  int prefix = 0;
};

class EgressPolicy;

// The connect-time check of one transfer, as ApplyTo installs it. It must outlive the transfer
// (curl calls back into it during curl_easy_perform), like the policy it points to. One per
// transfer, used by the thread running it.
struct EgressGuard {
  const EgressPolicy* policy = nullptr;
  // Why the policy refused connections of this transfer ("address ::1 is loopback (::1/128);
  // address 127.0.0.1 is ..."), each refused address once; empty when it refused none. When the
  // transfer then failed to connect, this is the error to report instead of curl's "could not
  // connect".
  std::string refusal;
};

class EgressPolicy {
 public:
  // The default policy: https only, nothing opened.
  EgressPolicy() = default;

  // kInvalidArgument naming the entry when an allow_cidrs entry is not a CIDR.
  static Result<EgressPolicy> Make(const EgressPolicyConfig& config);

  bool allows_http() const { return allow_http_; }

  // Whether `url` may be called, as far as can be told before resolving its host: OK, or
  // kUrlRefused with the reason. Does not resolve names.
  Status CheckUrl(std::string_view url) const;

  // Whether a connection to `address` (AF_INET or AF_INET6; anything else is refused) is
  // allowed. CheckAddress says why not, as kUrlRefused.
  bool AllowsAddress(const sockaddr* address, socklen_t length) const;
  Status CheckAddress(const sockaddr* address, socklen_t length) const;
  // The same for an address in text: dotted IPv4 or IPv6 without brackets. kInvalidArgument
  // when `ip` is neither.
  Status CheckAddress(std::string_view ip) const;

  // Installs the policy on a curl easy handle: the connect-time address check (reporting into
  // `guard`), the protocols (https, or http and https), no redirects followed, no proxy (the
  // environment's http_proxy and friends ignored). Call after any curl_easy_reset and before
  // curl_easy_perform; the caller still sets the URL, having passed it through CheckUrl.
  void ApplyTo(CURL* curl, EgressGuard& guard) const;

 private:
  bool allow_http_ = false;
  std::vector<IpNetwork> allowed_;
};

}  // namespace vmp3::notify
