// Fuzz entry points, as plain functions so that both the libFuzzer executables (fuzz_main.cpp,
// clang only, see CMakeLists.txt here) and the ordinary test run (tests/http/fuzz_smoke_test.cpp)
// drive exactly the same code.
//
// Each takes arbitrary bytes, never fails on bad input, and checks properties that must hold for
// every input (differential: the same body cut into different chunks parses the same; round
// trip: what we build parses back to what we built it from; output validity; documented error
// codes only). A broken property prints what broke to stderr and calls std::abort()
// (fuzz_check.hpp), which libFuzzer and ASan report as a crash. Always returns 0.
// Where an input needs a mode, its first byte chooses it (documented per function); seed files
// in corpus/<target>/ start with that byte.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmp3::fuzz {

// --- http_targets.cpp ---
// multipart.hpp: BoundaryFromContentType and MultipartParser.
int FuzzMultipart(const uint8_t* data, size_t size);

// range.hpp: ParseRange, ContentRange, IfRangeMatches.
int FuzzRange(const uint8_t* data, size_t size);

// content_disposition.hpp: Mp3NameFor, AttachmentDisposition, DropInvalidUtf8.
int FuzzFilenames(const uint8_t* data, size_t size);

// content_disposition.hpp: ParseContentDisposition on the input (byte 0: round-trip flags), and
// through MultipartParser.
int FuzzContentDisposition(const uint8_t* data, size_t size);

// --- auth_targets.cpp ---
// jwt.hpp: TokenVerifier::Verify, PublicKey::FromJwks / FromBase64, SigningKey::FromSeedBase64.
int FuzzJwt(const uint8_t* data, size_t size);

// --- url_targets.cpp ---
// RedisTarget::Parse, AmqpTarget::Parse (common/backend_url.hpp underneath) and ParseS3Url.
int FuzzBackendUrls(const uint8_t* data, size_t size);

// --- api_targets.cpp ---
// Byte 0 % 3: 0 registration body (auth/registration.hpp), 1 upload options
// (roles/upload_options.hpp; "quality\0bitrate" or options_json), 2 Server-Sent Events
// (http/sse.hpp; "type\0data").
int FuzzJsonBodies(const uint8_t* data, size_t size);

// --- media_targets.cpp ---
// media::Probe through the AVIO bridge on the input as an in-memory ByteSource.
int FuzzMediaProbe(const uint8_t* data, size_t size);

// --- mp3_targets.cpp ---
// media/mp3_frame.hpp (ParseHeader, ParseFrame, GrowFrame, FrameCrc) and media::JoinSeam. Byte 0
// % 2: 0 the rest is an MP3 byte stream, 1 frames described by six bytes each.
int FuzzMp3Frames(const uint8_t* data, size_t size);

// --- storage_targets.cpp ---
// storage/s3_xml.hpp: every S3 XML answer parser, ParseIsoTime and the request-body builders.
int FuzzS3Xml(const uint8_t* data, size_t size);

}  // namespace vmp3::fuzz
