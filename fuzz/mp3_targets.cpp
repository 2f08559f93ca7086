// Entry point for the parallel encoder's byte-level MP3 code: media/mp3_frame.hpp and the seam
// repair of media/segment_join.hpp, on frames the encoder never wrote.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "fuzz_targets.hpp"
#include "media/mp3_frame.hpp"
#include "media/segment_join.hpp"

namespace vmp3::fuzz {
namespace {

using Frame = std::vector<uint8_t>;

// Frames found in `data` read as a stream: a valid header starts a frame of the size it states.
std::vector<Frame> RawFrames(const uint8_t* data, size_t size) {
  std::vector<Frame> frames;
  for (size_t pos = 0; pos + 4 <= size;) {
    auto header = media::mp3::ParseHeader(std::span<const uint8_t>(data + pos, size - pos));
    if (!header || pos + static_cast<size_t>(header->frame_bytes) > size) {
      ++pos;
      continue;
    }
    frames.emplace_back(data + pos, data + pos + header->frame_bytes);
    pos += static_cast<size_t>(header->frame_bytes);
  }
  return frames;
}

// Frames described by six bytes each: bit rate index, flags (CRC, mono, padding, MPEG-2),
// main_data_begin (16 bits, masked to the field) and main data bytes (16 bits). The side
// information's first granule/channel block gets every bit; the payload is filled with the
// flags byte.
std::vector<Frame> SynthesizedFrames(const uint8_t* data, size_t size) {
  std::vector<Frame> frames;
  for (size_t pos = 0; pos + 6 <= size && frames.size() < 64; pos += 6) {
    const uint8_t flags = data[pos + 1];
    const bool crc = flags & 1, mono = flags & 2, padding = flags & 4, mpeg2 = flags & 8;
    const int index = 1 + data[pos] % 14;
    Frame header = {0xFF, static_cast<uint8_t>((mpeg2 ? 0xF2 : 0xFA) | (crc ? 0 : 1)),
                    static_cast<uint8_t>(index << 4 | (padding ? 2 : 0)),
                    static_cast<uint8_t>(mono ? 0xC0 : 0x00)};
    auto parsed = media::mp3::ParseHeader(header);
    FUZZ_CHECK(parsed, "a header built from valid fields must parse");
    Frame frame(static_cast<size_t>(parsed->frame_bytes), flags);
    std::copy(header.begin(), header.end(), frame.begin());
    const size_t side = crc ? 6 : 4;
    std::fill_n(frame.begin() + static_cast<long>(side), parsed->side_info_bytes, 0);
    const int begin = (data[pos + 2] << 8 | data[pos + 3]) & (mpeg2 ? 0xFF : 0x1FF);
    const int bits = std::min((data[pos + 4] << 8 | data[pos + 5]) * 8, 4095);
    // main_data_begin, then part2_3_length of the first block right after the fixed fields.
    const int first_block = mpeg2 ? (mono ? 9 : 10) : (mono ? 18 : 20);
    uint64_t word = static_cast<uint64_t>(begin) << (mpeg2 ? 56 : 55);
    word |= static_cast<uint64_t>(bits) << (64 - first_block - 12);
    for (int i = 0; i < 8 && i < parsed->side_info_bytes; ++i)
      frame[side + static_cast<size_t>(i)] = static_cast<uint8_t>(word >> (56 - 8 * i));
    if (crc) {
      uint16_t value = media::mp3::FrameCrc(frame, *parsed);
      frame[4] = static_cast<uint8_t>(value >> 8);
      frame[5] = static_cast<uint8_t>(value & 0xFF);
    }
    frames.push_back(std::move(frame));
  }
  return frames;
}

}  // namespace

int FuzzMp3Frames(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<Frame> frames =
      data[0] % 2 == 0 ? RawFrames(data + 1, size - 1) : SynthesizedFrames(data + 1, size - 1);

  for (const Frame& frame : frames) {
    auto parsed = media::mp3::ParseFrame(frame);
    FUZZ_CHECK(parsed, "a frame the walk took must parse");
    FUZZ_CHECK(parsed->header.frame_bytes == static_cast<int>(frame.size()), "frame size");
    FUZZ_CHECK(parsed->main_data_begin >= 0 && parsed->main_data_begin <= 511, "mdb range");
    // Growing keeps the audio fields, adds at least what was asked and keeps a CRC valid.
    Frame grown = frame;
    const int extra = 1 + frame.back() % 400;
    if (media::mp3::GrowFrame(grown, extra)) {
      auto after = media::mp3::ParseFrame(grown);
      FUZZ_CHECK(after, "a grown frame must parse");
      FUZZ_CHECK(grown.size() >= frame.size() + static_cast<size_t>(extra), "grew too little");
      FUZZ_CHECK(after->main_data_begin == parsed->main_data_begin, "mdb changed");
      FUZZ_CHECK(after->main_data_bits == parsed->main_data_bits, "main data changed");
      FUZZ_CHECK(after->header.bitrate_kbps > parsed->header.bitrate_kbps, "no higher rate");
      if (after->header.has_crc) {
        FUZZ_CHECK((grown[4] << 8 | grown[5]) == media::mp3::FrameCrc(grown, after->header),
                   "stale CRC");
      }
    }
  }

  // The seam repair on two overlapping "segments" of these frames: an answer or kInternal, and a
  // seam inside the overlap, called exact only where the encoders were said to agree.
  if (frames.size() >= 4) {
    media::EncodedSegment prev{
        .first_frame = 0,
        .kept_from = 0,
        .kept_to = static_cast<int64_t>(frames.size() / 2),
        // where a chase would have found the encoders agreeing (any frame)
        .meets_next_at = static_cast<int64_t>(size % (frames.size() + 1)) - 1,
        .frames = frames};
    media::EncodedSegment next{.first_frame = 1,
                               .kept_from = static_cast<int64_t>(frames.size() / 2),
                               .kept_to = static_cast<int64_t>(frames.size()),
                               .frames = {frames.begin() + 1, frames.end()}};
    auto seam = media::JoinSeam(prev, next, size % 2 == 0);
    if (seam) {
      FUZZ_CHECK(seam->frame >= next.kept_from && seam->frame < next.end_frame(), "seam range");
      FUZZ_CHECK(seam->reservoir_bytes >= 0 && seam->reservoir_bytes <= 511, "reservoir range");
      FUZZ_CHECK(!seam->exact || seam->frame == prev.meets_next_at, "exact elsewhere");
    } else {
      FUZZ_CHECK(seam.error().code == ErrorCode::kInternal, seam.error().message);
    }
  }
  return 0;
}

}  // namespace vmp3::fuzz
