// Reading an S3 object: S3ObjectStore::Open() sends HEAD for the size and ETag, then the reader
// fetches ranged GETs of a window (S3Config::read_window) with If-Match: <ETag>, so it never mixes
// versions: if the object is replaced or removed mid-read, Read fails with kConflict or
// kNotFound. Seek only moves the position.
//
// With ReadAhead(), while reads go on front to back the reader fetches the next window in the
// background (one std::async task at a time), each twice the size of the last, up to the
// read-ahead: the converter then decodes one window while the next is on the wire instead of
// waiting for every GET in turn. The background fetch runs without the caller's deadline
// (common/deadline.hpp; deadlines are per thread); a Read that waits for it is bounded by the
// client's low-speed limit instead.
#pragma once

#include <memory>

#include "storage/object_store.hpp"
#include "storage/s3_http.hpp"

namespace vmp3::s3 {

// A reader of the version `head` describes. Must not outlive `client`.
std::unique_ptr<ObjectReader> NewReader(HttpClient& client, Head head);

}  // namespace vmp3::s3
