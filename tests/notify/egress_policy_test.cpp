// The egress policy on every address form a URL or a resolver can produce. Expected verdicts
// come from the IANA special-purpose address registries (RFC 6890 and successors), not from the
// policy's own tables.
#include "notify/egress_policy.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

namespace vmp3::notify {
namespace {

EgressPolicy MakePolicy(EgressPolicyConfig config) {
  auto policy = EgressPolicy::Make(config);
  EXPECT_TRUE(policy) << policy.error().message;
  return policy ? *policy : EgressPolicy();
}

// The refusal's message, or "" when allowed.
std::string UrlRefusal(const EgressPolicy& policy, std::string_view url) {
  Status status = policy.CheckUrl(url);
  if (status) return "";
  EXPECT_EQ(status.error().code, ErrorCode::kUrlRefused) << url;
  return status.error().message;
}

std::string AddressRefusal(const EgressPolicy& policy, std::string_view ip) {
  Status status = policy.CheckAddress(ip);
  if (status) return "";
  EXPECT_EQ(status.error().code, ErrorCode::kUrlRefused) << ip;
  return status.error().message;
}

TEST(EgressPolicy, RefusesNonPublicIpv4) {
  const EgressPolicy policy;
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"0.0.0.0", "this network"},
      {"0.1.2.3", "this network"},
      {"10.0.0.1", "address 10.0.0.1 is private (10.0.0.0/8)"},
      {"10.255.255.255", "private"},
      {"100.64.0.1", "carrier-grade NAT"},
      {"100.127.255.254", "carrier-grade NAT"},
      {"127.0.0.1", "address 127.0.0.1 is loopback (127.0.0.0/8)"},
      {"127.255.0.9", "loopback"},
      {"169.254.0.1", "link-local"},
      {"172.16.0.1", "private (172.16.0.0/12)"},
      {"172.31.255.255", "private"},
      {"192.0.0.8", "IETF protocol assignments"},
      {"192.0.2.1", "documentation"},
      {"192.88.99.1", "6to4"},
      {"192.168.1.1", "private (192.168.0.0/16)"},
      {"198.18.0.1", "benchmarking"},
      {"198.19.255.255", "benchmarking"},
      {"198.51.100.7", "documentation"},
      {"203.0.113.9", "documentation"},
      {"224.0.0.1", "multicast"},
      {"239.255.255.250", "multicast"},
      {"240.0.0.1", "reserved"},
      {"255.255.255.255", "broadcast"},
      {"169.254.169.254", "cloud metadata"},
  };
  for (const auto& [ip, reason] : cases) {
    std::string refusal = AddressRefusal(policy, ip);
    EXPECT_NE(refusal.find(reason), std::string::npos) << ip << ": " << refusal;
  }
}

TEST(EgressPolicy, AllowsPublicAddresses) {
  const EgressPolicy policy;
  for (std::string_view ip :
       {"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.0", "172.15.255.255",
        "172.32.0.0", "192.0.1.255", "192.169.0.1", "198.17.255.255", "198.20.0.0",
        "223.255.255.255", "2606:4700:4700::1111", "2001:4860:4860::8888",
        "2a00:1450:4001:80b::200e", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"}) {
    EXPECT_EQ(AddressRefusal(policy, ip), "") << ip;
  }
}

TEST(EgressPolicy, RefusesNonPublicIpv6) {
  const EgressPolicy policy;
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"::", "address :: is unspecified"},
      {"::1", "address ::1 is loopback"},
      {"0:0:0:0:0:0:0:1", "loopback"},
      {"fc00::1", "unique-local"},
      {"fd12:3456:789a::1", "unique-local"},
      {"fe80::1", "link-local"},
      {"febf:ffff::1", "link-local"},
      {"fec0::1", "site-local"},
      {"ff02::1", "multicast"},
      {"2001:db8::1", "documentation"},
      {"3fff::1", "documentation"},
      {"2001::1", "Teredo"},
      {"2001:2::1", "benchmarking"},
      {"2001:10::1", "ORCHID"},
      {"100::1", "discard-only"},
      {"64:ff9b:1::1", "local-use NAT64"},
      {"5f00::1", "outside the global unicast range"},
      {"4000::1", "outside the global unicast range"},
      {"fd00:ec2::254", "cloud metadata"},
  };
  for (const auto& [ip, reason] : cases) {
    std::string refusal = AddressRefusal(policy, ip);
    EXPECT_NE(refusal.find(reason), std::string::npos) << ip << ": " << refusal;
  }
}

TEST(EgressPolicy, JudgesIpv6FormsByTheIpv4TheyEmbed) {
  const EgressPolicy policy;
  const std::pair<std::string_view, std::string_view> cases[] = {
      // IPv4-mapped, in both spellings.
      {"::ffff:127.0.0.1", "address ::ffff:127.0.0.1 embeds IPv4 127.0.0.1, which is loopback"},
      {"::ffff:7f00:1", "embeds IPv4 127.0.0.1, which is loopback"},
      {"::ffff:10.1.2.3", "embeds IPv4 10.1.2.3, which is private"},
      {"::ffff:169.254.169.254", "cloud metadata"},
      // IPv4-compatible (deprecated).
      {"::127.0.0.1", "embeds IPv4 127.0.0.1, which is loopback"},
      {"::a00:1", "embeds IPv4 10.0.0.1, which is private"},
      // 6to4 and NAT64.
      {"2002:7f00:1::", "embeds IPv4 127.0.0.1, which is loopback"},
      {"2002:a9fe:a9fe::1", "cloud metadata"},
      {"64:ff9b::a00:1", "address 64:ff9b::a00:1 embeds IPv4 10.0.0.1, which is private"},
      {"64:ff9b::7f00:1", "loopback"},
      {"64:ff9b::a9fe:a9fe", "cloud metadata"},
  };
  for (const auto& [ip, reason] : cases) {
    std::string refusal = AddressRefusal(policy, ip);
    EXPECT_NE(refusal.find(reason), std::string::npos) << ip << ": " << refusal;
  }
}

TEST(EgressPolicy, ChecksSocketAddresses) {
  const EgressPolicy policy;
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  ASSERT_EQ(inet_pton(AF_INET, "10.0.0.1", &v4.sin_addr), 1);
  EXPECT_FALSE(policy.AllowsAddress(reinterpret_cast<sockaddr*>(&v4), sizeof(v4)));
  Status refused = policy.CheckAddress(reinterpret_cast<sockaddr*>(&v4), sizeof(v4));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, "address 10.0.0.1 is private (10.0.0.0/8)");
  ASSERT_EQ(inet_pton(AF_INET, "8.8.4.4", &v4.sin_addr), 1);
  EXPECT_TRUE(policy.AllowsAddress(reinterpret_cast<sockaddr*>(&v4), sizeof(v4)));
  // A truncated address is refused, never read past its length.
  EXPECT_FALSE(policy.AllowsAddress(reinterpret_cast<sockaddr*>(&v4), sizeof(v4) - 4));

  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:127.0.0.1", &v6.sin6_addr), 1);
  EXPECT_FALSE(policy.AllowsAddress(reinterpret_cast<sockaddr*>(&v6), sizeof(v6)));
  ASSERT_EQ(inet_pton(AF_INET6, "2606:4700::1", &v6.sin6_addr), 1);
  EXPECT_TRUE(policy.AllowsAddress(reinterpret_cast<sockaddr*>(&v6), sizeof(v6)));

  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  EXPECT_FALSE(policy.AllowsAddress(&unix_like, sizeof(unix_like)));
  EXPECT_FALSE(policy.AllowsAddress(nullptr, 0));

  Status not_ip = policy.CheckAddress("example.com");
  ASSERT_FALSE(not_ip);
  EXPECT_EQ(not_ip.error().code, ErrorCode::kInvalidArgument);
}

TEST(EgressPolicy, AllowCidrsOpenRangesButNeverTheMetadataService) {
  const EgressPolicy loopback = MakePolicy({.allow_cidrs = {"127.0.0.1/32"}});
  EXPECT_EQ(AddressRefusal(loopback, "127.0.0.1"), "");
  EXPECT_EQ(AddressRefusal(loopback, "::ffff:127.0.0.1"), "");  // the same host
  EXPECT_NE(AddressRefusal(loopback, "127.0.0.2"), "");
  EXPECT_NE(AddressRefusal(loopback, "::1"), "");

  const EgressPolicy everything = MakePolicy({.allow_cidrs = {"0.0.0.0/0", "::/0"}});
  EXPECT_EQ(AddressRefusal(everything, "10.0.0.1"), "");
  EXPECT_EQ(AddressRefusal(everything, "fd12::1"), "");
  for (std::string_view metadata :
       {"169.254.169.254", "fd00:ec2::254", "100.100.100.200", "::ffff:169.254.169.254",
        "::ffff:a9fe:a9fe", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::"}) {
    std::string refusal = AddressRefusal(everything, metadata);
    EXPECT_NE(refusal.find("cloud metadata service, which is never allowed"), std::string::npos)
        << metadata << ": " << refusal;
  }
  // ... also when the range names it exactly.
  const EgressPolicy exact = MakePolicy({.allow_cidrs = {"169.254.169.254/32", "fd00:ec2::254"}});
  EXPECT_NE(AddressRefusal(exact, "169.254.169.254"), "");
  EXPECT_NE(AddressRefusal(exact, "fd00:ec2::254"), "");
  EXPECT_NE(UrlRefusal(exact, "https://169.254.169.254/latest/meta-data/"), "");

  const EgressPolicy private_net = MakePolicy({.allow_cidrs = {"10.20.0.0/16", "fd12:3456::/32"}});
  EXPECT_EQ(AddressRefusal(private_net, "10.20.7.8"), "");
  EXPECT_NE(AddressRefusal(private_net, "10.21.0.1"), "");
  EXPECT_EQ(AddressRefusal(private_net, "fd12:3456:1::5"), "");
  EXPECT_NE(AddressRefusal(private_net, "fd12:3457::5"), "");
  EXPECT_EQ(AddressRefusal(private_net, "64:ff9b::a14:708"), "");  // NAT64 to 10.20.7.8
}

TEST(EgressPolicy, RefusesMalformedAllowCidrs) {
  for (std::string_view cidr : {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.1/8",
                                "example.com/8", "::/129", "fd00::1/8", "10.0.0.0/8 ", "10.0/8"}) {
    auto policy = EgressPolicy::Make({.allow_cidrs = {std::string(cidr)}});
    ASSERT_FALSE(policy) << cidr;
    EXPECT_EQ(policy.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(
      EgressPolicy::Make({.allow_cidrs = {"10.0.0.0/8", "192.168.1.7", "::1", "fd00::/8"}}));
}

TEST(EgressPolicy, RefusesIpLiteralsInUrlsInEveryForm) {
  const EgressPolicy policy;
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"https://127.0.0.1/hook", "address 127.0.0.1 is loopback"},
      {"https://127.0.0.1:8443/hook", "address 127.0.0.1 is loopback"},
      {"https://2130706433/", "address 127.0.0.1 is loopback"},  // decimal
      {"https://0x7f000001/", "address 127.0.0.1 is loopback"},  // hex
      {"https://0X7F.1/", "address 127.0.0.1 is loopback"},      // hex, two parts
      {"https://0177.0.0.1/", "address 127.0.0.1 is loopback"},  // octal
      {"https://017700000001/", "address 127.0.0.1 is loopback"},
      {"https://127.1/", "address 127.0.0.1 is loopback"},            // two parts
      {"https://127.0.1/", "address 127.0.0.1 is loopback"},          // three parts
      {"https://127.1./", "address 127.0.0.1 is loopback"},           // trailing dot
      {"https://127.0.0.1./", "host or port is malformed"},           // Boost.URL splits it oddly
      {"https://%31%32%37.0.0.1/", "address 127.0.0.1 is loopback"},  // percent-encoded
      {"https://0/", "address 0.0.0.0 is reserved"},
      {"https://10.0.0.1/", "address 10.0.0.1 is private"},
      {"https://167772161/", "address 10.0.0.1 is private"},
      {"https://0xa9.0xfe.0xa9.0xfe/", "cloud metadata"},
      {"https://[::1]/", "address ::1 is loopback"},
      {"https://[::ffff:127.0.0.1]/", "embeds IPv4 127.0.0.1"},
      {"https://[::ffff:7f00:1]:443/", "embeds IPv4 127.0.0.1"},
      {"https://[2002:7f00:1::]/", "embeds IPv4 127.0.0.1"},
      {"https://[64:ff9b::a00:1]/", "embeds IPv4 10.0.0.1"},
      {"https://[fe80::1]/", "link-local"},
      {"https://[fd00:ec2::254]/", "cloud metadata"},
      // Numbers that are not addresses are not names either.
      {"https://256.0.0.1/", "neither a host name nor a valid IPv4 address"},
      {"https://1.2.3.4.5/", "host or port is malformed"},
      {"https://1.2.3.4.5.6/", "host or port is malformed"},
      {"https://0x1.2.3.4.5/", "neither a host name nor a valid IPv4 address"},
      {"https://4294967296/", "neither a host name nor a valid IPv4 address"},
      {"https://08.0.0.1/", "neither a host name nor a valid IPv4 address"},
      {"https://example.123/", "neither a host name nor a valid IPv4 address"},
  };
  for (const auto& [url, reason] : cases) {
    std::string refusal = UrlRefusal(policy, url);
    EXPECT_NE(refusal.find(reason), std::string::npos) << url << ": " << refusal;
  }
}

TEST(EgressPolicy, AcceptsPublicUrls) {
  const EgressPolicy policy;
  for (std::string_view url :
       {"https://example.com/hook", "https://hooks.example.com:8443/a/b?c=d&e",
        "HTTPS://Example.COM/", "https://8.8.8.8/", "https://134744072/",  // 8.8.8.8
        "https://[2606:4700:4700::1111]/x", "https://localhost/",          // names: at connect
        "https://xn--bcher-kva.example/", "https://0x.example.com/", "https://a.0x7g/",
        "https://1e100.net/"}) {
    EXPECT_EQ(UrlRefusal(policy, url), "") << url;
  }
}

TEST(EgressPolicy, RefusesUnsafeUrlShapes) {
  const EgressPolicy policy;
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"http://example.com/", "http URLs are refused: use https"},
      {"ftp://example.com/", "only https URLs are allowed"},
      {"file:///etc/passwd", "only https"},
      {"gopher://example.com/", "only https"},
      {"https://user:pass@example.com/", "user info"},
      {"https://user@example.com/", "user info"},
      {"https://@example.com/", "user info"},
      {"https:///path", "no host"},
      {"https:example.com", "no host"},
      {"https://example.com/#frag", "fragment"},
      {"https://example.com:0/", "bad port"},
      {"https://example.com:65536/", "bad port"},
      {"https://example.com:12ab/", "host or port is malformed"},
      {"https://exa mple.com/", "not a valid absolute URL"},
      {"/relative/path", "not a valid absolute URL"},
      {"", "not a valid absolute URL"},
      {"https://exa%2Fmple.com/", "not a valid host name"},
      {"https://exa%00mple.com/", "not a valid host name"},
      {"https://[v1.fe80::1]/", "not supported"},
  };
  for (const auto& [url, reason] : cases) {
    std::string refusal = UrlRefusal(policy, url);
    EXPECT_NE(refusal.find(reason), std::string::npos) << url << ": " << refusal;
  }
  EXPECT_NE(UrlRefusal(policy, "https://example.com/" + std::string(3000, 'a')), "");
}

TEST(EgressPolicy, AllowHttpLetsHttpThrough) {
  const EgressPolicy policy = MakePolicy({.allow_http = true});
  EXPECT_TRUE(policy.allows_http());
  EXPECT_EQ(UrlRefusal(policy, "http://example.com/hook"), "");
  EXPECT_EQ(UrlRefusal(policy, "https://example.com/hook"), "");
  EXPECT_NE(UrlRefusal(policy, "ftp://example.com/").find("only http and https"),
            std::string::npos);
  // Opening http opens no address.
  EXPECT_NE(UrlRefusal(policy, "http://127.0.0.1/").find("loopback"), std::string::npos);
  const EgressPolicy loopback = MakePolicy({.allow_http = true, .allow_cidrs = {"127.0.0.1/32"}});
  EXPECT_EQ(UrlRefusal(loopback, "http://127.0.0.1:8080/hook"), "");
  EXPECT_EQ(UrlRefusal(loopback, "http://2130706433:8080/hook"), "");
}

}  // namespace
}  // namespace vmp3::notify
