// The conversion engine: any input FFmpeg can demux -> one MP3, in-process.
//
// Only the chosen audio stream is decoded (all other streams are discarded at the demuxer).
// When the source audio is already MP3 and no option asks for a change, packets are copied
// without re-encoding. Otherwise audio is resampled/downmixed as needed (swresample, soxr) and
// encoded by LAME; the output carries a Xing/LAME info header with encoder delay and padding, so
// a gapless decoder returns exactly the source's sample count (at the output rate).
//
// Memory is bounded whatever the input length: packets and frames flow through fixed buffers.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stop_token>
#include <string>

#include "common/error.hpp"
#include "common/io.hpp"

namespace vmp3::media {

struct ConvertOptions {
  // Container stream index of the audio to convert; default: the container's default/best one.
  std::optional<int> stream_index;
  // LAME VBR quality 0 (best) .. 9; used when cbr_kbps is not set. Default V2 (~190 kbps).
  std::optional<int> vbr_quality;
  // Constant bit rate in kbps (32..320, a rate MP3 can carry); excludes vbr_quality.
  std::optional<int> cbr_kbps;
  // Output sample rate; default: the source's if MP3 can carry it, else the nearest that can.
  std::optional<int> sample_rate;
  // Downmix to one channel.
  bool mono = false;
  // Never copy an MP3 source; always re-encode.
  bool force_reencode = false;
  // Limits: 0 means no limit.
  double max_input_seconds = 0;
  uint64_t max_output_bytes = 0;

  // Encoder threads for this conversion: 1 = one pass on the calling thread; 0 = one per core.
  // With more than one, an input long enough to pay is cut into segments on the MP3 frame grid,
  // encoded in parallel and joined into one stream that decodes like the single-pass one (see
  // docs/architecture.md, "Parallel encoding").
  int threads = 1;
  // Tuning and tests. Segment length in seconds; 0 = chosen from the memory budget and the input's
  // length. When set, even a short input is cut (so tests can put seams where they want them).
  double segment_seconds = 0;
  // Off only in the negative-control test: segments are spliced without repairing the bit
  // reservoir at the seams, which must be audible and must fail the stream checks.
  bool repair_seams = true;

  // Fails with kInvalidArgument naming the bad option.
  Status Validate() const;
  // True when any option asks for a change that a stream copy cannot give.
  bool RequestsChange() const;
};

// Parses "V0".."V9" (or "0".."9"). kInvalidArgument on anything else.
Result<int> ParseVbrQuality(std::string_view text);

struct ConvertResult {
  int source_stream_index = -1;
  std::string source_codec;
  bool stream_copied = false;
  int sample_rate = 0;
  int channels = 0;
  int64_t samples = 0;  // output samples per channel, delay and padding excluded
  double duration_seconds = 0;
  uint64_t output_bytes = 0;
  int bit_rate_kbps = 0;        // average
  int64_t damaged_packets = 0;  // skipped because they failed to decode
  bool cover_art = false;
  int segments = 1;    // encoded in this many parallel segments (1: one pass, or stream copy)
  int64_t frames = 0;  // MP3 frames in the output (0 for a stream copy)
  // Frames LAME encoded: `frames` in one pass; in segments also each segment's pre- and
  // post-roll and flush, the work parallel encoding adds (bench/README.md).
  int64_t encoded_frames = 0;
  // Seams where the segments' encoders had not come to agree within the chase (dense material:
  // see docs/architecture.md, "Parallel encoding"); 0 means the stream decodes exactly as the
  // single pass.
  int inexact_seams = 0;
};

void to_json(nlohmann::json& j, const ConvertResult& r);

struct ConvertControl {
  // Called with the fraction of the input's duration done, at least once per whole percent
  // (non-decreasing; 1.0 at the end), from the converting thread. Keep it cheap.
  std::function<void(double)> on_progress;
  // When a stop is requested, Convert returns kCancelled promptly and writes nothing more.
  std::stop_token stop;
};

// Converts `source` into `sink`. On failure the sink holds garbage that the caller discards
// (AtomicFileSink does this by not committing). When `sink` is not seekable, wrap it in a
// HeadBufferedSink so the Xing header can still be completed.
//
// Errors: kEmptyInput, kNotMedia, kNoAudioStream, kCorruptMedia, kUnsupportedMedia,
// kMediaTooLong, kOutputTooLarge, kCancelled, kInvalidArgument (options), kIo (sink/source).
Result<ConvertResult> Convert(ByteSource& source, ByteSink& sink, const ConvertOptions& options,
                              const ConvertControl& control = {});

}  // namespace vmp3::media
