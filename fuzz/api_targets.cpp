// Entry point for what API requests carry besides uploads and tokens: the registration body, the
// conversion options of an upload (and their round trip through Job::options_json to the
// converter), and the Server-Sent Events framing of job events.
#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/registration.hpp"
#include "fuzz_check.hpp"
#include "fuzz_targets.hpp"
#include "http/sse.hpp"
#include "roles/upload_options.hpp"

namespace vmp3::fuzz {
namespace {

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// True when `s` (valid UTF-8) holds a control character (Unicode Cc: C0, DEL, C1) or whitespace
// (Unicode White_Space, from the Unicode Character Database's PropList.txt): nothing an email
// address may carry into a mail header.
bool HasControlOrSpace(std::string_view s) {
  static constexpr uint32_t kWhiteSpace[] = {0x0009, 0x000A, 0x000B, 0x000C, 0x000D, 0x0020, 0x0085,
                                             0x00A0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
                                             0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028,
                                             0x2029, 0x202F, 0x205F, 0x3000};
  for (size_t i = 0; i < s.size();) {
    const auto lead = static_cast<unsigned char>(s[i]);
    const size_t n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    uint32_t cp = n == 1 ? lead : lead & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += n;
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) return true;
    for (uint32_t space : kWhiteSpace) {
      if (cp == space) return true;
    }
  }
  return false;
}

void CheckRegistration(std::string_view body) {
  auto registration = auth::ParseRegistration(body);
  if (!registration) {
    FUZZ_CHECK(registration.error().code == ErrorCode::kInvalidArgument,
               registration.error().message);
    // The password is never echoed back. A password may be part of a message's fixed text
    // ("contain exactly one"), so one found in the message must be found there too when the
    // password is swapped for control characters that no message can echo, chosen to get the
    // same policy verdict: same length, repeated or not alike. (A password equal to the
    // username is refused for that, in a message that names neither.)
    auto json = nlohmann::json::parse(body, nullptr, false);
    if (json.is_object() && json.contains("password") && json["password"].is_string()) {
      const std::string password = json["password"].get<std::string>();
      const std::string& message = registration.error().message;
      const bool same_as_username =
          json.contains("username") && json["username"].is_string() &&
          EqualsIgnoringAsciiCase(password, json["username"].get_ref<const std::string&>());
      if (password.size() >= 8 && !same_as_username &&
          message.find(password) != std::string::npos) {
        std::string stand_in(password.size(), '\x01');
        const bool repeated =
            std::all_of(password.begin(), password.end(), [&](char c) { return c == password[0]; });
        for (size_t i = 1; !repeated && i < stand_in.size(); i += 2) stand_in[i] = '\x02';
        json["password"] = stand_in;
        auto again = auth::ParseRegistration(
            json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        FUZZ_CHECK(!again && again.error().message.find(password) != std::string::npos, message);
      }
    }
    return;
  }
  const auth::Registration& r = *registration;
  // Independent checks of the documented rules.
  FUZZ_CHECK(r.username.size() >= 3 && r.username.size() <= 64, r.username);
  FUZZ_CHECK(IsAsciiAlnum(r.username.front()), r.username);
  for (char c : r.username) {
    FUZZ_CHECK(IsAsciiAlnum(c) || c == '.' || c == '_' || c == '-', r.username);
  }
  FUZZ_CHECK(r.password.size() >= 8 && r.password.size() <= 1024, "password length");
  FUZZ_CHECK(!EqualsIgnoringAsciiCase(r.password, r.username), "password is the username");
  FUZZ_CHECK(r.password.find_first_not_of(r.password[0]) != std::string::npos,
             "password is one character repeated");
  FUZZ_CHECK(IsValidUtf8(r.password) && IsValidUtf8(r.email), "invalid UTF-8 accepted");
  if (!r.email.empty()) {
    FUZZ_CHECK(r.email.size() <= 254, r.email);
    const size_t at = r.email.find('@');
    FUZZ_CHECK(at != std::string::npos && at > 0 && at + 1 < r.email.size() &&
                   r.email.find('@', at + 1) == std::string::npos,
               r.email);
    FUZZ_CHECK(!HasControlOrSpace(r.email), r.email);
  }
  // The route answers with these strings in JSON: dump() (strict UTF-8) must not throw.
  const std::string answer =
      nlohmann::json{{"id", "x"}, {"username", r.username}, {"email", r.email}}.dump();
  // What a client would send for this registration reads back the same.
  nlohmann::json sent{{"username", r.username}, {"password", r.password}};
  if (!r.email.empty()) sent["email"] = r.email;
  auto again = auth::ParseRegistration(sent.dump());
  FUZZ_CHECK(again.has_value(), answer);
  FUZZ_CHECK(
      again->username == r.username && again->password == r.password && again->email == r.email,
      answer);
}

// "quality \0 bitrate \0 options_json"; a missing field is absent.
void CheckUploadOptions(std::string_view input) {
  std::vector<std::string_view> fields;
  for (size_t start = 0; fields.size() < 3;) {
    const size_t cut = input.find('\0', start);
    fields.push_back(input.substr(start, cut == std::string_view::npos ? cut : cut - start));
    if (cut == std::string_view::npos) break;
    start = cut + 1;
  }
  roles::UploadOptions options;
  options.quality = std::string(fields[0]);
  if (fields.size() > 1) options.bitrate = std::string(fields[1]);

  auto converted = options.ToConvertOptions();
  if (!converted) {
    FUZZ_CHECK(converted.error().code == ErrorCode::kInvalidArgument, converted.error().message);
  } else {
    FUZZ_CHECK(converted->Validate().has_value(), "validated options do not validate");
    // Upload role writes Job::options_json, the converter reads it: the same options arrive.
    const std::string json = options.Json();
    auto read = roles::ConvertOptionsFromJson(json);
    FUZZ_CHECK(read.has_value(), json);
    FUZZ_CHECK(read->vbr_quality == converted->vbr_quality && read->cbr_kbps == converted->cbr_kbps,
               json);
  }
  // Whatever a stored record holds, the converter's reader returns a value or an error.
  if (fields.size() > 2) {
    auto read = roles::ConvertOptionsFromJson(fields[2]);
    if (!read) FUZZ_CHECK(read.error().code == ErrorCode::kInvalidArgument, read.error().message);
  }
}

// An event as a browser's EventSource dispatches it.
struct Event {
  std::string type;
  std::string data;
};

// The event-stream parser of the WHATWG HTML standard ("Interpreting an event stream"), written
// from the specification. Fields other than event and data are recorded in `other_fields`: our
// framing must never produce one (an "id:" or "retry:" smuggled in through data).
std::vector<Event> ParseEventStream(std::string_view stream, int& other_fields) {
  std::vector<Event> events;
  std::string type;
  std::string data;
  size_t pos = 0;
  while (pos < stream.size()) {
    const size_t end = stream.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) break;  // an unterminated last line is not processed
    const std::string_view line = stream.substr(pos, end - pos);
    pos = end + 1;
    if (stream[end] == '\r' && pos < stream.size() && stream[pos] == '\n') ++pos;
    if (line.empty()) {  // dispatch
      if (!data.empty()) {
        if (data.back() == '\n') data.pop_back();
        events.push_back({type, data});
      }
      type.clear();
      data.clear();
      continue;
    }
    if (line.front() == ':') continue;  // a comment
    const size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
    if (field == "event") {
      type = std::string(value);
    } else if (field == "data") {
      data += value;
      data += '\n';
    } else {
      ++other_fields;
    }
  }
  return events;
}

// Line breaks (CR LF, CR, LF) as an EventSource delivers them: "\n".
std::string NormalizedLineBreaks(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

// "type \0 data".
void CheckServerSentEvents(std::string_view input) {
  const size_t cut = input.find('\0');
  const std::string_view type = input.substr(0, cut);
  const std::string_view data =
      cut == std::string_view::npos ? std::string_view() : input.substr(cut + 1);
  // An event, a comment made of the same bytes, and a second event, as one stream.
  const std::string stream =
      http::SseEvent(type, data) + http::SseComment(data) + http::SseEvent("status", "{}");
  int other_fields = 0;
  const std::vector<Event> events = ParseEventStream(stream, other_fields);
  FUZZ_CHECK(other_fields == 0, stream);
  FUZZ_CHECK(events.size() == 2, stream);
  std::string expected_type;
  for (char c : type) {
    if (c != '\r' && c != '\n') expected_type += c;
  }
  FUZZ_CHECK(events[0].type == expected_type, stream);
  FUZZ_CHECK(events[0].data == NormalizedLineBreaks(data), stream);
  FUZZ_CHECK(events[1].type == "status" && events[1].data == "{}", stream);
}

}  // namespace

int FuzzJsonBodies(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view input = AsText(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      CheckRegistration(input);
      break;
    case 1:
      CheckUploadOptions(input);
      break;
    default:
      CheckServerSentEvents(input);
      break;
  }
  return 0;
}

}  // namespace vmp3::fuzz
