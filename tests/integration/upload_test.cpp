// The ways a client can send a video: multipart, a raw body, chunked, with Expect: 100-continue.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/audio_decode.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

using nlohmann::json;

class UploadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = ServerProcess::Start(NewDataDir());
    client_ = std::make_unique<HttpClient>(server_->base_url());
    account_ = std::make_unique<Account>(CreateAccount(*client_));
  }
  static void TearDownTestSuite() {
    account_.reset();
    client_.reset();
    server_.reset();
  }

  // Downloads the job's MP3 and checks it decodes to the fixture's tones and length.
  static void ExpectMp3OfFixture(const std::string& id) {
    HttpResponse mp3 = client_->Get("/v1/jobs/" + id + "/mp3", account_->token);
    ASSERT_EQ(mp3.status, 200) << mp3.Describe();
    auto file = vmp3::test::TempDir() / "out.mp3";
    WriteFile(file, mp3.body);
    auto out = vmp3::test::DecodeAudio(file);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(out->sample_rate, 44100);
    ASSERT_EQ(out->channels, 2);
    EXPECT_NEAR(out->seconds(), 3.0, 0.05);
    EXPECT_NEAR(vmp3::test::DominantFrequency(out->pcm[0], 44100), 440, 2);
    EXPECT_NEAR(vmp3::test::DominantFrequency(out->pcm[1], 44100), 880, 2);
  }

  static std::unique_ptr<ServerProcess> server_;
  static std::unique_ptr<HttpClient> client_;
  static std::unique_ptr<Account> account_;
};
std::unique_ptr<ServerProcess> UploadTest::server_;
std::unique_ptr<HttpClient> UploadTest::client_;
std::unique_ptr<Account> UploadTest::account_;

TEST_F(UploadTest, RawBodyWithFilenameAndExpectContinue) {
  const auto source = vmp3::test::Fixture("mp4_h264_aac");
  HttpRequest r;
  r.method = "POST";
  r.target = "/v1/jobs?filename=Holiday%20clip.mp4";
  r.bearer = account_->token;
  r.headers = {"Content-Type: video/mp4", "Expect: 100-continue"};
  r.body_file = source;
  HttpResponse response = client_->Send(r);
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_EQ(response.interim, std::vector<int>{100})
      << "the server should answer Expect: 100-continue before the body is sent";
  json job = response.Json();
  EXPECT_EQ(job["input"].value("filename", ""), "Holiday clip.mp4");
  EXPECT_EQ(job["input"].value("size", uint64_t{0}), std::filesystem::file_size(source));
  json done = WaitForEnd(*client_, *account_, job["id"]);
  ASSERT_EQ(done.value("status", ""), "done") << done;
  ExpectMp3OfFixture(job["id"]);

  HttpResponse head = client_->Send({.method = "HEAD",
                                     .target = "/v1/jobs/" + job["id"].get<std::string>() + "/mp3",
                                     .bearer = account_->token});
  EXPECT_NE(head.Header("Content-Disposition").value_or("").find("Holiday clip.mp3"),
            std::string::npos)
      << head.Header("Content-Disposition").value_or("(none)");
}

TEST_F(UploadTest, RawBodyWithoutFilenameGetsADefaultName) {
  HttpRequest r;
  r.method = "POST";
  r.target = "/v1/jobs";
  r.bearer = account_->token;
  r.body_file = vmp3::test::Fixture("mp4_h264_aac");
  HttpResponse response = client_->Send(r);
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_FALSE(response.Json()["input"].value("filename", "").empty());
}

TEST_F(UploadTest, ChunkedRawBody) {
  const auto source = vmp3::test::Fixture("mp4_h264_aac");
  HttpRequest r;
  r.method = "POST";
  r.target = "/v1/jobs?filename=chunked.mp4";
  r.bearer = account_->token;
  r.body_file = source;
  r.chunked = true;
  r.chunk_bytes = 7000;  // many chunks, none aligned with anything
  r.headers = {"Expect:"};
  HttpResponse response = client_->Send(r);
  ASSERT_EQ(response.status, 202) << response.Describe();
  json job = response.Json();
  EXPECT_EQ(job["input"].value("size", uint64_t{0}), std::filesystem::file_size(source));
  json done = WaitForEnd(*client_, *account_, job["id"]);
  ASSERT_EQ(done.value("status", ""), "done") << done;
  ExpectMp3OfFixture(job["id"]);
}

TEST_F(UploadTest, ChunkedMultipartWithExpectContinue) {
  const auto source = vmp3::test::Fixture("mp4_h264_aac");
  HttpRequest r;
  r.method = "POST";
  r.target = "/v1/jobs";
  r.bearer = account_->token;
  r.form = {FormPart::Field("quality", "2"), FormPart::File("file", source, "form.mp4")};
  r.headers = {"Transfer-Encoding: chunked", "Expect: 100-continue"};
  HttpResponse response = client_->Send(r);
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_EQ(response.interim, std::vector<int>{100});
  json job = response.Json();
  EXPECT_EQ(job["input"].value("filename", ""), "form.mp4");
  EXPECT_EQ(job["input"].value("size", uint64_t{0}), std::filesystem::file_size(source));
  EXPECT_EQ(job["options"].value("quality", ""), "2") << job;
  json done = WaitForEnd(*client_, *account_, job["id"]);
  ASSERT_EQ(done.value("status", ""), "done") << done;
  ExpectMp3OfFixture(job["id"]);
}

// File names are untrusted bytes: whatever arrives, the job is created once, shows a valid UTF-8
// name, and the download name has no path, no control characters and no injected header.
TEST_F(UploadTest, UntrustedFilenames) {
  struct Case {
    std::string query;     // percent-encoded, for ?filename=
    std::string expected;  // the download name (filename*=UTF-8'' form, still encoded)
  };
  const std::vector<Case> cases = {
      {"..%2F..%2Fetc%2Fpasswd.mp4", "passwd.mp3"},
      {"C%3A%5Cclips%5Choliday.mov", "holiday.mp3"},
      {"%FF%FEbad%C0%AF.mp4", "bad.mp3"},  // invalid UTF-8 (and an overlong '/')
      {"line%0D%0AX-Injected%3A%201.mp4", ""},
      {"%E2%80%AEevil%E2%80%ADgpj.mp4", ""},  // bidirectional overrides
  };
  for (const Case& c : cases) {
    HttpRequest r;
    r.method = "POST";
    r.target = "/v1/jobs?filename=" + c.query;
    r.bearer = account_->token;
    r.body_file = vmp3::test::Fixture("mp4_h264_aac");
    HttpResponse response = client_->Send(r);
    ASSERT_EQ(response.status, 202) << c.query << ": " << response.Describe();
    json job = response.Json();  // throws when the JSON is not valid UTF-8
    HttpResponse head = client_->Send({.method = "GET",
                                       .target = "/v1/jobs/" + job["id"].get<std::string>(),
                                       .bearer = account_->token});
    ASSERT_EQ(head.status, 200) << c.query;
    json end = WaitForEnd(*client_, *account_, job["id"]);
    ASSERT_EQ(end.value("status", ""), "done") << c.query << ": " << end;
    HttpResponse mp3 = client_->Send({.method = "HEAD",
                                      .target = "/v1/jobs/" + job["id"].get<std::string>() + "/mp3",
                                      .bearer = account_->token});
    ASSERT_EQ(mp3.status, 200) << c.query;
    EXPECT_FALSE(mp3.Header("X-Injected").has_value()) << c.query;
    std::string disposition = mp3.Header("Content-Disposition").value_or("");
    EXPECT_EQ(disposition.find_first_of("/\\\r\n"), std::string::npos) << disposition;
    if (!c.expected.empty()) {
      EXPECT_NE(disposition.find("filename*=UTF-8''" + c.expected), std::string::npos)
          << c.query << " -> " << disposition;
    }
    EXPECT_EQ(disposition.find("%E2%80%AE"), std::string::npos) << disposition;
  }
  // The same through a multipart filename.
  HttpRequest form;
  form.method = "POST";
  form.target = "/v1/jobs";
  form.bearer = account_->token;
  form.form = {FormPart::File("file", vmp3::test::Fixture("mp4_h264_aac"),
                              "\xff\xfe"
                              "clip.mp4")};
  HttpResponse response = client_->Send(form);
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_EQ(response.Json()["input"].value("filename", ""), "clip.mp4");
  // Listing every job still renders.
  EXPECT_EQ(client_->Get("/v1/jobs?limit=100", account_->token).status, 200);
}

TEST_F(UploadTest, ConversionOptionsAreValidatedBeforeTheJobIsCreated) {
  HttpRequest r;
  r.method = "POST";
  r.target = "/v1/jobs?filename=a.mp4&bitrate=7";
  r.bearer = account_->token;
  r.body_file = vmp3::test::Fixture("mp4_h264_aac");
  HttpResponse response = client_->Send(r);
  EXPECT_EQ(response.status, 400) << response.Describe();
  HttpResponse list = client_->Get("/v1/jobs?limit=100", account_->token);
  ASSERT_EQ(list.status, 200);
  for (const json& job : list.Json()["jobs"])
    EXPECT_NE(job["input"].value("filename", ""), "a.mp4") << "a rejected upload left a job";
}

}  // namespace
}  // namespace vmp3::itest
