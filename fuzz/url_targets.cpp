// Entry point for the backend URL parsers: redis:// and amqp:// (common/backend_url.hpp under
// RedisTarget::Parse and AmqpTarget::Parse) and the s3:// storage URL (ParseS3Url).
#include <arpa/inet.h>

#include <boost/url/parse.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/backend_url.hpp"
#include "fuzz_check.hpp"
#include "fuzz_targets.hpp"
#include "metadata/redis_metadata_store.hpp"
#include "queue/rabbitmq_job_queue.hpp"
#include "storage/s3_object_store.hpp"

namespace vmp3::fuzz {
namespace {

// A host as a URL authority carries it: IPv6 in brackets, anything else percent-encoded.
std::string UrlHost(const std::string& host) {
  in6_addr address;
  if (inet_pton(AF_INET6, host.c_str(), &address) == 1) return "[" + host + "]";
  return PercentEncode(host);
}

// What an error message must not repeat: the URL's password and its query values (a URL may
// carry secrets by mistake). Only strings long enough not to occur in a message by chance, and
// not also a query key (the unknown-parameter message names the key).
std::vector<std::string> Secrets(std::string_view url) {
  std::vector<std::string> secrets;
  auto parsed = boost::urls::parse_uri(url);
  // Boost.URL 1.81 reads out of bounds iterating the params of an empty query before a fragment
  // ("?#", boostorg/url#864); the parsers under test refuse fragments before they look at params.
  if (!parsed || parsed->has_fragment()) return secrets;
  std::vector<std::string> keys;
  for (auto param : parsed->params(boost::urls::encoding_opts(false, false, false))) {
    keys.push_back(param.key);
    if (param.has_value) secrets.push_back(param.value);
  }
  for (auto param : parsed->params()) keys.push_back(param.key);  // as ParseS3Url decodes them
  if (parsed->has_password()) secrets.push_back(parsed->password());
  if (parsed->has_userinfo()) secrets.push_back(parsed->user());
  std::erase_if(secrets, [&](const std::string& secret) {
    if (secret.size() < 8 || secret.find(' ') != std::string::npos) return true;
    for (const std::string& key : keys) {
      if (key.find(secret) != std::string::npos) return true;
    }
    return false;
  });
  return secrets;
}

void CheckError(const Error& error, std::string_view url) {
  FUZZ_CHECK(error.code == ErrorCode::kInvalidArgument, error.message);
  for (const std::string& secret : Secrets(url)) {
    FUZZ_CHECK(error.message.find(secret) == std::string::npos,
               "the message repeats a secret: " + error.message);
  }
}

void CheckRedis(std::string_view url) {
  auto target = RedisTarget::Parse(url);
  if (!target) return CheckError(target.error(), url);
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
  if (!target) return CheckError(target.error(), url);
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
  if (!config) return CheckError(config.error(), url);
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
