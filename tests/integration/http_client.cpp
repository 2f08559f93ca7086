#include "integration/http_client.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace vmp3::itest {
namespace {

using Clock = std::chrono::steady_clock;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct MimeDeleter {
  void operator()(curl_mime* m) const { curl_mime_free(m); }
};
struct FileDeleter {
  void operator()(FILE* f) const { std::fclose(f); }
};

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

// Collects the status line and headers of every response (1xx ones included).
size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  std::string_view line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    if (response->status >= 100 && response->status < 200)
      response->interim.push_back(response->status);
    response->headers.clear();
    size_t space = line.find(' ');
    response->status = space == std::string_view::npos
                           ? 0
                           : std::atoi(std::string(line.substr(space + 1, 3)).c_str());
    return size * count;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    response->headers.emplace_back(Trim(line.substr(0, colon)), Trim(line.substr(colon + 1)));
  }
  return size * count;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// The request body source for read callbacks: memory or a file, at most `chunk` bytes a call.
struct BodySource {
  std::string_view memory;
  size_t offset = 0;
  FILE* file = nullptr;
  size_t chunk = 0;
};

size_t OnRead(char* buffer, size_t size, size_t count, void* user) {
  auto* source = static_cast<BodySource*>(user);
  size_t want = size * count;
  if (source->chunk > 0) want = std::min(want, source->chunk);
  if (source->file) return std::fread(buffer, 1, want, source->file);
  size_t n = std::min(want, source->memory.size() - source->offset);
  std::memcpy(buffer, source->memory.data() + source->offset, n);
  source->offset += n;
  return n;
}

// Parses an event stream as it arrives and hands each complete event to the caller.
struct SseParser {
  CURL* curl = nullptr;
  SseResult* result = nullptr;
  const std::function<bool(const SseEvent&)>* on_event = nullptr;
  std::string pending;
  SseEvent current;
  bool has_data = false;
  bool stopped = false;

  // False when the caller asked to stop.
  bool Line(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      if (has_data || !current.event.empty()) {
        if (current.event.empty()) current.event = "message";
        result->events.push_back(current);
        bool go_on = !*on_event || (*on_event)(result->events.back());
        current = {};
        has_data = false;
        return go_on;
      }
      return true;
    }
    if (line.front() == ':') return true;  // comment (keep-alive)
    size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "event") current.event = std::string(value);
    if (field == "data") {
      if (has_data) current.data += '\n';
      current.data += value;
      has_data = true;
    }
    return true;
  }
};

size_t OnSse(char* data, size_t size, size_t count, void* user) {
  auto* parser = static_cast<SseParser*>(user);
  long code = 0;
  curl_easy_getinfo(parser->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    parser->result->response.body.append(data, size * count);
    return size * count;
  }
  parser->pending.append(data, size * count);
  size_t start = 0;
  for (size_t nl; (nl = parser->pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (!parser->Line(std::string_view(parser->pending).substr(start, nl - start))) {
      parser->stopped = true;
      return 0;  // aborts the transfer
    }
  }
  parser->pending.erase(0, start);
  return size * count;
}

}  // namespace

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0)
      return value;
  }
  return std::nullopt;
}

nlohmann::json HttpResponse::Json() const {
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded()) throw std::runtime_error("response is not JSON: " + Describe());
  return json;
}

std::string HttpResponse::Describe() const {
  std::string text = body.size() > 2000 ? body.substr(0, 2000) + "..." : body;
  if (!error.empty()) return fmt::format("no response ({}), status {}", error, status);
  return fmt::format("status {}, body: {}", status, text);
}

HttpClient::HttpClient(std::string base_url) : base_url_(std::move(base_url)) { GlobalInit(); }

std::string HttpClient::Url(const std::string& target) const {
  return !target.empty() && target.front() == '/' ? base_url_ + target : target;
}

HttpResponse HttpClient::Send(const HttpRequest& request) const {
  HttpResponse response;
  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  CURL* c = easy.get();
  std::string url = Url(request.target);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  // Long enough that a server which never answers "Expect: 100-continue" shows (no interim 100).
  curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);

  std::vector<std::string> headers = request.headers;
  if (!request.bearer.empty()) headers.push_back("Authorization: Bearer " + request.bearer);
  if (request.chunked) headers.push_back("Transfer-Encoding: chunked");
  std::unique_ptr<curl_slist, SlistDeleter> list;
  for (const auto& h : headers) list.reset(curl_slist_append(list.release(), h.c_str()));
  if (list) curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());
  if (request.basic) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, request.basic->first.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, request.basic->second.c_str());
  }

  BodySource source;
  std::unique_ptr<FILE, FileDeleter> file;
  std::unique_ptr<curl_mime, MimeDeleter> mime;
  bool has_body = request.body || request.body_file || !request.form.empty();
  if (!request.form.empty()) {
    mime.reset(curl_mime_init(c));
    for (const FormPart& part : request.form) {
      curl_mimepart* p = curl_mime_addpart(mime.get());
      curl_mime_name(p, part.name.c_str());
      if (part.file) {
        if (curl_mime_filedata(p, part.file->c_str()) != CURLE_OK)
          throw std::runtime_error("cannot attach " + part.file->string());
      } else {
        curl_mime_data(p, part.data.data(), part.data.size());
      }
      if (part.filename) curl_mime_filename(p, part.filename->c_str());
      if (!part.content_type.empty()) curl_mime_type(p, part.content_type.c_str());
    }
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime.get());
  } else if (has_body || request.method == "POST" || request.method == "PUT") {
    uint64_t size = 0;
    if (request.body_file) {
      file.reset(std::fopen(request.body_file->c_str(), "rb"));
      if (!file) throw std::runtime_error("cannot open " + request.body_file->string());
      source.file = file.get();
      size = std::filesystem::file_size(*request.body_file);
    } else if (request.body) {
      source.memory = *request.body;
      size = request.body->size();
    }
    source.chunk = request.chunked ? request.chunk_bytes : 0;
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, OnRead);
    curl_easy_setopt(c, CURLOPT_READDATA, &source);
    if (!request.chunked)
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
  }
  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET" && request.method != "POST") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method == "GET" && has_body) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "GET");
  }

  auto started = Clock::now();
  CURLcode rc = curl_easy_perform(c);
  response.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (rc != CURLE_OK) response.error = curl_easy_strerror(rc);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code != 0) response.status = static_cast<int>(code);
  return response;
}

HttpResponse HttpClient::Get(std::string target, std::string bearer) const {
  HttpRequest r;
  r.target = std::move(target);
  r.bearer = std::move(bearer);
  return Send(r);
}

HttpResponse HttpClient::Delete(std::string target, std::string bearer) const {
  HttpRequest r;
  r.method = "DELETE";
  r.target = std::move(target);
  r.bearer = std::move(bearer);
  return Send(r);
}

HttpResponse HttpClient::PostJson(std::string target, const nlohmann::json& body,
                                  std::string bearer) const {
  HttpRequest r;
  r.method = "POST";
  r.target = std::move(target);
  r.bearer = std::move(bearer);
  r.headers.push_back("Content-Type: application/json");
  r.body = body.dump();
  return Send(r);
}

SseResult HttpClient::ReadEvents(std::string target, std::string bearer,
                                 std::chrono::milliseconds timeout,
                                 const std::function<bool(const SseEvent&)>& on_event) const {
  SseResult result;
  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  CURL* c = easy.get();
  std::string url = Url(target);
  SseParser parser;
  parser.curl = c;
  parser.result = &result;
  parser.on_event = &on_event;
  std::unique_ptr<curl_slist, SlistDeleter> list(
      curl_slist_append(nullptr, "Accept: text/event-stream"));
  std::string auth = "Authorization: Bearer " + bearer;
  if (!bearer.empty()) list.reset(curl_slist_append(list.release(), auth.c_str()));
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &result.response);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnSse);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &parser);
  auto started = Clock::now();
  CURLcode rc = curl_easy_perform(c);
  result.response.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code != 0) result.response.status = static_cast<int>(code);
  if (rc == CURLE_OK) {
    result.ended_by_server = true;
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    result.timed_out = true;
  } else if (!(rc == CURLE_WRITE_ERROR && parser.stopped)) {
    result.response.error = curl_easy_strerror(rc);
  }
  return result;
}

std::string RawExchange(uint16_t port, std::string_view bytes, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    throw std::runtime_error(fmt::format("connect to port {} failed", port));
  for (size_t sent = 0; sent < bytes.size();) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    sent += static_cast<size_t>(n);
  }
  std::string received;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buffer[16384];
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    received.append(buffer, static_cast<size_t>(n));
  }
  return received;
}

}  // namespace vmp3::itest
