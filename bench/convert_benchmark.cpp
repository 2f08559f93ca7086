// In-process throughput of the conversion engine: no process start-up, no disk writes (the output
// goes to a sink that only counts bytes), so the numbers isolate demux + decode + encode.
//
// Inputs are generated once with the ffmpeg CLI into $TMPDIR/vmp3-bench-fixtures (reused while
// present). Counters: bytes_per_second is input bytes read per second; audio_x_realtime is
// seconds of audio converted per second of wall time. Run: build/vmp3_bench.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/io.hpp"
#include "media/converter.hpp"
#include "media/media_info.hpp"

namespace {

namespace fs = std::filesystem;

constexpr int kSeconds = 30;

// Two tones per channel plus noise, so the encoder has real work (as in convert_bench.sh).
constexpr const char* kAudio =
    "aevalsrc=exprs=0.25*sin(2*PI*440*t)+0.15*sin(2*PI*1250*t)+0.08*(2*random(0)-1)"
    "|0.25*sin(2*PI*554*t)+0.15*sin(2*PI*1660*t)+0.08*(2*random(1)-1)"
    ":sample_rate=48000:channel_layout=stereo";

struct Recipe {
  const char* file;
  std::string ffmpeg_args;  // between the inputs and the output file
  bool with_video;
};

const std::map<std::string, Recipe>& Recipes() {
  static const std::map<std::string, Recipe> recipes = {
      // A typical upload: H.264 video the engine must skip, AAC audio it must decode.
      {"mp4",
       {"h264-aac-360p-30s.mp4",
        "-map 0:v -map 1:a -c:v libx264 -preset ultrafast -pix_fmt yuv420p "
        "-c:a aac -b:a 128k",
        true}},
      // Plain PCM: the encoder alone, nearly no decoding.
      {"wav", {"pcm-48k-30s.wav", "-map 0:a -c:a pcm_s16le", false}},
      // MP3 audio in a video container: the stream-copy path.
      {"avi_mp3",
       {"mpeg4-mp3-360p-30s.avi", "-map 0:v -map 1:a -c:v mpeg4 -q:v 5 -c:a libmp3lame -b:a 192k",
        true}},
  };
  return recipes;
}

// Returns the fixture's path, generating it on first use; empty with `error` set on failure.
fs::path Fixture(const std::string& name, std::string& error) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  const Recipe& recipe = Recipes().at(name);
  const char* tmp = std::getenv("TMPDIR");
  fs::path dir = fs::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") / "vmp3-bench-fixtures";
  fs::path path = dir / recipe.file;
  std::error_code ec;
  if (fs::exists(path, ec)) return path;
  fs::create_directories(dir, ec);
  // Generate beside the final name and rename, so an interrupted run never leaves a short file.
  fs::path partial = dir / fmt::format(".{}.{}.partial{}", recipe.file, getpid(),
                                       fs::path(recipe.file).extension().string());
  std::string inputs =
      recipe.with_video
          ? fmt::format("-f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i '{}'", kAudio)
          : fmt::format("-f lavfi -i '{}'", kAudio);
  std::string command =
      fmt::format("ffmpeg -nostdin -y -hide_banner -loglevel error {} -t {} {} '{}'", inputs,
                  kSeconds, recipe.ffmpeg_args, partial.string());
  if (std::system(command.c_str()) != 0) {
    fs::remove(partial, ec);
    error = "could not generate the input with the ffmpeg CLI: " + command;
    return {};
  }
  fs::rename(partial, path, ec);
  if (ec) {
    error = "cannot rename " + partial.string() + ": " + ec.message();
    return {};
  }
  return path;
}

// Keeps only the size: the benchmark measures the engine, not the disk.
class CountingSink final : public vmp3::ByteSink {
 public:
  vmp3::Status Write(std::span<const std::byte> data) override {
    position_ += data.size();
    return {};
  }
  vmp3::Status Seek(uint64_t offset) override {
    position_ = offset;
    return {};
  }
  bool Seekable() const override { return true; }
  uint64_t Position() const override { return position_; }

 private:
  uint64_t position_ = 0;
};

void RunConvert(benchmark::State& state, const std::string& fixture, bool expect_copy,
                const vmp3::media::ConvertOptions& options) {
  std::string error;
  fs::path input = Fixture(fixture, error);
  if (input.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  std::error_code ec;
  uint64_t input_bytes = fs::file_size(input, ec);
  double audio_seconds = 0;
  for (auto _ : state) {
    auto source = vmp3::FileSource::Open(input);
    if (!source) {
      state.SkipWithError(source.error().message.c_str());
      return;
    }
    CountingSink sink;
    auto result = vmp3::media::Convert(**source, sink, options);
    if (!result) {
      state.SkipWithError(result.error().message.c_str());
      return;
    }
    // A guard on what was measured, not on how fast: a copy benchmark that re-encoded (or the
    // reverse) would report the wrong path's numbers.
    if (result->stream_copied != expect_copy) {
      state.SkipWithError(expect_copy ? "the engine re-encoded an input it should have copied"
                                      : "the engine copied an input it should have re-encoded");
      return;
    }
    audio_seconds = result->duration_seconds;
    benchmark::DoNotOptimize(sink.Position());
  }
  state.SetBytesProcessed(static_cast<int64_t>(input_bytes) * state.iterations());
  state.counters["audio_x_realtime"] = benchmark::Counter(
      audio_seconds * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_ConvertEncode(benchmark::State& state, const std::string& fixture) {
  RunConvert(state, fixture, /*expect_copy=*/false, {});
}

void BM_ConvertCopy(benchmark::State& state) {
  RunConvert(state, "avi_mp3", /*expect_copy=*/true, {});
}

// The same input as BM_ConvertCopy, re-encoded: the pair shows what copying saves.
void BM_ConvertReencodeMp3(benchmark::State& state) {
  vmp3::media::ConvertOptions options;
  options.force_reencode = true;
  RunConvert(state, "avi_mp3", /*expect_copy=*/false, options);
}

void BM_Probe(benchmark::State& state) {
  std::string error;
  fs::path input = Fixture("mp4", error);
  if (input.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  for (auto _ : state) {
    auto source = vmp3::FileSource::Open(input);
    if (!source) {
      state.SkipWithError(source.error().message.c_str());
      return;
    }
    auto info = vmp3::media::Probe(**source);
    if (!info) {
      state.SkipWithError(info.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(info->streams.size());
  }
}

BENCHMARK_CAPTURE(BM_ConvertEncode, mp4_h264_aac, std::string("mp4"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvertEncode, wav_pcm, std::string("wav"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_ConvertCopy)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ConvertReencodeMp3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Probe)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
