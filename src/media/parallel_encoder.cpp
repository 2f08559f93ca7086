#include "media/parallel_encoder.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

#include "media/mp3_frame.hpp"

namespace vmp3::media {
namespace {

using namespace std::chrono_literals;

// PCM the window may hold, whatever the input's length. 32 MB is ~90 s of 48 kHz stereo: with two
// threads a segment of ~85 s, so the pre-roll costs ~3 % more CPU than a single pass.
constexpr int64_t kWindowBytes = 32 << 20;
// Pre-roll: LAME's state (psychoacoustic history, ATH adaptation, which decays ~0.925 a frame)
// converges on loud material within 3 frames and on quiet passages within ~90.
constexpr int kPrerollFrames = 128;
// Post-roll: a segment's last frames before a flush differ from a continuing encode; the seam is
// chosen among the frames in between, so a few more give it room to find a fit.
constexpr int kPostrollFrames = 12;
// Chase: how far past its post-roll a segment may run on to meet the next one's encoder (at most
// half a segment). Loud material agrees within the pre-roll already; where LAME's per-frame bit
// limit binds (dense material at ~300 kbps), the reservoirs meet anywhere from 20 to thousands of
// frames on (measured on the test fixtures: 21-482 at 48 kHz and 5.1, 271-3300 on noise).
constexpr int kChaseFrames = 512;
// ... but only while the encoders' reservoir difference changes, or could change, what they
// quantise: a chase ends after this many frames in a row that spend the same bits in both, far from
// the frame limit (on the benchmark's 10-minute input this bounds the chases to 24 frames a seam).
constexpr int kQuietChaseFrames = 32;
// The converting thread, once the window is full, waits for room for this many frames, and the
// workers wake it once this many frames: not once a frame.
constexpr int64_t kBatchFrames = 32;
// Below this a segment's pre-roll costs too much for what it saves.
constexpr double kMinSegmentSeconds = 20;

Error Cancelled() { return Error(ErrorCode::kCancelled, "conversion cancelled"); }

// A frame that does not parse (never seen from LAME) agrees with nothing valid.
ReservoirState StateOf(std::span<const uint8_t> frame) {
  return ReservoirStateOf(frame).value_or(ReservoirState{-1, -1});
}

}  // namespace

ParallelPlan ParallelPlan::For(int threads, int channels, int frame_samples, int sample_rate,
                               int64_t expected_frames, double segment_seconds, bool repair_seams,
                               bool vbr) {
  ParallelPlan plan;
  plan.threads = std::max(2, threads);
  plan.channels = channels;
  plan.frame_samples = frame_samples;
  plan.sample_rate = sample_rate;
  plan.preroll_frames = kPrerollFrames;
  // The negative control of the tests is the naive splice: no post-roll, no repair.
  plan.postroll_frames = repair_seams ? kPostrollFrames : 0;
  plan.repair_seams = repair_seams;
  const double frames_per_second = static_cast<double>(sample_rate) / frame_samples;
  const int64_t overlap = plan.preroll_frames + plan.postroll_frames;
  const int64_t budget =
      kWindowBytes / (static_cast<int64_t>(channels) * frame_samples * int64_t{sizeof(float)});
  // A seam's repair writes at most 511 bytes back: a segment must be longer than that.
  const int64_t shortest = 2 * kPostrollFrames + 8;
  if (segment_seconds > 0) {
    plan.segment_frames =
        std::max(shortest, static_cast<int64_t>(segment_seconds * frames_per_second + 0.5));
  } else {
    // With N workers, N - 1 segments' worth of PCM lies between the oldest and the newest.
    int64_t segment = budget / (plan.threads - 1) - overlap;
    if (expected_frames > 0) {
      // As many segments as the window allows, rounded up to a multiple of the threads and made
      // equal, so the threads finish together instead of one idling through the last segment.
      const int64_t per_round = plan.threads * std::max<int64_t>(segment, 1);
      const int64_t rounds = (expected_frames + per_round - 1) / per_round;
      const int64_t count = rounds * plan.threads;
      segment = (expected_frames + count - 1) / count;
    }
    plan.segment_frames =
        std::max(segment, static_cast<int64_t>(kMinSegmentSeconds * frames_per_second + 0.5));
  }
  // Room for N - 1 segments and their overlap between the oldest worker and the newest (the
  // budget for a long input; less for a short one), and never less than one whole segment.
  plan.chase_frames =
      repair_seams && vbr
          ? static_cast<int>(std::min<int64_t>(kChaseFrames, plan.segment_frames / 2))
          : 0;
  plan.window_frames = std::max((plan.threads - 1) * (plan.segment_frames + overlap) + 1,
                                plan.segment_frames + overlap + 1);
  plan.expected_frames = expected_frames;
  return plan;
}

double ParallelMinimumSeconds() { return 2 * kMinSegmentSeconds; }

int64_t BalancedLastStart(int64_t planned, int64_t end, int64_t previous_start,
                          int64_t previous_position, int preroll, int postroll) {
  // previous: start + postroll - position; last: end - start + preroll.
  const int64_t balanced = (end + preroll - postroll + previous_position) / 2;
  const int64_t lowest = std::max(previous_position + preroll + kBatchFrames,
                                  previous_start + 2 * postroll + kBatchFrames);
  return std::min(planned, std::max(balanced, lowest));
}

ParallelEncoder::ParallelEncoder(const ParallelPlan& plan, EncoderFactory factory, FrameSink sink,
                                 std::stop_token stop)
    : plan_(plan),
      factory_(std::move(factory)),
      sink_(std::move(sink)),
      stop_(std::move(stop)),
      chase_budget_(plan.chase_frames) {
  // One block, in 2 MB pages where the kernel offers them: a 32 MB window then costs ~16 page
  // faults instead of ~8000 (each a few microseconds in a virtual machine).
  constexpr size_t kHugePage = size_t{2} << 20;
  plane_ = static_cast<size_t>(plan_.window_frames * plan_.frame_samples);
  const size_t bytes =
      (plane_ * static_cast<size_t>(plan_.channels) * sizeof(float) + kHugePage - 1) / kHugePage *
      kHugePage;
  window_.reset(static_cast<float*>(std::aligned_alloc(kHugePage, bytes)));
  if (!window_) throw std::bad_alloc();
  madvise(window_.get(), bytes, MADV_HUGEPAGE);  // advice only: plain pages if refused
  for (int i = 0; i < plan_.threads; ++i)
    workers_.emplace_back([this](std::stop_token token) { Work(token); });
}

ParallelEncoder::~ParallelEncoder() {
  {
    std::lock_guard lock(mutex_);
    aborted_ = true;
  }
  data_.notify_all();
  space_.notify_all();
  head_.notify_all();
  workers_.clear();  // joins
}

int ParallelEncoder::segments() const {
  std::lock_guard lock(mutex_);
  return segments_;
}

int ParallelEncoder::inexact_seams() const {
  std::lock_guard lock(mutex_);
  return inexact_seams_;
}

Status ParallelEncoder::FailLocked(Error error) {
  if (!error_) error_ = std::move(error);
  aborted_ = true;
  data_.notify_all();
  space_.notify_all();
  head_.notify_all();
  return tl::unexpected(*error_);
}

void ParallelEncoder::WaitForDataLocked(std::unique_lock<std::mutex>& lock, int64_t want) {
  while (!(aborted_ || input_ended_ || produced_ >= want)) {
    data_wanted_ = std::min(data_wanted_, want);
    data_.wait(lock);
  }
}

int64_t ParallelEncoder::StartLocked(int64_t index) const {
  if (rebalanced_index_ < 0 || index < rebalanced_index_) return index * plan_.segment_frames;
  return rebalanced_start_ + (index - rebalanced_index_) * plan_.segment_frames;
}

void ParallelEncoder::RebalanceLocked(int64_t index) {
  if (index < 1 || rebalanced_index_ >= 0) return;
  const int64_t end = input_ended_ ? produced_ : plan_.expected_frames;
  const int64_t planned = StartLocked(index);
  // Only the last segment of the plan: it exists (the input goes past its start's post-roll) and
  // the next would not. (Taking one past it would split the previous segment's rest: a seam more,
  // for a tail this rebalance already avoids.)
  const int64_t P = plan_.postroll_frames;
  if (end <= 0 || planned + P >= end || planned + plan_.segment_frames + P < end) return;
  auto previous = positions_.find(index - 1);
  if (previous == positions_.end()) return;  // the previous segment is done: nothing to balance
  const int64_t start = BalancedLastStart(planned, end, StartLocked(index - 1), previous->second,
                                          plan_.preroll_frames, P);
  if (start >= planned) return;
  rebalanced_index_ = index;
  rebalanced_start_ = start;
}

int64_t ParallelEncoder::FloorLocked() const {
  int64_t floor = std::max<int64_t>(0, StartLocked(next_segment_) - plan_.preroll_frames);
  for (const auto& [index, position] : positions_) floor = std::min(floor, position);
  return floor;
}

Status ParallelEncoder::Push(const AVFrame& frame) {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (aborted_) return tl::unexpected(error_.value_or(Cancelled()));
    if (stop_.stop_requested()) return FailLocked(Cancelled());
    if (auto s = DrainLocked(lock); !s) return s;
    if (produced_ - FloorLocked() < plan_.window_frames) break;
    // Full: wait for room for a batch (the workers wake this thread once a batch, not once a
    // frame), or for a finished segment to join.
    reader_waiting_ = true;
    space_.wait_for(lock, 50ms, [&] {
      return aborted_ || done_.contains(held_index_ + 1) ||
             produced_ - FloorLocked() <= plan_.window_frames - kBatchFrames;
    });
    reader_waiting_ = false;
  }
  const size_t samples = static_cast<size_t>(std::min(frame.nb_samples, plan_.frame_samples));
  const size_t offset =
      static_cast<size_t>((produced_ % plan_.window_frames) * plan_.frame_samples);
  for (int ch = 0; ch < plan_.channels; ++ch) {
    std::memcpy(Plane(ch) + offset, frame.extended_data[ch], samples * sizeof(float));
  }
  ++produced_;
  total_samples_ += static_cast<int64_t>(samples);
  if (produced_ >= data_wanted_) {
    data_wanted_ = kNobody;
    data_.notify_all();
  }
  return {};
}

Status ParallelEncoder::Finish(const std::function<void()>& tick) {
  std::unique_lock lock(mutex_);
  input_ended_ = true;
  data_.notify_all();
  for (;;) {
    if (aborted_) return tl::unexpected(error_.value_or(Cancelled()));
    if (stop_.stop_requested()) return FailLocked(Cancelled());
    if (auto s = DrainLocked(lock); !s) return s;
    if (finished_) break;
    reader_waiting_ = true;
    space_.wait_for(lock, 50ms);
    reader_waiting_ = false;
    lock.unlock();
    if (tick) tick();
    lock.lock();
  }
  lock.unlock();
  workers_.clear();  // every worker has found the segment after the last missing, and returned
  return {};
}

Status ParallelEncoder::DrainLocked(std::unique_lock<std::mutex>& lock) {
  while (!finished_) {
    auto it = done_.find(held_index_ + 1);
    if (it == done_.end()) return {};
    std::optional<EncodedSegment> next = std::move(it->second.segment);
    done_.erase(it);
    lock.unlock();
    Status status;
    bool inexact = false;
    if (!held_) {
      // Segment 0. It always exists once a frame was pushed.
      held_ = std::move(next);
      held_index_ = 0;
      held_from_ = 0;
      if (!held_) finished_ = true;
    } else if (!next) {
      // The held segment is the last: its frames up to the end, flush included, are the stream's.
      status = Emit(*held_, held_from_, held_->end_frame());
      held_.reset();
      finished_ = true;
    } else {
      auto seam = JoinSeam(*held_, *next, plan_.repair_seams);
      if (!seam) {
        status = tl::unexpected(seam.error());
      } else {
        inexact = !seam->exact;
        status = Emit(*held_, held_from_, seam->frame);
        held_ = std::move(next);
        held_from_ = seam->frame;
        ++held_index_;
      }
    }
    lock.lock();
    if (!status) return FailLocked(status.error());
    if (inexact) ++inexact_seams_;
  }
  return {};
}

Status ParallelEncoder::Emit(EncodedSegment& segment, int64_t from, int64_t to) {
  for (int64_t f = from; f < to; ++f) {
    auto& bytes = segment.frames[static_cast<size_t>(f - segment.first_frame)];
    if (auto s = sink_(std::move(bytes), f); !s) return s;
  }
  return {};
}

void ParallelEncoder::Work(std::stop_token) {
  for (;;) {
    int64_t index = 0;
    {
      std::lock_guard lock(mutex_);
      if (aborted_) return;
      index = next_segment_++;
      RebalanceLocked(index);
      positions_[index] = std::max<int64_t>(0, StartLocked(index) - plan_.preroll_frames);
      // The predecessor, still running, will look for where its encoder and this one agree.
      if (index > 0 && plan_.chase_frames > 0 && positions_.contains(index - 1)) {
        heads_[index] = Head{.from = StartLocked(index)};
        head_.notify_all();
      }
    }
    EncodedSegment segment;
    auto exists = EncodeSegment(index, segment);
    std::lock_guard lock(mutex_);
    positions_.erase(index);
    heads_.erase(index + 1);  // this segment's chase is over
    if (auto head = heads_.find(index); head != heads_.end()) {
      head->second.ended = true;
      head_.notify_all();
    }
    if (!exists) {
      (void)FailLocked(exists.error());
      return;
    }
    if (*exists) ++segments_;
    done_[index] = Done{*exists ? std::optional<EncodedSegment>(std::move(segment)) : std::nullopt};
    space_.notify_all();
    if (!*exists) return;  // the input ended before this segment: so it does for later ones
  }
}

Result<bool> ParallelEncoder::EncodeSegment(int64_t index, EncodedSegment& out) {
  const int fs = plan_.frame_samples;
  {
    std::lock_guard lock(mutex_);
    out.kept_from = StartLocked(index);
    out.kept_to = StartLocked(index + 1);  // moves back if the next segment is rebalanced
  }
  out.first_frame = std::max<int64_t>(0, out.kept_from - plan_.preroll_frames);
  int64_t stop_at = out.kept_to + plan_.postroll_frames;
  if (index > 0) {
    // The segment exists when the input goes past the previous one's post-roll (else that one
    // encoded everything there was and is the last).
    std::unique_lock lock(mutex_);
    const int64_t needed = out.kept_from + plan_.postroll_frames;
    WaitForDataLocked(lock, needed + 1);
    if (aborted_) return tl::unexpected(error_.value_or(Cancelled()));
    if (produced_ <= needed) return false;
  }

  auto encoder = factory_();
  if (!encoder) return tl::unexpected(encoder.error());
  out.frames.reserve(static_cast<size_t>(stop_at - out.first_frame + 4));

  // One frame and one packet for the whole segment: the encoder copies the samples it is sent
  // (av_frame_make_writable gives a new buffer should it still hold the old one).
  FramePtr frame(av_frame_alloc());
  PacketPtr packet(av_packet_alloc());
  if (!frame || !packet) return MakeError(ErrorCode::kInternal, "out of memory");
  frame->nb_samples = fs;
  frame->format = AV_SAMPLE_FMT_FLTP;
  frame->sample_rate = plan_.sample_rate;
  av_channel_layout_default(&frame->ch_layout, plan_.channels);
  if (av_frame_get_buffer(frame.get(), 0) < 0)
    return MakeError(ErrorCode::kInternal, "out of memory");

  bool publishing = index > 0 && plan_.chase_frames > 0;
  size_t published = 0;  // out.frames handed to the chasing predecessor (Publish)
  Chase chase;
  for (int64_t f = out.first_frame;; ++f) {
    if (stop_.stop_requested()) return tl::unexpected(Cancelled());
    if (av_frame_make_writable(frame.get()) < 0)
      return MakeError(ErrorCode::kInternal, "out of memory");
    {
      std::unique_lock lock(mutex_);
      positions_[index] = f;
      // The next segment, taken while this one runs, may have moved this one's end back (never
      // behind a frame already read: RebalanceLocked keeps a pre-roll's distance).
      out.kept_to = StartLocked(index + 1);
      stop_at = out.kept_to + plan_.postroll_frames;
      if (f >= stop_at && !ChaseLocked(lock, index, f - stop_at, out, chase)) break;
      // Only the oldest worker makes room: wake the converting thread once it has a batch.
      if (reader_waiting_ && f % kBatchFrames == 0 &&
          produced_ - FloorLocked() <= plan_.window_frames - kBatchFrames) {
        space_.notify_one();
      }
      if (f >= produced_)
        WaitForDataLocked(lock, f < stop_at ? std::min(f + kBatchFrames, stop_at) : f + 1);
      if (aborted_) return tl::unexpected(error_.value_or(Cancelled()));
      if (f >= produced_) break;  // the input ended inside this segment: it is the last
      const int64_t samples = std::min<int64_t>(fs, total_samples_ - f * fs);
      frame->nb_samples = static_cast<int>(samples);
      const size_t offset = static_cast<size_t>((f % plan_.window_frames) * fs);
      for (int ch = 0; ch < plan_.channels; ++ch) {
        std::memcpy(frame->extended_data[ch], Plane(ch) + offset,
                    static_cast<size_t>(samples) * sizeof(float));
      }
    }
    frame->pts = f * fs;
    if (f >= out.kept_from && f < out.kept_to)
      frames_encoded_.fetch_add(1, std::memory_order_relaxed);
    if (auto s = Feed(encoder->get(), *packet, out, frame.get()); !s)
      return tl::unexpected(s.error());
    if (publishing) publishing = Publish(index, out, published);
  }
  {
    std::lock_guard lock(mutex_);
    positions_.erase(index);  // the PCM is no longer needed: let the window move on
    space_.notify_all();
  }
  if (auto s = Feed(encoder->get(), *packet, out, nullptr); !s) return tl::unexpected(s.error());
  frames_lame_encoded_.fetch_add(static_cast<int64_t>(out.frames.size()));
  return true;
}

bool ParallelEncoder::Publish(int64_t index, const EncodedSegment& out, size_t& published) {
  // Parsed outside the lock; the predecessor looks at most this far.
  std::vector<ReservoirState> states;
  for (; published < out.frames.size(); ++published)
    states.push_back(StateOf(out.frames[published]));
  if (states.empty()) return true;
  std::lock_guard lock(mutex_);
  auto it = heads_.find(index);
  if (it == heads_.end()) return false;  // the predecessor is done
  Head& head = it->second;
  const int64_t first = out.first_frame + static_cast<int64_t>(published - states.size());
  const int64_t limit = head.from + plan_.postroll_frames + plan_.chase_frames + kAgreementFrames;
  for (size_t k = 0; k < states.size(); ++k) {
    const int64_t global = first + static_cast<int64_t>(k);
    if (global < head.from) continue;
    if (global >= limit) break;
    head.states.push_back(states[k]);
  }
  if (chasers_waiting_ > 0) head_.notify_all();
  return head.from + static_cast<int64_t>(head.states.size()) < limit;
}

bool ParallelEncoder::ChaseLocked(std::unique_lock<std::mutex>& lock, int64_t index, int64_t chased,
                                  EncodedSegment& out, Chase& chase) {
  if (plan_.chase_frames <= 0) return false;
  // This segment's frames are parsed once each, as LAME returns them.
  for (size_t j = chase.mine.size(); j < out.frames.size(); ++j)
    chase.mine.push_back(StateOf(out.frames[j]));
  auto state = [&](int64_t t) { return chase.mine[static_cast<size_t>(t - out.first_frame)]; };
  for (;;) {
    if (aborted_) return false;
    // No next segment: the input ended within this one's post-roll.
    if (input_ended_ && produced_ <= out.kept_to + plan_.postroll_frames) return false;
    auto it = heads_.find(index + 1);
    if (it != heads_.end()) {
      const Head& head = it->second;
      const int64_t theirs = head.from + static_cast<int64_t>(head.states.size());
      const int64_t both = std::min(theirs, out.end_frame());
      auto their_state = [&head](int64_t t) {
        return head.states[static_cast<size_t>(t - head.from)];
      };
      // The first frame from which kAgreementFrames frames agree.
      chase.candidate = std::max(chase.candidate, head.from);
      for (int64_t t = chase.candidate; t + kAgreementFrames <= both;) {
        int k = 0;
        while (k < kAgreementFrames && state(t + k) == their_state(t + k)) ++k;
        if (k == kAgreementFrames) {
          out.meets_next_at = t;
          chase_budget_ = plan_.chase_frames;
          return false;
        }
        t += k + 1;
        chase.candidate = t;
      }
      // Where the reservoirs differ but every frame spends the same bits, far below what LAME
      // allows a frame whatever the reservoir (at least ~0.9 of the largest frame's payload), the
      // difference decides nothing and may never vanish (typical at V2, ~190 kbps): not worth
      // chasing once that has held for kQuietChaseFrames. Near the limit it soon decides.
      if (chase.busy_bits < 0 && !out.frames.empty()) {
        auto header = mp3::ParseHeader(out.frames.front());
        chase.busy_bits = header ? mp3::LargestPayloadBytes(*header) * 8 * 3 / 4 : 0;
      }
      chase.compared = std::max(chase.compared, head.from);
      for (; chase.compared < both; ++chase.compared) {
        const int bits = state(chase.compared).main_data_bits;
        if (bits != their_state(chase.compared).main_data_bits || bits > chase.busy_bits)
          chase.disagreed_at = chase.compared;
      }
      if (both - std::max(chase.disagreed_at + 1, head.from) >= kQuietChaseFrames) return false;
      if (chased >= chase_budget_) {  // out of budget: an inexact seam
        chase_budget_ /= 2;
        return false;
      }
      if (theirs > out.end_frame()) return true;  // their states reach further: encode on
      if (head.ended) return false;
    }
    // The next segment has not been taken yet, or has not encoded this far: wait for it (it
    // does not wait for this one: its PCM lies within the window this one holds open).
    ++chasers_waiting_;
    head_.wait(lock);
    --chasers_waiting_;
  }
}

Status ParallelEncoder::Feed(AVCodecContext* encoder, AVPacket& packet_ref, EncodedSegment& out,
                             AVFrame* frame) {
  int err = avcodec_send_frame(encoder, frame);
  if (err < 0)
    return MakeError(ErrorCode::kInternal, fmt::format("LAME failed ({})", AvErrorText(err)));
  AVPacket* packet = &packet_ref;
  for (;;) {
    err = avcodec_receive_packet(encoder, packet);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return {};
    if (err < 0)
      return MakeError(ErrorCode::kInternal, fmt::format("LAME failed ({})", AvErrorText(err)));
    // The seam repair counts frames: one packet must be one whole frame.
    auto header = mp3::ParseHeader(std::span<const uint8_t>(packet->data, packet->size));
    if (!header || header->frame_bytes != packet->size) {
      av_packet_unref(packet);
      return MakeError(ErrorCode::kInternal, "LAME returned a packet that is not one MP3 frame");
    }
    out.frames.emplace_back(packet->data, packet->data + packet->size);
    av_packet_unref(packet);
  }
}

}  // namespace vmp3::media
