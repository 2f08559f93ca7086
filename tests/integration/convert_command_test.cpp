// `vmp3 convert` as a user runs it (app/convert_command.cpp): the built executable on fixtures made
// by the ffmpeg CLI, judged by its exit status, what it prints, and the files it leaves, which an
// independent decoder (support/audio_decode) must read as MP3s as long as their sources.
//
// Only in the embedded registration of this suite: the command uses no backend.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "integration/harness.hpp"
#include "integration/server_process.hpp"  // BinaryPath
#include "support/audio_decode.hpp"
#include "support/fixtures.hpp"

namespace vmp3::itest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

class ConvertCommandTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::TempDir(); }

  // Runs `vmp3 convert ARGS...` in no terminal (plain progress lines on stderr).
  static ProcessResult Convert(std::vector<std::string> args) {
    args.insert(args.begin(), {BinaryPath().string(), "convert"});
    return RunProcess(args, 120s);
  }

  // A copy of the named fixture in this test's directory (outputs land beside their inputs, and
  // the fixture cache must stay as it is).
  fs::path Input(std::string_view fixture, std::string_view name) const {
    fs::path path = dir_ / name;
    fs::copy_file(test::Fixture(fixture), path, fs::copy_options::overwrite_existing);
    return path;
  }

  // The files in `dir` (not recursive), sorted: what a run left behind.
  static std::vector<std::string> Files(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  // `mp3` is an MP3 a gapless decoder reads as exactly the source's audio: same sample count
  // (the engine keeps every sample), rate and channels unless `rate`/`channels` say otherwise.
  static void ExpectMp3Of(const fs::path& mp3, const fs::path& source, int rate = 0,
                          int channels = 0) {
    SCOPED_TRACE(mp3.string());
    auto src = test::DecodeAudio(source, {.keep_pcm = false});
    ASSERT_TRUE(src.has_value()) << src.error().message;
    auto out = test::DecodeAudio(mp3, {.keep_pcm = false, .strict = true});
    ASSERT_TRUE(out.has_value()) << out.error().message;
    EXPECT_EQ(out->container, "mp3");
    EXPECT_EQ(out->codec, "mp3");
    EXPECT_EQ(out->decode_errors, 0);
    const int want_rate = rate > 0 ? rate : src->sample_rate;
    EXPECT_EQ(out->sample_rate, want_rate);
    EXPECT_EQ(out->channels, channels > 0 ? channels : src->channels);
    const auto want_samples = static_cast<int64_t>(std::llround(
        static_cast<double>(src->samples) * want_rate / static_cast<double>(src->sample_rate)));
    EXPECT_EQ(out->samples, want_samples)
        << "source: " << src->samples << " samples at " << src->sample_rate << " Hz";
  }

  // One JSON object per line of `out`.
  static std::vector<json> JsonLines(const std::string& out) {
    std::vector<json> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      lines.push_back(json::parse(line));  // throws (failing the test) on anything else
    }
    return lines;
  }

  fs::path dir_;
};

TEST_F(ConvertCommandTest, WritesTheMp3BesideTheInput) {
  fs::path input = Input("mp4_h264_aac", "talk.mp4");
  ProcessResult r = Convert({input.string()});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "") << "stdout is for --json only";
  EXPECT_NE(r.err.find(fmt::format("{} -> {}", input.string(), (dir_ / "talk.mp3").string())),
            std::string::npos)
      << r.err;
  EXPECT_EQ(Files(dir_), (std::vector<std::string>{"talk.mp3", "talk.mp4"}));
  ExpectMp3Of(dir_ / "talk.mp3", input);
}

// The README's example: an output name, constant bit rate, another rate, one channel.
TEST_F(ConvertCommandTest, OutputNameAndEncodingOptions) {
  fs::path input = Input("webm_vp9_opus", "clip.webm");
  fs::path output = dir_ / "renamed.mp3";
  ProcessResult r = Convert({input.string(), "-o", output.string(), "--bitrate", "192",
                             "--sample-rate", "44100", "--mono"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(Files(dir_), (std::vector<std::string>{"clip.webm", "renamed.mp3"}));
  ExpectMp3Of(output, input, 44100, 1);
  auto out = test::DecodeAudio(output, {.keep_pcm = false});
  ASSERT_TRUE(out.has_value());
  EXPECT_NEAR(static_cast<double>(out->bit_rate), 192000, 1000);
}

// --stream N converts that track, not the default one (two_audio_tracks: #1 is 44.1 kHz 440 Hz,
// #2, the default, 48 kHz 880 Hz).
TEST_F(ConvertCommandTest, StreamPicksTheTrack) {
  fs::path input = Input("two_audio_tracks", "film.mkv");
  ProcessResult r = Convert({input.string(), "--stream", "1", "--json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  std::vector<json> lines = JsonLines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  EXPECT_EQ(lines[0].value("source_stream", -1), 1) << r.out;
  auto out = test::DecodeAudio(dir_ / "film.mp3");
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(out->sample_rate, 44100);
  EXPECT_NEAR(test::DominantFrequency(out->pcm[0], out->sample_rate), 440, 2);
}

TEST_F(ConvertCommandTest, BadUsageExits2AndDoesNothing) {
  fs::path input = Input("mp4_h264_aac", "talk.mp4");
  const std::vector<std::vector<std::string>> cases = {
      {},                                                                 // no input
      {input.string(), "--no-such-option"},                               // unknown option
      {input.string(), "--quality", "V11"},                               // quality out of range
      {input.string(), "--quality", "V2", "--bitrate", "192"},            // exclusive options
      {input.string(), "--bitrate", "7"},                                 // bit rate out of range
      {input.string(), input.string(), "-o", (dir_ / "x.mp3").string()},  // -o, two inputs
      {input.string(), "-o", (dir_ / "x.mp3").string(), "-d", (dir_ / "out").string()},
      {input.string(), "-d", input.string()},   // -d names a file
      {input.string(), "--copy", "sometimes"},  // not a copy mode
  };
  for (const auto& args : cases) {
    ProcessResult r = Convert(args);
    std::string line = fmt::format("vmp3 convert {}", fmt::join(args, " "));
    EXPECT_EQ(r.exit_code, kExitUsage) << line << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("vmp3: ", 0), 0u) << line << "\n" << r.err;
    EXPECT_NE(r.err.find("Run 'vmp3 convert --help'"), std::string::npos) << line << "\n" << r.err;
    EXPECT_EQ(Files(dir_), std::vector<std::string>{"talk.mp4"}) << line;
  }
}

TEST_F(ConvertCommandTest, NonMediaInputFailsNamingItsReason) {
  fs::path input = Input("broken_html", "page.mp4");
  ProcessResult r = Convert({input.string()});
  EXPECT_EQ(r.exit_code, kExitFailure) << r.err;
  EXPECT_NE(r.err.find(fmt::format("vmp3: {}: input is not a media file", input.string())),
            std::string::npos)
      << r.err;
  EXPECT_EQ(Files(dir_), std::vector<std::string>{"page.mp4"}) << "no output, no temporary file";
}

TEST_F(ConvertCommandTest, MissingInputFails) {
  fs::path missing = dir_ / "nope.mp4";
  ProcessResult r = Convert({missing.string()});
  EXPECT_EQ(r.exit_code, kExitFailure) << r.err;
  EXPECT_NE(r.err.find(fmt::format("vmp3: {}: ", missing.string())), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;
  EXPECT_TRUE(Files(dir_).empty());
}

TEST_F(ConvertCommandTest, JsonDescribesEachFile) {
  fs::path mp4 = Input("mp4_h264_aac", "a.mp4");
  fs::path wav = Input("wav", "b.wav");
  ProcessResult r = Convert({"--json", mp4.string(), wav.string()});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(r.err, "") << "no progress lines in --json mode";
  std::vector<json> lines = JsonLines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  for (const json& j : lines) {
    SCOPED_TRACE(j.dump());
    ASSERT_TRUE(j.value("ok", false));
    fs::path input = j.at("input").get<std::string>();
    fs::path output = j.at("output").get<std::string>();
    EXPECT_TRUE(input == mp4 || input == wav);
    EXPECT_EQ(output, fs::path(input).replace_extension(".mp3"));
    EXPECT_FALSE(j.contains("error"));
    EXPECT_EQ(j.at("bytes").get<uint64_t>(), fs::file_size(output));
    auto decoded = test::DecodeAudio(output, {.keep_pcm = false});
    ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
    EXPECT_EQ(j.at("samples").get<int64_t>(), decoded->samples);
    EXPECT_EQ(j.at("sample_rate").get<int>(), decoded->sample_rate);
    EXPECT_EQ(j.at("channels").get<int>(), decoded->channels);
    EXPECT_NEAR(j.at("duration").get<double>(), decoded->seconds(), 1e-6);
    EXPECT_GT(j.at("bitrate_kbps").get<int>(), 0);
    EXPECT_FALSE(j.at("stream_copied").get<bool>());
    EXPECT_EQ(j.at("damaged_packets").get<int64_t>(), 0);
    EXPECT_EQ(j.at("source_codec").get<std::string>(), input == mp4 ? "aac" : "pcm_s16le");
    ExpectMp3Of(output, input);
  }
}

// --threads: a long input is encoded in segments on that many threads (the JSON says how many)
// and decodes to exactly the PCM of the single pass; 0 threads is a usage error.
TEST_F(ConvertCommandTest, ThreadsEncodeInSegmentsThatDecodeAsOnePass) {
  fs::path input = Input("long_speech", "talk.flac");  // 2 minutes
  fs::path one = dir_ / "one.mp3";
  fs::path three = dir_ / "three.mp3";
  ProcessResult r1 = Convert({"--json", "--threads", "1", input.string(), "-o", one.string()});
  ASSERT_EQ(r1.exit_code, kExitOk) << r1.err;
  ProcessResult r3 = Convert({"--json", "-t", "3", input.string(), "-o", three.string()});
  ASSERT_EQ(r3.exit_code, kExitOk) << r3.err;
  std::vector<json> l1 = JsonLines(r1.out);
  std::vector<json> l3 = JsonLines(r3.out);
  ASSERT_EQ(l1.size(), 1u);
  ASSERT_EQ(l3.size(), 1u);
  EXPECT_EQ(l1[0].at("segments").get<int>(), 1);
  EXPECT_EQ(l3[0].at("segments").get<int>(), 3);
  EXPECT_EQ(l1[0].at("samples").get<int64_t>(), l3[0].at("samples").get<int64_t>());
  // The work segments add: every seam re-encodes a pre-roll (128 frames) and a few more.
  const auto frames = l1[0].at("frames").get<int64_t>();
  EXPECT_GT(frames, 4500);  // 2 minutes at 44.1 kHz: 4594
  EXPECT_EQ(l3[0].at("frames").get<int64_t>(), frames);
  EXPECT_EQ(l1[0].at("encoded_frames").get<int64_t>(), frames);
  EXPECT_GE(l3[0].at("encoded_frames").get<int64_t>(), frames + 2 * 128);
  EXPECT_LE(l3[0].at("encoded_frames").get<int64_t>(), frames + 2 * 160);
  ExpectMp3Of(three, input);
  auto a = test::DecodeAudio(one, {.strict = true});
  auto b = test::DecodeAudio(three, {.strict = true});
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(a->pcm == b->pcm) << "the segmented encode decodes differently from the single pass";

  ProcessResult zero = Convert({"--threads", "0", input.string(), "-o", one.string()});
  EXPECT_EQ(zero.exit_code, kExitUsage) << zero.err;
}

// One bad file among good ones: the good ones are converted all the same; the exit status says
// something failed; the bad one is named with its reason, on stderr and in its JSON line.
TEST_F(ConvertCommandTest, OneFailingInputAmongSeveral) {
  fs::path good1 = Input("mp4_h264_aac", "one.mp4");
  fs::path bad = Input("broken_html", "two.mp4");
  fs::path good2 = Input("flac", "three.flac");
  fs::path missing = dir_ / "four.mp4";
  fs::path out = dir_ / "out";

  ProcessResult r = Convert({good1.string(), bad.string(), good2.string(), missing.string(), "-d",
                             out.string(), "--json", "--jobs", "2"});
  EXPECT_EQ(r.exit_code, kExitFailure) << r.err;
  std::vector<json> lines = JsonLines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  std::map<std::string, json> by_input;
  for (const json& j : lines) by_input[j.at("input").get<std::string>()] = j;
  EXPECT_TRUE(by_input.at(good1.string()).value("ok", false));
  EXPECT_TRUE(by_input.at(good2.string()).value("ok", false));
  const json& failed = by_input.at(bad.string());
  EXPECT_FALSE(failed.value("ok", true));
  EXPECT_EQ(failed.at("error").at("code"), "not_media") << failed.dump();
  EXPECT_FALSE(failed.at("error").at("message").get<std::string>().empty());
  EXPECT_EQ(by_input.at(missing.string()).at("error").at("code"), "not_found");
  EXPECT_NE(r.err.find(fmt::format("vmp3: {}: input is not a media file", bad.string())),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(fmt::format("vmp3: {}: ", missing.string())), std::string::npos) << r.err;

  EXPECT_EQ(Files(out), (std::vector<std::string>{"one.mp3", "three.mp3"}));
  ExpectMp3Of(out / "one.mp3", good1);
  ExpectMp3Of(out / "three.mp3", good2);

  // The same without --json: a result line per file on stderr, the failure with its reason.
  fs::remove_all(out);
  r = Convert({good1.string(), bad.string(), "-d", out.string()});
  EXPECT_EQ(r.exit_code, kExitFailure) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find(fmt::format("{} -> {}", good1.string(), (out / "one.mp3").string())),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(fmt::format("vmp3: {}: input is not a media file", bad.string())),
            std::string::npos)
      << r.err;
  EXPECT_EQ(Files(out), std::vector<std::string>{"one.mp3"});
}

// -d DIR: outputs there, named after their inputs, nothing beside the inputs; a missing DIR is
// created with its parents (README: `vmp3 convert *.mkv -d out/`).
TEST_F(ConvertCommandTest, OutputDirectory) {
  fs::path a = Input("mp4_h264_aac", "a.mp4");
  fs::path b = Input("m4a", "b.m4a");
  fs::path out = dir_ / "new" / "out";
  ProcessResult r = Convert({a.string(), b.string(), "-d", out.string() + "/", "--quality", "V0"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(Files(out), (std::vector<std::string>{"a.mp3", "b.mp3"}));
  EXPECT_EQ(Files(dir_), (std::vector<std::string>{"a.mp4", "b.m4a", "new"}));
  ExpectMp3Of(out / "a.mp3", a);
  ExpectMp3Of(out / "b.mp3", b);

  // An existing directory is used as it is.
  fs::path c = Input("wav", "c.wav");
  r = Convert({c.string(), "-d", out.string()});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(Files(out), (std::vector<std::string>{"a.mp3", "b.mp3", "c.mp3"}));
}

// An existing output is never replaced without --overwrite, and stays byte for byte as it was.
TEST_F(ConvertCommandTest, RefusesToOverwriteWithoutOverwrite) {
  fs::path input = Input("mp4_h264_aac", "talk.mp4");
  fs::path output = dir_ / "talk.mp3";
  const std::string precious = "not an mp3, and not ours to replace\n";
  WriteFile(output, precious);
  const auto written = fs::last_write_time(output);

  ProcessResult r = Convert({input.string()});
  EXPECT_EQ(r.exit_code, kExitFailure) << r.err;
  EXPECT_NE(r.err.find(fmt::format("vmp3: {}: {} exists (use --overwrite to replace it)",
                                   input.string(), output.string())),
            std::string::npos)
      << r.err;
  EXPECT_EQ(ReadFile(output), precious);
  EXPECT_EQ(fs::last_write_time(output), written);
  EXPECT_EQ(Files(dir_), (std::vector<std::string>{"talk.mp3", "talk.mp4"}))
      << "no temporary file left";

  r = Convert({input.string(), "--overwrite"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  ExpectMp3Of(output, input);
  EXPECT_EQ(Files(dir_), (std::vector<std::string>{"talk.mp3", "talk.mp4"}));
}

// An output that would replace an input is refused before anything is written.
TEST_F(ConvertCommandTest, NeverWritesOverAnInput) {
  fs::path input = Input("mp3", "song.mp3");
  const std::string before = ReadFile(input);
  ProcessResult r = Convert({input.string(), "--overwrite"});
  EXPECT_EQ(r.exit_code, kExitFailure) << r.err;
  EXPECT_NE(r.err.find("would overwrite the input"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(input), before);
  EXPECT_EQ(Files(dir_), std::vector<std::string>{"song.mp3"});
}

// Ctrl-C (or SIGTERM) mid-conversion: a clean cancel, the shell's 128 + signal, and no output
// or temporary file left. (timeout(1) sends the signal; --preserve-status passes on our status.)
TEST_F(ConvertCommandTest, InterruptedLeavesNothing) {
  fs::path input = dir_ / "long.m4a";
  fs::copy_file(LongAudio(), input);
  for (auto [sig, status] : {std::pair{"INT", 130}, std::pair{"TERM", 143}}) {
    SCOPED_TRACE(sig);
    ProcessResult r = RunProcess({"timeout", "--preserve-status", "-s", sig, "0.5",
                                  BinaryPath().string(), "convert", input.string()},
                                 60s);
    EXPECT_EQ(r.exit_code, status) << r.err;
    EXPECT_EQ(Files(dir_), std::vector<std::string>{"long.m4a"});
  }
}

}  // namespace
}  // namespace vmp3::itest
