#include "media/avio.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

#include "common/io.hpp"
#include "support/fixtures.hpp"

namespace vmp3::media {
namespace {

namespace fs = std::filesystem;

void WriteText(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// An input that names other resources must not get them opened: the upload is its own bytes only
// (found while writing the media_probe fuzz target: playlists, concat lists and SDP sessions are
// recognised by their content). A watchdog stops the open after 10 s, so a broken guard that waits
// on a socket fails the test (kCancelled) rather than hanging it.
void ExpectRefused(const fs::path& input) {
  auto source = FileSource::Open(input);
  ASSERT_TRUE(source) << source.error().message;
  std::stop_source stop;
  std::jthread watchdog([&stop](std::stop_token done) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    // Returns at once when the test is done (stop requested), else after 10 s.
    if (!cv.wait_for(lock, done, std::chrono::seconds(10), [] { return false; }) &&
        !done.stop_requested())
      stop.request_stop();
  });
  auto opened = OpenInput(**source, /*audio_only=*/false, stop.get_token());
  watchdog.request_stop();
  ASSERT_FALSE(opened) << "opened " << input << " as " << opened->format->iformat->name << " with "
                       << opened->format->nb_streams << " streams";
  EXPECT_TRUE(opened.error().code == ErrorCode::kCorruptMedia ||
              opened.error().code == ErrorCode::kNotMedia)
      << ErrorCodeName(opened.error().code) << ": " << opened.error().message;
}

TEST(OpenInputTest, HlsPlaylistCannotReadLocalFiles) {
  const fs::path dir = test::TempDir();
  const fs::path mp3 = dir / "secret.mp3";
  fs::copy_file(test::Fixture("mp3"), mp3);
  WriteText(dir / "by-path.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\n" +
                                      mp3.string() + "\n#EXT-X-ENDLIST\n");
  WriteText(dir / "by-url.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\nfile:" +
                                     mp3.string() + "\n#EXT-X-ENDLIST\n");
  ExpectRefused(dir / "by-path.m3u8");
  ExpectRefused(dir / "by-url.m3u8");
}

TEST(OpenInputTest, HlsPlaylistCannotFetchUrls) {
  const fs::path dir = test::TempDir();
  // Port 9 (discard) on loopback: nothing listens, so even a broken guard fails fast here, but
  // the error must be the refusal, not a connection attempt's result.
  WriteText(dir / "remote.m3u8",
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\nhttp://127.0.0.1:9/a.mp3\n"
            "#EXT-X-ENDLIST\n");
  ExpectRefused(dir / "remote.m3u8");
}

TEST(OpenInputTest, SdpSessionCannotOpenSockets) {
  const fs::path dir = test::TempDir();
  // Without the guard the SDP demuxer binds UDP 127.0.0.1:5004 and waits for RTP forever.
  WriteText(dir / "session.sdp",
            "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
            "m=audio 5004 RTP/AVP 0\n");
  ExpectRefused(dir / "session.sdp");
}

TEST(OpenInputTest, ConcatListCannotReadLocalFiles) {
  const fs::path dir = test::TempDir();
  fs::copy_file(test::Fixture("mp3"), dir / "secret.mp3");
  WriteText(dir / "list.ffconcat", "ffconcat version 1.0\nfile secret.mp3\n");
  // The concat demuxer resolves a relative name against the working directory: put the file
  // there, as a server's own files would be.
  const fs::path previous = fs::current_path();
  fs::current_path(dir);
  ExpectRefused(dir / "list.ffconcat");
  fs::current_path(previous);
}

TEST(OpenInputTest, OrdinaryInputStillOpens) {
  auto source = FileSource::Open(test::Fixture("mp3"));
  ASSERT_TRUE(source) << source.error().message;
  auto opened = OpenInput(**source, /*audio_only=*/false, {});
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(std::string_view(opened->format->iformat->name), "mp3");
}

}  // namespace
}  // namespace vmp3::media
