#include "notify/mail_message.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>

#include <ctime>
#include <optional>
#include <vector>

#include "common/text.hpp"
#include "common/utf8.hpp"

namespace vmp3::notify {
namespace {

// RFC 2047 §2: an encoded-word is at most 75 characters; a line holding one at most 76.
constexpr size_t kMaxEncodedWord = 75;
constexpr size_t kMaxMailLine = 76;
// Subjects shorten file names past this many characters.
constexpr size_t kMaxSubjectFileName = 80;

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

void AppendMailUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: nothing a header or
// a one-line mention of a file name may hold.
bool IsMailControl(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029;
}

// One line of text for a header: ill-formed UTF-8 as U+FFFD, every control character (CR and
// LF above all) as a space, runs of spaces as one, no spaces at the ends.
std::string MailHeaderText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    std::optional<uint32_t> cp = NextCodePoint(text, i);
    if (!cp) {
      out += kReplacementCharacter;
      ++i;
      continue;
    }
    if (IsMailControl(*cp) || *cp == ' ') {
      if (!out.empty() && out.back() != ' ') out += ' ';
      continue;
    }
    AppendMailUtf8(out, *cp);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Body text: ill-formed UTF-8 as U+FFFD; controls other than tab and line breaks dropped.
std::string MailBodyText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    std::optional<uint32_t> cp = NextCodePoint(text, i);
    if (!cp) {
      out += kReplacementCharacter;
      ++i;
      continue;
    }
    if (IsMailControl(*cp) && *cp != '\t' && *cp != '\r' && *cp != '\n') continue;
    AppendMailUtf8(out, *cp);
  }
  return out;
}

bool IsPrintableMailAscii(std::string_view text) {
  for (char c : text)
    if (c < 0x20 || c > 0x7E) return false;
  return true;
}

// RFC 5322 §3.2.3 atext.
bool IsAtext(char c) {
  return IsAsciiAlnum(c) || std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string::npos;
}

bool IsDotAtomText(std::string_view text, bool letters_digits_hyphens_only) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.') {
      if (text[i + 1] == '.') return false;
      continue;
    }
    if (letters_digits_hyphens_only ? !(IsAsciiAlnum(c) || c == '-') : !IsAtext(c)) return false;
  }
  return true;
}

std::string MailBase64(std::string_view bytes) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) |
                       (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += kDigits[v >> 18];
    out += kDigits[(v >> 12) & 63];
    out += kDigits[(v >> 6) & 63];
    out += kDigits[v & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += kDigits[v >> 18];
    out += kDigits[(v >> 12) & 63];
    out += rest == 2 ? kDigits[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// `text` (valid UTF-8) as RFC 2047 "B" encoded-words, cut between characters: the first at most
// `first_max` characters long, the others at most kMaxEncodedWord.
std::vector<std::string> Rfc2047EncodedWords(std::string_view text, size_t first_max) {
  static constexpr std::string_view kPrefix = "=?UTF-8?B?";
  static constexpr std::string_view kSuffix = "?=";
  std::vector<std::string> words;
  size_t start = 0;
  while (start < text.size()) {
    const size_t max_chars = words.empty() ? first_max : kMaxEncodedWord;
    // 4 base64 characters carry 3 bytes; at least one character per word, whatever the budget.
    const size_t max_bytes =
        (max_chars > kPrefix.size() + kSuffix.size() ? max_chars - kPrefix.size() - kSuffix.size()
                                                     : 0) /
        4 * 3;
    size_t end = start;
    while (end < text.size()) {
      size_t next = end;
      if (!NextCodePoint(text, next)) next = end + 1;  // not reached: text is valid UTF-8
      if (next - start > max_bytes && end > start) break;
      end = next;
    }
    words.push_back(
        fmt::format("{}{}{}", kPrefix, MailBase64(text.substr(start, end - start)), kSuffix));
    start = end;
  }
  return words;
}

// A header field folded (RFC 5322 §2.2.3) between tokens so that lines stay within
// kMaxMailLine characters where tokens allow; tokens are never split.
class FoldedMailHeader {
 public:
  explicit FoldedMailHeader(std::string_view name) : text_(fmt::format("{}:", name)) {
    line_length_ = text_.size();
  }

  size_t room_on_first_line() const {
    return kMaxMailLine > line_length_ + 1 ? kMaxMailLine - line_length_ - 1 : 0;
  }

  void Add(std::string_view token) {
    if (tokens_ > 0 && line_length_ + 1 + token.size() > kMaxMailLine) {
      text_ += "\r\n";
      line_length_ = 0;
    }
    text_ += ' ';
    text_ += token;
    line_length_ += 1 + token.size();
    ++tokens_;
  }

  std::string Finish() && { return std::move(text_) + "\r\n"; }

 private:
  std::string text_;
  size_t line_length_ = 0;
  int tokens_ = 0;
};

// Header text (already one line, see MailHeaderText) as tokens: plain words when it is ASCII, no
// word is too long for a line (RFC 5322 §2.1.1: 998 characters) and it cannot be mistaken for
// encoded-words; else encoded-words.
void AddMailUnstructured(FoldedMailHeader& header, std::string_view text) {
  if (IsPrintableMailAscii(text) && text.find("=?") == std::string_view::npos) {
    const std::vector<std::string_view> words = SplitList(text, ' ');
    bool fits = true;
    for (std::string_view word : words) fits = fits && word.size() <= 900;
    if (fits) {
      for (std::string_view word : words) header.Add(word);
      return;
    }
  }
  for (const std::string& word : Rfc2047EncodedWords(text, header.room_on_first_line()))
    header.Add(word);
}

// The display name as a phrase (RFC 5322 §3.2.5): atoms when it is made of them, a
// quoted-string when it has other ASCII, encoded-words (RFC 2047 §5 (3)) when it has non-ASCII.
void AddMailPhrase(FoldedMailHeader& header, std::string_view name) {
  bool atoms = IsPrintableMailAscii(name) && name.find("=?") == std::string_view::npos;
  for (char c : name) atoms = atoms && (IsAtext(c) || c == ' ');
  if (atoms) {
    for (std::string_view word : SplitList(name, ' ')) header.Add(word);
  } else if (IsPrintableMailAscii(name) && name.find("=?") == std::string_view::npos) {
    std::string quoted = "\"";
    for (char c : name) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    header.Add(quoted + "\"");
  } else {
    for (const std::string& word : Rfc2047EncodedWords(name, header.room_on_first_line()))
      header.Add(word);
  }
}

std::string MailAddressHeader(std::string_view name, const Mailbox& mailbox) {
  FoldedMailHeader header(name);
  const std::string display = MailHeaderText(mailbox.display_name);
  if (display.empty()) {
    header.Add(mailbox.address);
  } else {
    AddMailPhrase(header, display);
    header.Add(fmt::format("<{}>", mailbox.address));
  }
  return std::move(header).Finish();
}

// `bytes` random bytes from OpenSSL's generator as lowercase hex; nullopt if it fails.
std::optional<std::string> MailRandomHex(size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(buffer.size())) != 1) return std::nullopt;
  std::string out;
  for (unsigned char b : buffer) out += fmt::format("{:02x}", b);
  return out;
}

// RFC 5322 §3.3 date-time in UTC: "Sat, 05 Dec 2026 12:48:33 +0000".
std::string MailDate(int64_t now_ms) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t seconds =
      static_cast<time_t>(now_ms >= 0 ? now_ms / 1000 : (now_ms - 999) / 1000);  // floor
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} +0000", kDays[tm.tm_wday],
                     tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

// Quoted-printable (RFC 2045 §6.7) of UTF-8 text, line breaks (CRLF, CR or LF) as CRLF, every
// line at most kMaxMailLine characters (soft breaks "=" included). Also encodes a "." or
// "From " that would start a line, which some transports would otherwise alter.
std::string MailQuotedPrintable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  std::vector<std::string_view> lines;
  for (size_t start = 0;;) {
    const size_t end = text.find_first_of("\r\n", start);
    lines.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + (text.compare(end, 2, "\r\n") == 0 ? 2 : 1);
  }
  // Text ending in a line break has no line after it.
  if (lines.size() > 1 && lines.back().empty()) lines.pop_back();
  for (std::string_view line : lines) {
    size_t column = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      auto encoded = [&] {
        const bool last = i + 1 == line.size();
        const bool line_start = column == 0;
        const bool literal =
            (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
        if (!literal || (line_start && c == '.') ||
            (line_start && line.substr(i).starts_with("From "))) {
          return std::string{'=', kHex[c >> 4], kHex[c & 15]};
        }
        return std::string(1, static_cast<char>(c));
      };
      std::string token = encoded();
      // Room for the token and the soft break's "=".
      if (column + token.size() > kMaxMailLine - 1) {
        out += "=\r\n";
        column = 0;
        token = encoded();
      }
      out += token;
      column += token.size();
    }
    out += "\r\n";
  }
  return out;
}

std::string MailTextPartHeaders(std::string_view subtype) {
  return fmt::format(
      "Content-Type: text/{}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
      subtype);
}

// A host name for the Message-ID's right side: LDH labels, at most 253 characters.
bool IsMessageIdDomain(std::string_view domain) {
  return !domain.empty() && domain.size() <= 253 && IsDotAtomText(domain, true);
}

}  // namespace

Result<Mailbox> ParseMailbox(std::string_view text) {
  auto invalid = [](std::string_view why) {
    return MakeError(ErrorCode::kInvalidArgument, fmt::format("invalid e-mail address: {}", why));
  };
  text = TrimWhitespace(text);
  Mailbox mailbox;
  std::string_view address = text;
  if (!text.empty() && text.back() == '>') {
    const size_t open = text.rfind('<');
    if (open == std::string_view::npos) return invalid("'>' without '<'");
    address = text.substr(open + 1, text.size() - open - 2);
    std::string_view name = TrimWhitespace(text.substr(0, open));
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
      name = name.substr(1, name.size() - 2);
      for (size_t i = 0; i < name.size(); ++i) {
        if (name[i] == '\\' && i + 1 < name.size()) ++i;
        mailbox.display_name += name[i];
      }
    } else {
      mailbox.display_name = std::string(name);
    }
    for (size_t i = 0; i < mailbox.display_name.size();) {
      const std::optional<uint32_t> cp = NextCodePoint(mailbox.display_name, i);
      if (!cp) return invalid("the display name is not valid UTF-8");
      if (IsMailControl(*cp)) return invalid("the display name holds a control character");
    }
  }
  if (address.empty()) return invalid("empty");
  if (address.size() > 254) return invalid("longer than 254 characters");
  const size_t at = address.find('@');
  if (at == std::string_view::npos || address.find('@', at + 1) != std::string_view::npos)
    return invalid("it needs exactly one '@'");
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  if (local.size() > 64 || !IsDotAtomText(local, false))
    return invalid(
        "the part before '@' must be 1 to 64 ASCII letters, digits, dots or !#$%&'*+-/=?^_`{|}~");
  if (!IsDotAtomText(domain, true))
    return invalid(
        "the part after '@' must be a domain name (ASCII letters, digits, hyphens, dots)");
  mailbox.address = std::string(address);
  return mailbox;
}

Result<std::string> RenderMail(const MailMessage& message, int64_t now_ms,
                               std::string_view message_id_domain) {
  auto from = ParseMailbox(message.from);
  if (!from) return tl::unexpected(Error(from.error().code, "From: " + from.error().message));
  auto to = ParseMailbox(message.to);
  if (!to) return tl::unexpected(Error(to.error().code, "To: " + to.error().message));

  std::string out;
  out += fmt::format("Date: {}\r\n", MailDate(now_ms));
  out += MailAddressHeader("From", *from);
  out += MailAddressHeader("To", *to);
  FoldedMailHeader subject("Subject");
  AddMailUnstructured(subject, MailHeaderText(message.subject));
  out += std::move(subject).Finish();
  const std::string_view id_domain =
      IsMessageIdDomain(message_id_domain)
          ? message_id_domain
          : std::string_view(from->address).substr(from->address.find('@') + 1);
  const std::optional<std::string> unique = MailRandomHex(16);
  const std::optional<std::string> boundary_unique = MailRandomHex(12);
  if (!unique || !boundary_unique)
    return MakeError(ErrorCode::kInternal, "OpenSSL's random generator failed");
  out += fmt::format("Message-ID: <{}@{}>\r\n", *unique, id_domain);
  out += "MIME-Version: 1.0\r\n";
  // RFC 3834: no vacation or other automatic replies to this message.
  out += "Auto-Submitted: auto-generated\r\n";
  if (message.html_body.empty()) {
    out += MailTextPartHeaders("plain");
    out += "\r\n";
    out += MailQuotedPrintable(MailBodyText(message.text_body));
    return out;
  }
  // "=_" never occurs in quoted-printable text ("=" is always followed by two hex digits or a
  // line break there), so the boundary cannot occur in the parts.
  const std::string boundary = "=_vmp3_" + *boundary_unique;
  out += fmt::format("Content-Type: multipart/alternative; boundary=\"{}\"\r\n", boundary);
  out += "\r\n";
  // The CRLF before a delimiter line belongs to the delimiter (RFC 2046 §5.1.1): each part's own
  // last line break needs one more.
  out += fmt::format("--{}\r\n{}\r\n{}\r\n", boundary, MailTextPartHeaders("plain"),
                     MailQuotedPrintable(MailBodyText(message.text_body)));
  out += fmt::format("--{}\r\n{}\r\n{}\r\n", boundary, MailTextPartHeaders("html"),
                     MailQuotedPrintable(MailBodyText(message.html_body)));
  out += fmt::format("--{}--\r\n", boundary);
  return out;
}

namespace {

// The file name for a subject: one line, at most kMaxSubjectFileName characters.
std::string MailSubjectFileName(std::string_view sanitized) {
  size_t characters = 0;
  size_t cut = 0;
  for (size_t i = 0; i < sanitized.size(); ++characters) {
    if (characters == kMaxSubjectFileName - 1) cut = i;
    if (!NextCodePoint(sanitized, i)) ++i;
  }
  if (characters <= kMaxSubjectFileName) return std::string(sanitized);
  return std::string(sanitized.substr(0, cut)) + "\xE2\x80\xA6";  // U+2026 …
}

}  // namespace

MailMessage JobMail(const JobMailFacts& facts, std::string from, std::string to) {
  std::string name = MailHeaderText(facts.file_name);
  if (name.empty()) name = "untitled";
  const std::string quoted_subject_name = fmt::format("\"{}\"", MailSubjectFileName(name));
  const std::string quoted_name = fmt::format("\"{}\"", name);
  const std::string error = MailHeaderText(facts.error_message);

  std::string subject;
  std::string what;  // the body's first paragraph
  bool link_download = false;
  if (facts.event_type == "job.done") {
    subject = fmt::format("{} is ready as MP3", quoted_subject_name);
    what = fmt::format("your file {} has been converted to MP3. Download it here:", quoted_name);
    link_download = true;
  } else if (facts.event_type == "job.failed") {
    subject = fmt::format("{} could not be converted", quoted_subject_name);
    what = error.empty()
               ? fmt::format("your file {} could not be converted to MP3.", quoted_name)
               : fmt::format("your file {} could not be converted to MP3:\n{}", quoted_name, error);
  } else if (facts.event_type == "job.cancelled") {
    subject = fmt::format("Converting {} was cancelled", quoted_subject_name);
    what = fmt::format("the conversion of your file {} was cancelled.", quoted_name);
  } else if (facts.event_type == "job.expired") {
    subject = fmt::format("The MP3 of {} has expired", quoted_subject_name);
    what = fmt::format(
        "the MP3 of your file {} has expired and was deleted: converted files are kept for a "
        "limited time. Upload the file again to get a new MP3.",
        quoted_name);
  } else if (facts.event_type == "job.queued") {
    subject = fmt::format("{} is waiting to be converted", quoted_subject_name);
    what = fmt::format("your file {} is waiting to be converted to MP3.", quoted_name);
  } else if (facts.event_type == "job.converting") {
    subject = fmt::format("{} is being converted", quoted_subject_name);
    what = fmt::format("your file {} is being converted to MP3 now.", quoted_name);
  } else {
    const std::string type = MailHeaderText(facts.event_type);
    subject = fmt::format("{} has a new status: {}", quoted_subject_name, type);
    what = fmt::format("your file {} has a new status: {}.", quoted_name, type);
  }

  std::string body = fmt::format("Hello,\n\n{}\n", what);
  if (link_download) body += fmt::format("{}\n", facts.download_url);
  if (!facts.job_url.empty()) body += fmt::format("\nDetails: {}\n", facts.job_url);
  body += fmt::format(
      "\nYou get this e-mail because you asked vmp3 to tell you when your files change.\n"
      "To stop these e-mails, switch them off on the vmp3 page, or send\n"
      "  PUT {}\n"
      "with the body {{\"email\": false}}.\n\n-- \nvmp3\n",
      facts.settings_url);
  return MailMessage{std::move(from), std::move(to), std::move(subject), std::move(body), ""};
}

}  // namespace vmp3::notify
