// E-mail messages as bytes for SMTP's DATA: RFC 5322 headers, MIME (RFC 2045/2046) bodies in
// UTF-8 and quoted-printable, RFC 2047 encoded-words for non-ASCII header text, and the mail vmp3
// sends when a job ends. Pure functions (the Message-ID's randomness aside); thread-safe.
//
// Header injection: file names and other user text reach the Subject and bodies. Header text
// never carries CR, LF or any other control character (they become spaces) and addresses are
// checked (ParseMailbox), so no input can add or end a header line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace vmp3::notify {

// A mailbox (RFC 5322 §3.4): an optional display name and an address. vmp3 sends only to and
// from ASCII addresses (it does not speak SMTPUTF8); display names may be any UTF-8.
struct Mailbox {
  std::string display_name;  // "" when none; unquoted, unescaped
  std::string address;       // local@domain
};

// Parses `local@domain`, `Name <local@domain>` or `"Name, with specials" <local@domain>`.
// The address must be ASCII dot-atom text on both sides of one '@' (no quoted local parts, no
// comments, no IP literals), at most 254 characters: what every relay accepts and what cannot
// smuggle anything into a header or an SMTP command. kInvalidArgument naming the problem.
Result<Mailbox> ParseMailbox(std::string_view text);

struct MailMessage {
  std::string from;     // "vmp3 <noreply@example.org>" or a bare address (ParseMailbox)
  std::string to;       // the same forms
  std::string subject;  // any UTF-8 (invalid sequences become U+FFFD)
  std::string text_body;
  std::string html_body;  // optional: when set, the message is multipart/alternative
};

// The message as SMTP's DATA sends it, every line ending in CRLF:
//   Date (RFC 5322 format, UTC, from now_ms), From, To, Subject, Message-ID
//   (<128 random bits@message_id_domain>, or @ the From address's domain when message_id_domain
//   is empty or not a host name), MIME-Version: 1.0, Auto-Submitted: auto-generated, and
//   Content-Type text/plain; charset=utf-8 (multipart/alternative with a text/plain and a
//   text/html part when html_body is set), quoted-printable bodies with lines of at most 76
//   characters.
// Non-ASCII display names and subjects become RFC 2047 "B" encoded-words of at most 75
// characters each, never splitting a character, on folded lines of at most 76 characters; ASCII
// subjects stay readable (folded at spaces). kInvalidArgument when from or to is not a mailbox.
//
// SMTP transparency: a body line starting with "." is sent as "=2E..." (and "From " as
// "=46rom "), so the message is safe for any transport; libcurl also escapes a lone "." line
// itself (RFC 5321 §4.5.2 dot-stuffing), so a message needs nothing more before sending.
Result<std::string> RenderMail(const MailMessage& message, int64_t now_ms,
                               std::string_view message_id_domain);

// What happened to a job, for JobMail. Every link is absolute (the service's public URL in
// front), so it works from a mail reader.
struct JobMailFacts {
  std::string event_type;     // "job.done", "job.failed", "job.cancelled", "job.expired", ...
  std::string file_name;      // as uploaded: untrusted, any UTF-8
  std::string error_message;  // job.failed: why, in words (the job's error); else ""
  std::string download_url;   // the MP3: PUBLIC_URL/v1/jobs/<id>/mp3 (used for job.done)
  std::string job_url;        // the job's page
  std::string settings_url;   // where mails are switched off: PUBLIC_URL/v1/account/notifications
};

// The mail telling the job's owner about `facts`: the subject names the file and the outcome
// (`"talk.mp4" is ready as MP3`, `"talk.mp4" could not be converted`, ...); the plain-text body
// says the same in a sentence or two, gives the links and says how to stop these mails. File
// names longer than 80 characters are shortened with "…" in the subject (not in the body).
// Unknown event types get a neutral "has a new status" mail naming the type.
MailMessage JobMail(const JobMailFacts& facts, std::string from, std::string to);

}  // namespace vmp3::notify
