// Sends rendered mails (notify/mail_message.hpp) through an SMTP relay with libcurl. No libcurl
// type leaks from here.
//
// TLS: smtp:// URLs use STARTTLS, smtps:// URLs TLS from the first byte. With require_tls (the
// default) a relay that does not offer STARTTLS, or whose certificate does not verify, gets
// nothing: there is never a fallback to plaintext. Without it, STARTTLS is still used when the
// relay offers it. The certificate is checked against the system's CAs, or ca_file's.
//
// Errors (messages name the relay's reply, e.g. "550 5.1.1 <x@y>: mailbox unavailable"; never
// the password):
//   kUnavailable      the relay cannot be reached or does not answer in time, TLS cannot be
//                     negotiated or verified, the login is refused, or the relay answered 4xx
//                     (or 5xx to anything but the recipient and the message): retrying later
//                     (or after fixing the configuration) may succeed
//   kInvalidArgument  the relay refused the recipient or the message permanently (5xx to RCPT
//                     TO or to the message's data), or to_address is not an address: do not retry
//
// Threading: Send may be called from many threads at once; each call opens its own connection
// and blocks its thread for at most SmtpConfig::timeout.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "common/error.hpp"

namespace vmp3::notify {

struct SmtpConfig {
  // smtp://host[:port] (STARTTLS; port 25 if none, 587 is the usual submission port) or
  // smtps://host[:port] (implicit TLS; 465 if none). No user info: user and password below.
  // A path names the EHLO domain (smtp://relay:587/vmp3.example.org), else libcurl's default.
  std::string url;
  std::string user;      // login when set (AUTH over the encrypted connection)
  std::string password;  // secret: never logged, never in an error
  // The sender: "vmp3 <noreply@example.org>" or a bare address; its address is also the
  // envelope sender (MAIL FROM), where bounces go.
  std::string from;
  std::string ca_file;  // PEM CAs to trust instead of the system's (an internal relay's); "" none
  bool require_tls = true;  // refuse to send unencrypted (see the top of this file)
  std::chrono::milliseconds timeout{30000};  // connecting, and each whole send

  // kInvalidArgument naming the setting: url not smtp:// or smtps:// with a host (or with user
  // info, a query or a fragment), from not a mailbox (ParseMailbox), a password without a user,
  // timeout not within 1 ms..10 min, ca_file set but unreadable.
  Status Validate() const;
};

class SmtpMailer {
 public:
  // kInvalidArgument when the configuration does not pass SmtpConfig::Validate.
  static Result<SmtpMailer> Create(SmtpConfig config);

  const SmtpConfig& config() const { return config_; }

  // Sends `rendered_message` (RenderMail's output: CRLF lines) to `to_address` (a bare address
  // or a mailbox; only its address is used) in one SMTP session: the envelope sender is
  // config().from's address. Success means the relay accepted the message (250 after DATA).
  Status Send(std::string_view to_address, const std::string& rendered_message) const;

 private:
  explicit SmtpMailer(SmtpConfig config, std::string envelope_from)
      : config_(std::move(config)), envelope_from_(std::move(envelope_from)) {}

  SmtpConfig config_;
  std::string envelope_from_;  // config_.from's address
};

}  // namespace vmp3::notify
