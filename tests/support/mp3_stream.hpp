// An MP3 stream inspector written from the format descriptions (ISO 11172-3 / 13818-3 Layer III
// headers and side info, the Xing header, the LAME tag), independent of the engine's own MP3 code,
// so that tests can judge what the engine wrote byte by byte:
//
//   - every frame header (MPEG-1, 2 and 2.5 Layer III) and the Layer III side info of every frame
//     (main_data_begin and the bits of main data its granules use);
//   - the Xing/Info frame and its LAME tag (frame and byte counts, TOC, encoder delay and padding,
//     music length, music CRC, tag CRC);
//   - checks: both CRCs recomputed, the header fields against the frames and the decoded length,
//     and a walk of the bit reservoir proving every frame's main data can be found.
//
// Nothing throws; unreadable input shows up as problems. Thread-safe (no global state).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace vmp3::test {

struct Mp3Frame {
  int64_t offset = 0;    // of the header in the file
  int size = 0;          // bytes, header included
  int mpeg_version = 0;  // 10 = MPEG-1, 20 = MPEG-2, 25 = MPEG-2.5
  int bitrate_kbps = 0;
  int sample_rate = 0;
  int channels = 0;
  int samples = 0;  // per channel: 1152 (MPEG-1) or 576 (MPEG-2/2.5)
  bool crc_protected = false;
  int side_info_bytes = 0;
  int main_data_begin = 0;  // bytes back from this frame's payload where its main data starts
  int main_data_bits = 0;   // sum of part2_3_length over its granules and channels
  int payload_offset() const { return 4 + (crc_protected ? 2 : 0) + side_info_bytes; }
};

struct LameTag {
  std::string encoder;  // the 9-byte version string, e.g. "LAME3.100" (FFmpeg writes "Lavf...")
  int encoder_delay = 0;
  int padding = 0;
  uint32_t music_length =
      0;                   // bytes from the Info frame's first byte to the last audio frame's end
  uint16_t music_crc = 0;  // CRC-16 of the audio frames after the Info frame
  uint16_t tag_crc = 0;    // CRC-16 of the Info frame's first 190 bytes (see CheckMp3Crcs)
};

struct XingHeader {
  bool vbr = false;  // "Xing" (VBR) rather than "Info" (CBR)
  std::optional<uint32_t> frames;
  std::optional<uint32_t> bytes;
  std::optional<std::array<uint8_t, 100>> toc;
  std::optional<uint32_t> quality;
  std::optional<LameTag> lame;
};

struct Mp3Stream {
  std::vector<uint8_t> bytes;  // the whole file
  int64_t id3v2_bytes = 0;     // skipped before the first frame (header and footer included)
  std::optional<Mp3Frame> info_frame;  // the first frame when it carries a Xing/Info header
  std::optional<XingHeader> xing;
  std::vector<Mp3Frame> frames;       // the audio frames (the Info frame excluded), in order
  int64_t trailing_tag_bytes = 0;     // an ID3v1 or APE tag after the last frame
  std::vector<std::string> problems;  // what could not be parsed; empty = every byte accounted for

  int64_t audio_samples() const;  // sum of the audio frames' samples per channel
};

// Reads and parses `path`; a file that cannot be read gives a stream with one problem.
Mp3Stream ReadMp3Stream(const std::filesystem::path& path);
Mp3Stream ParseMp3Stream(std::vector<uint8_t> bytes);

// CRC-16, polynomial 0x8005 bit-reflected (0xA001), as LAME's VbrTag.c and FFmpeg's
// AV_CRC_16_ANSI_LE compute it; `crc` carries a running value.
uint16_t Crc16Lame(std::span<const uint8_t> data, uint16_t crc = 0);

// (a) The music CRC over every audio frame after the Info frame, and the tag CRC over the Info
// frame's first 190 bytes, compared with the stored ones.
std::vector<std::string> CheckMp3Crcs(const Mp3Stream& s);

// (b) The Xing/LAME fields against the frames: frame count, byte count and music length, a TOC
// that starts at 0, never decreases and points where the frames are, the Xing/Info choice, one
// format in every frame, encoder delay `expected_delay`, and padding such that
// frames * samples_per_frame - delay - padding == decoded_samples (the source's exact length).
std::vector<std::string> CheckMp3Header(const Mp3Stream& s, int64_t decoded_samples,
                                        int expected_delay = 576);

// (c) The bit reservoir: every frame's main data must start inside earlier audio frames' payloads
// or its own (never before the first audio frame, never in the Info frame or a header), must not
// overlap the previous frame's main data, and must end inside its own frame's payload.
struct ReservoirWalk {
  int max_main_data_begin = 0;
  int64_t unused_bytes = 0;  // payload bytes no frame's main data uses (stuffing, ancillary)
  std::vector<std::string> problems;
};
ReservoirWalk WalkMp3Reservoir(const Mp3Stream& s);

// Every problem the three checks and the parser find, each prefixed "stream:", "crc:",
// "header:" or "reservoir:"; empty means the stream is well formed.
std::vector<std::string> CheckMp3Stream(const Mp3Stream& s, int64_t decoded_samples);

}  // namespace vmp3::test
