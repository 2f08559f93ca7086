#include "notify/egress_policy.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <charconv>
#include <cstring>
#include <optional>

#include "common/text.hpp"

namespace vmp3::notify {
namespace {

// Longer URLs are refused outright: no legitimate webhook needs one, and they end up in logs.
constexpr size_t kEgressMaxUrlLength = 2048;

struct EgressAddress {
  int family = 0;  // AF_INET (the first 4 bytes) or AF_INET6
  std::array<uint8_t, 16> bytes{};
};

EgressAddress EgressIpv4(const uint8_t* four) {
  EgressAddress address{AF_INET, {}};
  std::memcpy(address.bytes.data(), four, 4);
  return address;
}

std::string EgressAddressText(const EgressAddress& address) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(address.family, address.bytes.data(), text, sizeof(text));
  return text;
}

std::optional<EgressAddress> ParseEgressAddress(std::string_view text) {
  const std::string copy(text);  // inet_pton wants a NUL-terminated string
  EgressAddress address;
  if (inet_pton(AF_INET, copy.c_str(), address.bytes.data()) == 1) {
    address.family = AF_INET;
    return address;
  }
  if (inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) == 1) {
    address.family = AF_INET6;
    return address;
  }
  return std::nullopt;
}

// "10.0.0.0/8", "fd00::/8", or a bare address (all bits). nullopt when malformed or when bits
// past the prefix are set (a typo more likely than an intent).
std::optional<IpNetwork> ParseEgressCidr(std::string_view text) {
  size_t slash = text.find('/');
  auto address = ParseEgressAddress(text.substr(0, slash));
  if (!address) return std::nullopt;
  const int max_prefix = address->family == AF_INET ? 32 : 128;
  int prefix = max_prefix;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || prefix < 0 ||
        prefix > max_prefix || !IsAsciiDigit(digits.front())) {
      return std::nullopt;
    }
  }
  IpNetwork network{address->family, address->bytes, prefix};
  for (int bit = prefix; bit < max_prefix; ++bit) {
    if (network.bytes[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
  }
  return network;
}

bool EgressNetworkContains(const IpNetwork& network, const EgressAddress& address) {
  if (network.family != address.family) return false;
  int bits = network.prefix;
  size_t i = 0;
  for (; bits >= 8; bits -= 8, ++i) {
    if (network.bytes[i] != address.bytes[i]) return false;
  }
  if (bits == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (network.bytes[i] & mask) == (address.bytes[i] & mask);
}

struct EgressSpecialRange {
  IpNetwork network;
  std::string_view cidr;
  std::string_view what;  // completes "address X is ..."
};

std::vector<EgressSpecialRange> MakeEgressRanges(
    std::initializer_list<std::pair<std::string_view, std::string_view>> table) {
  std::vector<EgressSpecialRange> ranges;
  for (const auto& [cidr, what] : table) ranges.push_back({*ParseEgressCidr(cidr), cidr, what});
  return ranges;
}

// Never reachable, whatever allow_cidrs says: instance metadata services hand out the cloud
// credentials of the machine (AWS/GCP/Azure/Oracle 169.254.169.254, AWS's IPv6 fd00:ec2::254,
// Alibaba's 100.100.100.200).
const std::vector<EgressSpecialRange>& EgressMetadataRanges() {
  static const auto ranges = MakeEgressRanges({
      {"169.254.169.254/32", "the cloud metadata service"},
      {"fd00:ec2::254/128", "the cloud metadata service"},
      {"100.100.100.200/32", "the cloud metadata service"},
  });
  return ranges;
}

// The IANA special-purpose registries' ranges that are not the public Internet; the first match
// names the reason, so a narrower range comes before a wider one holding it.
const std::vector<EgressSpecialRange>& EgressRefusedRanges() {
  static const auto ranges = MakeEgressRanges({
      {"0.0.0.0/8", "reserved for \"this network\""},
      {"10.0.0.0/8", "private"},
      {"100.64.0.0/10", "shared address space (carrier-grade NAT)"},
      {"127.0.0.0/8", "loopback"},
      {"169.254.0.0/16", "link-local"},
      {"172.16.0.0/12", "private"},
      {"192.0.0.0/24", "reserved for IETF protocol assignments"},
      {"192.0.2.0/24", "reserved for documentation"},
      {"192.88.99.0/24", "a deprecated 6to4 relay address"},
      {"192.168.0.0/16", "private"},
      {"198.18.0.0/15", "reserved for benchmarking"},
      {"198.51.100.0/24", "reserved for documentation"},
      {"203.0.113.0/24", "reserved for documentation"},
      {"224.0.0.0/4", "multicast"},
      {"255.255.255.255/32", "broadcast"},
      {"240.0.0.0/4", "reserved"},
      {"::/128", "unspecified"},
      {"::1/128", "loopback"},
      {"64:ff9b:1::/48", "reserved for local-use NAT64"},
      {"100::/64", "discard-only"},
      {"fc00::/7", "unique-local (private)"},
      {"fe80::/10", "link-local"},
      {"fec0::/10", "site-local (deprecated)"},
      {"ff00::/8", "multicast"},
      {"2001::/32", "a Teredo tunnel address"},
      {"2001:2::/48", "reserved for benchmarking"},
      {"2001:10::/28", "reserved (ORCHID)"},
      {"2001:20::/28", "reserved (ORCHIDv2)"},
      {"2001:db8::/32", "reserved for documentation"},
      {"3fff::/20", "reserved for documentation"},
  });
  return ranges;
}

const EgressSpecialRange* FindEgressRange(const std::vector<EgressSpecialRange>& ranges,
                                          const EgressAddress& address) {
  for (const EgressSpecialRange& range : ranges) {
    if (EgressNetworkContains(range.network, address)) return &range;
  }
  return nullptr;
}

// Why `address` is not on the public Internet ("private (10.0.0.0/8)"), nullopt when it is.
std::optional<std::string> EgressSpecialReason(const EgressAddress& address) {
  if (const EgressSpecialRange* range = FindEgressRange(EgressRefusedRanges(), address)) {
    return fmt::format("{} ({})", range->what, range->cidr);
  }
  // Only 2000::/3 is allocated as global unicast; the rest of the IPv6 space is reserved.
  if (address.family == AF_INET6 && (address.bytes[0] & 0xe0) != 0x20) {
    return std::string("outside the global unicast range (2000::/3)");
  }
  return std::nullopt;
}

// How an IPv6 address carries an IPv4 one.
enum class EgressEmbedding {
  kNone,
  kSameHost,  // IPv4-mapped or IPv4-compatible: the IPv4 address itself
  kTunnel,    // NAT64 or 6to4: a translator or relay forwards to the IPv4 address
};

EgressEmbedding EmbeddedIpv4(const EgressAddress& address, EgressAddress& ipv4) {
  if (address.family != AF_INET6) return EgressEmbedding::kNone;
  const auto& b = address.bytes;
  auto zero = [&b](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i)
      if (b[i] != 0) return false;
    return true;
  };
  if (zero(0, 10) && b[10] == 0xff && b[11] == 0xff) {  // ::ffff:0:0/96
    ipv4 = EgressIpv4(&b[12]);
    return EgressEmbedding::kSameHost;
  }
  // ::/96 minus :: and ::1, which are themselves (and refused as such).
  if (zero(0, 12) && !(zero(12, 15) && b[15] <= 1)) {
    ipv4 = EgressIpv4(&b[12]);
    return EgressEmbedding::kSameHost;
  }
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(4, 12)) {
    ipv4 = EgressIpv4(&b[12]);  // 64:ff9b::/96
    return EgressEmbedding::kTunnel;
  }
  if (b[0] == 0x20 && b[1] == 0x02) {  // 2002::/16, the IPv4 address in bits 16 to 47
    ipv4 = EgressIpv4(&b[2]);
    return EgressEmbedding::kTunnel;
  }
  return EgressEmbedding::kNone;
}

// WHATWG's IPv4 parser, which curl's URL parser and the C resolver (inet_aton) follow closely:
// one to four parts separated by dots, each decimal, hex ("0x") or octal (a leading "0"), the
// last filling the remaining bytes, an optional trailing dot. A host whose last part is a
// number but which does not parse is neither a name nor an address.
enum class EgressHostKind { kName, kIpv4, kInvalid };

EgressHostKind ParseEgressNumericHost(std::string_view host, uint32_t& ipv4) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t dot = host.find('.', start);
    parts.push_back(host.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts.size() > 1 && parts.back().empty()) parts.pop_back();
  auto is_hex = [](char c) {
    return IsAsciiDigit(c) || (AsciiLower(c) >= 'a' && AsciiLower(c) <= 'f');
  };
  std::string_view last = parts.back();
  bool last_is_number =
      !last.empty() && (std::all_of(last.begin(), last.end(), IsAsciiDigit) ||
                        (last.size() >= 2 && last[0] == '0' && AsciiLower(last[1]) == 'x' &&
                         std::all_of(last.begin() + 2, last.end(), is_hex)));
  if (!last_is_number) return EgressHostKind::kName;
  if (parts.size() > 4) return EgressHostKind::kInvalid;

  std::vector<uint64_t> numbers;
  for (std::string_view part : parts) {
    if (part.empty()) return EgressHostKind::kInvalid;
    int base = 10;
    if (part.size() >= 2 && part[0] == '0' && AsciiLower(part[1]) == 'x') {
      base = 16;
      part.remove_prefix(2);
    } else if (part.size() >= 2 && part[0] == '0') {
      base = 8;
      part.remove_prefix(1);
    }
    uint64_t value = 0;
    for (char c : part) {
      int digit = IsAsciiDigit(c) ? c - '0' : (is_hex(c) ? AsciiLower(c) - 'a' + 10 : 99);
      if (digit >= base) return EgressHostKind::kInvalid;
      value = value * base + digit;
      if (value > 0xffffffffULL) return EgressHostKind::kInvalid;
    }
    numbers.push_back(value);
  }
  const size_t n = numbers.size();
  for (size_t i = 0; i + 1 < n; ++i) {
    if (numbers[i] > 255) return EgressHostKind::kInvalid;
  }
  if (numbers.back() >= (1ULL << (8 * (5 - n)))) return EgressHostKind::kInvalid;
  uint64_t address = numbers.back();
  for (size_t i = 0; i + 1 < n; ++i) address += numbers[i] << (8 * (3 - i));
  ipv4 = static_cast<uint32_t>(address);
  return EgressHostKind::kIpv4;
}

// What a host name may hold: letters, digits, '-', '.', '_' and non-ASCII bytes (international
// names, which curl converts with IDNA).
bool IsEgressHostNameChar(char c) {
  return IsAsciiAlnum(c) || c == '-' || c == '.' || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

std::optional<std::string> EgressRefusal(const EgressAddress& address,
                                         const std::vector<IpNetwork>& allowed) {
  const std::string text = EgressAddressText(address);
  EgressAddress ipv4;
  const EgressEmbedding embedding = EmbeddedIpv4(address, ipv4);
  // The addresses this connection would in effect reach.
  std::vector<EgressAddress> reached{address};
  if (embedding != EgressEmbedding::kNone) reached.push_back(ipv4);

  for (const EgressAddress& candidate : reached) {
    if (const EgressSpecialRange* range = FindEgressRange(EgressMetadataRanges(), candidate)) {
      return candidate.family == address.family
                 ? fmt::format("address {} is {}, which is never allowed", text, range->what)
                 : fmt::format("address {} embeds IPv4 {}, {}, which is never allowed", text,
                               EgressAddressText(candidate), range->what);
    }
  }
  for (const EgressAddress& candidate : reached) {
    for (const IpNetwork& network : allowed) {
      if (EgressNetworkContains(network, candidate)) return std::nullopt;
    }
  }
  // An address that embeds an IPv4 one is judged by it alone: its own range (::ffff:0:0/96,
  // 64:ff9b::/96, 2002::/16) only says that it carries one.
  if (embedding == EgressEmbedding::kNone) {
    if (auto reason = EgressSpecialReason(address)) {
      return fmt::format("address {} is {}", text, *reason);
    }
    return std::nullopt;
  }
  if (auto reason = EgressSpecialReason(ipv4)) {
    return fmt::format("address {} embeds IPv4 {}, which is {}", text, EgressAddressText(ipv4),
                       *reason);
  }
  return std::nullopt;
}

curl_socket_t EgressOpenSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* guard = static_cast<EgressGuard*>(user);
  if (guard->policy == nullptr || purpose != CURLSOCKTYPE_IPCXN) {
    guard->refusal = "only outbound connections the egress policy checked are allowed";
    return CURL_SOCKET_BAD;
  }
  Status allowed = guard->policy->CheckAddress(&address->addr, address->addrlen);
  if (!allowed) {
    // Every address refused is named ("::1 ...; 127.0.0.1 ..."), once: curl tries them all.
    const std::string& reason = allowed.error().message;
    if (guard->refusal.find(reason) == std::string::npos) {
      if (!guard->refusal.empty()) guard->refusal += "; ";
      guard->refusal += reason;
    }
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

tl::unexpected<Error> EgressRefused(std::string reason) {
  return MakeError(ErrorCode::kUrlRefused, std::move(reason));
}

}  // namespace

Result<EgressPolicy> EgressPolicy::Make(const EgressPolicyConfig& config) {
  EgressPolicy policy;
  policy.allow_http_ = config.allow_http;
  for (const std::string& cidr : config.allow_cidrs) {
    auto network = ParseEgressCidr(cidr);
    if (!network) {
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("egress allow CIDR '{}' is not an address or a network such as "
                                   "10.1.0.0/16 (with the bits past the prefix zero)",
                                   cidr.substr(0, 64)));
    }
    policy.allowed_.push_back(*network);
  }
  return policy;
}

Status EgressPolicy::CheckUrl(std::string_view url) const {
  if (url.size() > kEgressMaxUrlLength) {
    return EgressRefused(fmt::format("the URL is longer than {} characters", kEgressMaxUrlLength));
  }
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return EgressRefused("the URL is not a valid absolute URL");
  const boost::urls::url_view& u = *parsed;
  const bool https = u.scheme_id() == boost::urls::scheme::https;
  const bool http = u.scheme_id() == boost::urls::scheme::http;
  if (!https && !(http && allow_http_)) {
    return EgressRefused(http ? "http URLs are refused: use https"
                              : (allow_http_ ? "only http and https URLs are allowed"
                                             : "only https URLs are allowed"));
  }
  if (!u.has_authority() || u.encoded_host().empty()) return EgressRefused("the URL has no host");
  if (u.has_userinfo()) {
    return EgressRefused(
        "URLs with user info (user:password@) are refused: send credentials "
        "another way");
  }
  if (u.has_fragment()) return EgressRefused("URLs with a fragment (#...) are refused");
  // Boost.URL 1.81 reads "host:12ab/" as port 12 and path "ab/", and "1.2.3.4.5/" as the
  // IPv4 host 1.2.3.4 and path ".5/": after an authority the path must start with '/', else the
  // host or port had more than it took.
  if (!u.encoded_path().empty() && u.encoded_path().front() != '/') {
    return EgressRefused("the URL's host or port is malformed");
  }
  if (u.has_port()) {
    std::string_view text = u.port();
    int port = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || port < 1 ||
        port > 65535) {
      return EgressRefused("the URL has a bad port (expected 1 to 65535)");
    }
  }

  EgressAddress address;
  switch (u.host_type()) {
    case boost::urls::host_type::ipv4: {
      auto bytes = u.host_ipv4_address().to_bytes();
      address = EgressIpv4(bytes.data());
      break;
    }
    case boost::urls::host_type::ipv6: {
      auto bytes = u.host_ipv6_address().to_bytes();
      address.family = AF_INET6;
      std::memcpy(address.bytes.data(), bytes.data(), 16);
      break;
    }
    case boost::urls::host_type::name: {
      const std::string host = u.host();  // percent-decoded, as curl decodes it
      if (host.empty()) return EgressRefused("the URL has no host");
      if (host.size() > 253 || !std::all_of(host.begin(), host.end(), IsEgressHostNameChar)) {
        return EgressRefused("the URL's host is not a valid host name");
      }
      uint32_t ipv4 = 0;
      switch (ParseEgressNumericHost(host, ipv4)) {
        case EgressHostKind::kName:
          return {};  // checked when connecting, on every address it resolves to
        case EgressHostKind::kInvalid:
          return EgressRefused("the URL's host is neither a host name nor a valid IPv4 address");
        case EgressHostKind::kIpv4: {
          const uint8_t bytes[4] = {static_cast<uint8_t>(ipv4 >> 24),
                                    static_cast<uint8_t>(ipv4 >> 16),
                                    static_cast<uint8_t>(ipv4 >> 8), static_cast<uint8_t>(ipv4)};
          address = EgressIpv4(bytes);
          break;
        }
      }
      break;
    }
    default:
      return EgressRefused("the URL's host is an IP address form that is not supported");
  }
  if (auto reason = EgressRefusal(address, allowed_)) return EgressRefused(std::move(*reason));
  return {};
}

Status EgressPolicy::CheckAddress(const sockaddr* address, socklen_t length) const {
  EgressAddress parsed;
  if (address != nullptr && address->sa_family == AF_INET &&
      length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    parsed = EgressIpv4(reinterpret_cast<const uint8_t*>(&in->sin_addr));
  } else if (address != nullptr && address->sa_family == AF_INET6 &&
             length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    parsed.family = AF_INET6;
    std::memcpy(parsed.bytes.data(), &in6->sin6_addr, 16);
  } else {
    return EgressRefused("only IPv4 and IPv6 connections are allowed");
  }
  if (auto reason = EgressRefusal(parsed, allowed_)) return EgressRefused(std::move(*reason));
  return {};
}

bool EgressPolicy::AllowsAddress(const sockaddr* address, socklen_t length) const {
  return CheckAddress(address, length).has_value();
}

Status EgressPolicy::CheckAddress(std::string_view ip) const {
  auto parsed = ParseEgressAddress(ip);
  if (!parsed) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("'{}' is not an IPv4 or IPv6 address", ip.substr(0, 64)));
  }
  if (auto reason = EgressRefusal(*parsed, allowed_)) return EgressRefused(std::move(*reason));
  return {};
}

void EgressPolicy::ApplyTo(CURL* curl, EgressGuard& guard) const {
  guard.policy = this;
  guard.refusal.clear();
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, &EgressOpenSocket);
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &guard);
  const char* protocols = allow_http_ ? "http,https" : "https";
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, protocols);
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  // An empty proxy disables the environment's http_proxy/https_proxy/all_proxy; "*" in the
  // no-proxy list makes sure no later proxy setting applies either. A proxy would connect for
  // us, out of reach of the address check.
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
}

}  // namespace vmp3::notify
