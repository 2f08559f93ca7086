// What goes wrong is answered precisely and cleaned up: size limits, malformed requests, bad media.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <thread>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

using nlohmann::json;
constexpr uint64_t kLimit = 1000000;

class ErrorsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = ServerProcess::Start(NewDataDir(), {"--max-upload-bytes", std::to_string(kLimit)});
    client_ = std::make_unique<HttpClient>(server_->base_url());
    account_ = std::make_unique<Account>(CreateAccount(*client_, "errors"));
    // Pseudo-random bytes compress to nothing and are no media: 3x the limit.
    big_ = vmp3::test::TempDir() / "big.mp4";
    std::mt19937_64 random(42);
    std::string bytes(3 * kLimit, '\0');
    for (char& c : bytes) c = static_cast<char>(random());
    WriteFile(big_, bytes);
  }
  static void TearDownTestSuite() {
    account_.reset();
    client_.reset();
    server_.reset();
  }

  static HttpRequest Post(std::string target = "/v1/jobs") {
    HttpRequest r;
    r.method = "POST";
    r.target = std::move(target);
    r.bearer = account_->token;
    return r;
  }
  static void ExpectProblem(const HttpResponse& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.Describe();
    EXPECT_EQ(r.Header("Content-Type").value_or(""), "application/problem+json");
    if (r.status == status) {
      json problem = r.Json();
      EXPECT_EQ(problem.value("code", ""), code) << r.body;
      EXPECT_EQ(problem.value("status", 0), status) << r.body;
      EXPECT_FALSE(problem.value("detail", "").empty()) << r.body;
    }
  }
  // Files in storage other than finished MP3s: inputs and staged (.tmp/) writes.
  static std::vector<std::string> NonOutputFiles() {
    std::vector<std::string> found;
    for (const std::string& f : ObjectFiles(server_->data_dir()))
      if (f.rfind("outputs/", 0) != 0) found.push_back(f);
    return found;
  }
  // Nothing of a refused upload stays in storage (objects/ and its staging directory .tmp/).
  static void ExpectNoInputsLeft() { EXPECT_EQ(NonOutputFiles(), std::vector<std::string>{}); }
  // The server still takes a normal upload, and converts it.
  static void ExpectStillServing() {
    HttpResponse ok = Upload(*client_, *account_, vmp3::test::Fixture("mp4_h264_aac"));
    ASSERT_EQ(ok.status, 202) << ok.Describe();
    EXPECT_EQ(WaitForEnd(*client_, *account_, ok.Json()["id"]).value("status", ""), "done");
  }

  static std::unique_ptr<ServerProcess> server_;
  static std::unique_ptr<HttpClient> client_;
  static std::unique_ptr<Account> account_;
  static std::filesystem::path big_;
};
std::unique_ptr<ServerProcess> ErrorsTest::server_;
std::unique_ptr<HttpClient> ErrorsTest::client_;
std::unique_ptr<Account> ErrorsTest::account_;
std::filesystem::path ErrorsTest::big_;

TEST_F(ErrorsTest, TooLargeWithContentLength) {
  HttpRequest raw = Post("/v1/jobs?filename=big.mp4");
  raw.body_file = big_;
  ExpectProblem(client_->Send(raw), 413, "too_large");

  HttpRequest form = Post();
  form.form = {FormPart::File("file", big_)};
  ExpectProblem(client_->Send(form), 413, "too_large");

  // Just over the limit: within the multipart allowance, so the body is streamed and cut off.
  HttpRequest just_over = Post("/v1/jobs?filename=over.mp4");
  just_over.body = std::string(kLimit + 1, 'x');
  ExpectProblem(client_->Send(just_over), 413, "too_large");

  HttpRequest seed = Post("/upload");
  seed.form = {FormPart::File("file", big_)};
  EXPECT_EQ(client_->Send(seed).status, 413);
  ExpectNoInputsLeft();
  ExpectStillServing();
}

TEST_F(ErrorsTest, TooLargeChunked) {
  HttpRequest raw = Post("/v1/jobs?filename=big.mp4");
  raw.body_file = big_;
  raw.chunked = true;
  ExpectProblem(client_->Send(raw), 413, "too_large");

  HttpRequest form = Post();
  form.form = {FormPart::File("file", big_)};
  form.headers = {"Transfer-Encoding: chunked"};
  ExpectProblem(client_->Send(form), 413, "too_large");
  ExpectNoInputsLeft();
  ExpectStillServing();
}

TEST_F(ErrorsTest, AbandonedUploadLeavesNothing) {
  // Headers promise 900 kB; 100 kB arrive; then the client hangs up.
  std::string request = fmt::format(
      "POST /v1/jobs?filename=gone.mp4 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n"
      "Content-Length: 900000\r\n\r\n",
      account_->token);
  request += std::string(100000, 'x');
  std::string answer = RawExchange(server_->port(), request, 300ms);
  EXPECT_TRUE(answer.empty()) << "answered before the body arrived: " << answer;
  for (int i = 0; i < 100 && !NonOutputFiles().empty(); ++i) std::this_thread::sleep_for(20ms);
  ExpectNoInputsLeft();
  HttpResponse list = client_->Get("/v1/jobs?limit=100", account_->token);
  ASSERT_EQ(list.status, 200);
  for (const json& job : list.Json()["jobs"])
    EXPECT_NE(job["input"].value("filename", ""), "gone.mp4") << "an abandoned upload made a job";
}

TEST_F(ErrorsTest, ExactlyTheLimitIsAccepted) {
  HttpRequest r = Post("/v1/jobs?filename=limit.mp4");
  r.body = std::string(kLimit, 'x');
  HttpResponse response = client_->Send(r);
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_EQ(response.Json()["input"].value("size", uint64_t{0}), kLimit);
  // Not media, so it fails; then its input is removed.
  json end = WaitForEnd(*client_, *account_, response.Json()["id"]);
  EXPECT_EQ(end.value("status", ""), "failed");
  ExpectNoInputsLeft();
}

TEST_F(ErrorsTest, EmptyUploadsAre400) {
  HttpRequest no_body = Post();  // Content-Length: 0
  ExpectProblem(client_->Send(no_body), 400, "invalid_argument");
  HttpRequest empty_chunked = Post("/v1/jobs?filename=e.mp4");
  empty_chunked.body = "";
  empty_chunked.chunked = true;
  ExpectProblem(client_->Send(empty_chunked), 400, "invalid_argument");
  HttpRequest empty_file = Post();
  empty_file.form = {FormPart::File("file", vmp3::test::Fixture("broken_empty"))};
  ExpectProblem(client_->Send(empty_file), 400, "invalid_argument");
  ExpectNoInputsLeft();
}

TEST_F(ErrorsTest, MultipartWithoutFilePartIs400) {
  HttpRequest r = Post();
  r.form = {FormPart::Field("quality", "2"), FormPart::Field("video", "not a file")};
  HttpResponse response = client_->Send(r);
  ExpectProblem(response, 400, "invalid_argument");
  EXPECT_NE(response.body.find("'file'"), std::string::npos) << response.body;
  // A file under another name is not taken for the video either.
  r.form = {FormPart::File("upload", vmp3::test::Fixture("mp4_h264_aac"))};
  ExpectProblem(client_->Send(r), 400, "invalid_argument");
  ExpectNoInputsLeft();
}

TEST_F(ErrorsTest, MalformedMultipartIs400) {
  HttpRequest no_boundary = Post();
  no_boundary.headers = {"Content-Type: multipart/form-data"};
  no_boundary.body = "--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--x--\r\n";
  ExpectProblem(client_->Send(no_boundary), 400, "invalid_argument");
  HttpRequest unterminated = Post();
  unterminated.headers = {"Content-Type: multipart/form-data; boundary=x"};
  unterminated.body =
      "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\nabc";
  ExpectProblem(client_->Send(unterminated), 400, "invalid_argument");
  ExpectNoInputsLeft();
}

TEST_F(ErrorsTest, UnknownRouteIs404) {
  for (const char* path : {"/nope", "/v1", "/v1/jobs/x/y/z", "/v2/jobs"}) {
    HttpResponse r = client_->Get(path, account_->token);
    ExpectProblem(r, 404, "not_found");
  }
}

TEST_F(ErrorsTest, WrongMethodIs405WithAllow) {
  struct Case {
    const char* method;
    const char* path;
    const char* allow;
  };
  for (const Case& c :
       {Case{"PUT", "/v1/jobs", "GET, POST"}, Case{"DELETE", "/healthz", "GET"},
        Case{"POST", "/v1/jobs/abc/mp3", "GET"}, Case{"GET", "/v1/auth/login", "POST"},
        Case{"PATCH", "/v1/jobs/abc", "DELETE, GET"}}) {
    HttpRequest r;
    r.method = c.method;
    r.target = c.path;
    r.bearer = account_->token;
    HttpResponse response = client_->Send(r);
    EXPECT_EQ(response.status, 405) << c.method << " " << c.path << ": " << response.Describe();
    std::string allow = response.Header("Allow").value_or("");
    // HEAD may be listed beside GET.
    EXPECT_TRUE(allow == c.allow || allow.find(c.allow) != std::string::npos)
        << c.method << " " << c.path << ": Allow: " << allow;
  }
}

TEST_F(ErrorsTest, HtmlPageIsNotMedia) {
  json job = UploadJob(*client_, *account_, vmp3::test::Fixture("broken_html"), "clip.mp4");
  json end = WaitForEnd(*client_, *account_, job["id"]);
  EXPECT_EQ(end.value("status", ""), "failed") << end;
  ASSERT_TRUE(end["error"].is_object()) << end;
  EXPECT_EQ(end["error"].value("code", ""), "not_media");
  std::string message = end["error"].value("message", "");
  EXPECT_GE(message.size(), 15u) << message;
  EXPECT_NE(message.find("media"), std::string::npos) << message;
  EXPECT_EQ(message.find("AVERROR"), std::string::npos) << message;
  EXPECT_TRUE(end["output"].is_null());
  // Its MP3 does not exist: 409 on the API, 404 on the seed route.
  std::string id = job["id"];
  EXPECT_EQ(client_->Get("/v1/jobs/" + id + "/mp3", account_->token).status, 409);
  EXPECT_EQ(client_->Get("/download?fid=" + id, account_->token).status, 404);
}

TEST_F(ErrorsTest, VideoWithoutAudioFails) {
  json job = UploadJob(*client_, *account_, vmp3::test::Fixture("video_no_audio"));
  json end = WaitForEnd(*client_, *account_, job["id"]);
  EXPECT_EQ(end.value("status", ""), "failed") << end;
  EXPECT_EQ(end["error"].value("code", ""), "no_audio_stream") << end;
  EXPECT_FALSE(end["error"].value("message", "").empty());
}

TEST_F(ErrorsTest, RandomBytesFailWithoutHurtingAGoodJobBesideThem) {
  const auto good = vmp3::test::Fixture("mp4_h264_aac");
  const auto bad = vmp3::test::Fixture("broken_random");
  const auto html = vmp3::test::Fixture("broken_html");
  auto upload = [&](std::filesystem::path file) {
    return std::async(std::launch::async, [&, file] { return Upload(*client_, *account_, file); });
  };
  auto f1 = upload(bad), f2 = upload(good), f3 = upload(html);
  HttpResponse r1 = f1.get(), r2 = f2.get(), r3 = f3.get();
  ASSERT_EQ(r1.status, 202) << r1.Describe();
  ASSERT_EQ(r2.status, 202) << r2.Describe();
  ASSERT_EQ(r3.status, 202) << r3.Describe();
  json bad_end = WaitForEnd(*client_, *account_, r1.Json()["id"]);
  json good_end = WaitForEnd(*client_, *account_, r2.Json()["id"]);
  json html_end = WaitForEnd(*client_, *account_, r3.Json()["id"]);
  EXPECT_EQ(bad_end.value("status", ""), "failed") << bad_end;
  EXPECT_EQ(html_end.value("status", ""), "failed") << html_end;
  EXPECT_EQ(good_end.value("status", ""), "done") << good_end;
  EXPECT_TRUE(good_end["error"].is_null());
  HttpResponse mp3 = client_->Get(good_end["links"].value("mp3", ""), account_->token);
  EXPECT_EQ(mp3.status, 200);
  EXPECT_EQ(mp3.body.size(), good_end["output"].value("size", uint64_t{0}));
}

}  // namespace
}  // namespace vmp3::itest
