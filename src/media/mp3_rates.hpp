// What MPEG-1/2/2.5 Layer III can carry.
#pragma once

#include <algorithm>
#include <array>

namespace vmp3::media {

inline constexpr std::array<int, 9> kMp3SampleRates = {8000,  11025, 12000, 16000, 22050,
                                                       24000, 32000, 44100, 48000};
inline constexpr std::array<int, 14> kMp3Bitrates = {32,  40,  48,  56,  64,  80,  96,
                                                     112, 128, 160, 192, 224, 256, 320};

inline bool IsMp3SampleRate(int rate) {
  return std::find(kMp3SampleRates.begin(), kMp3SampleRates.end(), rate) != kMp3SampleRates.end();
}
inline bool IsMp3Bitrate(int kbps) {
  return std::find(kMp3Bitrates.begin(), kMp3Bitrates.end(), kbps) != kMp3Bitrates.end();
}

// The output rate for a source rate: the same when MP3 carries it; above 48 kHz, 44.1 kHz for
// the 44.1k family (88.2k, 176.4k) and 48 kHz otherwise (a clean 2:1 or 4:1 ratio); below, the
// smallest MP3 rate above the source so no band is lost.
inline int Mp3RateFor(int source_rate) {
  if (IsMp3SampleRate(source_rate)) return source_rate;
  if (source_rate > 48000) return source_rate % 11025 == 0 ? 44100 : 48000;
  for (int rate : kMp3SampleRates)
    if (rate > source_rate) return rate;
  return 48000;
}

}  // namespace vmp3::media
