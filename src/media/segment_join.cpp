#include "media/segment_join.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <span>

#include "media/mp3_frame.hpp"

namespace vmp3::media {
namespace {

using Frames = std::vector<std::vector<uint8_t>>;

// The `count` payload bytes just before frames[before] in stream order (the decoder's view: the
// frames' payloads concatenated, headers and side information left out). False when the frames
// before do not hold that many.
bool ReadReservoir(const Frames& frames, size_t before, int count, std::vector<uint8_t>& out) {
  out.resize(static_cast<size_t>(count));
  size_t pos = out.size();
  for (size_t k = before; k-- > 0 && pos > 0;) {
    auto header = mp3::ParseHeader(frames[k]);
    if (!header || frames[k].size() < static_cast<size_t>(header->frame_bytes)) return false;
    size_t n = std::min(pos, static_cast<size_t>(header->payload_bytes()));
    std::memcpy(out.data() + pos - n, frames[k].data() + header->frame_bytes - n, n);
    pos -= n;
  }
  return pos == 0;
}

// Writes `bytes` as the last payload bytes before frames[before], the inverse of ReadReservoir.
bool WriteTail(Frames& frames, size_t before, std::span<const uint8_t> bytes) {
  size_t pos = bytes.size();
  for (size_t k = before; k-- > 0 && pos > 0;) {
    auto header = mp3::ParseHeader(frames[k]);
    if (!header || frames[k].size() < static_cast<size_t>(header->frame_bytes)) return false;
    size_t n = std::min(pos, static_cast<size_t>(header->payload_bytes()));
    std::memcpy(frames[k].data() + header->frame_bytes - n, bytes.data() + pos - n, n);
    pos -= n;
  }
  return pos == 0;
}

struct Fit {
  int reservoir = 0;  // main_data_begin of the next segment's frame t
  int free = 0;       // free tail bytes after the previous segment's frame t - 1
};

std::optional<Fit> Measure(const EncodedSegment& prev, const EncodedSegment& next, int64_t t) {
  auto before = mp3::ParseFrame(prev.frames[static_cast<size_t>(t - 1 - prev.first_frame)]);
  auto first = mp3::ParseFrame(next.frames[static_cast<size_t>(t - next.first_frame)]);
  if (!before || !first) return std::nullopt;
  Fit fit{first->main_data_begin, before->FreeTailBytes()};
  if (fit.free < 0) return std::nullopt;
  if (fit.reservoir > 0 && t == next.first_frame) return std::nullopt;  // nothing to copy from
  return fit;
}

Status Repair(EncodedSegment& prev, const EncodedSegment& next, int64_t t, int reservoir) {
  if (reservoir == 0) return {};
  std::vector<uint8_t> bytes;
  if (!ReadReservoir(next.frames, static_cast<size_t>(t - next.first_frame), reservoir, bytes) ||
      !WriteTail(prev.frames, static_cast<size_t>(t - prev.first_frame), bytes)) {
    return MakeError(
        ErrorCode::kInternal,
        fmt::format("segment seam at frame {}: reservoir of {} bytes out of range", t, reservoir));
  }
  return {};
}

// Joins at `t` if the next segment's reservoir fits into the previous one's tail there, growing
// frame t - 1 if `grow` allows. nullopt: not at t.
Result<std::optional<Seam>> JoinAt(EncodedSegment& prev, const EncodedSegment& next, int64_t t,
                                   bool grow) {
  auto fit = Measure(prev, next, t);
  if (!fit) return std::nullopt;
  int grown = 0;
  if (fit->reservoir > fit->free) {
    if (!grow) return std::nullopt;
    std::vector<uint8_t>& last = prev.frames[static_cast<size_t>(t - 1 - prev.first_frame)];
    const size_t old_size = last.size();
    if (!mp3::GrowFrame(last, fit->reservoir - fit->free)) return std::nullopt;
    grown = static_cast<int>(last.size() - old_size);
  }
  if (auto s = Repair(prev, next, t, fit->reservoir); !s) return tl::unexpected(s.error());
  return Seam{t, fit->reservoir, grown};
}

}  // namespace

std::optional<ReservoirState> ReservoirStateOf(std::span<const uint8_t> frame) {
  auto parsed = mp3::ParseFrame(frame);
  if (!parsed) return std::nullopt;
  return ReservoirState{parsed->main_data_begin, parsed->main_data_bits};
}

Result<Seam> JoinSeam(EncodedSegment& prev, const EncodedSegment& next, bool repair) {
  const int64_t lo = next.kept_from;
  const int64_t hi = std::min(prev.end_frame() - kUnsettledTailFrames, next.end_frame() - 1);
  if (lo <= prev.first_frame || lo < next.first_frame || lo > prev.end_frame() ||
      lo >= next.end_frame() || (repair && lo > hi)) {
    return MakeError(
        ErrorCode::kInternal,
        fmt::format("segments do not overlap at frame {} (previous {}..{}, next "
                    "{}..{})",
                    lo, prev.first_frame, prev.end_frame(), next.first_frame, next.end_frame()));
  }
  if (!repair) return Seam{lo, 0, 0};

  // Where the encoders agree, the next segment's frames are the single pass's from there on.
  const int64_t met = prev.meets_next_at;
  if (met >= lo && met <= std::min(hi, next.kept_to - 1)) {
    for (bool grow : {false, true}) {
      auto seam = JoinAt(prev, next, met, grow);
      if (!seam) return tl::unexpected(seam.error());
      if (*seam) {
        (*seam)->exact = true;
        return **seam;
      }
    }
  }
  // Else where the reservoir fits as it is (with converged VBR segments this is the first
  // candidate, and the bytes written are the very bytes a single pass wrote there), or, nowhere
  // fitting, where a higher bit rate for frame t - 1 appends room to its payload.
  for (bool grow : {false, true}) {
    for (int64_t t = lo; t <= hi; ++t) {
      auto seam = JoinAt(prev, next, t, grow);
      if (!seam) return tl::unexpected(seam.error());
      if (*seam) return **seam;
    }
  }
  return MakeError(
      ErrorCode::kInternal,
      fmt::format("no frame in {}..{} can take the next segment's bit reservoir", lo, hi));
}

}  // namespace vmp3::media
