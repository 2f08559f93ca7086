// A small HTTP/1.1 client for whole-system tests, on libcurl's C API.
//
// Each call uses its own easy handle (no connection reuse between calls, so one test's
// connection state never leaks into the next request). Failures to talk to the server at all
// (refused, reset, timed out) are reported in HttpResponse::error, never thrown, so a test can
// assert on them.
//
// Threading: a HttpClient is immutable after construction; calls from many threads are fine.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmp3::itest {

// One part of a multipart/form-data body: a file (path or bytes) or a plain field.
struct FormPart {
  std::string name;
  std::optional<std::filesystem::path> file;  // streamed from disk
  std::string data;                           // used when `file` is empty
  std::optional<std::string> filename;        // sent as the part's filename
  std::string content_type;                   // empty: curl's default

  static FormPart File(std::string name, std::filesystem::path path,
                       std::optional<std::string> filename = std::nullopt) {
    FormPart p;
    p.name = std::move(name);
    p.file = std::move(path);
    p.filename = std::move(filename);
    return p;
  }
  static FormPart Field(std::string name, std::string value) {
    FormPart p;
    p.name = std::move(name);
    p.data = std::move(value);
    return p;
  }
};

struct HttpRequest {
  std::string method = "GET";
  std::string target;                // path and query ("/v1/jobs?limit=1") or a full URL
  std::vector<std::string> headers;  // "Name: value"; "Name:" removes a header curl would add
  std::string bearer;                // adds "Authorization: Bearer <bearer>" when not empty
  std::optional<std::pair<std::string, std::string>> basic;  // user, password

  // The body, one of: bytes, a file, a multipart form. `chunked` sends it with
  // Transfer-Encoding: chunked from a read callback (no Content-Length), in pieces of
  // `chunk_bytes`.
  std::optional<std::string> body;
  std::optional<std::filesystem::path> body_file;
  std::vector<FormPart> form;
  bool chunked = false;
  size_t chunk_bytes = 64 * 1024;

  std::chrono::milliseconds timeout = std::chrono::seconds(60);
};

struct HttpResponse {
  int status = 0;            // 0 when no response arrived
  std::string error;         // curl's error text when the exchange failed; empty otherwise
  std::vector<int> interim;  // 1xx statuses received before the final one (e.g. 100)
  std::vector<std::pair<std::string, std::string>> headers;  // of the final response, in order
  std::string body;
  double seconds = 0;

  // The first value of a header (case-insensitive name).
  std::optional<std::string> Header(std::string_view name) const;
  // The body as JSON; throws std::runtime_error (with the body) when it is not JSON.
  nlohmann::json Json() const;
  // "status N, body ..." for assertion messages.
  std::string Describe() const;
};

// One Server-Sent Event.
struct SseEvent {
  std::string event;  // "message" when the server gave no event: line
  std::string data;   // data: lines joined with '\n'
};

struct SseResult {
  HttpResponse response;  // status and headers; body holds what was not parsed as events
  std::vector<SseEvent> events;
  bool ended_by_server = false;  // the server finished the stream (not a timeout or a stop)
  bool timed_out = false;
};

class HttpClient {
 public:
  // `base_url`: "http://127.0.0.1:PORT"; targets starting with '/' are appended to it.
  explicit HttpClient(std::string base_url);

  HttpResponse Send(const HttpRequest& request) const;

  HttpResponse Get(std::string target, std::string bearer = {}) const;
  HttpResponse Delete(std::string target, std::string bearer = {}) const;
  HttpResponse PostJson(std::string target, const nlohmann::json& body,
                        std::string bearer = {}) const;

  // Opens an event stream (GET with Accept: text/event-stream) and reads events until the
  // server ends it, `on_event` returns false, or `timeout` passes. `on_event` runs on the
  // calling thread, in order, as each event completes.
  SseResult ReadEvents(std::string target, std::string bearer, std::chrono::milliseconds timeout,
                       const std::function<bool(const SseEvent&)>& on_event = {}) const;

  const std::string& base_url() const { return base_url_; }

 private:
  std::string Url(const std::string& target) const;
  std::string base_url_;
};

// Sends `bytes` on a fresh TCP connection to 127.0.0.1:port and returns everything the server
// sends back until it closes the connection or `timeout` passes. For checks libcurl hides
// (e.g. that a HEAD response carries no body).
std::string RawExchange(uint16_t port, std::string_view bytes,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace vmp3::itest
