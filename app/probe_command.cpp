// `vmp3 probe INPUT [--json]`: what is in a media file, so a user can pick `--stream N`.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.hpp"
#include "common/io.hpp"
#include "format.hpp"
#include "media/media_info.hpp"

namespace vmp3::app {
namespace {

struct ProbeArgs {
  std::string input;
  bool json = false;
};

ProbeArgs& TheProbeArgs() {
  static ProbeArgs args;
  return args;
}

std::string OrDash(std::string text) { return text.empty() ? "-" : text; }

std::string Channels(const media::StreamInfo& s) {
  if (!s.channels) return s.channel_layout;
  if (s.channel_layout.empty()) return std::to_string(*s.channels);
  return fmt::format("{} ({})", *s.channels, s.channel_layout);
}

std::string Details(const media::StreamInfo& s) {
  std::vector<std::string> parts;
  if (s.width && s.height) parts.push_back(fmt::format("{}x{}", *s.width, *s.height));
  if (s.bit_rate && *s.bit_rate > 0) parts.push_back(FormatBitRate(*s.bit_rate));
  return fmt::format("{}", fmt::join(parts, ", "));
}

// Prints rows as left-aligned columns separated by two spaces; the last column is not padded.
void PrintTable(const std::vector<std::vector<std::string>>& rows, std::string_view indent) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], CountColumns(row[c]));
  }
  for (const auto& row : rows) {
    std::string line(indent);
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - CountColumns(row[c]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << '\n';
  }
}

void PrintHuman(const std::string& input, const media::MediaInfo& info) {
  std::cout << "Input:      " << Printable(input) << '\n';
  std::cout << "Container:  " << info.container;
  if (!info.container_long_name.empty()) std::cout << " (" << info.container_long_name << ")";
  std::cout << '\n';
  std::cout << "Duration:   "
            << (info.duration_seconds ? FormatPreciseClock(*info.duration_seconds) : "unknown")
            << '\n';
  std::cout << "Bit rate:   "
            << (info.bit_rate && *info.bit_rate > 0 ? FormatBitRate(*info.bit_rate) : "unknown")
            << '\n';

  std::cout << "\nStreams:\n";
  if (info.streams.empty()) {
    std::cout << "  (none)\n";
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"#", "type", "codec", "rate", "channels", "language", "default", "cover", "details"}};
    for (const media::StreamInfo& s : info.streams) {
      rows.push_back({
          std::to_string(s.index),
          OrDash(s.type),
          OrDash(s.codec),
          s.sample_rate ? fmt::format("{} Hz", *s.sample_rate) : "-",
          OrDash(Channels(s)),
          OrDash(Printable(s.language)),
          s.is_default ? "yes" : "no",
          s.is_cover_art ? "yes" : "no",
          Details(s),
      });
    }
    PrintTable(rows, "  ");
  }
  if (info.best_audio_stream) {
    std::cout << "\n`vmp3 convert` uses stream " << *info.best_audio_stream
              << " unless --stream N picks another.\n";
  } else {
    std::cout << "\nNo audio stream: `vmp3 convert` cannot convert this file.\n";
  }

  if (!info.tags.empty()) {
    std::cout << "\nTags:\n";
    size_t key_width = 0;
    for (const auto& [key, value] : info.tags) key_width = std::max(key_width, CountColumns(key));
    // Multi-line values (lyrics, comments) stay aligned under their first line.
    const std::string continuation = "\n" + std::string(2 + key_width + 3, ' ');
    for (const auto& [key, value] : info.tags) {
      std::string shown;
      for (char c : Printable(value, /*keep_newlines=*/true)) {
        if (c == '\n') {
          shown += continuation;
        } else {
          shown += c;
        }
      }
      std::cout << "  " << Printable(key) << ":"
                << std::string(key_width - CountColumns(key) + 2, ' ') << shown << '\n';
    }
  }
}

}  // namespace

void AddProbeOptions(CLI::App& sub) {
  ProbeArgs& args = TheProbeArgs();
  sub.add_option("INPUT", args.input, "Media file to inspect")->required();
  sub.add_flag("--json", args.json, "Print the result as JSON");
}

int RunProbe() {
  const ProbeArgs& args = TheProbeArgs();
  auto source = FileSource::Open(args.input);
  if (!source) {
    std::fprintf(stderr, "vmp3: %s: %s\n", args.input.c_str(), source.error().message.c_str());
    return kExitFailure;
  }
  Result<media::MediaInfo> info = media::Probe(**source);
  if (!info) {
    std::fprintf(stderr, "vmp3: %s: %s\n", args.input.c_str(), info.error().message.c_str());
    return kExitFailure;
  }
  if (args.json) {
    nlohmann::json j = *info;
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  } else {
    PrintHuman(args.input, *info);
  }
  std::cout.flush();
  return std::cout.good() ? kExitOk : kExitFailure;
}

}  // namespace vmp3::app
