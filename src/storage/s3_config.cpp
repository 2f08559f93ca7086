#include "storage/s3_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <charconv>
#include <chrono>
#include <cstdlib>

#include "storage/object_store.hpp"

namespace vmp3 {
namespace {

Result<bool> ParseBool(std::string_view name, std::string_view value) {
  if (value == "true" || value == "1" || value.empty()) return true;
  if (value == "false" || value == "0") return false;
  return MakeError(ErrorCode::kInvalidArgument,
                   fmt::format("the s3 storage URL parameter {} must be true or false", name));
}

// "500ms", "5s": a whole number and a unit, 10 ms to 600 s.
Result<std::chrono::milliseconds> ParseTimeout(std::string_view value) {
  auto bad = [] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the s3 storage URL parameter timeout must be a duration from 10ms to 600s "
                     "such as 500ms or 5s");
  };
  int64_t scale = 0;
  if (value.ends_with("ms")) {
    scale = 1;
    value.remove_suffix(2);
  } else if (value.ends_with("s")) {
    scale = 1000;
    value.remove_suffix(1);
  } else {
    return bad();
  }
  int64_t number = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || number < 0 ||
      number > 600'000) {
    return bad();
  }
  std::chrono::milliseconds timeout(number * scale);
  if (timeout < std::chrono::milliseconds(10) || timeout > std::chrono::seconds(600)) return bad();
  return timeout;
}

}  // namespace

bool ValidS3BucketName(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(b.front()) || !alnum(b.back())) return false;
  return std::all_of(b.begin(), b.end(), [&](char c) { return alnum(c) || c == '.' || c == '-'; });
}

Result<S3Endpoint> ParseS3Endpoint(std::string_view text) {
  auto bad = [](std::string_view why) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("the s3 storage URL's endpoint {}; write it as "
                                 "endpoint=http://host:port",
                                 why));
  };
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return bad("is not a URL");
  boost::urls::url_view u = *parsed;
  std::string scheme(u.scheme());
  if (scheme != "http" && scheme != "https") return bad("must start with http:// or https://");
  if (u.has_userinfo()) return bad("must not carry credentials (use AWS_ACCESS_KEY_ID)");
  if (!u.encoded_path().empty() && u.encoded_path() != "/") return bad("must not have a path");
  if (u.has_query() || u.has_fragment()) return bad("must not have a query or fragment");
  if (u.encoded_host().empty()) return bad("has no host");
  S3Endpoint endpoint;
  endpoint.scheme = scheme;
  endpoint.authority = std::string(u.encoded_host_and_port());
  endpoint.ip_literal = u.host_type() == boost::urls::host_type::ipv4 ||
                        u.host_type() == boost::urls::host_type::ipv6;
  return endpoint;
}

Result<S3Config> ParseS3Url(std::string_view url) {
  // Messages never repeat the URL: it may carry secrets by mistake.
  auto bad = [](std::string_view why) {
    return MakeError(ErrorCode::kInvalidArgument, fmt::format("the s3 storage URL {}", why));
  };
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return bad("is not a valid URL");
  boost::urls::url_view u = *parsed;
  if (u.scheme() != "s3") return bad("must start with s3://");
  if (u.has_userinfo()) {
    return bad("must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  if (u.has_port()) return bad("must name a bucket, not host:port; put the address in endpoint=");
  if (u.has_fragment()) return bad("must not have a fragment");

  S3Config config;
  config.bucket = std::string(u.encoded_host());
  if (!ValidS3BucketName(config.bucket)) {
    return bad("must name a bucket of 3 to 63 characters from a-z 0-9 . - (s3://bucket?...)");
  }
  std::string path = u.path();
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (!path.empty()) {
    if (auto valid = ValidateObjectKey(path); !valid) {
      return bad("has a prefix that is not a valid object key: " + valid.error().message);
    }
    config.prefix = path;
  }

  bool has_endpoint = false;
  for (auto param : u.params()) {
    std::string_view name = param.key;
    std::string_view value = param.value;
    if (name == "endpoint") {
      auto endpoint = ParseS3Endpoint(value);
      if (!endpoint) return tl::unexpected(endpoint.error());
      config.endpoint = endpoint->scheme + "://" + endpoint->authority;
      has_endpoint = true;
    } else if (name == "region") {
      if (value.empty() || value.size() > 64 ||
          !std::all_of(value.begin(), value.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
          })) {
        return bad("has an invalid region (expected something like us-east-1)");
      }
      config.region = std::string(value);
    } else if (name == "virtual_host") {
      auto flag = ParseBool(name, value);
      if (!flag) return tl::unexpected(flag.error());
      config.virtual_host = *flag;
    } else if (name == "timeout") {
      auto timeout = ParseTimeout(value);
      if (!timeout) return tl::unexpected(timeout.error());
      config.timeout = *timeout;
    } else if (name == "presign") {
      auto flag = ParseBool(name, value);
      if (!flag) return tl::unexpected(flag.error());
      config.presign_downloads = *flag;
    } else {
      std::string shown(name.substr(0, 32));
      return bad(
          fmt::format("has an unknown parameter '{}' (known: endpoint, region, "
                      "virtual_host, presign, timeout)",
                      shown));
    }
  }
  if (!has_endpoint) config.endpoint = fmt::format("https://s3.{}.amazonaws.com", config.region);
  return config;
}

Result<sigv4::Credentials> S3CredentialsFromEnvironment() {
  auto get = [](const char* name) {
    const char* value = std::getenv(name);
    return value ? std::string(value) : std::string();
  };
  sigv4::Credentials credentials{get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"),
                                 get("AWS_SESSION_TOKEN")};
  if (credentials.access_key_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "s3 storage needs credentials: set AWS_ACCESS_KEY_ID");
  }
  if (credentials.secret_access_key.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "s3 storage needs credentials: set AWS_SECRET_ACCESS_KEY");
  }
  return credentials;
}

}  // namespace vmp3
