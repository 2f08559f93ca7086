// The web routes behind the real HTTP server, asked by a plain HTTP client.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/server.hpp"
#include "roles/upload_role.hpp"
#include "web/assets.hpp"

namespace vmp3::roles {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = boost::asio::ip::tcp;
using Reply = bhttp::response<bhttp::string_body>;

class WebRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AddWebRoutes(router_, /*served=*/true);
    http::ServerOptions options;
    options.port = 0;
    options.io_threads = 1;
    options.blocking_threads = 1;
    server_ = std::make_unique<http::Server>(options, router_, nullptr);
    ASSERT_TRUE(server_->Start());
  }
  void TearDown() override { server_->Stop(); }

  Reply Ask(bhttp::verb verb, const std::string& target,
            const std::vector<std::pair<bhttp::field, std::string>>& headers = {}) {
    boost::asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), server_->port()));
    bhttp::request<bhttp::empty_body> request{verb, target, 11};
    request.set(bhttp::field::host, "127.0.0.1");
    for (const auto& [field, value] : headers) request.set(field, value);
    bhttp::write(stream, request);
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.skip(verb == bhttp::verb::head);
    bhttp::read(stream, buffer, parser);
    return parser.release();
  }
  Reply Get(const std::string& target,
            const std::vector<std::pair<bhttp::field, std::string>>& headers = {}) {
    return Ask(bhttp::verb::get, target, headers);
  }

  http::Router router_;
  std::unique_ptr<http::Server> server_;
};

std::string Text(const web::Asset& asset) {
  return std::string(reinterpret_cast<const char*>(asset.bytes.data()), asset.bytes.size());
}

TEST_F(WebRoutesTest, RootServesThePageWithItsSecurityHeaders) {
  const web::Asset* page = web::FindAsset("index.html");
  ASSERT_NE(page, nullptr);
  Reply reply = Get("/");
  EXPECT_EQ(reply.result_int(), 200);
  EXPECT_EQ(reply.body(), Text(*page));
  EXPECT_EQ(reply[bhttp::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(reply[bhttp::field::etag], page->etag);
  EXPECT_EQ(reply[bhttp::field::cache_control], "no-cache");
  EXPECT_EQ(reply["X-Content-Type-Options"], "nosniff");
  std::string csp(reply["Content-Security-Policy"]);
  EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
}

TEST_F(WebRoutesTest, AssetsComeWithTheirTypes) {
  Reply script = Get("/assets/app.js");
  EXPECT_EQ(script.result_int(), 200);
  EXPECT_EQ(script[bhttp::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(script.body(), Text(*web::FindAsset("app.js")));
  Reply style = Get("/assets/app.css");
  EXPECT_EQ(style.result_int(), 200);
  EXPECT_EQ(style[bhttp::field::content_type], "text/css; charset=utf-8");
}

TEST_F(WebRoutesTest, MatchingIfNoneMatchGivesNotModifiedWithoutBody) {
  std::string etag(web::FindAsset("app.js")->etag);
  for (const std::string& header : {etag, "\"other\", " + etag, "W/" + etag, std::string("*")}) {
    Reply reply = Get("/assets/app.js", {{bhttp::field::if_none_match, header}});
    EXPECT_EQ(reply.result_int(), 304) << header;
    EXPECT_TRUE(reply.body().empty()) << header;
    EXPECT_EQ(reply[bhttp::field::etag], etag);
    EXPECT_EQ(reply[bhttp::field::cache_control], "no-cache");
  }
}

TEST_F(WebRoutesTest, AnotherEtagGetsTheFile) {
  std::string etag(web::FindAsset("app.js")->etag);
  Reply reply = Get("/assets/app.js", {{bhttp::field::if_none_match, "\"0123\", W/\"4567\""}});
  EXPECT_EQ(reply.result_int(), 200);
  EXPECT_EQ(reply[bhttp::field::etag], etag);
  EXPECT_FALSE(reply.body().empty());
}

TEST_F(WebRoutesTest, HeadGivesLengthWithoutBody) {
  Reply reply = Ask(bhttp::verb::head, "/assets/app.css");
  EXPECT_EQ(reply.result_int(), 200);
  EXPECT_EQ(reply[bhttp::field::content_length],
            std::to_string(web::FindAsset("app.css")->bytes.size()));
  EXPECT_TRUE(reply.body().empty());
}

TEST_F(WebRoutesTest, UnknownAssetIsNotFoundProblem) {
  Reply reply = Get("/assets/missing.js");
  EXPECT_EQ(reply.result_int(), 404);
  EXPECT_EQ(reply[bhttp::field::content_type], "application/problem+json");
  EXPECT_EQ(Get("/assets/../index.html").result_int(), 404);
  EXPECT_EQ(Get("/index.html").result_int(), 404);
}

}  // namespace
}  // namespace vmp3::roles
