#include "media/mp3_frame.hpp"

#include <array>

#include "media/mp3_rates.hpp"

namespace vmp3::media::mp3 {
namespace {

// MPEG-2 and 2.5 Layer III bit rates by index 1..14 (MPEG-1's are kMp3Bitrates).
constexpr std::array<int, 14> kLowRateKbps = {8,  16, 24, 32,  40,  48,  56,
                                              64, 80, 96, 112, 128, 144, 160};

int Kbps(int version, int bitrate_index) {
  const auto i = static_cast<size_t>(bitrate_index - 1);
  return version == 1 ? kMp3Bitrates[i] : kLowRateKbps[i];
}

constexpr std::array<int, 3> kMpeg1Rates = {44100, 48000, 32000};

int FrameBytes(int version, int kbps, int sample_rate, bool padding) {
  int coefficient = version == 1 ? 144 : 72;  // bytes per (kbit/s / kHz)
  return coefficient * kbps * 1000 / sample_rate + (padding ? 1 : 0);
}

// Reads `count` bits MSB first starting at bit `pos` of `bytes` (the caller checked the length).
uint32_t Bits(std::span<const uint8_t> bytes, int pos, int count) {
  uint32_t value = 0;
  for (int i = 0; i < count; ++i, ++pos)
    value = (value << 1) | ((bytes[static_cast<size_t>(pos / 8)] >> (7 - pos % 8)) & 1u);
  return value;
}

}  // namespace

int LargestPayloadBytes(const FrameHeader& h) {
  return FrameBytes(h.version, Kbps(h.version, 14), h.sample_rate, false) - h.payload_offset;
}

std::optional<FrameHeader> ParseHeader(std::span<const uint8_t> b) {
  if (b.size() < 4) return std::nullopt;
  if (b[0] != 0xFF || (b[1] & 0xE0) != 0xE0) return std::nullopt;
  FrameHeader h;
  switch ((b[1] >> 3) & 3) {
    case 0:
      h.version = 25;
      break;
    case 2:
      h.version = 2;
      break;
    case 3:
      h.version = 1;
      break;
    default:
      return std::nullopt;  // reserved
  }
  if (((b[1] >> 1) & 3) != 1) return std::nullopt;  // not Layer III
  h.has_crc = (b[1] & 1) == 0;
  h.bitrate_index = b[2] >> 4;
  if (h.bitrate_index == 0 || h.bitrate_index == 15) return std::nullopt;
  int rate_index = (b[2] >> 2) & 3;
  if (rate_index == 3) return std::nullopt;
  h.sample_rate = kMpeg1Rates[static_cast<size_t>(rate_index)] / (h.version == 1   ? 1
                                                                  : h.version == 2 ? 2
                                                                                   : 4);
  h.bitrate_kbps = Kbps(h.version, h.bitrate_index);
  h.padding = (b[2] >> 1) & 1;
  h.mono = (b[3] >> 6) == 3;
  h.samples = h.version == 1 ? 1152 : 576;
  h.side_info_bytes = h.version == 1 ? (h.mono ? 17 : 32) : (h.mono ? 9 : 17);
  h.payload_offset = 4 + (h.has_crc ? 2 : 0) + h.side_info_bytes;
  h.frame_bytes = FrameBytes(h.version, h.bitrate_kbps, h.sample_rate, h.padding);
  if (h.frame_bytes < h.payload_offset) return std::nullopt;
  return h;
}

std::optional<Layer3Frame> ParseFrame(std::span<const uint8_t> frame) {
  auto header = ParseHeader(frame);
  if (!header || frame.size() < static_cast<size_t>(header->frame_bytes)) return std::nullopt;
  Layer3Frame f;
  f.header = *header;
  std::span<const uint8_t> side = frame.subspan(static_cast<size_t>(4 + (header->has_crc ? 2 : 0)),
                                                static_cast<size_t>(header->side_info_bytes));
  const int channels = header->mono ? 1 : 2;
  int pos = 0;
  int granules = 1;
  int per_channel_bits = 0;
  if (header->version == 1) {
    f.main_data_begin = static_cast<int>(Bits(side, 0, 9));
    pos = 9 + (header->mono ? 5 : 3) + 4 * channels;  // private bits, scfsi
    granules = 2;
    per_channel_bits = 59;
  } else {
    f.main_data_begin = static_cast<int>(Bits(side, 0, 8));
    pos = 8 + (header->mono ? 1 : 2);
    per_channel_bits = 63;
  }
  for (int gr = 0; gr < granules; ++gr) {
    for (int ch = 0; ch < channels; ++ch) {
      f.main_data_bits += static_cast<int>(Bits(side, pos, 12));  // part2_3_length
      pos += per_channel_bits;
    }
  }
  return f;
}

uint16_t FrameCrc(std::span<const uint8_t> frame, const FrameHeader& header) {
  uint16_t crc = 0xFFFF;
  auto feed = [&crc](uint8_t byte) {
    for (int bit = 7; bit >= 0; --bit) {
      bool top = ((crc >> 15) & 1) != ((byte >> bit) & 1);
      crc = static_cast<uint16_t>(crc << 1);
      if (top) crc ^= 0x8005;
    }
  };
  feed(frame[2]);
  feed(frame[3]);
  for (int i = 0; i < header.side_info_bytes; ++i) feed(frame[static_cast<size_t>(6 + i)]);
  return crc;
}

bool GrowFrame(std::vector<uint8_t>& frame, int extra_bytes) {
  auto header = ParseHeader(frame);
  if (!header || frame.size() < static_cast<size_t>(header->frame_bytes)) return false;
  for (int index = header->bitrate_index + 1; index <= 14; ++index) {
    int kbps = Kbps(header->version, index);
    int bytes = FrameBytes(header->version, kbps, header->sample_rate, header->padding);
    if (bytes - header->frame_bytes < extra_bytes) continue;
    frame.resize(static_cast<size_t>(header->frame_bytes));
    frame.resize(static_cast<size_t>(bytes), 0);
    frame[2] = static_cast<uint8_t>((frame[2] & 0x0F) | (index << 4));
    if (header->has_crc) {
      auto grown = ParseHeader(frame);
      uint16_t crc = FrameCrc(frame, *grown);
      frame[4] = static_cast<uint8_t>(crc >> 8);
      frame[5] = static_cast<uint8_t>(crc & 0xFF);
    }
    return true;
  }
  return false;
}

}  // namespace vmp3::media::mp3
