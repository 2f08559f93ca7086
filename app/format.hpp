// Human-readable numbers for the command-line front. Pure functions, no locale.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vmp3::app {

// "3:21", "1:02:03" (rounded to whole seconds; negative and NaN print as "0:00").
std::string FormatClock(double seconds);

// "0:03:21.46": hours always shown, centiseconds rounded.
std::string FormatPreciseClock(double seconds);

// SI units with one decimal above 1 kB: "512 B", "4.6 MB", "1.2 GB".
std::string FormatBytes(uint64_t bytes);

// "1234 kb/s" from bits per second.
std::string FormatBitRate(int64_t bits_per_second);

// Cuts `text` to at most `columns` code points, ending with "…" when cut. Counts code points,
// not display cells, which is exact for the names people usually give files.
std::string TruncateToColumns(std::string_view text, size_t columns);

// Replaces control characters (ESC, CR, ...; newline too unless keep_newlines) with '?', so text
// from a file (tags, names) cannot drive the terminal.
std::string Printable(std::string_view text, bool keep_newlines = false);

// Number of UTF-8 code points in `text`.
size_t CountColumns(std::string_view text);

}  // namespace vmp3::app
