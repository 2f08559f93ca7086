#include "storage/sigv4.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <ctime>

#include "common/text.hpp"

namespace vmp3::sigv4 {
namespace {

// AWS's UriEncode keeps exactly RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~) and
// writes every other byte as %XX with upper-case hex digits, which is what Boost.URL's encode()
// does with these sets and default options (no '+' for spaces, upper case).
constexpr boost::urls::grammar::lut_chars kUnreserved = boost::urls::unreserved_chars;
constexpr boost::urls::grammar::lut_chars kUnreservedOrSlash = boost::urls::unreserved_chars + '/';

// Trims leading and trailing whitespace and collapses each inner run of spaces to one space
// ("Trimall" in the SigV4 specification).
std::string TrimAll(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (IsAsciiWhitespace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// Lower-cased names with their trimmed values; repeated names joined with ',' in the order given.
std::vector<std::pair<std::string, std::string>> CanonicalHeaderList(const Request& request) {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(request.headers.size());
  for (const auto& [name, value] : request.headers) {
    headers.emplace_back(AsciiLowerCopy(name), TrimAll(value));
  }
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<std::string, std::string>> merged;
  for (auto& header : headers) {
    if (!merged.empty() && merged.back().first == header.first) {
      merged.back().second += ',';
      merged.back().second += header.second;
    } else {
      merged.push_back(std::move(header));
    }
  }
  return merged;
}

bool HasHeader(const Request& request, std::string_view name) {
  return std::any_of(request.headers.begin(), request.headers.end(),
                     [&](const auto& h) { return EqualsIgnoringAsciiCase(h.first, name); });
}

std::string_view DatePart(std::string_view amz_date) { return amz_date.substr(0, 8); }

}  // namespace

std::string HexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
  return out;
}

std::string Sha256Hex(std::span<const std::byte> data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

std::string Sha256Hex(std::string_view data) {
  return Sha256Hex(std::as_bytes(std::span<const char>(data.data(), data.size())));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length);
  return std::string(reinterpret_cast<const char*>(mac), length);
}

std::string UriEncode(std::string_view s, bool encode_slash) {
  return boost::urls::encode(s, encode_slash ? kUnreserved : kUnreservedOrSlash);
}

std::string EncodePath(std::string_view path) {
  // S3 does not normalize paths: every segment is encoded as is, empty segments included.
  if (path.empty()) return "/";
  return UriEncode(path, /*encode_slash=*/false);
}

std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(UriEncode(name, true), UriEncode(value, true));
  }
  // Sorted by code point of the encoded names (upper case before lower case), then values.
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

std::string SignedHeaders(const Request& request) {
  std::string out;
  for (const auto& [name, value] : CanonicalHeaderList(request)) {
    if (!out.empty()) out.push_back(';');
    out += name;
  }
  return out;
}

std::string CanonicalRequest(const Request& request) {
  std::string out;
  out += request.method;
  out.push_back('\n');
  out += EncodePath(request.path);
  out.push_back('\n');
  out += CanonicalQueryString(request.query);
  out.push_back('\n');
  std::string signed_headers;
  // Each header is "name:value\n", so the header block ends with an empty line.
  for (const auto& [name, value] : CanonicalHeaderList(request)) {
    out += name;
    out.push_back(':');
    out += value;
    out.push_back('\n');
    if (!signed_headers.empty()) signed_headers.push_back(';');
    signed_headers += name;
  }
  out.push_back('\n');
  out += signed_headers;
  out.push_back('\n');
  out += request.payload_hash;
  return out;
}

std::string CredentialScope(const Scope& scope) {
  return fmt::format("{}/{}/{}/aws4_request", DatePart(scope.amz_date), scope.region,
                     scope.service);
}

std::string StringToSign(const Scope& scope, std::string_view canonical_request) {
  return fmt::format("{}\n{}\n{}\n{}", kAlgorithm, scope.amz_date, CredentialScope(scope),
                     Sha256Hex(canonical_request));
}

std::string SigningKey(std::string_view secret_access_key, std::string_view yyyymmdd,
                       std::string_view region, std::string_view service) {
  std::string k_date = HmacSha256("AWS4" + std::string(secret_access_key), yyyymmdd);
  std::string k_region = HmacSha256(k_date, region);
  std::string k_service = HmacSha256(k_region, service);
  return HmacSha256(k_service, "aws4_request");
}

std::string Signature(const Credentials& credentials, const Scope& scope,
                      std::string_view canonical_request) {
  std::string key = SigningKey(credentials.secret_access_key, DatePart(scope.amz_date),
                               scope.region, scope.service);
  return HexEncode(HmacSha256(key, StringToSign(scope, canonical_request)));
}

std::string SignHeaders(Request& request, const Credentials& credentials, const Scope& scope) {
  if (!HasHeader(request, "x-amz-date")) request.headers.emplace_back("X-Amz-Date", scope.amz_date);
  if (!credentials.session_token.empty() && !HasHeader(request, "x-amz-security-token")) {
    request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  std::string signature = Signature(credentials, scope, CanonicalRequest(request));
  return fmt::format("{} Credential={}/{}, SignedHeaders={}, Signature={}", kAlgorithm,
                     credentials.access_key_id, CredentialScope(scope), SignedHeaders(request),
                     signature);
}

std::string PresignQuery(Request& request, const Credentials& credentials, const Scope& scope,
                         int64_t expires_seconds) {
  request.payload_hash = std::string(kUnsignedPayload);
  request.query.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
  request.query.emplace_back("X-Amz-Credential",
                             credentials.access_key_id + "/" + CredentialScope(scope));
  request.query.emplace_back("X-Amz-Date", scope.amz_date);
  request.query.emplace_back("X-Amz-Expires", std::to_string(expires_seconds));
  // S3 wants the session token inside the signed query (some services append it afterwards).
  if (!credentials.session_token.empty()) {
    request.query.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  request.query.emplace_back("X-Amz-SignedHeaders", SignedHeaders(request));
  std::string signature = Signature(credentials, scope, CanonicalRequest(request));
  return CanonicalQueryString(request.query) + "&X-Amz-Signature=" + signature;
}

std::string FormatAmzDate(std::chrono::system_clock::time_point time) {
  std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y%m%dT%H%M%SZ", &tm);
  return buffer;
}

}  // namespace vmp3::sigv4
