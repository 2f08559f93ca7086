// AWS Signature Version 4 (SigV4), as S3 uses it: the Authorization header and presigned URLs.
// Small and separate from the S3 client so it can be checked against AWS's published examples
// (tests/storage/sigv4_test.cpp).
//
// The algorithm (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html):
//   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n
//                      SignedHeaders \n HashedPayload
//   StringToSign     = "AWS4-HMAC-SHA256" \n X-Amz-Date \n Scope \n hex(SHA256(CanonicalRequest))
//   Scope            = yyyymmdd/region/service/aws4_request
//   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, yyyymmdd), region), service),
//                           "aws4_request")
//   Signature        = hex(HMAC(SigningKey, StringToSign))
//
// S3 differs from other services in one way that matters here: the path is not normalized
// ("a//b" and "a/./b" are distinct keys) and is encoded once, segment by segment.
//
// Every function is pure and thread-safe. Nothing here logs or keeps a secret.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmp3::sigv4 {

inline constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
// The x-amz-content-sha256 value that tells S3 the body is not part of the signature.
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// hex(SHA256("")): the payload hash of every request without a body.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless the keys are temporary (STS)
};

// Where and when a request is signed.
struct Scope {
  std::string region;    // "us-east-1"
  std::string service;   // "s3"
  std::string amz_date;  // "yyyymmddThhmmssZ" (UTC), see FormatAmzDate
};

// A request before signing. Values are raw (not percent-encoded): the signer encodes them, and the
// caller must send exactly EncodePath(path) and CanonicalQueryString(query) on the wire.
struct Request {
  std::string method;                                        // "GET", "PUT", ...
  std::string path;                                          // "/bucket/key"; empty means "/"
  std::vector<std::pair<std::string, std::string>> query;    // "?uploads" is {"uploads", ""}
  std::vector<std::pair<std::string, std::string>> headers;  // must include Host
  // hex(SHA256(body)), kEmptyPayloadHash, or kUnsignedPayload. S3 also wants it sent as the
  // x-amz-content-sha256 header; the caller adds that header (other services do not use it).
  std::string payload_hash = std::string(kEmptyPayloadHash);
};

// RFC 3986 percent-encoding as SigV4 defines it: every byte except A-Z a-z 0-9 - . _ ~ becomes
// %XX with upper-case hex (a space is %20, never '+'); '/' is kept only when !encode_slash.
std::string UriEncode(std::string_view s, bool encode_slash);

// The path as sent and signed: each '/'-separated segment encoded, '/' kept, "" -> "/".
std::string EncodePath(std::string_view path);

// name=value pairs, both encoded, sorted by encoded name then value, joined with '&'; a
// parameter without a value is "name=".
std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query);

// Lower-case header names, sorted, joined with ';'.
std::string SignedHeaders(const Request& request);

// The canonical request (see the top of this file). Header names are lower-cased, values
// trimmed with inner runs of spaces collapsed to one, and repeated headers joined with ','.
std::string CanonicalRequest(const Request& request);

// "yyyymmdd/region/service/aws4_request".
std::string CredentialScope(const Scope& scope);

std::string StringToSign(const Scope& scope, std::string_view canonical_request);

// The derived key (raw 32 bytes), valid for one day, region and service.
std::string SigningKey(std::string_view secret_access_key, std::string_view yyyymmdd,
                       std::string_view region, std::string_view service);

// hex(HMAC-SHA256(SigningKey, StringToSign)).
std::string Signature(const Credentials& credentials, const Scope& scope,
                      std::string_view canonical_request);

// Signs with the Authorization header. First adds X-Amz-Date (scope.amz_date) and, with a
// session token, X-Amz-Security-Token to request.headers unless present, so both are signed;
// then returns the value of the Authorization header to send along with request.headers:
//   AWS4-HMAC-SHA256 Credential=<key id>/<scope>, SignedHeaders=<...>, Signature=<hex>
std::string SignHeaders(Request& request, const Credentials& credentials, const Scope& scope);

// Query-string authentication (a presigned URL), valid for expires_seconds (1 to 604800) from
// scope.amz_date. Adds X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
// X-Amz-SignedHeaders (and X-Amz-Security-Token with a session token) to request.query, signs
// with payload_hash UNSIGNED-PAYLOAD (a presigned URL cannot know the body), and returns the
// whole query string to put after '?', X-Amz-Signature last. Only request.headers are signed
// (normally just Host), so whoever uses the URL may add other headers, such as Range.
std::string PresignQuery(Request& request, const Credentials& credentials, const Scope& scope,
                         int64_t expires_seconds);

// "yyyymmddThhmmssZ" in UTC.
std::string FormatAmzDate(std::chrono::system_clock::time_point time);

// Primitives, exposed for tests and for hashing request bodies.
std::string Sha256Hex(std::span<const std::byte> data);
std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);  // raw 32 bytes
std::string HexEncode(std::string_view bytes);                        // lower case

}  // namespace vmp3::sigv4
