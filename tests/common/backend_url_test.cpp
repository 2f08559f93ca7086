#include "common/backend_url.hpp"

#include <gtest/gtest.h>

namespace vmp3 {
namespace {

TEST(BackendUrlTest, SplitsAndDecodesEveryPart) {
  auto url = ParseBackendUrl("amqp://bob:p%40ss%3Aword@mq.example:5673/prod%2fjobs?prefix=a%2Db",
                             "amqp", "RabbitMQ", {"prefix"});
  ASSERT_TRUE(url) << url.error().message;
  EXPECT_EQ(url->host, "mq.example");
  EXPECT_EQ(url->port, 5673);
  EXPECT_EQ(url->user, "bob");
  EXPECT_EQ(url->password, "p@ss:word");
  EXPECT_EQ(url->path, "prod/jobs");
  ASSERT_EQ(url->params.size(), 1u);
  EXPECT_EQ(url->params[0], (std::pair<std::string, std::string>{"prefix", "a-b"}));
}

TEST(BackendUrlTest, QueriesAreNotForms) {
  auto plus = ParseBackendUrl("amqp://h/?prefix=a+b", "amqp", "RabbitMQ", {"prefix"});
  ASSERT_TRUE(plus) << plus.error().message;
  ASSERT_EQ(plus->params.size(), 1u);
  EXPECT_EQ(plus->params[0].second, "a+b");
  for (const char* empty : {"amqp://h/?", "amqp://h/?prefix=x&", "amqp://h/?&"}) {
    auto url = ParseBackendUrl(empty, "amqp", "RabbitMQ", {"prefix"});
    EXPECT_TRUE(url) << empty << ": " << url.error().message;
  }
}

TEST(BackendUrlTest, Ipv6HostsLoseTheirBrackets) {
  auto url = ParseBackendUrl("redis://[::1]:6380/2", "redis", "Redis", {});
  ASSERT_TRUE(url) << url.error().message;
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->path, "2");
}

TEST(BackendUrlTest, RejectsWhatIsWrongWithoutRepeatingTheUrl) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (const Case& c : {Case{"http://host:5672/", "must start with amqp://"},
                        Case{"amqp://user:secret@host:0/", "bad port"},
                        Case{"amqp://user:secret@host:65536/", "bad port"},
                        Case{"amqp://user:secret@host:12ab/", "bad port"},
                        Case{"amqp://user:secret@host/#frag", "fragment"},
                        Case{"amqp://user:secret@host/?prefx=a", "unknown parameter 'prefx'"},
                        Case{"not a url", "not a valid URL"}}) {
    auto url = ParseBackendUrl(c.url, "amqp", "RabbitMQ", {"prefix"});
    ASSERT_FALSE(url) << c.url;
    EXPECT_EQ(url.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(url.error().message.find(c.says), std::string::npos)
        << c.url << ": " << url.error().message;
    EXPECT_NE(url.error().message.find("RabbitMQ URL"), std::string::npos);
    EXPECT_EQ(url.error().message.find("secret"), std::string::npos) << url.error().message;
  }
}

// Found by the backend_urls fuzzer: Boost.URL 1.81 reads out of bounds when iterating the params
// of an empty query before a fragment (boostorg/url#864); the fragment must be refused first.
TEST(BackendUrlTest, RefusesAFragmentBeforeReadingTheQuery) {
  for (const char* url : {"redis://h:1/0?#", "redis://h/?#x", "redis://h?#"}) {
    auto parsed = ParseBackendUrl(url, "redis", "Redis", {"prefix"});
    ASSERT_FALSE(parsed) << url;
    EXPECT_NE(parsed.error().message.find("fragment"), std::string::npos) << parsed.error().message;
  }
}

}  // namespace
}  // namespace vmp3
