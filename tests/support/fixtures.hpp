// Small deterministic media files for tests, generated on first use with the ffmpeg CLI and cached
// in VMP3_FIXTURE_DIR (CMake sets it to ${CMAKE_BINARY_DIR}/fixtures).
//
// The cache is safe across processes (ctest runs tests in parallel, each in its own process): a
// fixture is generated under an flock, into a work directory, and renamed into place. Its file name
// carries a hash of the recipe, so changing a recipe regenerates the file.
//
// Errors: a missing ffmpeg or a failing recipe throws std::runtime_error with ffmpeg's stderr;
// GoogleTest reports it as a failure of the test that asked. Thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string_view>
#include <vector>

namespace vmp3::test {

// The path of the named fixture, generating it if needed. Unknown names throw
// std::invalid_argument.
//
// Every tone is lavfi's sine source (amplitude 1/8). Channels carry different frequencies so a
// swapped, dropped or mixed-up channel is visible. Durations are exact sample counts unless the
// codec pads.
//
//   name               container / codecs                          audio
//   mp4_h264_aac       MP4  H.264 + AAC                             44100 stereo  L 440  R 880, 3 s
//   mkv_ac3_51         MKV  H.264 + AC-3 5.1(side)                  48000  FL 500 FR 700 FC 300
//                                                                   LFE 60 SL 1100 SR 1300, 3 s
//   webm_vp9_opus      WebM VP9 + Opus                              48000 stereo  L 523  R 784, 3 s
//   avi_mpeg4_mp3      AVI  MPEG-4 part 2 + MP3 (CBR 128k)          44100 stereo  L 330  R 550, 3 s
//   mov_pcm            MOV  H.264 + pcm_s16le                       48000 mono    1000, 3 s
//   ts_mp2             MPEG-TS MPEG-2 video + MP2                   48000 stereo  L 600  R 900, 3 s
//   flv_aac            FLV  H.264 + AAC                             44100 stereo  L 350  R 750, 3 s
//   wav                WAV  pcm_s16le                               44100 stereo  L 440  R 660,
//                                                                   132301 samples (3 s + 1)
//   wav_frame_edge     WAV  pcm_s16le                               44100 stereo  L 440  R 660,
//                                                                   132481 samples (115 * 1152 + 1)
//   flac               FLAC                                         48000 stereo  L 440  R 990, 3 s
//   m4a                M4A  AAC only                                48000 stereo  L 1200 R 1500, 3
//   s mp3                MP3  LAME VBR, Xing/LAME tag, ID3v2 title    44100 stereo  L 440  R 660, 3
//   s video_no_audio     MP4  H.264 only                              - two_audio_tracks   MKV  #0
//   H.264, #1 AAC eng (not default)      44100 stereo 440, 3 s
//                                 #2 AAC fra (default)              48000 stereo 880, 3 s
//   tagged             MP4  H.264 + AAC, title/artist/album/date/   44100 stereo  L 440  R 660, 3 s
//                           genre/track/comment (see kTagged*)
//   cover_mp4          M4A  AAC + attached MJPEG cover 64x64        44100 stereo  L 440  R 660, 3 s
//   cover_mkv          MKV  FLAC + PNG attachment 64x64             44100 stereo  L 523  R 659, 3 s
//   rate_22050         WAV  pcm_s16le                               22050 stereo  L 300  R 500, 3 s
//   rate_96000         FLAC                                         96000 stereo  L 1000 R 3000, 3
//   s broken_empty       0 bytes (.mp4) broken_random      64 KiB of deterministic pseudo-random
//   bytes (.mp4) broken_truncated   the first 30% of a 5 s MP4 whose moov atom is at the end
//   broken_html        an HTML error page (.mp4)
//   mid_damage         MPEG-TS MP2 only, 5 s, 48000 stereo 1000 Hz, 4 KiB in the middle
//                      overwritten with pseudo-random bytes
std::filesystem::path Fixture(std::string_view name);

// Every name Fixture() knows, in table order.
std::vector<std::string_view> FixtureNames();

// What the audio of a decodable fixture is, for tests that check the engine kept it.
struct AudioFixture {
  std::string_view name;
  std::string_view container;  // libavformat demuxer name
  int stream_index;            // the audio stream a player picks by default
  std::string_view codec;      // libavcodec codec name
  int sample_rate;
  std::vector<int> freqs;  // the tone of each channel, in the stream's channel order
  int64_t samples;         // exact count per channel; 0 when the codec makes it approximate
};

// Every fixture with decodable audio (not video_no_audio, not the broken_* ones), in table order.
const std::vector<AudioFixture>& AudioFixtures();
const AudioFixture& AudioFixtureNamed(std::string_view name);
inline void PrintTo(const AudioFixture& f, std::ostream* os) { *os << f.name; }

// Tags of the "tagged" fixture.
inline constexpr std::string_view kTaggedTitle = "Café – 東京";
inline constexpr std::string_view kTaggedArtist = "Zoë Ärtist";
inline constexpr std::string_view kTaggedAlbum = "Ünïcode Album";
inline constexpr std::string_view kTaggedDate = "2021";
inline constexpr std::string_view kTaggedGenre = "Ambient";
inline constexpr std::string_view kTaggedTrack = "3/12";
inline constexpr std::string_view kTaggedComment = "Grüße 👋 from the tests";
// Title of the "mp3" fixture (ID3v2), to see that a stream copy keeps tags.
inline constexpr std::string_view kMp3Title = "Copied Title";

// A fresh empty directory for the calling test, under the system temp directory. It is removed at
// process exit (set VMP3_KEEP_TEMP=1 to keep it for debugging); a test may remove it earlier.
std::filesystem::path TempDir();

}  // namespace vmp3::test
