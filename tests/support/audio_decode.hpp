// Decodes an audio file the way a gapless-aware player does, for checking what the engine wrote.
//
// libavformat and libavcodec are used directly (not the engine) so the tests judge the engine's
// output with an independent decoder: the mp3 demuxer turns a LAME tag's encoder delay and padding
// into skip-samples side data, and libavcodec trims them, so `samples` is what a listener gets.
//
// Errors are values (vmp3::Result); nothing throws. Thread-safe (no global state).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace vmp3::test {

struct DecodeOptions {
  // Container stream index; default: av_find_best_stream's pick.
  std::optional<int> stream_index;
  // Keep the PCM (per channel, float in [-1, 1]); off when only counts matter.
  bool keep_pcm = true;
  // Ask the decoder to reject every damaged frame (CRC, bitstream and buffer checks, "explode"),
  // so `decode_errors` counts any frame that is not perfectly well formed. Use it on engine output.
  bool strict = false;
};

struct DecodedAudio {
  std::string container;  // demuxer name, e.g. "mp3"
  int audio_streams = 0;  // how many audio streams the container has (attached pics aside)
  int stream_index = -1;  // the decoded stream
  std::string codec;      // codec name, e.g. "mp3" (not the decoder's "mp3float")
  int sample_rate = 0;
  int channels = 0;
  std::string channel_layout;  // e.g. "stereo", "5.1(side)", "2 channels" when unspecified
  int64_t bit_rate = 0;        // from the codec parameters; 0 when unknown
  std::optional<double> container_duration;  // seconds, as the demuxer reports it

  int64_t samples = 0;                  // per channel, after gapless trimming
  std::vector<std::vector<float>> pcm;  // [channel][sample] when keep_pcm
  int64_t packets = 0;                  // packets of the decoded stream
  std::vector<uint64_t> packet_hashes;  // FNV-1a 64 of each packet's payload, in order
  int64_t decode_errors = 0;            // packets or frames the decoder rejected or flagged
  int64_t corrupt_packets = 0;          // packets the demuxer flagged AV_PKT_FLAG_CORRUPT

  std::map<std::string, std::string> tags;         // container-level, keys lower-cased
  std::map<std::string, std::string> stream_tags;  // the decoded stream's, keys lower-cased

  bool has_cover = false;   // a stream with AV_DISPOSITION_ATTACHED_PIC
  std::string cover_codec;  // e.g. "mjpeg", "png"
  int cover_width = 0;
  int cover_height = 0;
  uint64_t cover_hash = 0;  // FNV-1a 64 of the picture's bytes

  double seconds() const {
    return sample_rate > 0 ? static_cast<double>(samples) / sample_rate : 0;
  }
};

// Errors: kNotFound/kIo when the file cannot be opened, kNotMedia when no demuxer recognises it,
// kNoAudioStream when it has no audio (or stream_index is not audio), kUnsupportedMedia when no
// decoder exists. Decoding errors are counted, not returned.
Result<DecodedAudio> DecodeAudio(const std::filesystem::path& path,
                                 const DecodeOptions& options = {});

// The strongest frequency between 20 Hz and min(20 kHz, Nyquist) in the middle of `pcm` (at most
// 2^16 samples, Hann window, zero-padded FFT, interpolated peak). Within ~0.5 Hz for a pure tone
// of a second or more. 0 for silence or too few samples.
double DominantFrequency(std::span<const float> pcm, int sample_rate);

// Amplitude (peak, 1.0 = full scale) of the component at `frequency` in the middle of `pcm`
// (Goertzel on a Hann-windowed span of at most 2^16 samples). A lavfi sine tone reads ~0.125.
double ToneAmplitude(std::span<const float> pcm, int sample_rate, double frequency);

// Root mean square over all of `pcm`.
double Rms(std::span<const float> pcm);

// Pearson correlation of a and b over their common length after shifting b by the lag in
// [-max_lag, max_lag] that maximises it; returns that maximum, and the lag in *best_lag.
// 1.0 means the same waveform; a codec's loss shows as 0.9x.
double BestCorrelation(std::span<const float> a, std::span<const float> b, int max_lag,
                       int* best_lag = nullptr);

}  // namespace vmp3::test
