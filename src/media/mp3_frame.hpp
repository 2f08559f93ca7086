// MPEG audio Layer III frames at the byte level: what the parallel encoder's seam repair needs to
// know about a frame LAME wrote (ISO/IEC 11172-3 and 13818-3).
//
// A Layer III frame is a 4-byte header, an optional 16-bit CRC, the side information, then the
// payload. A frame's audio ("main data") does not have to sit in its own payload: it starts
// `main_data_begin` bytes before the payload, inside earlier frames' payloads (the bit reservoir),
// and is `main_data_bits` long. Everything here is a pure function of the bytes given; nothing
// allocates except the frame-size change. Malformed input gives std::nullopt, never a crash
// (fuzzed: fuzz/mp3_frame_fuzz.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace vmp3::media::mp3 {

struct FrameHeader {
  int version = 0;        // 1 = MPEG-1, 2 = MPEG-2, 25 = MPEG-2.5
  bool has_crc = false;   // a 16-bit CRC follows the header
  int bitrate_index = 0;  // 1..14 (0 = free format and 15 = invalid are refused)
  int bitrate_kbps = 0;
  int sample_rate = 0;
  bool padding = false;
  bool mono = false;
  int frame_bytes = 0;      // header included
  int samples = 0;          // per channel: 1152 (MPEG-1) or 576
  int side_info_bytes = 0;  // 17/32 (MPEG-1 mono/stereo) or 9/17
  int payload_offset = 0;   // header + CRC + side information
  int payload_bytes() const { return frame_bytes - payload_offset; }
};

// Parses the 4-byte header of a Layer III frame. nullopt when `bytes` is shorter than 4, lacks the
// sync word, or is not Layer III with a valid bit rate and sample rate.
std::optional<FrameHeader> ParseHeader(std::span<const uint8_t> bytes);

struct Layer3Frame {
  FrameHeader header;
  int main_data_begin = 0;  // bytes before this frame's payload where its main data starts
  int main_data_bits = 0;   // sum of part2_3_length over granules and channels

  // Bytes of this frame's payload that come after its own main data ends (free for the next
  // frames' reservoir). Negative when the frame claims more than fits (malformed).
  int FreeTailBytes() const {
    return header.payload_bytes() - ((main_data_bits + 7) / 8 - main_data_begin);
  }
};

// Payload bytes of a frame like `h` (version, sample rate, channels, CRC) at the highest bit
// rate, unpadded: 320 kbps for MPEG-1, 160 for MPEG-2 and 2.5.
int LargestPayloadBytes(const FrameHeader& h);

// Parses a whole frame: header and side information. nullopt when malformed or when `frame` is
// shorter than the header says.
std::optional<Layer3Frame> ParseFrame(std::span<const uint8_t> frame);

// Rewrites `frame` with the next larger bit rate index whose frame is at least `extra_bytes`
// longer, appending zero bytes to the payload (ancillary data, ignored by decoders) and updating
// the CRC if the frame has one. The audio is untouched: main_data_begin counts back from the
// payload's start, which does not move. False when no legal bit rate gives that much room.
bool GrowFrame(std::vector<uint8_t>& frame, int extra_bytes);

// CRC-16 of Layer III frames (polynomial 0x8005, initial value 0xFFFF), over the header's last
// two bytes and the side information.
uint16_t FrameCrc(std::span<const uint8_t> frame, const FrameHeader& header);

}  // namespace vmp3::media::mp3
