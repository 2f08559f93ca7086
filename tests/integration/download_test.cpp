// Downloading the MP3: whole, ranges, HEAD, validators, the file name.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

using nlohmann::json;

class DownloadTest : public ::testing::Test {
 protected:
  // One finished job, uploaded as "Café tour.mp4", shared by the tests (they only read it).
  static void SetUpTestSuite() {
    server_ = ServerProcess::Start(NewDataDir());
    client_ = std::make_unique<HttpClient>(server_->base_url());
    account_ = std::make_unique<Account>(CreateAccount(*client_));
    json job = UploadJob(*client_, *account_, vmp3::test::Fixture("mp4_h264_aac"), "Café tour.mp4");
    json done = WaitForEnd(*client_, *account_, job["id"]);
    if (done.value("status", "") != "done")
      throw std::runtime_error("job did not finish: " + done.dump());
    id_ = job["id"];
    HttpResponse whole = client_->Get(Mp3Path(), account_->token);
    if (whole.status != 200) throw std::runtime_error("download failed: " + whole.Describe());
    full_ = whole.body;
    size_ = done["output"].value("size", uint64_t{0});
  }
  static void TearDownTestSuite() {
    account_.reset();
    client_.reset();
    server_.reset();
  }
  static std::string Mp3Path() { return "/v1/jobs/" + id_ + "/mp3"; }
  static HttpResponse GetWith(std::vector<std::string> headers, std::string method = "GET") {
    HttpRequest r;
    r.method = std::move(method);
    r.target = Mp3Path();
    r.bearer = account_->token;
    r.headers = std::move(headers);
    return client_->Send(r);
  }

  static std::unique_ptr<ServerProcess> server_;
  static std::unique_ptr<HttpClient> client_;
  static std::unique_ptr<Account> account_;
  static std::string id_;
  static std::string full_;
  static uint64_t size_;
};
std::unique_ptr<ServerProcess> DownloadTest::server_;
std::unique_ptr<HttpClient> DownloadTest::client_;
std::unique_ptr<Account> DownloadTest::account_;
std::string DownloadTest::id_;
std::string DownloadTest::full_;
uint64_t DownloadTest::size_ = 0;

TEST_F(DownloadTest, WholeFileMatchesTheRecordedSize) {
  ASSERT_GT(size_, 1000u);
  EXPECT_EQ(full_.size(), size_);
  HttpResponse r = GetWith({});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, full_) << "two downloads of the same MP3 differ";
  EXPECT_EQ(r.Header("Accept-Ranges").value_or(""), "bytes");
  EXPECT_EQ(r.Header("Content-Type").value_or(""), "audio/mpeg");
  // An MP3 starts with an ID3v2 tag or a frame sync.
  ASSERT_GE(full_.size(), 3u);
  EXPECT_TRUE(full_.rfind("ID3", 0) == 0 ||
              (static_cast<unsigned char>(full_[0]) == 0xFF &&
               (static_cast<unsigned char>(full_[1]) & 0xE0) == 0xE0));
}

TEST_F(DownloadTest, FirstHundredBytes) {
  HttpResponse r = GetWith({"Range: bytes=0-99"});
  ASSERT_EQ(r.status, 206) << r.Describe();
  EXPECT_EQ(r.Header("Content-Range").value_or(""), fmt::format("bytes 0-99/{}", size_));
  EXPECT_EQ(r.Header("Content-Length").value_or(""), "100");
  ASSERT_EQ(r.body.size(), 100u);
  EXPECT_EQ(r.body, full_.substr(0, 100));
}

TEST_F(DownloadTest, MiddleRange) {
  HttpResponse r = GetWith({"Range: bytes=1000-1999"});
  ASSERT_EQ(r.status, 206) << r.Describe();
  EXPECT_EQ(r.Header("Content-Range").value_or(""), fmt::format("bytes 1000-1999/{}", size_));
  EXPECT_EQ(r.body, full_.substr(1000, 1000));
}

TEST_F(DownloadTest, SuffixRange) {
  HttpResponse r = GetWith({"Range: bytes=-500"});
  ASSERT_EQ(r.status, 206) << r.Describe();
  EXPECT_EQ(r.Header("Content-Range").value_or(""),
            fmt::format("bytes {}-{}/{}", size_ - 500, size_ - 1, size_));
  EXPECT_EQ(r.body, full_.substr(full_.size() - 500));
}

TEST_F(DownloadTest, OpenEndedRangeToTheEnd) {
  HttpResponse r = GetWith({fmt::format("Range: bytes={}-", size_ - 10)});
  ASSERT_EQ(r.status, 206) << r.Describe();
  EXPECT_EQ(r.body, full_.substr(full_.size() - 10));
}

TEST_F(DownloadTest, RangePastTheEndIs416WithTheSize) {
  HttpResponse r = GetWith({"Range: bytes=999999999-"});
  ASSERT_EQ(r.status, 416) << r.Describe();
  EXPECT_EQ(r.Header("Content-Range").value_or(""), fmt::format("bytes */{}", size_));
  // A problem document whose status agrees with the response's.
  json problem = r.Json();
  EXPECT_EQ(problem.value("status", 0), 416) << r.body;
}

TEST_F(DownloadTest, HeadHasTheHeadersAndNoBody) {
  HttpResponse r = GetWith({}, "HEAD");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.Header("Content-Length").value_or(""), std::to_string(size_));
  EXPECT_TRUE(r.Header("ETag").has_value());
  EXPECT_TRUE(r.body.empty());
  // libcurl never reads a HEAD body: look at the wire. Nothing may follow the headers.
  std::string raw = RawExchange(
      server_->port(), fmt::format("HEAD {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n"
                                   "Connection: close\r\n\r\n",
                                   Mp3Path(), account_->token));
  ASSERT_EQ(raw.rfind("HTTP/1.1 200", 0), 0u) << raw;
  size_t end = raw.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos) << raw;
  EXPECT_EQ(raw.size(), end + 4) << "bytes after the HEAD response's headers";
}

TEST_F(DownloadTest, EtagIsStableAndIfNoneMatchGives304) {
  HttpResponse a = GetWith({"Range: bytes=0-0"});
  HttpResponse b = GetWith({});
  ASSERT_TRUE(a.Header("ETag").has_value());
  const std::string etag = *a.Header("ETag");
  EXPECT_EQ(b.Header("ETag").value_or(""), etag);
  EXPECT_EQ(etag.front(), '"');
  EXPECT_EQ(etag.back(), '"');
  HttpResponse cached = GetWith({"If-None-Match: " + etag});
  EXPECT_EQ(cached.status, 304);
  EXPECT_TRUE(cached.body.empty());
  // If-Range with a stale validator: the whole file, not the range.
  HttpResponse stale = GetWith({"Range: bytes=0-9", "If-Range: \"not-the-etag\""});
  EXPECT_EQ(stale.status, 200);
  EXPECT_EQ(stale.body.size(), size_);
  HttpResponse fresh = GetWith({"Range: bytes=0-9", "If-Range: " + etag});
  EXPECT_EQ(fresh.status, 206);
  EXPECT_EQ(fresh.body, full_.substr(0, 10));
}

TEST_F(DownloadTest, ContentDispositionCarriesTheOriginalNameAsMp3) {
  HttpResponse r = GetWith({}, "HEAD");
  std::string disposition = r.Header("Content-Disposition").value_or("");
  EXPECT_EQ(disposition.rfind("attachment", 0), 0u) << disposition;
  // RFC 6266 / 8187: the UTF-8 name percent-encoded in filename*, an ASCII fallback in filename.
  EXPECT_NE(disposition.find("filename*=UTF-8''Caf%C3%A9%20tour.mp3"), std::string::npos)
      << disposition;
  EXPECT_NE(disposition.find("filename=\""), std::string::npos) << disposition;
  EXPECT_EQ(disposition.find(".mp4"), std::string::npos) << disposition;
}

TEST_F(DownloadTest, NotReadyIs409OnTheApiRoute) {
  // A job that cannot finish: a long input on a fresh account, asked for at once.
  Account other = CreateAccount(*client_);
  json job = UploadJob(*client_, other, LongAudio());
  HttpResponse r = client_->Get("/v1/jobs/" + job["id"].get<std::string>() + "/mp3", other.token);
  EXPECT_EQ(r.status, 409) << r.Describe();
  EXPECT_EQ(client_->Delete("/v1/jobs/" + job["id"].get<std::string>(), other.token).status, 204);
}

}  // namespace
}  // namespace vmp3::itest
