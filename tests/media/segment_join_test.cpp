#include "media/segment_join.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "media/mp3_frame.hpp"

namespace vmp3::media {
namespace {

// Writes bits MSB first, as MPEG audio side information is laid out.
class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>& out, size_t byte_offset)
      : out_(out), pos_(byte_offset * 8) {}
  void Put(uint32_t value, int bits) {
    for (int i = bits - 1; i >= 0; --i, ++pos_) {
      uint8_t mask = static_cast<uint8_t>(0x80 >> (pos_ % 8));
      if ((value >> i) & 1)
        out_[pos_ / 8] |= mask;
      else
        out_[pos_ / 8] &= static_cast<uint8_t>(~mask);
    }
  }
  void Skip(int bits) { pos_ += static_cast<size_t>(bits); }

 private:
  std::vector<uint8_t>& out_;
  size_t pos_;
};

struct FrameSpec {
  int bitrate_index = 9;  // 128 kbps at MPEG-1
  bool crc = false;
  int main_data_begin = 0;
  int main_data_bytes = 0;  // audio bytes this frame's main data holds
  uint8_t fill = 0;         // payload byte value (tells frames apart)
};

// An MPEG-1 Layer III stereo frame at 44.1 kHz with the given reservoir use. Its main data is
// `main_data_bytes` long, split over the four granule/channel blocks.
std::vector<uint8_t> MakeFrame(const FrameSpec& spec) {
  std::vector<uint8_t> header = {0xFF, static_cast<uint8_t>(spec.crc ? 0xFA : 0xFB),
                                 static_cast<uint8_t>(spec.bitrate_index << 4), 0x00};
  auto parsed = mp3::ParseHeader(header);
  EXPECT_TRUE(parsed);
  std::vector<uint8_t> frame(static_cast<size_t>(parsed->frame_bytes), spec.fill);
  std::copy(header.begin(), header.end(), frame.begin());
  size_t side = spec.crc ? 6 : 4;
  std::fill_n(frame.begin() + static_cast<long>(side), parsed->side_info_bytes, 0);
  BitWriter bits(frame, side);
  bits.Put(static_cast<uint32_t>(spec.main_data_begin), 9);
  bits.Skip(3 + 8);  // private bits, scfsi
  int total_bits = spec.main_data_bytes * 8;
  for (int block = 0; block < 4; ++block) {
    int part = total_bits / 4 + (block < total_bits % 4 ? 1 : 0);
    bits.Put(static_cast<uint32_t>(part), 12);
    bits.Skip(59 - 12);
  }
  if (spec.crc) {
    uint16_t crc = mp3::FrameCrc(frame, *parsed);
    frame[4] = static_cast<uint8_t>(crc >> 8);
    frame[5] = static_cast<uint8_t>(crc & 0xFF);
  }
  return frame;
}

TEST(Mp3FrameTest, ParsesHeadersOfEveryVersion) {
  auto mpeg1 = mp3::ParseHeader(std::vector<uint8_t>{0xFF, 0xFB, 0x90, 0x00});
  ASSERT_TRUE(mpeg1);
  EXPECT_EQ(mpeg1->version, 1);
  EXPECT_EQ(mpeg1->bitrate_kbps, 128);
  EXPECT_EQ(mpeg1->sample_rate, 44100);
  EXPECT_EQ(mpeg1->frame_bytes, 417);  // 144 * 128000 / 44100
  EXPECT_EQ(mpeg1->samples, 1152);
  EXPECT_EQ(mpeg1->payload_offset, 4 + 32);

  auto padded_mono = mp3::ParseHeader(std::vector<uint8_t>{0xFF, 0xFB, 0x92, 0xC0});
  ASSERT_TRUE(padded_mono);
  EXPECT_EQ(padded_mono->frame_bytes, 418);
  EXPECT_TRUE(padded_mono->mono);
  EXPECT_EQ(padded_mono->side_info_bytes, 17);

  // MPEG-2, 22.05 kHz, 64 kbps: 576 samples and 72 * 64000 / 22050 bytes.
  auto mpeg2 = mp3::ParseHeader(std::vector<uint8_t>{0xFF, 0xF3, 0x80, 0x00});
  ASSERT_TRUE(mpeg2);
  EXPECT_EQ(mpeg2->version, 2);
  EXPECT_EQ(mpeg2->sample_rate, 22050);
  EXPECT_EQ(mpeg2->bitrate_kbps, 64);
  EXPECT_EQ(mpeg2->frame_bytes, 208);
  EXPECT_EQ(mpeg2->samples, 576);
  EXPECT_EQ(mpeg2->side_info_bytes, 17);

  auto mpeg25 = mp3::ParseHeader(std::vector<uint8_t>{0xFF, 0xE3, 0x88, 0xC0});
  ASSERT_TRUE(mpeg25);
  EXPECT_EQ(mpeg25->version, 25);
  EXPECT_EQ(mpeg25->sample_rate, 8000);  // rate index 2
}

// The largest frame's payload, which bounds what LAME lets a frame spend (the chase's yardstick).
TEST(Mp3FrameTest, LargestPayloadIsTheTopBitRatesUnpadded) {
  auto stereo = mp3::ParseHeader(std::vector<uint8_t>{0xFF, 0xFB, 0x92, 0x00});  // 128k, padded
  ASSERT_TRUE(stereo);
  EXPECT_EQ(mp3::LargestPayloadBytes(*stereo), 1044 - 36);  // 320 kbps at 44.1 kHz
  auto mono_crc = mp3::ParseHeader(std::vector<uint8_t>{0xFF, 0xFA, 0x94, 0xC0});  // 48 kHz
  ASSERT_TRUE(mono_crc);
  EXPECT_EQ(mp3::LargestPayloadBytes(*mono_crc), 960 - 4 - 2 - 17);
  auto mpeg2 = mp3::ParseHeader(std::vector<uint8_t>{0xFF, 0xF3, 0x80, 0x00});  // 22.05 kHz
  ASSERT_TRUE(mpeg2);
  EXPECT_EQ(mp3::LargestPayloadBytes(*mpeg2), 72 * 160000 / 22050 - 4 - 17);
}

TEST(Mp3FrameTest, RefusesWhatIsNotALayer3Frame) {
  using Bytes = std::vector<uint8_t>;
  EXPECT_FALSE(mp3::ParseHeader(Bytes{0xFF, 0xFB, 0x90}));        // short
  EXPECT_FALSE(mp3::ParseHeader(Bytes{0xFE, 0xFB, 0x90, 0x00}));  // no sync
  EXPECT_FALSE(mp3::ParseHeader(Bytes{0xFF, 0xFD, 0x90, 0x00}));  // Layer II
  EXPECT_FALSE(mp3::ParseHeader(Bytes{0xFF, 0xEB, 0x90, 0x00}));  // reserved version
  EXPECT_FALSE(mp3::ParseHeader(Bytes{0xFF, 0xFB, 0x00, 0x00}));  // free format
  EXPECT_FALSE(mp3::ParseHeader(Bytes{0xFF, 0xFB, 0xF0, 0x00}));  // bad bit rate
  EXPECT_FALSE(mp3::ParseHeader(Bytes{0xFF, 0xFB, 0x9C, 0x00}));  // reserved sample rate
  std::vector<uint8_t> truncated = MakeFrame({});
  truncated.resize(100);
  EXPECT_FALSE(mp3::ParseFrame(truncated));
}

TEST(Mp3FrameTest, ReadsTheReservoirFieldsOfTheSideInformation) {
  auto frame = mp3::ParseFrame(MakeFrame({.main_data_begin = 300, .main_data_bytes = 500}));
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->main_data_begin, 300);
  EXPECT_EQ(frame->main_data_bits, 4000);
  // 381 payload bytes; the main data takes 300 before it and 200 of it: 181 left.
  EXPECT_EQ(frame->header.payload_bytes(), 381);
  EXPECT_EQ(frame->FreeTailBytes(), 181);
}

TEST(Mp3FrameTest, GrowFrameRaisesTheBitRateAndKeepsTheCrcValid) {
  std::vector<uint8_t> frame =
      MakeFrame({.crc = true, .main_data_begin = 10, .main_data_bytes = 200, .fill = 7});
  std::vector<uint8_t> before = frame;
  ASSERT_TRUE(mp3::GrowFrame(frame, 100));
  auto grown = mp3::ParseFrame(frame);
  ASSERT_TRUE(grown);
  EXPECT_EQ(grown->header.bitrate_kbps, 160);  // 522 bytes: the first rate with >= 100 more
  EXPECT_EQ(frame.size(), 522u);
  EXPECT_EQ(grown->main_data_begin, 10);
  EXPECT_EQ(grown->main_data_bits, 1600);
  uint16_t stored = static_cast<uint16_t>(frame[4] << 8 | frame[5]);
  EXPECT_EQ(stored, mp3::FrameCrc(frame, grown->header));
  EXPECT_NE(stored, static_cast<uint16_t>(before[4] << 8 | before[5]));
  // The old bytes (after the header and CRC) are unchanged; the new ones are zero.
  EXPECT_TRUE(std::equal(before.begin() + 6, before.end(), frame.begin() + 6));
  EXPECT_TRUE(std::all_of(frame.begin() + 417, frame.end(), [](uint8_t b) { return b == 0; }));

  std::vector<uint8_t> top = MakeFrame({.bitrate_index = 14});
  EXPECT_FALSE(mp3::GrowFrame(top, 1));  // 320 kbps is the most there is
  std::vector<uint8_t> small = MakeFrame({});
  EXPECT_FALSE(mp3::GrowFrame(small, 700));  // 320 kbps adds only 627 bytes
}

// Segments of frames 0..19 (prev, keeps from 0 to 10) and 6..29 (next, keeps from 10): each
// frame's main data fills its own payload up to `used` bytes, leaving the rest free.
struct Pair {
  EncodedSegment prev;
  EncodedSegment next;
};

Pair MakePair(int prev_free_at_9, int next_reservoir_at_10) {
  Pair p;
  p.prev.first_frame = 0;
  p.prev.kept_from = 0;
  p.prev.kept_to = 10;
  for (int f = 0; f < 20; ++f) {
    int used = f == 9 ? 381 - prev_free_at_9 : 381;
    p.prev.frames.push_back(MakeFrame({.main_data_bytes = used, .fill = 0xAA}));
  }
  p.next.first_frame = 6;
  p.next.kept_from = 10;
  p.next.kept_to = 20;
  for (int f = 6; f < 30; ++f) {
    int begin = f == 10 ? next_reservoir_at_10 : 0;
    p.next.frames.push_back(MakeFrame({.main_data_begin = begin,
                                       .main_data_bytes = 381 - (f == 9 ? 100 : 0) + begin,
                                       .fill = static_cast<uint8_t>(f)}));
  }
  return p;
}

TEST(SegmentJoinTest, CopiesTheReservoirIntoTheFreeTailAtTheFirstSeamThatFits) {
  Pair p = MakePair(/*prev_free_at_9=*/150, /*next_reservoir_at_10=*/100);
  auto seam = JoinSeam(p.prev, p.next);
  ASSERT_TRUE(seam) << seam.error().message;
  EXPECT_EQ(seam->frame, 10);
  EXPECT_EQ(seam->reservoir_bytes, 100);
  EXPECT_EQ(seam->grown_bytes, 0);
  const std::vector<uint8_t>& tail = p.prev.frames[9];
  // The last 100 payload bytes of prev's frame 9 now hold next's frame 9 bytes (fill 9).
  EXPECT_TRUE(std::all_of(tail.end() - 100, tail.end(), [](uint8_t b) { return b == 9; }));
  EXPECT_EQ(tail[tail.size() - 101], 0xAA);  // one byte earlier: prev's own
}

// Where the previous segment's chase found the encoders in agreement, the seam is there, called
// exact, even when an earlier frame would take the reservoir.
TEST(SegmentJoinTest, JoinsWhereTheEncodersMetAndCallsItExact) {
  Pair p = MakePair(/*prev_free_at_9=*/150, /*next_reservoir_at_10=*/100);
  p.prev.meets_next_at = 13;
  auto seam = JoinSeam(p.prev, p.next);
  ASSERT_TRUE(seam) << seam.error().message;
  EXPECT_EQ(seam->frame, 13);
  EXPECT_TRUE(seam->exact);
  EXPECT_EQ(seam->reservoir_bytes, 0);
}

// An agreement the join cannot use (past the next segment's own frames, or before its first kept
// frame) is ignored: the seam is where the reservoir fits, and not called exact.
TEST(SegmentJoinTest, IgnoresAnAgreementOutsideTheNextSegmentsOwnFrames) {
  for (int64_t met : {int64_t{-1}, int64_t{8}, int64_t{20}, int64_t{25}}) {
    SCOPED_TRACE(met);
    Pair p = MakePair(/*prev_free_at_9=*/150, /*next_reservoir_at_10=*/100);
    p.prev.meets_next_at = met;
    auto seam = JoinSeam(p.prev, p.next);
    ASSERT_TRUE(seam) << seam.error().message;
    EXPECT_EQ(seam->frame, 10);
    EXPECT_FALSE(seam->exact);
  }
}

TEST(SegmentJoinTest, ReservoirStateIsTheLevelBeforeAFrameAndTheBitsItSpends) {
  auto state = ReservoirStateOf(MakeFrame({.main_data_begin = 300, .main_data_bytes = 500}));
  ASSERT_TRUE(state);
  EXPECT_EQ(state->main_data_begin, 300);
  EXPECT_EQ(state->main_data_bits, 4000);
  EXPECT_FALSE(ReservoirStateOf(std::vector<uint8_t>{0xFF, 0xFB, 0x90}));
}

TEST(SegmentJoinTest, MovesTheSeamWhenTheReservoirDoesNotFitAtTheFirstFrame) {
  Pair p = MakePair(/*prev_free_at_9=*/50, /*next_reservoir_at_10=*/100);
  // At frame 11: prev's frame 10 is full, next's frame 11 needs nothing.
  auto seam = JoinSeam(p.prev, p.next);
  ASSERT_TRUE(seam) << seam.error().message;
  EXPECT_EQ(seam->frame, 11);
  EXPECT_EQ(seam->reservoir_bytes, 0);
}

TEST(SegmentJoinTest, RaisesTheLastFrameBitRateWhenNoSeamFits) {
  Pair p = MakePair(/*prev_free_at_9=*/50, /*next_reservoir_at_10=*/100);
  // Make every later candidate need a reservoir too: next's frames 11..27 point 200 back.
  for (int f = 11; f < 30; ++f) {
    p.next.frames[static_cast<size_t>(f - 6)] =
        MakeFrame({.main_data_begin = 200, .main_data_bytes = 381, .fill = 3});
  }
  auto seam = JoinSeam(p.prev, p.next);
  ASSERT_TRUE(seam) << seam.error().message;
  EXPECT_EQ(seam->frame, 10);
  EXPECT_EQ(seam->reservoir_bytes, 100);
  EXPECT_GT(seam->grown_bytes, 0);
  auto grown = mp3::ParseFrame(p.prev.frames[9]);
  ASSERT_TRUE(grown);
  EXPECT_EQ(grown->header.bitrate_kbps, 160);
  EXPECT_GE(grown->FreeTailBytes(), 100);
  const std::vector<uint8_t>& tail = p.prev.frames[9];
  EXPECT_TRUE(std::all_of(tail.end() - 100, tail.end(), [](uint8_t b) { return b == 9; }));
}

TEST(SegmentJoinTest, WithoutRepairTheSeamIsTheNominalOneAndNothingIsCopied) {
  Pair p = MakePair(/*prev_free_at_9=*/150, /*next_reservoir_at_10=*/100);
  auto frames = p.prev.frames;
  auto seam = JoinSeam(p.prev, p.next, /*repair=*/false);
  ASSERT_TRUE(seam);
  EXPECT_EQ(seam->frame, 10);
  EXPECT_EQ(p.prev.frames, frames);
}

TEST(SegmentJoinTest, RefusesSegmentsThatDoNotOverlap) {
  Pair p = MakePair(150, 100);
  p.prev.frames.resize(11);  // prev ends at frame 11: too close to the seam to trust
  EXPECT_EQ(JoinSeam(p.prev, p.next).error().code, ErrorCode::kInternal);
  Pair q = MakePair(150, 100);
  q.next.first_frame = 11;  // next has no frame 10
  EXPECT_EQ(JoinSeam(q.prev, q.next).error().code, ErrorCode::kInternal);
}

}  // namespace
}  // namespace vmp3::media
