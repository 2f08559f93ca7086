// The web page: GET / and GET /assets/{name}, served from the files of web/ that the build
// embedded into the library (web/assets.hpp). Registered by the upload role (service.cpp).
#include <string>
#include <string_view>

#include "http/conditional.hpp"
#include "roles/route_binding.hpp"
#include "roles/upload_role.hpp"
#include "web/assets.hpp"

namespace vmp3::roles {
namespace {

using http::Exchange;
using http::Response;

// The page runs only its own script files and styles and talks only to this origin: no inline
// script or style, no plugins, no framing. blob: images are object URLs the page makes itself.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

Response Serve(const Exchange& ex, const web::Asset* asset) {
  if (!asset) return Response::Problem(Error(ErrorCode::kNotFound, "no such file"));
  Response r;
  r.Header("ETag", std::string(asset->etag));
  // Asset names carry no content hash, so a cached copy must be revalidated (a cheap 304)
  // before each use; otherwise an upgrade could pair a new page with an old script.
  r.Header("Cache-Control", "no-cache");
  r.Header("Content-Security-Policy", std::string(kContentSecurityPolicy));
  r.Header("X-Content-Type-Options", "nosniff");
  r.Header("Referrer-Policy", "no-referrer");
  if (http::IfNoneMatchHits(ex.request().Header("If-None-Match"), asset->etag)) {
    r.status = 304;
    return r;
  }
  r.Header("Content-Type", std::string(asset->content_type));
  r.body.assign(reinterpret_cast<const char*>(asset->bytes.data()), asset->bytes.size());
  return r;
}

}  // namespace

void AddWebRoutes(http::Router& router, bool served) {
  http::Handler page = [](Exchange& ex) -> http::Awaitable<Response> {
    co_return Serve(ex, web::FindAsset("index.html"));
  };
  http::Handler asset = [](Exchange& ex) -> http::Awaitable<Response> {
    co_return Serve(ex, web::FindAsset(ex.Param("name")));
  };
  router.Add({"GET", "/", served ? page : Misdirected("upload"), 0,
              "The web page: sign in, upload videos, follow conversions, download MP3s"});
  router.Add({"GET", "/assets/{name}", served ? asset : Misdirected("upload"), 0,
              "Scripts, styles and images of the web page"});
}

}  // namespace vmp3::roles
