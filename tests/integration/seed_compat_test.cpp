// The seed project's clients keep working: the curl command lines they use, verbatim.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <thread>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/audio_decode.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

using nlohmann::json;

TEST(SeedCompatTest, CurlLoginUploadDownload) {
  // One converter thread per converter process, so long jobs ahead (one per converter) keep ours
  // queued while we ask for it too early.
  auto server = ServerProcess::Start(NewDataDir(), {"--workers", "1"});
  HttpClient client(server->base_url());
  Account account = CreateAccount(client, "seed");
  const std::string host = server->base_url();
  const auto dir = vmp3::test::TempDir();

  // Login: the token is the whole plain-text body.
  ProcessResult login = RunProcess({"curl", "-sS", "-X", "POST", "-u",
                                    account.username + ":" + account.password, host + "/login"});
  ASSERT_EQ(login.exit_code, 0) << login.err;
  const std::string token = login.out;
  ASSERT_EQ(std::count(token.begin(), token.end(), '.'), 2) << "not a JWT: " << token;
  EXPECT_EQ(token.find_first_of(" \r\n\""), std::string::npos) << "token is not bare: " << token;
  EXPECT_EQ(client.Get("/v1/jobs", token).status, 200) << "the seed token is a normal token";

  std::vector<std::string> blockers;
  for (int i = 0; i < server->converter_processes(); ++i)
    blockers.push_back(UploadJob(client, account, LongAudio())["id"]);
  for (const std::string& blocker : blockers) WaitForStatus(client, account, blocker, "converting");

  // Upload: the answer is the job id as plain text.
  const auto video = vmp3::test::Fixture("mp4_h264_aac");
  ProcessResult upload = RunProcess({"curl", "-sS", "-X", "POST", "-F", "file=@" + video.string(),
                                     "-H", "Authorization: Bearer " + token, host + "/upload"});
  ASSERT_EQ(upload.exit_code, 0) << upload.err;
  const std::string id = upload.out;
  ASSERT_EQ(id.size(), 26u) << "not a job id: " << id;
  EXPECT_TRUE(std::all_of(id.begin(), id.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || (c >= '2' && c <= '7');
  })) << id;
  HttpResponse job = client.Get("/v1/jobs/" + id, token);
  ASSERT_EQ(job.status, 200) << job.Describe();
  EXPECT_EQ(job.Json().value("status", ""), "queued");

  // Download: 404 while the MP3 is not ready...
  const auto mp3 = dir / "x.mp3";
  auto download = [&] {
    return RunProcess({"curl", "-sS", "--output", mp3.string(), "-w", "%{http_code}", "-X", "GET",
                       "-H", "Authorization: Bearer " + token, host + "/download?fid=" + id});
  };
  ProcessResult early = download();
  ASSERT_EQ(early.exit_code, 0) << early.err;
  EXPECT_EQ(early.out, "404");

  // ...then the MP3, once the job is done.
  for (const std::string& blocker : blockers)
    EXPECT_EQ(client.Delete("/v1/jobs/" + blocker, token).status, 204);
  ProcessResult late;
  for (int i = 0; i < 300; ++i) {
    late = download();
    if (late.out != "404") break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(late.exit_code, 0) << late.err;
  ASSERT_EQ(late.out, "200");
  auto decoded = vmp3::test::DecodeAudio(mp3);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->container, "mp3");
  EXPECT_EQ(decoded->sample_rate, 44100);
  ASSERT_EQ(decoded->channels, 2);
  EXPECT_NEAR(decoded->seconds(), 3.0, 0.05);
  EXPECT_NEAR(vmp3::test::DominantFrequency(decoded->pcm[0], 44100), 440, 2);

  // Unknown ids and wrong passwords answer like the seed did: 404 and 401.
  ProcessResult unknown =
      RunProcess({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                  "Authorization: Bearer " + token, host + "/download?fid=nosuchjob"});
  EXPECT_EQ(unknown.out, "404");
  ProcessResult bad_login =
      RunProcess({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-u",
                  account.username + ":wrong password", host + "/login"});
  EXPECT_EQ(bad_login.out, "401");
}

}  // namespace
}  // namespace vmp3::itest
