// Joining independently encoded MP3 segments into one stream: the seam repair of the parallel
// encoder (docs/architecture.md, "Parallel encoding").
//
// Each segment was encoded by its own LAME instance on the global frame grid: its frames[j] is
// global frame first_frame + j. It started `kept_from - first_frame` frames early (pre-roll, so
// its psychoacoustic state has converged by kept_from) and ran a few frames past kept_to
// (post-roll, so its frames before kept_to saw real lookahead rather than the end-of-input flush).
//
// A seam at global frame t takes the previous segment's frames before t and the next one's from t
// on. The next segment's frame t may start its audio data up to 511 bytes back (main_data_begin)
// in bytes its own pre-roll frames carried; the previous segment filled those positions with its
// own data. The repair copies those reservoir bytes into the previous segment's free tail (the
// bytes after its last kept frame's audio data), choosing t within the overlap where they fit; if
// they fit nowhere, the last kept frame is re-headed at a higher bit rate to make room (its audio
// is untouched). The result decodes exactly as the next segment alone would from t on.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/error.hpp"

namespace vmp3::media {

struct EncodedSegment {
  int64_t first_frame = 0;  // global index of frames[0]
  int64_t kept_from = 0;    // first frame meant to be kept (pre-roll before it)
  int64_t kept_to = 0;      // frames from here on are post-roll (ignored for the last segment)
  // The first frame from which this segment's encoder and the next one's agree (kAgreementFrames
  // frames of the same ReservoirState), found while this one ran on past kept_to (the parallel
  // encoder's chase); -1 if they did not within the chase's budget.
  int64_t meets_next_at = -1;
  std::vector<std::vector<uint8_t>> frames;

  int64_t end_frame() const { return first_frame + static_cast<int64_t>(frames.size()); }
};

struct Seam {
  int64_t frame = 0;        // t: the first frame taken from the next segment
  int reservoir_bytes = 0;  // bytes copied into the previous segment's tail
  int grown_bytes = 0;      // bytes a higher bit rate added to frame t - 1 (0 almost always)
  // The encoders agreed from t on (prev.meets_next_at): the stream decodes exactly as a single
  // pass across this seam. False: the next segment's reservoir level still differed, so frames
  // that want more bits than LAME's per-frame limit may be quantised differently until it
  // converges (docs/architecture.md, "Parallel encoding").
  bool exact = false;
};

// What a frame tells of its encoder's state: the bit reservoir's level before it (main_data_begin
// bytes; LAME keeps exactly this many, see its format_bitstream) and the bits it spent. Two LAME
// encoders with converged psychoacoustic state that show the same for a few frames running carry
// the same reservoir from there on, and so encode every later frame alike.
struct ReservoirState {
  int main_data_begin = 0;
  int main_data_bits = 0;
  bool operator==(const ReservoirState&) const = default;
};
std::optional<ReservoirState> ReservoirStateOf(std::span<const uint8_t> frame);

// Frames running in which two encoders must agree before a seam is called exact.
inline constexpr int kAgreementFrames = 4;

// Frames at the end of a flushed encode that differ from a continuing one (LAME's lookahead saw
// the flush's silence): never kept from a segment that is not the last.
inline constexpr int kUnsettledTailFrames = 2;

// Picks the seam between `prev` and `next` and repairs `prev`'s tail for it: at
// prev.meets_next_at when that lies in the overlap and before next.kept_to (an exact seam), else
// at the first frame from next.kept_from on where the reservoir fits. With `repair` false (the
// negative control of the tests) the seam is next.kept_from and nothing is copied.
// kInternal when the segments do not overlap as described or no frame in the overlap can take
// the reservoir (not seen in practice: a 320 kbps frame has room for any reservoir).
Result<Seam> JoinSeam(EncodedSegment& prev, const EncodedSegment& next, bool repair = true);

}  // namespace vmp3::media
