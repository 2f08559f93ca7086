#include "notify/smtp_mailer.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "common/backend_url.hpp"
#include "common/text.hpp"
#include "notify/mail_message.hpp"

namespace vmp3::notify {
namespace {

// Longest relay reply an error message quotes.
constexpr size_t kMaxQuotedReply = 300;

void SmtpGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct SmtpUploadSource {
  const std::string* data;
  size_t offset = 0;
};

size_t ReadSmtpUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* source = static_cast<SmtpUploadSource*>(user);
  const size_t n = std::min(size * count, source->data->size() - source->offset);
  std::copy_n(source->data->data() + source->offset, n, buffer);
  source->offset += n;
  return n;
}

// What the SMTP dialogue showed, for error messages: the relay's first reply of 400 or more
// (later ones, such as the answer to QUIT, say nothing new) and the command it answered. Only
// the verbs of our commands are kept: the arguments of AUTH and the lines that follow it carry
// the credentials.
struct SmtpTrace {
  std::string command;  // "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", ...
  std::string reply;    // the reply being read (its lines joined by " ")
  bool reply_complete = true;
  std::string failed_command;
  std::string failed_reply;  // "" while every reply was below 400

  int FailedCode() const {
    if (failed_reply.size() < 3 || !IsAsciiDigit(failed_reply[0])) return 0;
    return (failed_reply[0] - '0') * 100 + (failed_reply[1] - '0') * 10 + (failed_reply[2] - '0');
  }
};

std::string SmtpVerb(std::string_view line) {
  static constexpr std::string_view kVerbs[] = {"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL",
                                                "RCPT", "DATA", "QUIT",     "RSET", "NOOP"};
  const std::string_view verb = line.substr(0, line.find_first_of(" \r\n"));
  for (std::string_view known : kVerbs)
    if (EqualsIgnoringAsciiCase(verb, known)) return std::string(known);
  return "AUTH";  // a line of an AUTH exchange (a base64 user name or password): never kept
}

int OnSmtpDebug(CURL*, curl_infotype type, char* data, size_t size, void* user) {
  auto* trace = static_cast<SmtpTrace*>(user);
  const std::string_view text(data, size);
  if (type == CURLINFO_HEADER_OUT) {
    trace->command = SmtpVerb(text);
    return 0;
  }
  if (type != CURLINFO_HEADER_IN) return 0;
  // libcurl reports one reply line per call.
  const std::string_view line = TrimWhitespace(text);
  if (trace->reply_complete) trace->reply.clear();
  if (!trace->reply.empty()) trace->reply += ' ';
  for (char c : line) trace->reply += (c >= 0x20 && c < 0x7F) ? c : '?';
  if (trace->reply.size() > kMaxQuotedReply) trace->reply.resize(kMaxQuotedReply);
  // "250-..." continues the reply; "250 ..." or a bare "250" ends it (RFC 5321 §4.2.1).
  trace->reply_complete = line.size() < 4 || line[3] != '-';
  if (trace->reply_complete && trace->failed_reply.empty() && !line.empty() && line[0] >= '4' &&
      line[0] <= '5' && IsAsciiDigit(line[0])) {
    trace->failed_reply = trace->reply;
    trace->failed_command = trace->command;
  }
  return 0;
}

class SmtpCurlHandle {
 public:
  SmtpCurlHandle() : curl_(curl_easy_init()) {}
  ~SmtpCurlHandle() {
    if (recipients_) curl_slist_free_all(recipients_);
    if (curl_) curl_easy_cleanup(curl_);
  }
  SmtpCurlHandle(const SmtpCurlHandle&) = delete;
  SmtpCurlHandle& operator=(const SmtpCurlHandle&) = delete;

  CURL* get() const { return curl_; }
  curl_slist* AddRecipient(const std::string& address) {
    recipients_ = curl_slist_append(recipients_, address.c_str());
    return recipients_;
  }

 private:
  CURL* curl_;
  curl_slist* recipients_ = nullptr;
};

}  // namespace

Status SmtpConfig::Validate() const {
  auto invalid = [](std::string message) {
    return MakeError(ErrorCode::kInvalidArgument, std::move(message));
  };
  const std::string_view scheme = std::string_view(url).substr(0, url.find(':'));
  if (scheme != "smtp" && scheme != "smtps")
    return invalid("the SMTP URL must start with smtp:// (STARTTLS) or smtps:// (TLS)");
  auto parsed = ParseBackendUrl(url, scheme, "SMTP", {});
  if (!parsed) return tl::unexpected(parsed.error());
  if (parsed->host.empty()) return invalid("the SMTP URL needs a host (smtp://host:port)");
  if (parsed->user || parsed->password)
    return invalid(
        "the SMTP URL must not hold a user or password: give them as the SMTP user and password");
  if (auto mailbox = ParseMailbox(from); !mailbox)
    return invalid("the SMTP sender (from) is not valid: " + mailbox.error().message);
  if (!password.empty() && user.empty()) return invalid("an SMTP password needs an SMTP user");
  if (!user.empty() && password.empty()) return invalid("an SMTP user needs an SMTP password");
  if (timeout < std::chrono::milliseconds(1) || timeout > std::chrono::minutes(10))
    return invalid("the SMTP timeout must be between 1 ms and 10 min");
  if (!ca_file.empty() && ::access(ca_file.c_str(), R_OK) != 0)
    return invalid(fmt::format("the SMTP CA file {} cannot be read", ca_file));
  return {};
}

Result<SmtpMailer> SmtpMailer::Create(SmtpConfig config) {
  if (auto valid = config.Validate(); !valid) return tl::unexpected(valid.error());
  auto from = ParseMailbox(config.from);
  if (!from) return tl::unexpected(from.error());  // not reached: Validate checked it
  std::string envelope_from = std::move(from->address);
  return SmtpMailer(std::move(config), std::move(envelope_from));
}

Status SmtpMailer::Send(std::string_view to_address, const std::string& rendered_message) const {
  auto to = ParseMailbox(to_address);
  if (!to) return tl::unexpected(to.error());
  SmtpGlobalInit();
  SmtpCurlHandle handle;
  CURL* curl = handle.get();
  if (!curl) return MakeError(ErrorCode::kInternal, "cannot initialise libcurl");

  char error_buffer[CURL_ERROR_SIZE] = {};
  SmtpUploadSource source{&rendered_message};
  SmtpTrace trace;
  const std::string mail_from = fmt::format("<{}>", envelope_from_);
  const long timeout_ms = static_cast<long>(config_.timeout.count());
  curl_easy_setopt(curl, CURLOPT_URL, config_.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  // Environment proxies (ALL_PROXY and the like) are not for mail.
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  // CURLUSESSL_ALL: STARTTLS or fail (CURLE_USE_SSL_FAILED), never plaintext.
  curl_easy_setopt(curl, CURLOPT_USE_SSL,
                   static_cast<long>(config_.require_tls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!config_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, config_.ca_file.c_str());
  if (!config_.user.empty()) {
    curl_easy_setopt(curl, CURLOPT_USERNAME, config_.user.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, config_.password.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, mail_from.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, handle.AddRecipient(fmt::format("<{}>", to->address)));
  // libcurl dot-stuffs the data itself (RFC 5321 §4.5.2) and ends it with CRLF.CRLF.
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, &ReadSmtpUpload);
  curl_easy_setopt(curl, CURLOPT_READDATA, &source);
  curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                   static_cast<curl_off_t>(rendered_message.size()));
  // The dialogue, for error messages (OnSmtpDebug keeps no credentials). With a debug function
  // set, verbose mode prints nothing.
  curl_easy_setopt(curl, CURLOPT_DEBUGFUNCTION, &OnSmtpDebug);
  curl_easy_setopt(curl, CURLOPT_DEBUGDATA, &trace);
  curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);

  const CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) return {};

  // The relay URL has no credentials (Validate refuses user info).
  const std::string relay = config_.url;
  const std::string detail = error_buffer[0] ? error_buffer : curl_easy_strerror(rc);
  const int code = trace.FailedCode();
  if (code >= 500 && (trace.failed_command == "RCPT" || trace.failed_command == "DATA")) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("the mail relay {} refused the {} for {}: {}", relay,
                                 trace.failed_command == "RCPT" ? "recipient" : "message",
                                 to->address, trace.failed_reply));
  }
  // The relay's own words when it refused something, else libcurl's.
  const std::string answer =
      trace.failed_reply.empty()
          ? detail
          : fmt::format("it answered {} with: {}", trace.failed_command, trace.failed_reply);
  std::string problem;
  switch (rc) {
    case CURLE_USE_SSL_FAILED:
      problem = "it does not offer STARTTLS, and TLS is required";
      break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      problem = fmt::format("its TLS certificate was not accepted ({})", detail);
      break;
    case CURLE_SSL_CONNECT_ERROR:
      problem = fmt::format("TLS could not be negotiated ({})", detail);
      break;
    case CURLE_LOGIN_DENIED:
      problem = fmt::format("it refused the login ({})", answer);
      break;
    case CURLE_OPERATION_TIMEDOUT:
      problem = fmt::format("no answer within {} ms", config_.timeout.count());
      break;
    default:
      problem = answer;
      break;
  }
  return MakeError(ErrorCode::kUnavailable,
                   fmt::format("cannot send mail through {}: {}", relay, problem));
}

}  // namespace vmp3::notify
