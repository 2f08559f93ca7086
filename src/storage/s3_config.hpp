// How vmp3 reaches an S3-compatible service: the storage URL, its parsed form, and credentials.
//
// Storage URL:  s3://BUCKET[/PREFIX]?endpoint=http://127.0.0.1:7480&region=us-east-1
//                                    [&virtual_host=true][&presign=true][&timeout=5s]
//   endpoint      scheme://host[:port] of the service; default https://s3.<region>.amazonaws.com
//   region        signing region; default us-east-1
//   virtual_host  address the bucket as BUCKET.host instead of host/BUCKET (path style, default)
//   presign       downloads may redirect clients to a presigned URL (see
//   S3ObjectStore::PresignedGetUrl) timeout       how long connecting may take, and how long one
//   attempt of a small request
//                 (HEAD, DELETE, a listing, starting or completing a multipart upload) may take
//                 in all: a whole number with the unit ms or s (timeout=500ms, timeout=5s), from
//                 10ms to 600s; default 5s. Requests that move object bytes (GET of a window, PUT
//                 of a part or a small object) have no total cap: they are abandoned when slower
//                 than 1 KiB/s for 30 s. Work done for an HTTP request is bounded by that
//                 request's deadline as well (common/deadline.hpp; see storage/s3_http.hpp).
//   PREFIX        objects live under PREFIX/<key>, so several deployments can share a bucket
// Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, never from
// the URL: a URL with user info is rejected, and no message ever repeats a URL's user info,
// query values or the keys.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "storage/sigv4.hpp"

namespace vmp3 {

struct S3Config {
  std::string bucket;
  std::string prefix;    // "" or a valid object key ("a/b"); objects are stored at prefix/key
  std::string endpoint;  // "http://host:port" (no path); empty means AWS for the region
  std::string region = "us-east-1";
  bool virtual_host = false;       // BUCKET.host/key instead of host/BUCKET/key
  bool presign_downloads = false;  // the "presign" URL parameter; read by the storage factory
  sigv4::Credentials credentials;

  // Tuning; the defaults suit production. S3 wants every part but the last >= 5 MiB.
  size_t part_size = 8 * 1024 * 1024;
  size_t read_window = 1024 * 1024;
  int max_attempts = 4;                             // attempts per request, including the first
  std::chrono::milliseconds retry_base_delay{200};  // doubled per retry, with jitter
  // The URL's timeout: connecting, and the whole of one attempt of a small request.
  std::chrono::milliseconds timeout{5000};
  // A transfer slower than 1 KiB/s for this long is abandoned (and retried).
  std::chrono::seconds low_speed_time{30};
};

// Parses an s3:// storage URL (see the top of this file). Credentials are left empty.
// kInvalidArgument, naming the part that is wrong, for anything else.
Result<S3Config> ParseS3Url(std::string_view url);

// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and (optional) AWS_SESSION_TOKEN. kInvalidArgument
// naming the missing variable.
Result<sigv4::Credentials> S3CredentialsFromEnvironment();

// S3's bucket naming rules: 3-63 characters of a-z 0-9 . -, starting and ending with a letter or
// digit.
bool ValidS3BucketName(std::string_view bucket);

// An endpoint= value taken apart.
struct S3Endpoint {
  std::string scheme;     // "http" or "https"
  std::string authority;  // "host[:port]", as written
  bool ip_literal = false;
};
// kInvalidArgument unless `text` is http(s)://host[:port] with nothing else.
Result<S3Endpoint> ParseS3Endpoint(std::string_view text);

}  // namespace vmp3
