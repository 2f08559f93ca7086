#include "support/mp3_stream.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

namespace vmp3::test {
namespace mp3_stream_detail {

// A check stops listing after this many problems of one kind: one broken seam can make every
// later frame fail the same way, and a thousand lines hide the first, which is the one to read.
constexpr size_t kMaxProblemsPerCheck = 20;

class ProblemList {
 public:
  template <typename... Args>
  void Add(fmt::format_string<Args...> f, Args&&... args) {
    if (++count_ <= kMaxProblemsPerCheck)
      list_.push_back(fmt::format(f, std::forward<Args>(args)...));
  }
  std::vector<std::string> Take() && {
    if (count_ > kMaxProblemsPerCheck) {
      list_.push_back(fmt::format("... and {} more", count_ - kMaxProblemsPerCheck));
    }
    return std::move(list_);
  }

 private:
  size_t count_ = 0;
  std::vector<std::string> list_;
};

// Reads big-endian bit fields, as MPEG audio stores them.
class BitReader {
 public:
  BitReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint32_t Read(int bits) {
    uint32_t v = 0;
    for (int i = 0; i < bits; ++i) {
      const size_t byte = pos_ >> 3;
      const int bit = byte < size_ ? (data_[byte] >> (7 - (pos_ & 7))) & 1 : 0;
      v = (v << 1) | static_cast<uint32_t>(bit);
      ++pos_;
    }
    return v;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Layer III bit rates in kbps by index (0 = free format, 15 = invalid; both refused here).
constexpr int kBitratesMpeg1[16] = {0,   32,  40,  48,  56,  64,  80,  96,
                                    112, 128, 160, 192, 224, 256, 320, -1};
constexpr int kBitratesMpeg2[16] = {0,  8,  16, 24,  32,  40,  48,  56,
                                    64, 80, 96, 112, 128, 144, 160, -1};
constexpr int kRatesMpeg1[3] = {44100, 48000, 32000};

// Decodes the 4-byte header at p: a Layer III frame of known size, or nullopt.
std::optional<Mp3Frame> ParseHeader(const uint8_t* p) {
  const uint32_t h = Be32(p);
  if ((h >> 21) != 0x7FF) return std::nullopt;
  const int version_bits = (h >> 19) & 3;  // 0 = 2.5, 1 reserved, 2 = MPEG-2, 3 = MPEG-1
  const int layer_bits = (h >> 17) & 3;    // 1 = Layer III
  const int bitrate_index = (h >> 12) & 15;
  const int rate_index = (h >> 10) & 3;
  if (version_bits == 1 || layer_bits != 1 || bitrate_index == 0 || bitrate_index == 15 ||
      rate_index == 3) {
    return std::nullopt;
  }
  Mp3Frame f;
  const bool mpeg1 = version_bits == 3;
  f.mpeg_version = mpeg1 ? 10 : version_bits == 2 ? 20 : 25;
  f.crc_protected = ((h >> 16) & 1) == 0;
  f.bitrate_kbps = (mpeg1 ? kBitratesMpeg1 : kBitratesMpeg2)[bitrate_index];
  f.sample_rate = kRatesMpeg1[rate_index] / (mpeg1 ? 1 : version_bits == 2 ? 2 : 4);
  const int padding = (h >> 9) & 1;
  f.channels = ((h >> 6) & 3) == 3 ? 1 : 2;
  f.samples = mpeg1 ? 1152 : 576;
  // bytes = samples / 8 * bitrate / rate, + one padding byte for Layer III.
  f.size = (mpeg1 ? 144000 : 72000) * f.bitrate_kbps / f.sample_rate + padding;
  f.side_info_bytes = mpeg1 ? (f.channels == 1 ? 17 : 32) : (f.channels == 1 ? 9 : 17);
  return f;
}

// Fills main_data_begin and main_data_bits from the side info (ISO 11172-3 2.4.1.7, 13818-3).
void ParseSideInfo(const uint8_t* frame, Mp3Frame& f) {
  BitReader r(frame + 4 + (f.crc_protected ? 2 : 0), static_cast<size_t>(f.side_info_bytes));
  const bool mpeg1 = f.mpeg_version == 10;
  f.main_data_begin = static_cast<int>(r.Read(mpeg1 ? 9 : 8));
  r.Read(mpeg1 ? (f.channels == 1 ? 5 : 3) : (f.channels == 1 ? 1 : 2));  // private bits
  if (mpeg1) r.Read(4 * f.channels);                                      // scfsi
  const int granules = mpeg1 ? 2 : 1;
  f.main_data_bits = 0;
  for (int gr = 0; gr < granules; ++gr) {
    for (int ch = 0; ch < f.channels; ++ch) {
      f.main_data_bits += static_cast<int>(r.Read(12));  // part2_3_length
      r.Read(9 + 8);                                     // big_values, global_gain
      r.Read(mpeg1 ? 4 : 9);                             // scalefac_compress
      r.Read(1 + 22);         // window_switching_flag and its 22 bits (either layout)
      r.Read(mpeg1 ? 3 : 2);  // (preflag), scalefac_scale, count1table_select
    }
  }
}

// The Xing/Info header of `f` when it has one (at the start of its payload).
std::optional<XingHeader> ParseXing(const std::vector<uint8_t>& bytes, const Mp3Frame& f) {
  const size_t at = static_cast<size_t>(f.offset) + static_cast<size_t>(f.payload_offset());
  const size_t end = static_cast<size_t>(f.offset) + static_cast<size_t>(f.size);
  if (at + 8 > end) return std::nullopt;
  const uint8_t* p = bytes.data() + at;
  XingHeader x;
  if (std::memcmp(p, "Xing", 4) == 0) {
    x.vbr = true;
  } else if (std::memcmp(p, "Info", 4) != 0) {
    return std::nullopt;
  }
  const uint32_t flags = Be32(p + 4);
  size_t pos = at + 8;
  auto room = [&](size_t n) { return pos + n <= end; };
  if ((flags & 1) != 0 && room(4)) x.frames = Be32(bytes.data() + pos), pos += 4;
  if ((flags & 2) != 0 && room(4)) x.bytes = Be32(bytes.data() + pos), pos += 4;
  if ((flags & 4) != 0 && room(100)) {
    std::array<uint8_t, 100> toc{};
    std::copy_n(bytes.data() + pos, 100, toc.begin());
    x.toc = toc;
    pos += 100;
  }
  if ((flags & 8) != 0 && room(4)) x.quality = Be32(bytes.data() + pos), pos += 4;
  if (room(36)) {
    // The LAME tag: 9-byte encoder string, revision, lowpass, ReplayGain (8), flags, bit rate,
    // delay/padding (12 + 12 bits), misc, MP3Gain, preset (2), music length, music CRC, tag CRC.
    const uint8_t* t = bytes.data() + pos;
    LameTag lame;
    lame.encoder.assign(reinterpret_cast<const char*>(t), 9);
    lame.encoder_delay = (t[21] << 4) | (t[22] >> 4);
    lame.padding = ((t[22] & 0x0F) << 8) | t[23];
    lame.music_length = Be32(t + 28);
    lame.music_crc = Be16(t + 32);
    lame.tag_crc = Be16(t + 34);
    x.lame = lame;
  }
  return x;
}

size_t TagCrcFieldOffset(const Mp3Stream& s) {
  // Relative to the Info frame: the LAME tag's last two bytes.
  const XingHeader& x = *s.xing;
  size_t pos = static_cast<size_t>(s.info_frame->payload_offset()) + 8;
  if (x.frames) pos += 4;
  if (x.bytes) pos += 4;
  if (x.toc) pos += 100;
  if (x.quality) pos += 4;
  return pos + 34;
}

}  // namespace mp3_stream_detail

namespace mp3s = mp3_stream_detail;

int64_t Mp3Stream::audio_samples() const {
  int64_t n = 0;
  for (const auto& f : frames) n += f.samples;
  return n;
}

uint16_t Crc16Lame(std::span<const uint8_t> data, uint16_t crc) {
  for (uint8_t b : data) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xA001 : crc >> 1;
  }
  return crc;
}

Mp3Stream ReadMp3Stream(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Mp3Stream s;
    s.problems.push_back("cannot read " + path.string());
    return s;
  }
  return ParseMp3Stream(
      std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
}

Mp3Stream ParseMp3Stream(std::vector<uint8_t> bytes) {
  Mp3Stream s;
  s.bytes = std::move(bytes);
  const auto& b = s.bytes;
  mp3s::ProblemList problems;
  size_t pos = 0;
  // ID3v2: "ID3", version (2), flags, a 28-bit syncsafe size, and a 10-byte footer when flagged.
  if (b.size() >= 10 && std::memcmp(b.data(), "ID3", 3) == 0) {
    const size_t size = (size_t{b[6]} << 21) | (size_t{b[7]} << 14) | (size_t{b[8]} << 7) | b[9];
    pos = 10 + size + ((b[5] & 0x10) != 0 ? 10 : 0);
    s.id3v2_bytes = static_cast<int64_t>(pos);
  }
  bool first = true;
  while (pos < b.size()) {
    const size_t left = b.size() - pos;
    if (left == 128 && std::memcmp(b.data() + pos, "TAG", 3) == 0) {
      s.trailing_tag_bytes = 128;
      break;
    }
    if (left >= 32 && std::memcmp(b.data() + pos, "APETAGEX", 8) == 0) {
      s.trailing_tag_bytes = static_cast<int64_t>(left);
      break;
    }
    std::optional<Mp3Frame> f = left >= 4 ? mp3s::ParseHeader(b.data() + pos) : std::nullopt;
    if (!f) {
      // Resynchronise on the next header so that one bad spot does not hide the rest.
      size_t next = pos + 1;
      while (next + 4 <= b.size() && !mp3s::ParseHeader(b.data() + next)) ++next;
      if (next + 4 > b.size()) next = b.size();
      problems.Add("{} bytes that are not an MP3 frame at offset {}", next - pos, pos);
      pos = next;
      continue;
    }
    f->offset = static_cast<int64_t>(pos);
    if (static_cast<size_t>(f->size) > left) {
      problems.Add("the last frame (offset {}) is truncated: {} of {} bytes", pos, left, f->size);
      break;
    }
    mp3s::ParseSideInfo(b.data() + pos, *f);
    if (first) {
      first = false;
      if (auto x = mp3s::ParseXing(b, *f)) {
        s.xing = x;
        s.info_frame = *f;
        pos += static_cast<size_t>(f->size);
        continue;
      }
    }
    s.frames.push_back(*f);
    pos += static_cast<size_t>(f->size);
  }
  if (s.frames.empty()) problems.Add("no audio frames");
  s.problems = std::move(problems).Take();
  return s;
}

std::vector<std::string> CheckMp3Crcs(const Mp3Stream& s) {
  mp3s::ProblemList problems;
  if (!s.xing || !s.xing->lame) {
    problems.Add("no LAME tag, so no CRC to check");
    return std::move(problems).Take();
  }
  const LameTag& lame = *s.xing->lame;
  const Mp3Frame& info = *s.info_frame;

  // Music CRC: every byte of the audio frames after the Info frame (FFmpeg's mp3 muxer runs its
  // CRC over each audio packet it writes; LAME over the same frames). A trailing tag is not music.
  uint16_t music = 0;
  for (const auto& f : s.frames) {
    music = Crc16Lame(
        std::span(s.bytes).subspan(static_cast<size_t>(f.offset), static_cast<size_t>(f.size)),
        music);
  }
  if (music != lame.music_crc) {
    problems.Add("music CRC is {:04x}, the frames give {:04x}", lame.music_crc, music);
  }

  // Tag CRC: LAME defines it over the Info frame's first 190 bytes, which is exactly what precedes
  // the field in an MPEG-1 stereo frame. Where the field sits earlier (mono, MPEG-2), FFmpeg still
  // runs over 190 bytes, computed while the field was zero and past a frame shorter than 190 bytes
  // (reading zeros), whereas LAME runs over the bytes before the field: accept either.
  const size_t field = mp3s::TagCrcFieldOffset(s);
  const auto frame =
      std::span(s.bytes).subspan(static_cast<size_t>(info.offset), static_cast<size_t>(info.size));
  std::vector<uint8_t> ffmpeg_view(190, 0);
  std::copy_n(frame.begin(), std::min<size_t>(190, frame.size()), ffmpeg_view.begin());
  for (size_t i = field; i < field + 2 && i < ffmpeg_view.size(); ++i) ffmpeg_view[i] = 0;
  const uint16_t ffmpeg_crc = Crc16Lame(ffmpeg_view);
  const uint16_t lame_crc = Crc16Lame(frame.first(std::min(field, frame.size())));
  if (lame.tag_crc != ffmpeg_crc && lame.tag_crc != lame_crc) {
    problems.Add("tag CRC is {:04x}, the Info frame gives {:04x}", lame.tag_crc, ffmpeg_crc);
  }
  return std::move(problems).Take();
}

std::vector<std::string> CheckMp3Header(const Mp3Stream& s, int64_t decoded_samples,
                                        int expected_delay) {
  mp3s::ProblemList problems;
  if (!s.xing) {
    problems.Add("no Xing/Info frame");
    return std::move(problems).Take();
  }
  const XingHeader& x = *s.xing;
  const Mp3Frame& info = *s.info_frame;
  const auto frame_count = static_cast<int64_t>(s.frames.size());

  bool one_bitrate = true;
  int64_t audio_bytes = 0;
  for (size_t i = 0; i < s.frames.size(); ++i) {
    const Mp3Frame& f = s.frames[i];
    audio_bytes += f.size;
    one_bitrate &= f.bitrate_kbps == s.frames.front().bitrate_kbps;
    if (f.mpeg_version != info.mpeg_version || f.sample_rate != info.sample_rate ||
        f.channels != info.channels) {
      problems.Add("frame {} is MPEG-{} {} Hz {} ch, the Info frame MPEG-{} {} Hz {} ch", i,
                   f.mpeg_version / 10.0, f.sample_rate, f.channels, info.mpeg_version / 10.0,
                   info.sample_rate, info.channels);
    }
  }
  // FFmpeg's muxer (like LAME) writes "Info" only when every audio frame has one bit rate.
  if (x.vbr == one_bitrate && !s.frames.empty()) {
    problems.Add("the header says {} but the frames have {}", x.vbr ? "Xing (VBR)" : "Info (CBR)",
                 one_bitrate ? "one bit rate" : "several bit rates");
  }

  if (!x.frames) {
    problems.Add("no frame count");
  } else if (*x.frames != frame_count) {
    problems.Add("frame count is {}, the stream has {} audio frames", *x.frames, frame_count);
  }
  // Bytes and music length count the Info frame too.
  const int64_t stream_bytes = info.size + audio_bytes;
  if (!x.bytes) {
    problems.Add("no byte count");
  } else if (*x.bytes != stream_bytes) {
    problems.Add("byte count is {}, the Info and audio frames have {}", *x.bytes, stream_bytes);
  }

  if (!x.toc) {
    problems.Add("no TOC");
  } else if (stream_bytes > 0 && frame_count > 0) {
    const auto& toc = *x.toc;
    if (toc[0] != 0) problems.Add("TOC[0] is {}, not 0", toc[0]);
    // Entry i gives, in 1/256 of the bytes, where the frame i% into the stream is. Writers
    // sample positions in bags of frames (FFmpeg: the position after the bag's last frame, bags of
    // up to frames/200), so accept anything from the start of that frame to the end of the bag
    // holding it, one unit either side for rounding; a TOC built for another stream (or not
    // rebuilt after a join) lands far outside.
    std::vector<int64_t> start(s.frames.size() + 1, info.size);
    for (size_t i = 0; i < s.frames.size(); ++i) start[i + 1] = start[i] + s.frames[i].size;
    const int64_t bag = 1 + frame_count / 200;
    auto scaled = [&](int64_t frame) {
      return std::min<int64_t>(
          255, 256 * start[static_cast<size_t>(std::min(frame, frame_count))] / stream_bytes);
    };
    for (size_t i = 1; i < 100; ++i) {
      if (toc[i] < toc[i - 1]) problems.Add("TOC decreases at entry {}", i);
      const int64_t frame = frame_count * static_cast<int64_t>(i) / 100;
      const int64_t low = scaled(frame) - 1, high = scaled(frame + bag) + 1;
      if (toc[i] < low || toc[i] > high) {
        problems.Add("TOC[{}] is {}, the frames put {}% of the time at {}..{}/256 of the bytes", i,
                     toc[i], i, low + 1, high - 1);
      }
    }
  }

  if (!x.lame) {
    problems.Add("no LAME tag: no encoder delay and padding for gapless decoding");
    return std::move(problems).Take();
  }
  const LameTag& lame = *x.lame;
  if (lame.music_length != stream_bytes) {
    problems.Add("music length is {}, the Info and audio frames have {}", lame.music_length,
                 stream_bytes);
  }
  if (lame.encoder_delay != expected_delay) {
    problems.Add("encoder delay is {}, expected {}", lame.encoder_delay, expected_delay);
  }
  const int64_t coded = s.audio_samples();
  const int64_t want_padding = coded - lame.encoder_delay - decoded_samples;
  if (lame.padding != want_padding) {
    problems.Add(
        "padding is {}; {} frames of {} samples less delay {} and the {} decoded samples "
        "give {}",
        lame.padding, frame_count, info.samples, lame.encoder_delay, decoded_samples, want_padding);
  }
  return std::move(problems).Take();
}

ReservoirWalk WalkMp3Reservoir(const Mp3Stream& s) {
  ReservoirWalk walk;
  mp3s::ProblemList problems;
  // Positions in the concatenation of the audio frames' payloads (side info and headers out):
  // main_data_begin counts back in exactly that byte stream.
  int64_t payload_start = 0;  // of the current frame
  int64_t previous_end = 0;   // where the previous frame's main data ended
  for (size_t i = 0; i < s.frames.size(); ++i) {
    const Mp3Frame& f = s.frames[i];
    const int64_t payload = f.size - f.payload_offset();
    const int64_t begin = payload_start - f.main_data_begin;
    const int64_t end = begin + (f.main_data_bits + 7) / 8;
    walk.max_main_data_begin = std::max(walk.max_main_data_begin, f.main_data_begin);
    if (begin < 0) {
      problems.Add(
          "frame {} (offset {}): main_data_begin {} reaches {} bytes before the first "
          "audio frame",
          i, f.offset, f.main_data_begin, -begin);
    } else if (begin < previous_end) {
      problems.Add(
          "frame {} (offset {}): main data starts {} bytes back, inside the previous "
          "frame's main data (overlap of {} bytes)",
          i, f.offset, f.main_data_begin, previous_end - begin);
    } else {
      walk.unused_bytes += begin - previous_end;
    }
    if (end > payload_start + payload) {
      problems.Add("frame {} (offset {}): main data of {} bits runs {} bytes past its frame", i,
                   f.offset, f.main_data_bits, end - payload_start - payload);
    }
    previous_end = std::max(previous_end, end);
    payload_start += payload;
  }
  walk.unused_bytes += std::max<int64_t>(0, payload_start - previous_end);
  walk.problems = std::move(problems).Take();
  return walk;
}

std::vector<std::string> CheckMp3Stream(const Mp3Stream& s, int64_t decoded_samples) {
  std::vector<std::string> all;
  auto add = [&](std::string_view kind, const std::vector<std::string>& list) {
    for (const auto& p : list) all.push_back(fmt::format("{}: {}", kind, p));
  };
  add("stream", s.problems);
  add("crc", CheckMp3Crcs(s));
  add("header", CheckMp3Header(s, decoded_samples));
  add("reservoir", WalkMp3Reservoir(s).problems);
  return all;
}

}  // namespace vmp3::test
