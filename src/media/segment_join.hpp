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
#include <vector>

#include "common/error.hpp"

namespace vmp3::media {

struct EncodedSegment {
  int64_t first_frame = 0;  // global index of frames[0]
  int64_t kept_from = 0;    // first frame meant to be kept (pre-roll before it)
  int64_t kept_to = 0;      // frames from here on are post-roll (ignored for the last segment)
  std::vector<std::vector<uint8_t>> frames;

  int64_t end_frame() const { return first_frame + static_cast<int64_t>(frames.size()); }
};

struct Seam {
  int64_t frame = 0;        // t: the first frame taken from the next segment
  int reservoir_bytes = 0;  // bytes copied into the previous segment's tail
  int grown_bytes = 0;      // bytes a higher bit rate added to frame t - 1 (0 almost always)
};

// Frames at the end of a flushed encode that differ from a continuing one (LAME's lookahead saw
// the flush's silence): never kept from a segment that is not the last.
inline constexpr int kUnsettledTailFrames = 2;

// Picks the seam between `prev` and `next` and repairs `prev`'s tail for it. With `repair` false
// (the negative control of the tests) the seam is next.kept_from and nothing is copied.
// kInternal when the segments do not overlap as described or no frame in the overlap can take
// the reservoir (not seen in practice: a 320 kbps frame has room for any reservoir).
Result<Seam> JoinSeam(EncodedSegment& prev, const EncodedSegment& next, bool repair = true);

}  // namespace vmp3::media
