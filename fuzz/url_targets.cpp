// Entry point for the backend URL parsers: redis:// and amqp:// (common/backend_url.hpp under
// RedisTarget::Parse and AmqpTarget::Parse) and the s3:// storage URL (ParseS3Url).
#include <arpa/inet.h>

#include <boost/url/parse.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/backend_url.hpp"
#include "fuzz_check.hpp"
#include "fuzz_targets.hpp"
#include "metadata/redis_metadata_store.hpp"
#include "queue/amqp_connection.hpp"
#include "storage/object_store.hpp"
#include "storage/s3_config.hpp"

namespace vmp3::fuzz {
namespace {

// A host as a URL authority carries it: IPv6 in brackets, anything else percent-encoded.
std::string UrlHost(const std::string& host) {
  in6_addr address;
  if (inet_pton(AF_INET6, host.c_str(), &address) == 1) return "[" + host + "]";
  return PercentEncode(host);
}

// The parser under test: its error, or none.
using Parser = std::optional<Error> (*)(std::string_view url);

// `url` with the bytes of its user info replaced by as many others, or nullopt when it has none.
std::optional<std::string> WithOtherUserInfo(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed || !parsed->has_userinfo() || parsed->encoded_userinfo().empty()) return std::nullopt;
  const boost::urls::pct_string_view info = parsed->encoded_userinfo();
  const size_t at = static_cast<size_t>(info.data() - url.data());
  std::string other(url);
  for (size_t i = at; i < at + info.size(); ++i) {
    if (other[i] != ':') other[i] = other[i] == 'x' ? 'y' : 'x';  // keep user:password apart
  }
  return other;
}

// Query values that cannot occur in a message except by being repeated from the URL: with a
// byte outside printable ASCII (the messages' own text is ASCII), and not part of a query key (the
// unknown-parameter message names the key).
std::vector<std::string> UnprintableQueryValues(std::string_view url) {
  std::vector<std::string> values;
  auto parsed = boost::urls::parse_uri(url);
  // Boost.URL 1.81 reads out of bounds iterating the params of an empty query before a fragment
  // ("?#", boostorg/url#864); the parsers under test refuse fragments before they look at params.
  if (!parsed || parsed->has_fragment()) return values;
  std::vector<std::string> keys;
  for (auto param : parsed->params(boost::urls::encoding_opts(false, false, false))) {
    keys.push_back(param.key);
    if (param.has_value) values.push_back(param.value);
  }
  for (auto param : parsed->params()) {  // as ParseS3Url decodes them
    keys.push_back(param.key);
    if (param.has_value) values.push_back(param.value);
  }
  std::erase_if(values, [&](const std::string& value) {
    bool unprintable = false;
    for (char c : value) unprintable = unprintable || c < 0x20 || c >= 0x7F;
    if (value.size() < 4 || !unprintable) return true;
    for (const std::string& key : keys) {
      if (key.find(value) != std::string::npos) return true;
    }
    return false;
  });
  return values;
}

// Errors are kInvalidArgument and never repeat secrets a URL may carry by mistake: the message
// does not change when the user info (user and password) does, and holds no query value.
void CheckError(const Error& error, std::string_view url, Parser parse) {
  FUZZ_CHECK(error.code == ErrorCode::kInvalidArgument, error.message);
  if (auto other = WithOtherUserInfo(url)) {
    const std::optional<Error> other_error = parse(*other);
    FUZZ_CHECK(other_error && other_error->message == error.message,
               "the message depends on the user info: " + error.message);
  }
  for (const std::string& value : UnprintableQueryValues(url)) {
    FUZZ_CHECK(error.message.find(value) == std::string::npos,
               "the message repeats a query value: " + error.message);
  }
}

template <typename T>
std::optional<Error> ErrorOf(const Result<T>& result) {
  return result ? std::nullopt : std::optional<Error>(result.error());
}

void CheckRedis(std::string_view url) {
  auto target = RedisTarget::Parse(url);
  if (!target) {
    return CheckError(target.error(), url,
                      [](std::string_view u) { return ErrorOf(RedisTarget::Parse(u)); });
  }
  FUZZ_CHECK(target->port >= 1 && target->port <= 65535, std::string(url));
  FUZZ_CHECK(target->db >= 0 && !target->prefix.empty() && !target->host.empty(), std::string(url));
  // The target written back as a URL parses to the same target.
  const std::string rebuilt = "redis://:" + PercentEncode(target->password) + "@" +
                              UrlHost(target->host) + ":" + std::to_string(target->port) + "/" +
                              std::to_string(target->db) +
                              "?prefix=" + PercentEncode(target->prefix);
  auto again = RedisTarget::Parse(rebuilt);
  FUZZ_CHECK(again.has_value(), rebuilt + ": " + again.error().message);
  FUZZ_CHECK(again->host == target->host && again->port == target->port &&
                 again->db == target->db && again->password == target->password &&
                 again->prefix == target->prefix,
             rebuilt);
}

void CheckAmqp(std::string_view url) {
  auto target = AmqpTarget::Parse(url);
  if (!target) {
    return CheckError(target.error(), url,
                      [](std::string_view u) { return ErrorOf(AmqpTarget::Parse(u)); });
  }
  FUZZ_CHECK(target->port >= 1 && target->port <= 65535, std::string(url));
  FUZZ_CHECK(!target->vhost.empty() && !target->prefix.empty() && !target->host.empty(),
             std::string(url));
  const std::string rebuilt = "amqp://" + PercentEncode(target->user) + ":" +
                              PercentEncode(target->password) + "@" + UrlHost(target->host) + ":" +
                              std::to_string(target->port) + "/" + PercentEncode(target->vhost) +
                              "?prefix=" + PercentEncode(target->prefix);
  auto again = AmqpTarget::Parse(rebuilt);
  FUZZ_CHECK(again.has_value(), rebuilt + ": " + again.error().message);
  FUZZ_CHECK(again->host == target->host && again->port == target->port &&
                 again->user == target->user && again->password == target->password &&
                 again->vhost == target->vhost && again->prefix == target->prefix,
             rebuilt);
}

void CheckS3(std::string_view url) {
  auto config = ParseS3Url(url);
  if (!config) {
    return CheckError(config.error(), url,
                      [](std::string_view u) { return ErrorOf(ParseS3Url(u)); });
  }
  FUZZ_CHECK(config->credentials.access_key_id.empty(), "credentials from the URL");
  FUZZ_CHECK(config->prefix.empty() || ValidateObjectKey(config->prefix).has_value(),
             config->prefix);
  FUZZ_CHECK(config->endpoint.starts_with("http://") || config->endpoint.starts_with("https://"),
             config->endpoint);
  std::string rebuilt = "s3://" + config->bucket;
  if (!config->prefix.empty()) rebuilt += "/" + PercentEncode(config->prefix);
  rebuilt += "?endpoint=" + PercentEncode(config->endpoint) + "&region=" + config->region +
             "&virtual_host=" + (config->virtual_host ? "true" : "false") +
             "&presign=" + (config->presign_downloads ? "1" : "0");
  auto again = ParseS3Url(rebuilt);
  FUZZ_CHECK(again.has_value(), rebuilt + ": " + again.error().message);
  FUZZ_CHECK(again->bucket == config->bucket && again->prefix == config->prefix &&
                 again->endpoint == config->endpoint && again->region == config->region &&
                 again->virtual_host == config->virtual_host &&
                 again->presign_downloads == config->presign_downloads,
             rebuilt);
}

}  // namespace

int FuzzBackendUrls(const uint8_t* data, size_t size) {
  const std::string_view url = AsText(data, size);
  // Every parser sees every input: a fuzzed redis:// URL is as good a test of the amqp:// parser
  // (the scheme check is one branch) and the fuzzer needs no mode byte.
  CheckRedis(url);
  CheckAmqp(url);
  CheckS3(url);
  return 0;
}

}  // namespace vmp3::fuzz
