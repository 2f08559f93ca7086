// The XML of S3: parsers for the answers vmp3 reads and builders for the bodies it sends. Pure
// functions over bytes (no HTTP, no store, no global state), so each parser can be tested and
// fuzzed on its own.
//
// Parsing uses pugixml, which reads no DTD, fetches no external entity and expands only the
// predefined and numeric character references, so a hostile answer cannot make it do more than
// read the bytes once. Every parser accepts any bytes: malformed XML, or a well-formed document
// that is not the answer expected (another root element, a missing or malformed required field),
// is an Error with code kIo whose message says what is wrong and never repeats the bytes; it
// never crashes or throws.
//
// Element names are matched without namespace prefixes, as S3 sends them (a default xmlns on the
// root element). Text is returned decoded (entities resolved, CDATA unwrapped).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace vmp3::s3 {

// <Error><Code/><Message/>[<Region/>]...</Error>: the body of every failed request that has one,
// and of a CompleteMultipartUpload that failed after answering 200.
struct ErrorBody {
  std::string code;     // "NoSuchKey", "SlowDown", ...; may be empty
  std::string message;  // may be empty
  std::string region;   // the bucket's region, with some redirects; usually empty
};
Result<ErrorBody> ParseError(std::string_view xml);

// One <Contents> of a ListObjectsV2 answer.
struct ListedObject {
  std::string key;  // the full S3 key, as listed
  uint64_t size = 0;
  std::string etag;  // S3's ETag without its quotes; may be empty
  int64_t modified_unix = 0;
};

// <ListBucketResult> (ListObjectsV2).
struct ObjectsPage {
  std::vector<ListedObject> objects;  // in the order listed (ascending by key)
  bool truncated = false;             // more keys follow
  std::string next_continuation_token;
};
// Every <Contents> needs a non-empty <Key>, a decimal <Size> and an ISO 8601 <LastModified>.
Result<ObjectsPage> ParseListObjectsV2(std::string_view xml);

// One <Upload> of a ListMultipartUploads answer.
struct ListedUpload {
  std::string key;  // the full S3 key
  std::string upload_id;
  int64_t initiated_unix = -1;  // -1 when <Initiated> is missing or not a time
};

// <ListMultipartUploadsResult>.
struct UploadsPage {
  std::vector<ListedUpload> uploads;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};
// Every <Upload> needs a non-empty <Key> and <UploadId>.
Result<UploadsPage> ParseListMultipartUploads(std::string_view xml);

// <InitiateMultipartUploadResult>: the upload id (never empty on success).
Result<std::string> ParseInitiateMultipartUpload(std::string_view xml);

// S3's timestamps, "2026-11-21T09:00:00.000Z" (UTC; the fraction is optional and ignored), in
// seconds since the epoch. kInvalidArgument for anything else.
Result<int64_t> ParseIsoTime(std::string_view text);

// The body of CompleteMultipartUpload: parts numbered from 1 in the order given.
std::string CompleteMultipartUploadXml(std::span<const std::string> part_etags);

// The body of CreateBucket naming a location constraint (not needed for us-east-1).
std::string CreateBucketConfigurationXml(std::string_view region);

}  // namespace vmp3::s3
