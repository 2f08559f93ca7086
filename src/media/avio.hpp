// Bridges between vmp3's byte streams and FFmpeg's AVIOContext callbacks, private to src/media.
// The engine never opens paths itself: every byte flows through a ByteSource or ByteSink, so the
// same code reads local files and object storage.
#pragma once

#include <optional>
#include <stop_token>

#include "common/io.hpp"
#include "media/ffmpeg_util.hpp"

namespace vmp3::media {

// Owns an AVIOContext that reads from a ByteSource. The first error the source reports is
// kept, so callers can tell an I/O failure from bad media.
class AvioReader {
 public:
  explicit AvioReader(ByteSource& source);
  ~AvioReader();
  AvioReader(const AvioReader&) = delete;
  AvioReader& operator=(const AvioReader&) = delete;

  AVIOContext* context() const { return ctx_; }
  const std::optional<Error>& error() const { return error_; }

 private:
  static int Read(void* opaque, uint8_t* buf, int size);
  static int64_t Seek(void* opaque, int64_t offset, int whence);

  ByteSource& source_;
  AVIOContext* ctx_ = nullptr;
  uint64_t position_ = 0;
  std::optional<Error> error_;
};

// Owns an AVIOContext that writes into a ByteSink, refusing to grow past `max_bytes` (0: no
// limit). The first error is kept for the caller.
class AvioWriter {
 public:
  AvioWriter(ByteSink& sink, uint64_t max_bytes);
  ~AvioWriter();
  AvioWriter(const AvioWriter&) = delete;
  AvioWriter& operator=(const AvioWriter&) = delete;

  AVIOContext* context() const { return ctx_; }
  const std::optional<Error>& error() const { return error_; }
  uint64_t high_water() const { return high_water_; }

 private:
  static int Write(void* opaque, uint8_t* buf, int size);
  static int64_t Seek(void* opaque, int64_t offset, int whence);

  ByteSink& sink_;
  uint64_t max_bytes_;
  AVIOContext* ctx_ = nullptr;
  uint64_t position_ = 0;
  uint64_t high_water_ = 0;
  std::optional<Error> error_;
};

// An opened input: the demuxer with its I/O. Probing uses the bytes only (never the file
// name), so a page renamed .mp4 is recognised for what it is.
// Members are destroyed in reverse order: the demuxer first, then what its callbacks use.
struct OpenedInput {
  std::unique_ptr<std::stop_token> stop;  // read by the demuxer's interrupt callback
  std::unique_ptr<AvioReader> io;
  InputFormatPtr format;
};

// Opens and analyses `source`. When `audio_only` is set, every non-audio stream is discarded
// before stream analysis so that no video is ever decoded, not even to probe it.
// Errors: kEmptyInput, kNotMedia, kCorruptMedia, kCancelled, or the source's own error.
Result<OpenedInput> OpenInput(ByteSource& source, bool audio_only, std::stop_token stop);

// The error to report when a demux or I/O step fails with `averr`: the source's own error when
// it had one, kCancelled when stopped, else `fallback` with FFmpeg's reason appended.
Error InputError(const AvioReader& io, int averr, ErrorCode fallback, std::string_view what,
                 std::stop_token stop);

}  // namespace vmp3::media
