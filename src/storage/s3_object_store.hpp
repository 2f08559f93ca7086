// ObjectStore on an S3-compatible service (AWS S3, Ceph RGW, MinIO), spoken directly over HTTP
// with libcurl and signed with SigV4 (storage/sigv4.hpp); no AWS SDK.
//
// Storage URL:  s3://BUCKET[/PREFIX]?endpoint=http://127.0.0.1:7480&region=us-east-1
//                                    [&virtual_host=true][&presign=true]
//   endpoint      scheme://host[:port] of the service; default https://s3.<region>.amazonaws.com
//   region        signing region; default us-east-1
//   virtual_host  address the bucket as BUCKET.host instead of host/BUCKET (path style, default)
//   presign       downloads may redirect clients to a presigned URL (see PresignGet)
//   PREFIX        objects live under PREFIX/<key>, so several deployments can share a bucket
// Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, never from
// the URL: a URL with user info is rejected, and no message ever repeats a URL's user info,
// query values or the keys.
//
// Writing: an ObjectWriter buffers one part (8 MiB) at a time, so memory is bounded per upload.
// An object smaller than one part is sent with a single PUT at Commit. A larger one becomes a
// multipart upload: CreateMultipartUpload when the first part is full, UploadPart for each full
// part, CompleteMultipartUpload at Commit. Abort() and the destructor of an uncommitted writer
// call AbortMultipartUpload, so no parts are left behind (unless the process dies: a bucket
// lifecycle rule "AbortIncompleteMultipartUpload" cleans those up).
//
// Reading: Open() sends HEAD for the size and ETag, then Read() fetches ranged GETs of a 1 MiB
// window with If-Match: <ETag>, so a reader never mixes versions; if the object is replaced or
// removed mid-read, Read fails with kConflict or kNotFound. Seek only moves the position.
//
// Etags: S3's ETag is a content hash, so rewriting the same bytes keeps it; the ObjectStore
// contract wants a new etag for every commit. Each writer therefore stores a random version in
// the x-amz-meta-vmp3-version header, and ObjectInfo::etag is that version (or S3's ETag for an
// object written by another tool).
//
// Failures: 5xx, 429, connection failures and timeouts (S3's 400 RequestTimeout included) are
// retried with exponential backoff and jitter, up to S3Config::max_attempts attempts in all;
// other 4xx never are. Then:
//   signature mismatch, unknown key id, denied, expired token, skewed clock -> kPermissionDenied
//   missing bucket or object -> kNotFound, naming it
//   bucket in another region -> kInvalidArgument, naming the region when S3 does
//   unreachable or failing service -> kUnavailable ("object storage at <endpoint> is unavailable")
//   anything else -> kIo with S3's error code and message.
// HEAD answers carry no error body, so a failed HEAD (other than 404) is repeated as a small GET
// to learn S3's error code.
// Retried requests are signed again. CreateMultipartUpload is not idempotent: a retry after a
// lost response can leave one empty upload behind (the lifecycle rule above removes it).
//
// Threading: S3ObjectStore is thread-safe; it keeps a small pool of curl handles so connections
// are reused. Readers and writers are used by one thread at a time and must not outlive the
// store. Every call blocks the calling thread for the duration of its HTTP requests.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/object_store.hpp"
#include "storage/sigv4.hpp"

namespace vmp3 {

struct S3Config {
  std::string bucket;
  std::string prefix;    // "" or a valid object key ("a/b"); objects are stored at prefix/key
  std::string endpoint;  // "http://host:port" (no path); empty means AWS for the region
  std::string region = "us-east-1";
  bool virtual_host = false;       // BUCKET.host/key instead of host/BUCKET/key
  bool presign_downloads = false;  // the "presign" URL parameter; read by the download role
  sigv4::Credentials credentials;

  // Tuning; the defaults suit production. S3 wants every part but the last >= 5 MiB.
  size_t part_size = 8 * 1024 * 1024;
  size_t read_window = 1024 * 1024;
  int max_attempts = 4;                             // attempts per request, including the first
  std::chrono::milliseconds retry_base_delay{200};  // doubled per retry, with jitter
  std::chrono::milliseconds connect_timeout{5000};
  // A transfer slower than 1 KiB/s for this long is abandoned (and retried).
  std::chrono::seconds low_speed_time{30};
};

// Parses an s3:// storage URL (see the top of this file). Credentials are left empty.
// kInvalidArgument, naming the part that is wrong, for anything else.
Result<S3Config> ParseS3Url(std::string_view url);

// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and (optional) AWS_SESSION_TOKEN. kInvalidArgument
// naming the missing variable.
Result<sigv4::Credentials> S3CredentialsFromEnvironment();

// A multipart upload that was started and neither completed nor aborted.
struct S3MultipartUpload {
  std::string key;  // the ObjectStore key (without the URL's prefix)
  std::string upload_id;
  int64_t initiated_unix = -1;  // when it was started, by S3's clock; -1 when S3 did not say
};

class S3ObjectStore final : public ObjectStore {
 public:
  // Checks the configuration (kInvalidArgument); does not contact the service (Ping does).
  static Result<std::unique_ptr<S3ObjectStore>> FromConfig(S3Config config);
  ~S3ObjectStore() override;

  Result<std::unique_ptr<ObjectWriter>> Create(std::string_view key) override;
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view key) override;
  Result<ObjectInfo> Stat(std::string_view key) override;
  Status Remove(std::string_view key) override;
  // HEAD of the bucket: reachable, credentials accepted, bucket present.
  Status Ping() override;
  // "s3://bucket/prefix at <endpoint>"; no credentials.
  std::string Describe() const override;
  // PresignGet when the URL asked for presigned downloads; empty otherwise.
  Result<std::string> RedirectUrl(std::string_view key, std::chrono::seconds expires) override;

  // A URL that lets anyone holding it GET the object (with Range if they like) for `expires`
  // (1 s to 7 days), without credentials. Does not check that the object exists.
  Result<std::string> PresignGet(std::string_view key, std::chrono::seconds expires) const;

  // Aborts the multipart uploads under this store's prefix started at least `older_than` ago:
  // the parts of a process that died mid-upload (a bucket lifecycle rule does the same).
  Result<int> AbortAbandonedWrites(std::chrono::seconds older_than) override;

  // Multipart uploads in progress under this store's prefix (tests check for orphans with it).
  Result<std::vector<S3MultipartUpload>> ListMultipartUploads();

  // Creates the bucket; succeeds when this account owns it already. For tests and first-run
  // setup; the service itself never creates buckets.
  Status CreateBucketIfMissing();

  const S3Config& config() const;

  // The HTTP machinery (request building, signing, retries, error mapping) lives in the .cpp;
  // readers and writers reach it through this.
  class Client;

 private:
  explicit S3ObjectStore(std::unique_ptr<Client> client);
  std::unique_ptr<Client> client_;
};

}  // namespace vmp3
