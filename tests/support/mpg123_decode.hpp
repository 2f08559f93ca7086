// A second MP3 decoder for judging the engine's output: libmpg123, which shares no code with
// FFmpeg. Gapless decoding is on, so the LAME tag's encoder delay and padding are honoured and
// `samples` is what a gapless player returns.
//
// Anything the decoder complains about is counted in `problems` and quoted in `messages`: an
// error return of any call, a resync, and every line libmpg123 prints (it reports damaged frames,
// unsatisfiable main_data_begin and the like only as printed warnings, so stderr is captured
// while decoding; see the .cpp). `frames` counts the MPEG frames decoded, so a frame the decoder
// skipped shows as a count below the stream's.
//
// Errors are values; nothing throws. Thread-safe: decodes are serialised (stderr is
// process-wide), and nothing else in the process should write to stderr meanwhile or its output
// is counted as the decoder's.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace vmp3::test {

struct Mpg123Decoded {
  int sample_rate = 0;
  int channels = 0;
  int64_t samples = 0;                  // per channel, after gapless trimming
  std::vector<std::vector<float>> pcm;  // [channel][sample] when keep_pcm
  uint64_t pcm_hash = 0;              // FNV-1a 64 of the interleaved float samples, kept PCM or not
  int64_t frames = 0;                 // MPEG frames decoded (the Info frame excluded)
  int encoder_delay = -1;             // as libmpg123 read it from the LAME tag; -1 if none
  int64_t problems = 0;               // error returns, resyncs and printed messages
  std::vector<std::string> messages;  // what they said, for the test's failure message
};

// kNotFound/kIo when the file cannot be opened, kNotMedia when libmpg123 finds no MPEG audio.
Result<Mpg123Decoded> DecodeWithMpg123(const std::filesystem::path& path, bool keep_pcm = true);

}  // namespace vmp3::test
