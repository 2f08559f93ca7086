// Entry point for the media engine's input side: media::Probe on arbitrary bytes, read through
// the same AVIO bridge (media/avio.hpp) that files and object storage go through.
//
// Only vmp3's code carries coverage instrumentation, not FFmpeg's libraries, so the fuzzer steers
// by what our wrapper does; FFmpeg's own parsers still run on every input under ASan's
// allocator, and a crash or hang in them is a finding too.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_targets.hpp"
#include "media/media_info.hpp"

namespace vmp3::fuzz {
namespace {

// The input as a seekable ByteSource of known size, as a file or an object-store reader is.
// When `fail_at` is set, reading at or past that offset fails as a network read might.
class MemorySource final : public ByteSource {
 public:
  MemorySource(std::string_view bytes, std::optional<uint64_t> fail_at)
      : bytes_(bytes), fail_at_(fail_at) {}

  Result<size_t> Read(std::span<std::byte> out) override {
    if (fail_at_ && position_ >= *fail_at_) {
      return MakeError(ErrorCode::kIo, "reading the fuzz input failed on purpose");
    }
    if (position_ >= bytes_.size()) return 0;
    size_t n = std::min<uint64_t>(out.size(), bytes_.size() - position_);
    if (fail_at_) n = std::min<uint64_t>(n, *fail_at_ - position_);
    std::memcpy(out.data(), bytes_.data() + position_, n);
    position_ += n;
    return n;
  }
  Status Seek(uint64_t offset) override {
    position_ = offset;  // past the end is allowed; Read then returns 0, as for a file
    return {};
  }
  bool Seekable() const override { return true; }
  std::optional<uint64_t> Size() const override { return bytes_.size(); }
  std::string Describe() const override { return "fuzz input"; }

 private:
  std::string_view bytes_;
  std::optional<uint64_t> fail_at_;
  uint64_t position_ = 0;
};

}  // namespace

int FuzzMediaProbe(const uint8_t* data, size_t size) {
  // One input in eight (by size, so that seed files of other sizes keep their meaning) comes
  // from a source that fails halfway through.
  const bool failing = size % 8 == 7;
  MemorySource source(AsText(data, size),
                      failing ? std::optional<uint64_t>(size / 2) : std::nullopt);
  Result<media::MediaInfo> info = media::Probe(source);
  if (!info) {
    const ErrorCode code = info.error().code;
    // The documented errors (media_info.hpp), and the source's own when it failed.
    FUZZ_CHECK(code == ErrorCode::kEmptyInput || code == ErrorCode::kNotMedia ||
                   code == ErrorCode::kCorruptMedia || (failing && code == ErrorCode::kIo),
               info.error().message);
    FUZZ_CHECK(!info.error().message.empty(), "an error without a message");
    if (size == 0) FUZZ_CHECK(code == ErrorCode::kEmptyInput, info.error().message);
    return 0;
  }
  FUZZ_CHECK(size > 0, "empty input probed as media");
  FUZZ_CHECK(!info->container.empty(), "no container name");
  for (size_t i = 0; i < info->streams.size(); ++i) {
    const media::StreamInfo& s = info->streams[i];
    FUZZ_CHECK(s.index == static_cast<int>(i), info->container);
    FUZZ_CHECK(!s.type.empty() && !s.codec.empty(), info->container);
    FUZZ_CHECK(!s.channels || *s.channels >= 0, info->container);
  }
  if (info->best_audio_stream) {
    const int best = *info->best_audio_stream;
    FUZZ_CHECK(best >= 0 && best < static_cast<int>(info->streams.size()), info->container);
    FUZZ_CHECK(info->streams[best].type == "audio", info->container);
  }
  if (info->duration_seconds) {
    FUZZ_CHECK(std::isfinite(*info->duration_seconds) && *info->duration_seconds > 0,
               info->container);
  }
  // `vmp3 probe --json` prints this (replacing invalid UTF-8 in tags): it must not throw.
  const nlohmann::json json = *info;
  const std::string text = json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  FUZZ_CHECK(!text.empty(), info->container);
  return 0;
}

}  // namespace vmp3::fuzz
