// One conversion's MP3 encoding on several threads (docs/architecture.md, "Parallel encoding").
//
// The converting thread pushes the PCM stream (exactly what a single-pass encode would get) frame
// by frame into a bounded window. Worker threads take segments in order: segment i keeps global
// frames [i*S, (i+1)*S) and encodes from K frames earlier (pre-roll) to P frames later
// (post-roll) with its own LAME instance, opened with the single pass's settings, on the global
// frame grid. Finished segments are joined in order (segment_join.hpp) and handed to the sink on
// the converting thread, so the muxer (and its Xing/LAME header, CRCs and TOC) sees one ordinary
// stream.
//
// Memory: the window holds at most `window_frames` frames of PCM (the converting thread waits
// while it is full; the oldest running segment can always advance, so this cannot deadlock),
// plus the compressed frames of at most `threads` segments waiting for their predecessor.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "media/ffmpeg_util.hpp"
#include "media/segment_join.hpp"

namespace vmp3::media {

struct ParallelPlan {
  int threads = 2;
  int channels = 2;
  int frame_samples = 1152;  // the encoder's frame size: 1152, or 576 below 32 kHz
  int sample_rate = 44100;
  int64_t segment_frames = 0;  // S
  int preroll_frames = 0;      // K
  int postroll_frames = 0;     // P
  // At most this many frames past P a segment runs on until its encoder and the next one's agree
  // (the chase; 0: never, as in the negative control).
  int chase_frames = 0;
  int64_t window_frames = 0;    // PCM frames held at most; >= S + K + P + 1
  int64_t expected_frames = 0;  // the input's length in frames as far as known (0: unknown)
  bool repair_seams = true;

  // Segment length, pre-roll and window for an input of `expected_frames` (0 if unknown).
  // `segment_seconds` > 0 forces a segment length (tests). `vbr` false (CBR): no chase, since
  // there LAME's quantisation also follows history the frames do not show (its step-size search
  // starts where the last one ended), so agreeing frames do not mean agreeing encoders.
  static ParallelPlan For(int threads, int channels, int frame_samples, int sample_rate,
                          int64_t expected_frames, double segment_seconds, bool repair_seams,
                          bool vbr);
};

// Inputs shorter than this are encoded in one pass (unless a segment length is forced).
double ParallelMinimumSeconds();

// Where the last segment should start (keep frames from) so that it and the previous segment,
// which started keeping at `previous_start` and is now at `previous_position`, have the same work
// left: the previous one `start + postroll - previous_position` frames, the last one
// `end - start + preroll`. Never later than `planned`; never so early that the last segment's
// pre-roll would begin behind the previous one's position (that PCM may be gone from the window)
// or that the previous segment would keep less than a seam's overlap. Returns `planned` when
// moving does not help.
int64_t BalancedLastStart(int64_t planned, int64_t end, int64_t previous_start,
                          int64_t previous_position, int preroll, int postroll);

class ParallelEncoder {
 public:
  // Opens one LAME encoder with the single pass's settings (called on worker threads).
  using EncoderFactory = std::function<Result<CodecContextPtr>()>;
  // Receives the joined stream's frames in order, with their global index, on the thread that
  // calls Push or Finish.
  using FrameSink = std::function<Status(std::vector<uint8_t>&& frame, int64_t index)>;

  ParallelEncoder(const ParallelPlan& plan, EncoderFactory factory, FrameSink sink,
                  std::stop_token stop);
  ~ParallelEncoder();  // stops and joins the workers (a conversion that ends early)
  ParallelEncoder(const ParallelEncoder&) = delete;
  ParallelEncoder& operator=(const ParallelEncoder&) = delete;

  // Appends one frame of planar float PCM: plan.frame_samples samples per channel, fewer only
  // for the last. Waits while the window is full. Errors: a worker's, kCancelled.
  Status Push(const AVFrame& frame);
  // The input ended: waits for every segment and hands the rest of the stream to the sink.
  // `tick` is called every few tens of milliseconds while waiting (progress reports).
  Status Finish(const std::function<void()>& tick);

  // Frames encoded so far, counting each global frame once (for progress).
  int64_t frames_encoded() const { return frames_encoded_.load(std::memory_order_relaxed); }
  int segments() const;
  // Frames the workers' LAMEs returned, pre-roll, post-roll, chases and flushes included.
  int64_t frames_lame_encoded() const { return frames_lame_encoded_.load(); }
  // Seams joined where the encoders had not come to agree (Seam::exact false).
  int inexact_seams() const;

 private:
  struct Done {
    std::optional<EncodedSegment> segment;  // nullopt: the segment does not exist (input ended)
  };

  void Work(std::stop_token stop);
  // False when the input ended before this segment (so it does not exist).
  Result<bool> EncodeSegment(int64_t index, EncodedSegment& out);
  Status Feed(AVCodecContext* encoder, AVPacket& packet, EncodedSegment& out, AVFrame* frame);
  // A segment's chase, once past its post-roll (ChaseLocked).
  struct Chase {
    int64_t candidate = -1;     // the first seam not yet ruled out
    int64_t compared = -1;      // frames before this compared with the next segment's
    int64_t disagreed_at = -1;  // the last of those that differed or came near the frame limit
    int busy_bits = -1;         // "near": more bits than 3/4 of the largest frame's payload
    std::vector<ReservoirState> mine;  // of out.frames, parsed so far
  };
  // Called once segment `index` has passed its post-roll: true to encode one more frame, because
  // the next segment's encoder has not yet been seen to agree with this one's
  // (out.meets_next_at), their reservoir levels' difference has changed some frame's
  // quantisation lately or could (frames near the limit), and the budget lasts. `chased`: frames
  // encoded past the post-roll so far. May wait for the next segment's states.
  bool ChaseLocked(std::unique_lock<std::mutex>& lock, int64_t index, int64_t chased,
                   EncodedSegment& out, Chase& chase);
  // Hands the reservoir states of segment `index`'s frames from out.frames[published] on to a
  // chasing predecessor (Head); false once nobody needs them.
  bool Publish(int64_t index, const EncodedSegment& out, size_t& published);
  int64_t FloorLocked() const;
  // Where segment `index` starts keeping frames: index * S, except from the rebalanced segment on.
  int64_t StartLocked(int64_t index) const;
  // Called as a worker takes segment `index`: when it is the last, moves its start back so that it
  // and the previous segment, still running, end together (else one core idles at the end).
  void RebalanceLocked(int64_t index);
  // Waits until `produced_` reaches `want`, the input ends or the encoder aborts.
  void WaitForDataLocked(std::unique_lock<std::mutex>& lock, int64_t want);
  Status DrainLocked(std::unique_lock<std::mutex>& lock);
  Status Emit(EncodedSegment& segment, int64_t from, int64_t to);
  Status FailLocked(Error error);

  const ParallelPlan plan_;
  const EncoderFactory factory_;
  const FrameSink sink_;
  const std::stop_token stop_;

  mutable std::mutex mutex_;
  std::condition_variable data_;   // workers wait for PCM (or the input's end)
  std::condition_variable space_;  // the converting thread waits for room, or finished segments
  // The smallest `produced_` a waiting worker needs (kNobody: none waits); workers ask for a
  // batch of frames, so the converting thread wakes them once a batch, not once a frame.
  static constexpr int64_t kNobody = INT64_MAX;
  int64_t data_wanted_ = kNobody;
  bool reader_waiting_ = false;
  struct FreeWindow {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, FreeWindow> window_;  // channel planes of `plane_` floats each
  size_t plane_ = 0;                           // window_frames * frame_samples
  float* Plane(int channel) const { return window_.get() + static_cast<size_t>(channel) * plane_; }
  int64_t produced_ = 0;       // frames pushed
  int64_t total_samples_ = 0;  // samples pushed
  bool input_ended_ = false;
  bool aborted_ = false;
  std::optional<Error> error_;
  int64_t next_segment_ = 0;              // the next segment a worker takes
  int64_t rebalanced_index_ = -1;         // the last segment, if its start was moved back
  int64_t rebalanced_start_ = 0;          // ... to here
  std::map<int64_t, int64_t> positions_;  // running segment -> the frame it reads next
  std::map<int64_t, Done> done_;          // finished segments not yet joined
  // A running segment's reservoir states from its kept_from on, for its predecessor's chase.
  // Exists while the predecessor runs.
  struct Head {
    int64_t from = 0;
    std::vector<ReservoirState> states;
    bool ended = false;  // the segment finished: no more states
  };
  std::map<int64_t, Head> heads_;
  std::condition_variable head_;  // a chasing worker waits for its successor's states
  int chasers_waiting_ = 0;
  // The chase's budget now: halved by every chase that ends without agreement (material where the
  // reservoirs do not meet soon tends not to further on either), back to plan.chase_frames after
  // one that agrees. Wasted work is so bounded by ~2 * plan.chase_frames a conversion.
  int chase_budget_ = 0;
  int inexact_seams_ = 0;
  std::optional<EncodedSegment> held_;  // the joined segment whose tail awaits the seam
  int64_t held_index_ = -1;
  int64_t held_from_ = 0;  // its first frame not yet handed to the sink
  bool finished_ = false;  // every frame handed to the sink
  int segments_ = 0;

  std::atomic<int64_t> frames_encoded_{0};
  std::atomic<int64_t> frames_lame_encoded_{0};
  std::vector<std::jthread> workers_;
};

}  // namespace vmp3::media
