// Writing an S3 object: the writer buffers one part (S3Config::part_size) at a time, so memory is
// bounded per upload. An object smaller than one part is sent with a single PUT at Commit. A
// larger one becomes a multipart upload: CreateMultipartUpload when the first part is full,
// UploadPart for each full part, CompleteMultipartUpload at Commit. Abort() and the destructor of
// an uncommitted writer call AbortMultipartUpload, so no parts are left behind (unless the
// process dies: S3ObjectStore::AbortAbandonedWrites, or a bucket lifecycle rule
// "AbortIncompleteMultipartUpload", cleans those up).
//
// Every commit stores a random version in the x-amz-meta-vmp3-version header (on the PUT, or on
// the multipart upload, which S3 gives to the completed object): it is the object's etag.
//
// CreateMultipartUpload is not idempotent: a retry after a lost answer can leave one empty upload
// behind (swept as above). A CompleteMultipartUpload retried after a lost answer finds the upload
// gone; the writer then checks that the object carries its version before reporting success.
#pragma once

#include <memory>
#include <string>

#include "storage/object_store.hpp"
#include "storage/s3_http.hpp"

namespace vmp3::s3 {

// A writer of the object `key` (an ObjectStore key, already validated). Must not outlive `client`.
std::unique_ptr<ObjectWriter> NewWriter(HttpClient& client, std::string key);

}  // namespace vmp3::s3
