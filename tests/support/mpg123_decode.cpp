#include "support/mpg123_decode.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <mpg123.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>

namespace vmp3::test {
namespace mpg123_detail {

struct HandleDeleter {
  void operator()(mpg123_handle* h) const {
    mpg123_close(h);
    mpg123_delete(h);
  }
};

// Redirects the process's stderr into a memory file for its lifetime and hands back what was
// written. libmpg123 prints its warnings (damaged frames, "cannot rewind" for a bit reservoir
// that is not there) to stderr and offers no callback, so this is the only way to count them.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    memfd_ = ::memfd_create("vmp3-mpg123-stderr", MFD_CLOEXEC);
    saved_ = ::dup(STDERR_FILENO);
    if (memfd_ >= 0 && saved_ >= 0) active_ = ::dup2(memfd_, STDERR_FILENO) >= 0;
  }
  ~StderrCapture() { Restore(); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  // Restores stderr and returns everything written meanwhile.
  std::string Finish() {
    Restore();
    std::string text;
    if (memfd_ < 0) return text;
    if (::lseek(memfd_, 0, SEEK_SET) == 0) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(memfd_, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
    }
    ::close(memfd_);
    memfd_ = -1;
    return text;
  }

 private:
  void Restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    if (active_) ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
    active_ = false;
  }

  int memfd_ = -1;
  int saved_ = -1;
  bool active_ = false;
};

void Note(Mpg123Decoded& out, std::string message) {
  ++out.problems;
  if (out.messages.size() < 20) out.messages.push_back(std::move(message));
}

}  // namespace mpg123_detail

Result<Mpg123Decoded> DecodeWithMpg123(const std::filesystem::path& path, bool keep_pcm) {
  namespace d = mpg123_detail;
  static std::once_flag init_once;
  static int init_result = MPG123_OK;
  std::call_once(init_once, [] { init_result = mpg123_init(); });
  if (init_result != MPG123_OK) {
    return MakeError(ErrorCode::kInternal,
                     fmt::format("mpg123_init: {}", mpg123_plain_strerror(init_result)));
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return MakeError(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                     fmt::format("cannot read {}: {}", path.string(), std::strerror(errno)));
  }

  static std::mutex stderr_mu;  // stderr is one per process
  std::lock_guard lock(stderr_mu);
  Mpg123Decoded out;
  out.pcm_hash = 0xcbf29ce484222325ULL;
  d::StderrCapture capture;
  {
    int err = MPG123_OK;
    std::unique_ptr<mpg123_handle, d::HandleDeleter> mh(mpg123_new(nullptr, &err));
    if (!mh) {
      return MakeError(ErrorCode::kInternal,
                       fmt::format("mpg123_new: {}", mpg123_plain_strerror(err)));
    }
    auto check = [&](int ret, std::string_view what) {
      if (ret != MPG123_OK) d::Note(out, fmt::format("{}: {}", what, mpg123_strerror(mh.get())));
    };
    // Gapless on, float output, and MPG123_QUIET deliberately off: its printed warnings are
    // the problems we are looking for. Verbosity 0 keeps informational notes out.
    check(mpg123_param(mh.get(), MPG123_FLAGS, MPG123_GAPLESS | MPG123_FORCE_FLOAT, 0),
          "set flags");
    check(mpg123_param(mh.get(), MPG123_VERBOSE, 0, 0), "set verbosity");
    check(mpg123_format_none(mh.get()), "clear formats");
    const long* rates = nullptr;
    size_t rate_count = 0;
    mpg123_rates(&rates, &rate_count);
    for (size_t i = 0; i < rate_count; ++i) {
      check(mpg123_format(mh.get(), rates[i], MPG123_MONO | MPG123_STEREO, MPG123_ENC_FLOAT_32),
            "allow float output");
    }
    if (mpg123_open(mh.get(), path.c_str()) != MPG123_OK) {
      return MakeError(ErrorCode::kIo, fmt::format("mpg123 cannot open {}: {}", path.string(),
                                                   mpg123_strerror(mh.get())));
    }

    off_t last_num = -1;
    bool format_known = false;
    for (;;) {
      off_t num = 0;
      unsigned char* audio = nullptr;
      size_t bytes = 0;
      const int ret = mpg123_decode_frame(mh.get(), &num, &audio, &bytes);
      if (ret == MPG123_DONE) break;
      if (ret == MPG123_NEW_FORMAT) {
        long rate = 0;
        int channels = 0, encoding = 0;
        check(mpg123_getformat(mh.get(), &rate, &channels, &encoding), "get format");
        if (format_known && (rate != out.sample_rate || channels != out.channels)) {
          d::Note(out, fmt::format("format changed mid-stream to {} Hz {} ch", rate, channels));
        }
        if (encoding != MPG123_ENC_FLOAT_32) {
          d::Note(out, fmt::format("output encoding {:#x} is not 32-bit float", encoding));
          break;
        }
        format_known = true;
        out.sample_rate = static_cast<int>(rate);
        out.channels = channels;
        if (keep_pcm) out.pcm.resize(static_cast<size_t>(channels));
        continue;
      }
      if (ret != MPG123_OK) {
        // An error ends decoding: libmpg123 has already resynced where it could.
        d::Note(out, fmt::format("decoding: {}", mpg123_strerror(mh.get())));
        break;
      }
      ++out.frames;
      if (last_num >= 0 && num != last_num + 1) {
        d::Note(out, fmt::format("frames {} to {} were skipped", last_num + 1, num - 1));
      }
      last_num = num;
      if (!format_known || bytes == 0) continue;
      const size_t per_sample = sizeof(float) * static_cast<size_t>(out.channels);
      const size_t count = bytes / per_sample;
      out.samples += static_cast<int64_t>(count);
      for (size_t i = 0; i < count * per_sample; ++i) {
        out.pcm_hash = (out.pcm_hash ^ audio[i]) * 0x100000001b3ULL;
      }
      if (keep_pcm) {
        const auto* f = reinterpret_cast<const float*>(audio);
        for (int c = 0; c < out.channels; ++c) {
          auto& dst = out.pcm[static_cast<size_t>(c)];
          for (size_t i = 0; i < count; ++i) dst.push_back(f[i * out.channels + c]);
        }
      }
    }
    long value = 0;
    double fvalue = 0;
    if (mpg123_getstate(mh.get(), MPG123_ENC_DELAY, &value, &fvalue) == MPG123_OK) {
      out.encoder_delay = static_cast<int>(value);
    }
    // A stream that looks like files stitched together (a second Info frame, a format change)
    // is one a parallel encoder must never produce.
    if (mpg123_getstate(mh.get(), MPG123_FRANKENSTEIN, &value, &fvalue) == MPG123_OK &&
        value != 0) {
      d::Note(out, "libmpg123 sees a stream stitched from several files (Frankenstein)");
    }
    if (!format_known) {
      return MakeError(ErrorCode::kNotMedia, fmt::format("{}: no MPEG audio", path.string()));
    }
  }
  std::istringstream printed(capture.Finish());
  for (std::string line; std::getline(printed, line);) {
    if (!line.empty()) d::Note(out, "printed: " + line);
  }
  return out;
}

}  // namespace vmp3::test
