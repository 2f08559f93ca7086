// Fuzz entry points for the hand-written HTTP parsers, as plain functions so that both the
// libFuzzer executables (fuzz/*_fuzz.cpp, clang only) and the ordinary test run
// (tests/http/fuzz_smoke_test.cpp) drive exactly the same code.
//
// Each takes arbitrary bytes, never fails on bad input, and checks properties that must hold for
// every input (differential: the same body cut into different chunks parses the same; round
// trip: a body built from the input parses back to it; output validity). A broken property
// prints what broke to stderr and calls std::abort(), which libFuzzer and ASan report as a crash.
// Always returns 0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmp3::fuzz {

// multipart.hpp: BoundaryFromContentType and MultipartParser.
int FuzzMultipart(const uint8_t* data, size_t size);

// range.hpp: ParseRange, ContentRange, IfRangeMatches.
int FuzzRange(const uint8_t* data, size_t size);

// content_disposition.hpp: Mp3NameFor, AttachmentDisposition, DropInvalidUtf8.
int FuzzFilenames(const uint8_t* data, size_t size);

}  // namespace vmp3::fuzz
