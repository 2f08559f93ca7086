// Many clients at once: every upload is accepted, converted and downloadable, nothing mixed up.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <set>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"
#include "support/audio_decode.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

using nlohmann::json;

TEST(ConcurrencyTest, TwentyConcurrentUploadsAllEndDone) {
  auto server = ServerProcess::Start(NewDataDir(), {"--workers", "2"});
  HttpClient client(server->base_url());
  // Different containers and tones, so a mixed-up output shows as the wrong tone or rate.
  const std::vector<std::string_view> names = {"mp4_h264_aac", "webm_vp9_opus", "flv_aac", "wav",
                                               "m4a"};
  for (auto name : names) vmp3::test::Fixture(name);  // generate before the clock starts
  std::vector<Account> accounts;
  for (int i = 0; i < 4; ++i) accounts.push_back(CreateAccount(client, "many"));

  constexpr int kUploads = 20;
  struct Outcome {
    HttpResponse upload;
    json end;
    std::string error;
  };
  std::vector<std::future<Outcome>> futures;
  for (int i = 0; i < kUploads; ++i) {
    futures.push_back(std::async(std::launch::async, [&, i] {
      Outcome o;
      const Account& account = accounts[i % accounts.size()];
      o.upload = Upload(client, account, vmp3::test::Fixture(names[i % names.size()]),
                        fmt::format("clip {}.bin", i));
      try {
        if (o.upload.status == 202)
          o.end = WaitForEnd(client, account, o.upload.Json()["id"], 120s);
      } catch (const std::exception& e) {
        o.error = e.what();
      }
      return o;
    }));
  }
  std::set<std::string> ids;
  for (int i = 0; i < kUploads; ++i) {
    Outcome o = futures[i].get();
    ASSERT_EQ(o.upload.status, 202) << "upload " << i << ": " << o.upload.Describe();
    ASSERT_TRUE(o.error.empty()) << o.error;
    EXPECT_EQ(o.end.value("status", ""), "done") << "upload " << i << ": " << o.end;
    EXPECT_EQ(o.end["input"].value("filename", ""), fmt::format("clip {}.bin", i));
    ids.insert(o.end.value("id", ""));

    // The MP3 is this upload's: its sample rate and tone.
    const auto& fixture = vmp3::test::AudioFixtureNamed(names[i % names.size()]);
    const Account& account = accounts[i % accounts.size()];
    HttpResponse mp3 = client.Get(o.end["links"].value("mp3", ""), account.token);
    ASSERT_EQ(mp3.status, 200) << mp3.Describe();
    auto file = vmp3::test::TempDir() / "out.mp3";
    WriteFile(file, mp3.body);
    auto decoded = vmp3::test::DecodeAudio(file);
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(decoded->sample_rate, fixture.sample_rate) << fixture.name;
    EXPECT_NEAR(decoded->seconds(), 3.0, 0.1) << fixture.name;
    EXPECT_NEAR(vmp3::test::DominantFrequency(decoded->pcm[0], decoded->sample_rate),
                fixture.freqs[0], 3)
        << fixture.name;
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kUploads)) << "job ids must be unique";
  // Each account sees exactly its own five.
  for (const Account& account : accounts) {
    HttpResponse list = client.Get("/v1/jobs?limit=100", account.token);
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.Json()["jobs"].size(), static_cast<size_t>(kUploads / accounts.size()));
  }
}

}  // namespace
}  // namespace vmp3::itest
