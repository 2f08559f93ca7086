// The download role: streams finished MP3s with Range support.
//   GET|HEAD /v1/jobs/{id}/mp3, GET /download?fid= (seed)
#pragma once

#include "http/router.hpp"
#include "metadata/metadata_store.hpp"
#include "roles/api.hpp"
#include "storage/capabilities.hpp"
#include "storage/object_store.hpp"

namespace vmp3::roles {

struct DownloadRole {
  const Api& api;
  ObjectStore& storage;
  PresignedUrls* presigned_urls;  // null: stream the bytes (no presigning configured)
  MetadataStore& metadata;
};

void AddDownloadRoutes(http::Router& router, const DownloadRole* role);

}  // namespace vmp3::roles
