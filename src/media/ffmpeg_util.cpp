#include "media/ffmpeg_util.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>

namespace vmp3::media {

std::string AvErrorText(int errnum) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(errnum, buf, sizeof(buf));
  return buf;
}

namespace {

void LogCallback(void* avcl, int level, const char* fmt, va_list args) {
  if (level > AV_LOG_WARNING || !spdlog::should_log(spdlog::level::debug)) return;
  char line[1024];
  int print_prefix = 1;
  av_log_format_line2(avcl, level, fmt, args, line, sizeof(line), &print_prefix);
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  spdlog::debug("ffmpeg: {}", text);
}

}  // namespace

void InstallFfmpegLogBridge() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(LogCallback); });
}

}  // namespace vmp3::media
