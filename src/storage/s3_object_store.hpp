// ObjectStore on an S3-compatible service (AWS S3, Ceph RGW, MinIO), spoken directly over HTTP
// with libcurl and signed with SigV4; no AWS SDK. One file per layer:
//   s3_config   the storage URL (its parameters are documented there) and credentials
//   s3_xml      parsing S3's XML answers and building request bodies (pugixml)
//   s3_http     the signed HTTP client: signing, connection pool, retries, error mapping
//   s3_reader   ranged, version-pinned reads with read-ahead
//   s3_writer   single PUT or multipart upload
//
// Etags: S3's ETag is a content hash, so rewriting the same bytes keeps it; the ObjectStore
// contract wants a new etag for every commit. Each writer therefore stores a random version in
// the x-amz-meta-vmp3-version header, and ObjectInfo::etag is that version (or S3's ETag for an
// object written by another tool).
//
// Failures (see s3_http.hpp for the whole mapping): transient ones are retried with backoff up
// to S3Config::max_attempts; an unreachable or failing service is kUnavailable ("object storage
// at <endpoint> is unavailable"), a bad signature or key kPermissionDenied, a missing bucket or
// object kNotFound.
//
// Threading: S3ObjectStore is thread-safe; it keeps a small pool of curl handles so connections
// are reused. Readers and writers are used by one thread at a time and must not outlive the
// store. Every call blocks the calling thread for the duration of its HTTP requests.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/capabilities.hpp"
#include "storage/object_store.hpp"
#include "storage/s3_config.hpp"

namespace vmp3 {

namespace s3 {
class HttpClient;
}  // namespace s3

// A multipart upload that was started and neither completed nor aborted.
struct S3MultipartUpload {
  std::string key;  // the ObjectStore key (without the URL's prefix)
  std::string upload_id;
  int64_t initiated_unix = -1;  // when it was started, by S3's clock; -1 when S3 did not say
};

// Also a PresignedUrls (handed out by MakeObjectStore only with presign=true) and an
// AbandonedWriteSweeper (multipart uploads of processes that died).
class S3ObjectStore final : public ObjectStore, public PresignedUrls, public AbandonedWriteSweeper {
 public:
  // Checks the configuration (kInvalidArgument); does not contact the service (Ping does).
  static Result<std::unique_ptr<S3ObjectStore>> FromConfig(S3Config config);
  ~S3ObjectStore() override;

  Result<std::unique_ptr<ObjectWriter>> Create(std::string_view key) override;
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view key) override;
  Result<ObjectInfo> Stat(std::string_view key) override;
  Status Remove(std::string_view key) override;
  // ListObjectsV2 with start-after and max-keys under the URL's prefix; keys come back without
  // it. Etags are S3's (content hashes), not the per-commit versions Stat() reports.
  Result<ObjectListing> List(std::string_view prefix, std::string_view start_after,
                             int limit) override;
  // HEAD of the bucket: reachable, credentials accepted, bucket present.
  Status Ping() override;
  // "s3://bucket/prefix at <endpoint>"; no credentials.
  std::string Describe() const override;

  // A URL that lets anyone holding it GET the object (with Range if they like) for `expires`
  // (1 s to 7 days), without credentials. Does not check that the object exists. Whether the
  // URL asked for presigned downloads (presign=true) matters only to MakeObjectStore.
  Result<std::string> PresignedGetUrl(std::string_view key,
                                      std::chrono::seconds expires) const override;

  // Aborts the multipart uploads under this store's prefix started at least `older_than` ago:
  // the parts of a process that died mid-upload (a bucket lifecycle rule does the same).
  Result<int> AbortAbandonedWrites(std::chrono::seconds older_than) override;

  // Multipart uploads in progress under this store's prefix (tests check for orphans with it).
  Result<std::vector<S3MultipartUpload>> ListMultipartUploads();

  // Creates the bucket; succeeds when this account owns it already. For tests and first-run
  // setup; the service itself never creates buckets.
  Status CreateBucketIfMissing();

  const S3Config& config() const;

 private:
  explicit S3ObjectStore(std::unique_ptr<s3::HttpClient> client);
  std::unique_ptr<s3::HttpClient> client_;
};

}  // namespace vmp3
