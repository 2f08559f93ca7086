// The parallel encoder's plan and the last segment's rebalancing, without encoding anything
// (the encodes themselves: parallel_encode_test.cpp).
#include "media/parallel_encoder.hpp"

#include <gtest/gtest.h>

namespace vmp3::media {
namespace {

constexpr int K = 128;  // pre-roll
constexpr int P = 12;   // post-roll

// The previous segment lags (its worker started later or ran slower): the last one starts
// earlier, and both then have the same number of frames left to encode.
TEST(BalancedLastStartTest, AnEarlierStartEvensTheWorkLeft) {
  const int64_t planned = 3000, end = 4000, previous_start = 2000, position = 1500;
  const int64_t start = BalancedLastStart(planned, end, previous_start, position, K, P);
  EXPECT_LT(start, planned);
  EXPECT_NEAR(start + P - position, end - start + K, 1) << "start " << start;
}

// Ahead of the balance point already: the plan stands (a start is never moved later).
TEST(BalancedLastStartTest, NeverLaterThanPlanned) {
  EXPECT_EQ(BalancedLastStart(3000, 4000, 2000, 2900, K, P), 3000);
  EXPECT_EQ(BalancedLastStart(3000, 3010, 2000, 2990, K, P), 3000);
}

// Far behind: the last segment's pre-roll must not begin behind the previous segment's position
// (those frames may have left the window), and the previous segment keeps more than a seam.
TEST(BalancedLastStartTest, NeverBehindThePreviousPositionOrIntoItsSeam) {
  const int64_t start = BalancedLastStart(3000, 3100, 2000, 1900, K, P);
  EXPECT_GE(start - K, 1900);
  EXPECT_GE(start, 2000 + 2 * P);
  EXPECT_LT(start, 3000);
}

// The plan for a long input: equal segments, a multiple of the threads, a window that holds the
// segments running at once with their overlap, and the input's length remembered for the
// rebalancing.
TEST(ParallelPlanTest, EqualSegmentsAMultipleOfTheThreads) {
  const int64_t frames = 25001;  // 10 minutes at 48 kHz
  for (int threads : {2, 3, 4}) {
    SCOPED_TRACE(threads);
    ParallelPlan plan = ParallelPlan::For(threads, 2, 1152, 48000, frames, 0, true, true);
    const int64_t count = (frames + plan.segment_frames - 1) / plan.segment_frames;
    EXPECT_EQ(count % threads, 0) << plan.segment_frames;
    EXPECT_LT(count * plan.segment_frames - frames, count) << "segments not made equal";
    EXPECT_EQ(plan.preroll_frames, K);
    EXPECT_EQ(plan.postroll_frames, P);
    EXPECT_GE(plan.window_frames, (threads - 1) * (plan.segment_frames + K + P) + 1);
    EXPECT_LE(plan.window_frames * 2 * 1152 * 4, int64_t{33} << 20) << "window over 32 MB";
    EXPECT_EQ(plan.expected_frames, frames);
  }
}

// The negative control of the tests: no post-roll, no repair, no chase.
TEST(ParallelPlanTest, TheNaiveSpliceHasNoPostroll) {
  ParallelPlan plan = ParallelPlan::For(2, 2, 1152, 44100, 20000, 0, false, true);
  EXPECT_EQ(plan.postroll_frames, 0);
  EXPECT_FALSE(plan.repair_seams);
  EXPECT_EQ(plan.chase_frames, 0);
}

// VBR segments run on past their end to meet the next one's encoder, at most half a segment (so
// the seam stays within the next segment's own frames); CBR ones do not (agreeing frames do not
// mean agreeing encoders there).
TEST(ParallelPlanTest, OnlyVbrSegmentsChaseAndAtMostHalfASegment) {
  ParallelPlan vbr = ParallelPlan::For(2, 2, 1152, 44100, 25000, 0, true, true);
  EXPECT_GT(vbr.chase_frames, 0);
  EXPECT_LE(vbr.chase_frames, vbr.segment_frames / 2);
  ParallelPlan cbr = ParallelPlan::For(2, 2, 1152, 44100, 25000, 0, true, false);
  EXPECT_EQ(cbr.chase_frames, 0);
  ParallelPlan shortest = ParallelPlan::For(2, 2, 1152, 44100, 0, 1.0, true, true);
  EXPECT_LE(shortest.chase_frames, shortest.segment_frames / 2);
}

}  // namespace
}  // namespace vmp3::media
