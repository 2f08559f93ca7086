#include "support/fixtures.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef VMP3_FIXTURE_DIR
#error "VMP3_FIXTURE_DIR must be defined (a string: where generated fixtures are cached)"
#endif

namespace vmp3::test {
namespace {

namespace fs = std::filesystem;
using Args = std::vector<std::string>;

// What happens to ffmpeg's output (or instead of ffmpeg) before the fixture is published.
// Changing what a step does must change its name, so cached files regenerate.
enum class Post { kNone, kEmpty, kRandom64K, kHtml, kTruncate30, kMidDamage4K };

std::string_view PostName(Post p) {
  switch (p) {
    case Post::kNone:
      return "none";
    case Post::kEmpty:
      return "empty-v1";
    case Post::kRandom64K:
      return "random64k-splitmix-v1";
    case Post::kHtml:
      return "html-v1";
    case Post::kTruncate30:
      return "truncate30-v1";
    case Post::kMidDamage4K:
      return "middamage4k-splitmix-v1";
  }
  return "?";
}

struct Recipe {
  std::string name;
  std::string extension;
  // ffmpeg invocations, run in order in a scratch directory; the last writes "out.<extension>".
  std::vector<Args> commands;
  Post post = Post::kNone;
};

std::vector<std::string_view> ChannelNames(std::string_view layout) {
  if (layout == "stereo") return {"FL", "FR"};
  if (layout == "5.1(side)") return {"FL", "FR", "FC", "LFE", "SL", "SR"};
  throw std::invalid_argument(fmt::format("fixtures: add the channels of layout {}", layout));
}

// Builds one ffmpeg command line: lavfi inputs, a filter graph joining mono tones into a layout,
// and maps in the order streams should appear in the output.
class Command {
 public:
  Command() : args_{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"} {}

  Command& Video(double seconds, int rate = 10) {
    Input({"-f", "lavfi", "-i",
           fmt::format("testsrc2=size=160x120:rate={}:duration={}", rate, seconds)});
    maps_.push_back(fmt::format("{}:v", inputs_ - 1));
    return *this;
  }

  // One sine per channel, joined into `layout`; `filter` (e.g. ",atrim=...") is appended.
  Command& Tones(const std::vector<int>& freqs, int sample_rate, double seconds,
                 std::string_view layout, std::string_view filter = "") {
    std::string pads;
    for (int f : freqs) {
      Input({"-f", "lavfi", "-i",
             fmt::format("sine=frequency={}:sample_rate={}:duration={}", f, sample_rate, seconds)});
      pads += fmt::format("[{}:a]", inputs_ - 1);
    }
    std::string label = fmt::format("a{}", graph_.size());
    if (freqs.size() == 1) {
      graph_.push_back(fmt::format("{}anull{}[{}]", pads, filter, label));
    } else {
      // An explicit map: join's default would give a mono (FC) input the FC channel first.
      const std::vector<std::string_view> names = ChannelNames(layout);
      if (names.size() != freqs.size()) throw std::invalid_argument("fixtures: layout/tone count");
      std::string map;
      for (size_t i = 0; i < names.size(); ++i) {
        map += fmt::format("{}{}.0-{}", i == 0 ? "" : "|", i, names[i]);
      }
      graph_.push_back(fmt::format("{}join=inputs={}:channel_layout={}:map={}{}[{}]", pads,
                                   freqs.size(), layout, map, filter, label));
    }
    maps_.push_back(fmt::format("[{}]", label));
    return *this;
  }

  Command& Input(std::initializer_list<std::string> args) {
    inputs_args_.insert(inputs_args_.end(), args);
    ++inputs_;
    return *this;
  }
  int LastInput() const { return inputs_ - 1; }
  Command& Map(std::string map) {
    maps_.push_back(std::move(map));
    return *this;
  }
  Command& Out(std::initializer_list<std::string> args) {
    out_args_.insert(out_args_.end(), args);
    return *this;
  }

  Args Build(const std::string& output) const {
    Args a = args_;
    a.insert(a.end(), inputs_args_.begin(), inputs_args_.end());
    if (!graph_.empty()) {
      std::string g;
      for (const auto& part : graph_) g += (g.empty() ? "" : ";") + part;
      a.insert(a.end(), {"-filter_complex", g});
    }
    for (const auto& m : maps_) a.insert(a.end(), {"-map", m});
    a.insert(a.end(), out_args_.begin(), out_args_.end());
    // Bit-exact muxers and encoders (no version strings), one thread: the same bytes every run.
    a.insert(a.end(), {"-fflags", "+bitexact", "-flags", "+bitexact", "-threads", "1", output});
    return a;
  }

 private:
  Args args_;
  Args inputs_args_;
  int inputs_ = 0;
  std::vector<std::string> graph_;
  std::vector<std::string> maps_;
  Args out_args_;
};

const std::initializer_list<std::string> kH264 = {"-c:v",      "libx264",  "-preset",
                                                  "ultrafast", "-pix_fmt", "yuv420p"};
const std::vector<int> kStereo440660 = {440, 660};

Args WithVideoCodec(Command c, std::initializer_list<std::string> vcodec,
                    std::initializer_list<std::string> rest, const std::string& out) {
  c.Out(vcodec);
  c.Out(rest);
  return c.Build(out);
}

std::vector<Recipe> BuildRecipes() {
  std::vector<Recipe> r;
  auto add = [&](std::string name, std::string ext, std::vector<Args> commands,
                 Post post = Post::kNone) {
    r.push_back(Recipe{std::move(name), std::move(ext), std::move(commands), post});
  };

  add("mp4_h264_aac", "mp4",
      {WithVideoCodec(Command().Video(3).Tones({440, 880}, 44100, 3, "stereo"), kH264,
                      {"-c:a", "aac", "-b:a", "128k"}, "out.mp4")});
  add("mkv_ac3_51", "mkv",
      {WithVideoCodec(
          Command().Video(3).Tones({500, 700, 300, 60, 1100, 1300}, 48000, 3, "5.1(side)"), kH264,
          {"-c:a", "ac3", "-b:a", "384k"}, "out.mkv")});
  add("webm_vp9_opus", "webm",
      {WithVideoCodec(
          Command().Video(3).Tones({523, 784}, 48000, 3, "stereo"),
          {"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "100k"},
          {"-c:a", "libopus", "-b:a", "96k"}, "out.webm")});
  add("avi_mpeg4_mp3", "avi",
      {WithVideoCodec(Command().Video(3).Tones({330, 550}, 44100, 3, "stereo"),
                      {"-c:v", "mpeg4", "-q:v", "5"}, {"-c:a", "libmp3lame", "-b:a", "128k"},
                      "out.avi")});
  add("mov_pcm", "mov",
      {WithVideoCodec(Command().Video(3).Tones({1000}, 48000, 3, "mono"), kH264,
                      {"-c:a", "pcm_s16le"}, "out.mov")});
  add("ts_mp2", "ts",
      {WithVideoCodec(Command().Video(3).Tones({600, 900}, 48000, 3, "stereo"),
                      {"-c:v", "mpeg2video", "-q:v", "5"}, {"-c:a", "mp2", "-b:a", "192k"},
                      "out.ts")});
  add("flv_aac", "flv",
      {WithVideoCodec(Command().Video(3).Tones({350, 750}, 44100, 3, "stereo"), kH264,
                      {"-c:a", "aac", "-b:a", "128k"}, "out.flv")});
  add("wav", "wav",
      {Command()
           .Tones(kStereo440660, 44100, 4, "stereo", ",atrim=end_sample=132301")
           .Out({"-c:a", "pcm_s16le"})
           .Build("out.wav")});
  // 115 MP3 frames and one sample: the last frame LAME gets is nearly empty.
  add("wav_frame_edge", "wav",
      {Command()
           .Tones(kStereo440660, 44100, 4, "stereo", ",atrim=end_sample=132481")
           .Out({"-c:a", "pcm_s16le"})
           .Build("out.wav")});
  add("flac", "flac",
      {Command()
           .Tones({440, 990}, 48000, 3, "stereo")
           .Out({"-c:a", "flac", "-sample_fmt", "s16"})
           .Build("out.flac")});
  add("m4a", "m4a",
      {Command()
           .Tones({1200, 1500}, 48000, 3, "stereo")
           .Out({"-c:a", "aac", "-b:a", "128k"})
           .Build("out.m4a")});
  add("mp3", "mp3",
      {Command()
           .Tones(kStereo440660, 44100, 3, "stereo")
           .Out({"-c:a", "libmp3lame", "-q:a", "4", "-write_xing", "1", "-id3v2_version", "3",
                 "-metadata", fmt::format("title={}", kMp3Title)})
           .Build("out.mp3")});
  add("video_no_audio", "mp4", {WithVideoCodec(Command().Video(2), kH264, {}, "out.mp4")});
  add("two_audio_tracks", "mkv",
      {WithVideoCodec(
          Command()
              .Video(3)
              .Tones({440, 440}, 44100, 3, "stereo")
              .Tones({880, 880}, 48000, 3, "stereo"),
          kH264,
          {"-c:a", "aac", "-b:a", "128k", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1",
           "language=fra", "-disposition:a:0", "0", "-disposition:a:1", "default"},
          "out.mkv")});
  add("tagged", "mp4",
      {WithVideoCodec(Command().Video(3).Tones(kStereo440660, 44100, 3, "stereo"), kH264,
                      {"-c:a", "aac", "-b:a", "128k",                         //
                       "-metadata", fmt::format("title={}", kTaggedTitle),    //
                       "-metadata", fmt::format("artist={}", kTaggedArtist),  //
                       "-metadata", fmt::format("album={}", kTaggedAlbum),    //
                       "-metadata", fmt::format("date={}", kTaggedDate),      //
                       "-metadata", fmt::format("genre={}", kTaggedGenre),    //
                       "-metadata", fmt::format("track={}", kTaggedTrack),    //
                       "-metadata", fmt::format("comment={}", kTaggedComment)},
                      "out.mp4")});

  const Args cover_png = Command()
                             .Input({"-f", "lavfi", "-i", "testsrc2=size=64x64:rate=1:duration=1"})
                             .Map("0:v")
                             .Out({"-frames:v", "1", "-c:v", "png"})
                             .Build("cover.png");
  {
    Command c;
    c.Tones(kStereo440660, 44100, 3, "stereo").Input({"-i", "cover.png"});
    c.Map(fmt::format("{}:v", c.LastInput()));
    add("cover_mp4", "m4a",
        {cover_png,
         c.Out({"-c:a", "aac", "-b:a", "128k", "-c:v", "mjpeg", "-disposition:v:0", "attached_pic"})
             .Build("out.m4a")});
  }
  add("cover_mkv", "mkv",
      {cover_png,
       Command()
           .Tones({523, 659}, 44100, 3, "stereo")
           .Out({"-c:a", "flac", "-attach", "cover.png", "-metadata:s:t", "mimetype=image/png"})
           .Build("out.mkv")});
  add("rate_22050", "wav",
      {Command()
           .Tones({300, 500}, 22050, 3, "stereo")
           .Out({"-c:a", "pcm_s16le"})
           .Build("out.wav")});
  add("rate_96000", "flac",
      {Command()
           .Tones({1000, 3000}, 96000, 3, "stereo")
           .Out({"-c:a", "flac", "-sample_fmt", "s16"})
           .Build("out.flac")});
  add("broken_empty", "mp4", {}, Post::kEmpty);
  add("broken_random", "mp4", {}, Post::kRandom64K);
  add("broken_truncated", "mp4",
      {WithVideoCodec(Command().Video(5).Tones({440, 880}, 44100, 5, "stereo"), kH264,
                      {"-c:a", "aac", "-b:a", "128k"}, "out.mp4")},
      Post::kTruncate30);
  add("broken_html", "mp4", {}, Post::kHtml);
  add("mid_damage", "ts",
      {Command()
           .Tones({1000, 1000}, 48000, 5, "stereo")
           .Out({"-c:a", "mp2", "-b:a", "192k", "-f", "mpegts"})
           .Build("out.ts")},
      Post::kMidDamage4K);

  // Minutes-long signals for the parallel encoder (media/parallel_encode_test.cpp): seams must not
  // be audible or visible whatever the material under them. aevalsrc is deterministic (random()
  // is seeded by the expression), FLAC keeps the exact sample count and costs little to decode.
  auto long_audio = [&](std::string name, const std::string& exprs, int rate, double seconds,
                        std::string_view layout) {
    add(std::move(name), "flac",
        {Command()
             .Input({"-f", "lavfi", "-i",
                     fmt::format("aevalsrc=exprs={}:sample_rate={}:duration={}:channel_layout={}",
                                 exprs, rate, seconds, layout)})
             .Map("0:a")
             .Out({"-c:a", "flac", "-sample_fmt", "s16"})
             .Build("out.flac")});
  };
  // Music-like: a bass line stepping every 1.5 s (the phase jumps are transients), a voice with
  // vibrato, a pulsing high tone and a noise floor; peaks near -2 dBFS. LAME V2 gives it ~200
  // kbps, as it does music. `noise` 0.2 makes it dense (~260 kbps, white noise at -23 dBFS): there
  // LAME wants more than 320 kbps for some frames, and the bit reservoir's level decides how much
  // those get (see ParallelEncodeTest).
  auto music = [](int base, int voice, int high, int seed, double noise = 0.02) {
    return fmt::format(
        "0.3*sin(2*PI*({0}+{0}/2*floor(mod(t/1.5\\,4)))*t)*(0.55+0.45*sin(2*PI*1.3*t))"
        "+0.25*sin(2*PI*({1}+15*sin(2*PI*5*t))*t)"
        "+0.15*sin(2*PI*{2}*t)*(0.5+0.5*sin(2*PI*0.27*t))"
        "+{4}*(random({3})-0.5)",
        base, voice, high, seed, noise);
  };
  const std::string stereo_music = music(196, 523, 1760, 0) + "|" + music(147, 659, 2349, 1);
  long_audio("long_loud", stereo_music, 44100, 180, "stereo");
  long_audio("long_dense", music(196, 523, 1760, 0, 0.2) + "|" + music(147, 659, 2349, 1, 0.2),
             44100, 180, "stereo");
  // A tone and noise at about -54 dBFS with digital silence over the middle third (60 s to 120 s),
  // so the seams of 2, 3 and 4 segments fall in silence, at its edges or in the quiet: where
  // LAME's ATH adaptation takes longest to settle.
  const std::string quiet =
      "(0.0015*sin(2*PI*440*t)+0.001*(random(0)-0.5))*(lt(t\\,60)+gte(t\\,120))";
  long_audio("long_quiet", quiet + "|" + quiet, 44100, 180, "stereo");
  // Speech-like: syllables at ~4 Hz grouped into phrases by a slow gate, voiced (a gliding pitch
  // and a formant) plus breath noise, with pauses of true silence between phrases.
  const std::string speech =
      "(0.35*sin(2*PI*(140+40*sin(2*PI*3*t))*t)+0.25*sin(2*PI*(700+200*sin(2*PI*0.9*t))*t)"
      "+0.15*(random(0)-0.5))*gt(sin(2*PI*4*t)\\,0.2)*gt(sin(2*PI*0.31*t)+0.3\\,0)";
  long_audio("long_speech", speech + "|" + speech, 44100, 120, "stereo");
  long_audio("long_mono", music(196, 523, 1760, 0), 44100, 120, "mono");
  // MPEG-2 Layer III: frames of 576 samples.
  long_audio("long_22050", stereo_music, 22050, 120, "stereo");
  long_audio("long_51",
             fmt::format("{}|{}|{}|{}|{}|{}", music(196, 523, 1760, 0), music(147, 659, 2349, 1),
                         music(98, 392, 1175, 2), "0.3*sin(2*PI*55*t)", music(247, 784, 3136, 3),
                         music(220, 880, 2637, 4)),
             48000, 120, "5.1(side)");
  // For the resampled case (48 kHz in, 44.1 kHz out).
  long_audio("long_48000", stereo_music, 48000, 120, "stereo");
  return r;
}

const std::vector<Recipe>& Recipes() {
  static const std::vector<Recipe> recipes = BuildRecipes();
  return recipes;
}

uint64_t Fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string RecipeHash(const Recipe& r) {
  uint64_t h = 0xcbf29ce484222325ULL;
  h = Fnv1a(h, r.name);
  h = Fnv1a(h, "\x1e");
  h = Fnv1a(h, r.extension);
  for (const auto& cmd : r.commands) {
    h = Fnv1a(h, "\x1d");
    for (const auto& arg : cmd) {
      h = Fnv1a(h, arg);
      h = Fnv1a(h, "\x1f");
    }
  }
  h = Fnv1a(h, "\x1c");
  h = Fnv1a(h, PostName(r.post));
  return fmt::format("{:08x}", static_cast<uint32_t>(h ^ (h >> 32)));
}

// Deterministic bytes that look random to a format prober.
std::string SplitMixBytes(uint64_t seed, size_t n) {
  std::string out(n, '\0');
  uint64_t x = seed;
  for (size_t i = 0; i < n; i += 8) {
    x += 0x9e3779b97f4a7c15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = static_cast<char>(z >> (8 * j));
  }
  return out;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("fixtures: cannot read " + p.string());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const fs::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("fixtures: cannot write " + p.string());
}

std::string Quote(const Args& args) {
  std::string s = "ffmpeg";
  for (const auto& a : args) s += " '" + a + "'";
  return s;
}

void RunFfmpeg(const Args& args, const fs::path& work) {
  fs::path log = work / "ffmpeg.log";
  std::vector<char*> argv;
  std::string program = "ffmpeg";
  argv.push_back(program.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) throw std::runtime_error("fixtures: cannot open log or /dev/null");
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    if (::chdir(work.c_str()) != 0) ::_exit(126);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execvp("ffmpeg", argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) throw std::runtime_error("fixtures: fork failed");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("fixtures: waitpid failed");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string why = WIFEXITED(status) && WEXITSTATUS(status) == 127
                          ? "ffmpeg not found on PATH"
                          : fmt::format("exit status {}", WIFEXITED(status) ? WEXITSTATUS(status)
                                                                            : -WTERMSIG(status));
    throw std::runtime_error(
        fmt::format("fixtures: {} failed ({}):\n{}", Quote(args), why, ReadAll(log)));
  }
}

void PostProcess(const Recipe& r, const fs::path& out) {
  switch (r.post) {
    case Post::kNone:
      return;
    case Post::kEmpty:
      WriteAll(out, "");
      return;
    case Post::kRandom64K:
      WriteAll(out, SplitMixBytes(0x766d7033'72616e64ULL, 64 * 1024));
      return;
    case Post::kHtml:
      WriteAll(out,
               "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
               "<title>404 Not Found</title></head>\n<body>\n<h1>Not Found</h1>\n"
               "<p>The requested URL /videos/holiday.mp4 was not found on this server.</p>\n"
               "<hr><address>Apache/2.4.57 (Debian) Server at example.com Port 443</address>\n"
               "</body>\n</html>\n");
      return;
    case Post::kTruncate30: {
      std::string bytes = ReadAll(out);
      size_t keep = bytes.size() * 3 / 10;
      // Without a moov atom in what is kept, nothing can be decoded.
      if (bytes.find("moov") < keep) {
        throw std::runtime_error("fixtures: broken_truncated: moov atom is not at the end");
      }
      WriteAll(out, std::string_view(bytes).substr(0, keep));
      return;
    }
    case Post::kMidDamage4K: {
      std::string bytes = ReadAll(out);
      std::string garbage = SplitMixBytes(0x64616d61'6765ULL, 4096);
      size_t at = bytes.size() / 2;
      if (at + garbage.size() > bytes.size()) throw std::runtime_error("fixtures: too short");
      bytes.replace(at, garbage.size(), garbage);
      WriteAll(out, bytes);
      return;
    }
  }
}

class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("fixtures: cannot open lock " + path.string());
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) throw std::runtime_error("fixtures: flock failed on " + path.string());
    }
  }
  ~FileLock() { ::close(fd_); }  // closing releases the lock
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Files of earlier recipes of this fixture ("<name>-<8 hex>.<ext>"); called under its lock.
void RemoveOtherVersions(const Recipe& r, const fs::path& keep) {
  const std::string prefix = r.name + "-";
  const std::string suffix = "." + r.extension;
  for (const auto& entry : fs::directory_iterator(keep.parent_path())) {
    const std::string f = entry.path().filename().string();
    if (f.size() != prefix.size() + 8 + suffix.size() || f.rfind(prefix, 0) != 0 ||
        f.compare(prefix.size() + 8, suffix.size(), suffix) != 0 || entry.path() == keep) {
      continue;
    }
    const std::string hash = f.substr(prefix.size(), 8);
    if (std::all_of(hash.begin(), hash.end(), [](unsigned char c) { return std::isxdigit(c); })) {
      std::error_code ec;
      fs::remove(entry.path(), ec);
    }
  }
}

fs::path Generate(const Recipe& r) {
  const fs::path dir = VMP3_FIXTURE_DIR;
  const fs::path final_path = dir / fmt::format("{}-{}.{}", r.name, RecipeHash(r), r.extension);
  if (fs::exists(final_path)) return final_path;

  fs::create_directories(dir);
  FileLock lock(dir / fmt::format(".{}.lock", r.name));
  if (fs::exists(final_path)) return final_path;  // another process made it meanwhile

  // Work directories of this fixture left by a killed process are stale: we hold the lock.
  const std::string prefix = fmt::format(".work-{}-", r.name);
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) {
      std::error_code ec;
      fs::remove_all(entry.path(), ec);
    }
  }
  std::string tmpl = (dir / (prefix + "XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error("fixtures: mkdtemp failed in " + dir.string());
  }
  const fs::path work = tmpl;
  const fs::path out = work / ("out." + r.extension);
  for (const auto& cmd : r.commands) RunFfmpeg(cmd, work);
  PostProcess(r, out);
  if (!fs::exists(out)) throw std::runtime_error("fixtures: recipe made no " + out.string());
  fs::rename(out, final_path);
  std::error_code ec;
  fs::remove_all(work, ec);
  RemoveOtherVersions(r, final_path);
  return final_path;
}

std::string SanitizedTestName() {
  std::string name = "vmp3";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    name = fmt::format("{}.{}", info->test_suite_name(), info->name());
  }
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  if (name.size() > 80) name.resize(80);
  return name;
}

class TempDirRegistry {
 public:
  ~TempDirRegistry() {
    const char* keep = std::getenv("VMP3_KEEP_TEMP");
    if (keep != nullptr && *keep != '\0' && std::string_view(keep) != "0") return;
    for (const auto& d : dirs_) {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  }
  fs::path Make() {
    std::string tmpl =
        (fs::temp_directory_path() / fmt::format("vmp3-{}-XXXXXX", SanitizedTestName())).string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error(fmt::format("TempDir: mkdtemp {}: {}", tmpl, std::strerror(errno)));
    }
    std::lock_guard lock(mu_);
    dirs_.emplace_back(tmpl);
    return dirs_.back();
  }

 private:
  std::mutex mu_;
  std::vector<fs::path> dirs_;
};

}  // namespace

std::filesystem::path Fixture(std::string_view name) {
  static std::mutex mu;  // one generator per process at a time; flock orders the processes
  for (const auto& r : Recipes()) {
    if (r.name == name) {
      std::lock_guard lock(mu);
      return Generate(r);
    }
  }
  throw std::invalid_argument(fmt::format("no fixture named '{}'", name));
}

std::vector<std::string_view> FixtureNames() {
  std::vector<std::string_view> names;
  for (const auto& r : Recipes()) names.push_back(r.name);
  return names;
}

const std::vector<AudioFixture>& AudioFixtures() {
  static const std::vector<AudioFixture> fixtures = {
      {"mp4_h264_aac", "mov,mp4,m4a,3gp,3g2,mj2", 1, "aac", 44100, {440, 880}, 0},
      {"mkv_ac3_51", "matroska,webm", 1, "ac3", 48000, {500, 700, 300, 60, 1100, 1300}, 0},
      {"webm_vp9_opus", "matroska,webm", 1, "opus", 48000, {523, 784}, 0},
      {"avi_mpeg4_mp3", "avi", 1, "mp3", 44100, {330, 550}, 0},
      {"mov_pcm", "mov,mp4,m4a,3gp,3g2,mj2", 1, "pcm_s16le", 48000, {1000}, 144000},
      {"ts_mp2", "mpegts", 1, "mp2", 48000, {600, 900}, 0},
      {"flv_aac", "flv", 1, "aac", 44100, {350, 750}, 0},
      {"wav", "wav", 0, "pcm_s16le", 44100, {440, 660}, 132301},
      {"wav_frame_edge", "wav", 0, "pcm_s16le", 44100, {440, 660}, 132481},
      {"flac", "flac", 0, "flac", 48000, {440, 990}, 144000},
      {"m4a", "mov,mp4,m4a,3gp,3g2,mj2", 0, "aac", 48000, {1200, 1500}, 0},
      {"mp3", "mp3", 0, "mp3", 44100, {440, 660}, 132300},
      {"two_audio_tracks", "matroska,webm", 2, "aac", 48000, {880, 880}, 0},
      {"tagged", "mov,mp4,m4a,3gp,3g2,mj2", 1, "aac", 44100, {440, 660}, 0},
      {"cover_mp4", "mov,mp4,m4a,3gp,3g2,mj2", 0, "aac", 44100, {440, 660}, 0},
      {"cover_mkv", "matroska,webm", 0, "flac", 44100, {523, 659}, 132300},
      {"rate_22050", "wav", 0, "pcm_s16le", 22050, {300, 500}, 66150},
      {"rate_96000", "flac", 0, "flac", 96000, {1000, 3000}, 288000},
      {"mid_damage", "mpegts", 0, "mp2", 48000, {1000, 1000}, 0},
  };
  return fixtures;
}

const AudioFixture& AudioFixtureNamed(std::string_view name) {
  for (const auto& f : AudioFixtures()) {
    if (f.name == name) return f;
  }
  throw std::invalid_argument(fmt::format("no audio fixture named '{}'", name));
}

std::filesystem::path TempDir() {
  static TempDirRegistry registry;
  return registry.Make();
}

}  // namespace vmp3::test
