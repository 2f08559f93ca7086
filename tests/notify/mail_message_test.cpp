#include "notify/mail_message.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "common/utf8.hpp"
#include "notify/mail_decode.hpp"

namespace vmp3::notify {
namespace {

using test::DecodedHeaders;
using test::DecodeMailWithPython;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kNowMs = 1700000000123;  // Tue, 14 Nov 2023 22:13:20 UTC

// The physical lines of a rendered mail; fails the test on a line break that is not CRLF.
std::vector<std::string> CrlfLines(const std::string& mail) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < mail.size()) {
    const size_t end = mail.find("\r\n", start);
    if (end == std::string::npos) {
      ADD_FAILURE() << "the mail does not end with CRLF";
      break;
    }
    std::string line = mail.substr(start, end - start);
    EXPECT_EQ(line.find_first_of("\r\n"), std::string::npos) << "bare CR or LF in: " << line;
    lines.push_back(std::move(line));
    start = end + 2;
  }
  return lines;
}

// The header section as (unfolded) lines, and the body after the empty line.
std::pair<std::vector<std::string>, std::string> SplitMail(const std::string& mail) {
  const size_t end = mail.find("\r\n\r\n");
  EXPECT_NE(end, std::string::npos);
  std::vector<std::string> headers;
  for (const std::string& line : CrlfLines(mail.substr(0, end + 2))) {
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && !headers.empty()) {
      headers.back() += line;
    } else {
      headers.push_back(line);
    }
  }
  return {headers, mail.substr(end + 4)};
}

std::vector<std::string> HeaderNames(const std::vector<std::string>& headers) {
  std::vector<std::string> names;
  for (const std::string& h : headers) names.push_back(h.substr(0, h.find(':')));
  return names;
}

// Independent base64 decoding (RFC 4648), for checking encoded-words byte for byte.
std::string DecodeBase64ForMailTest(std::string_view text) {
  static const std::string kDigits =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    const size_t v = kDigits.find(c);
    if (v == std::string::npos) {
      ADD_FAILURE() << "not base64: " << text;
      return out;
    }
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      out += static_cast<char>((buffer >> (bits - 8)) & 0xFF);
      bits -= 8;
    }
  }
  return out;
}

bool IsWholeUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string Render(const MailMessage& message, std::string_view domain = "example.org") {
  auto rendered = RenderMail(message, kNowMs, domain);
  EXPECT_TRUE(rendered) << rendered.error().message;
  return rendered ? *rendered : std::string();
}

TEST(MailMessageTest, ParsesMailboxes) {
  auto bare = ParseMailbox("  noreply@example.org ");
  ASSERT_TRUE(bare) << bare.error().message;
  EXPECT_EQ(bare->display_name, "");
  EXPECT_EQ(bare->address, "noreply@example.org");

  auto named = ParseMailbox("vmp3 <noreply@example.org>");
  ASSERT_TRUE(named);
  EXPECT_EQ(named->display_name, "vmp3");
  EXPECT_EQ(named->address, "noreply@example.org");

  auto quoted = ParseMailbox(R"("Ops, \"Mail\" Team" <ops+vmp3@mail.example.org>)");
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->display_name, R"(Ops, "Mail" Team)");
  EXPECT_EQ(quoted->address, "ops+vmp3@mail.example.org");

  auto unicode = ParseMailbox("Zoë Ärtist <zoe@example.org>");
  ASSERT_TRUE(unicode);
  EXPECT_EQ(unicode->display_name, "Zoë Ärtist");
}

TEST(MailMessageTest, RefusesWhatIsNotAnAddress) {
  for (std::string_view bad :
       {"", "noreply", "a@b@c", "@example.org", "a@", "a b@example.org", "a@exa mple.org",
        "a@example.org\r\nBcc: x@evil.org", "x <a@example.org\r\nBcc: x@evil.org>",
        "a..b@example.org", ".a@example.org", "\"a b\"@example.org", "a@[127.0.0.1]",
        "zoë@example.org", "a@exämple.org", "a@example.org>", "<>",
        "Eve\r\nBcc: x@evil.org <a@example.org>", "Eve\x85 <a@example.org>"}) {
    auto parsed = ParseMailbox(bad);
    EXPECT_FALSE(parsed) << "accepted: " << bad;
    if (!parsed) {
      EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    }
  }
  EXPECT_FALSE(ParseMailbox(std::string(65, 'a') + "@example.org"));
  EXPECT_FALSE(ParseMailbox("a@" + std::string(250, 'b') + ".org"));
}

TEST(MailMessageTest, RendersTheHeadersOfAPlainMail) {
  const std::string mail = Render({"vmp3 <noreply@example.org>", "user@example.net",
                                   "Your file is ready", "Hello\nworld\n", ""});
  auto [headers, body] = SplitMail(mail);
  EXPECT_THAT(HeaderNames(headers),
              ElementsAre("Date", "From", "To", "Subject", "Message-ID", "MIME-Version",
                          "Auto-Submitted", "Content-Type", "Content-Transfer-Encoding"));
  EXPECT_EQ(headers[0], "Date: Tue, 14 Nov 2023 22:13:20 +0000");
  EXPECT_EQ(headers[1], "From: vmp3 <noreply@example.org>");
  EXPECT_EQ(headers[2], "To: user@example.net");
  EXPECT_EQ(headers[3], "Subject: Your file is ready");
  EXPECT_TRUE(std::regex_match(headers[4], std::regex("Message-ID: <[0-9a-f]{32}@example\\.org>")))
      << headers[4];
  EXPECT_EQ(headers[5], "MIME-Version: 1.0");
  EXPECT_EQ(headers[6], "Auto-Submitted: auto-generated");
  EXPECT_EQ(headers[7], "Content-Type: text/plain; charset=utf-8");
  EXPECT_EQ(headers[8], "Content-Transfer-Encoding: quoted-printable");
  EXPECT_EQ(body, "Hello\r\nworld\r\n");

  // A fresh Message-ID for every mail.
  const std::string again = Render({"noreply@example.org", "user@example.net", "s", "b", ""});
  EXPECT_NE(SplitMail(again).first[4], headers[4]);

  const nlohmann::json decoded = DecodeMailWithPython(mail);
  ASSERT_FALSE(decoded.is_null());
  EXPECT_THAT(decoded["defects"], ::testing::IsEmpty());
  EXPECT_EQ(decoded["from_name"], "vmp3");
  EXPECT_EQ(decoded["from_addr"], "noreply@example.org");
  EXPECT_EQ(decoded["to_addr"], "user@example.net");
  EXPECT_EQ(decoded["parts"][0]["type"], "text/plain");
  EXPECT_EQ(decoded["parts"][0]["body"], "Hello\nworld\n");
}

TEST(MailMessageTest, DatesAreRfc5322InUtc) {
  auto date_of = [](int64_t ms) {
    auto mail = RenderMail({"a@example.org", "b@example.org", "s", "b", ""}, ms, "example.org");
    EXPECT_TRUE(mail);
    return mail ? SplitMail(*mail).first[0] : std::string();
  };
  EXPECT_EQ(date_of(0), "Date: Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(date_of(951782400999), "Date: Tue, 29 Feb 2000 00:00:00 +0000");
  EXPECT_EQ(date_of(1796475108000), "Date: Sat, 05 Dec 2026 12:51:48 +0000");
}

TEST(MailMessageTest, MessageIdFallsBackToTheSendersDomain) {
  for (std::string_view domain : {"", "bad domain", "a..b", "x>y"}) {
    const std::string mail =
        Render({"noreply@mail.example.org", "b@example.org", "s", "b", ""}, domain);
    EXPECT_TRUE(std::regex_search(
        mail, std::regex("\r\nMessage-ID: <[0-9a-f]{32}@mail\\.example\\.org>\r\n")))
        << "domain '" << domain << "':\n"
        << mail;
  }
  EXPECT_THAT(Render({"noreply@example.org", "b@example.org", "s", "b", ""}, "vmp3.example.com"),
              HasSubstr("@vmp3.example.com>\r\n"));
}

TEST(MailMessageTest, NonAsciiHeaderTextBecomesEncodedWordsThatDecodeBack) {
  const std::string subject = "\"Ünïcode 日本.mp4\" is ready as MP3";
  const std::string long_subject =
      "Ünïcode " + std::string("日本語のファイル名") + std::string(60, 'x') +
      " 👋 Grüße aus Köln, München und Zürich — 東京 大阪 京都 " + std::string("日本語") + " end";
  for (const std::string& s : {subject, long_subject}) {
    const std::string mail =
        Render({"Zoë Ärtist — vmp3 <noreply@example.org>", "Jürgen <j@example.net>", s, "b", ""});
    // Lines with encoded-words stay within 76 characters; every word within 75, a whole number
    // of characters in valid UTF-8.
    const std::string head = mail.substr(0, mail.find("\r\n\r\n") + 2);
    for (const std::string& line : CrlfLines(head)) EXPECT_LE(line.size(), 76u) << line;
    const std::regex word("=\\?UTF-8\\?B\\?([A-Za-z0-9+/=]*)\\?=");
    int words = 0;
    for (auto it = std::sregex_iterator(head.begin(), head.end(), word);
         it != std::sregex_iterator(); ++it, ++words) {
      EXPECT_LE(it->length(0), 75) << it->str(0);
      EXPECT_TRUE(IsWholeUtf8(DecodeBase64ForMailTest((*it)[1].str()))) << it->str(0);
    }
    EXPECT_GE(words, 3);
    EXPECT_THAT(head, Not(HasSubstr("Ü")));  // no raw 8-bit header text

    const nlohmann::json decoded = DecodeMailWithPython(mail);
    ASSERT_FALSE(decoded.is_null());
    EXPECT_THAT(decoded["defects"], ::testing::IsEmpty());
    EXPECT_THAT(DecodedHeaders(decoded, "Subject"), ElementsAre(s));
    EXPECT_EQ(decoded["from_name"], "Zoë Ärtist — vmp3");
    EXPECT_EQ(decoded["from_addr"], "noreply@example.org");
    EXPECT_EQ(decoded["to_name"], "Jürgen");
    EXPECT_EQ(decoded["to_addr"], "j@example.net");
  }
}

TEST(MailMessageTest, AsciiHeaderTextStaysReadable) {
  const std::string subject =
      "A rather long subject line that names a file and says what happened to it, long enough "
      "to be folded at least once";
  const std::string mail =
      Render({R"("Ops, Inc." <ops@example.org>)", "b@example.org", subject, "b", ""});
  EXPECT_THAT(mail, HasSubstr("From: \"Ops, Inc.\" <ops@example.org>\r\n"));
  EXPECT_THAT(mail, Not(HasSubstr("=?")));
  const std::string head = mail.substr(0, mail.find("\r\n\r\n") + 2);
  for (const std::string& line : CrlfLines(head)) EXPECT_LE(line.size(), 76u) << line;
  const nlohmann::json decoded = DecodeMailWithPython(mail);
  ASSERT_FALSE(decoded.is_null());
  EXPECT_THAT(DecodedHeaders(decoded, "Subject"), ElementsAre(subject));
  EXPECT_EQ(decoded["from_name"], "Ops, Inc.");

  // ASCII that a reader would take for an encoded-word is encoded, so it reads as written.
  const std::string tricky = "=?UTF-8?B?SGFja2Vk?= file";
  const nlohmann::json tricky_decoded =
      DecodeMailWithPython(Render({"a@example.org", "b@example.org", tricky, "b", ""}));
  ASSERT_FALSE(tricky_decoded.is_null());
  EXPECT_THAT(DecodedHeaders(tricky_decoded, "Subject"), ElementsAre(tricky));
}

TEST(MailMessageTest, NoHeaderInjectionThroughTheSubject) {
  for (std::string_view subject :
       {"talk\r\nBcc: victim@evil.org\r\n.mp4", "talk\nBcc: victim@evil.org", "talk\rBcc: x@y.z",
        "talk\r\n\r\nbody start", "Ünï\r\nBcc: victim@evil.org",
        "a\xE2\x80\xA8"
        "Bcc: x@y.z",
        "bad \xFF\xFE utf-8\r\nBcc: x@y.z"}) {
    const std::string mail =
        Render({"a@example.org", "b@example.org", std::string(subject), "body", ""});
    auto [headers, body] = SplitMail(mail);
    EXPECT_THAT(HeaderNames(headers), Not(::testing::Contains("Bcc"))) << mail;
    EXPECT_EQ(headers.size(), 9u) << mail;
    EXPECT_EQ(body, "body\r\n");
    const nlohmann::json decoded = DecodeMailWithPython(mail);
    ASSERT_FALSE(decoded.is_null());
    EXPECT_TRUE(DecodedHeaders(decoded, "Bcc").empty());
    const std::vector<std::string> subjects = DecodedHeaders(decoded, "Subject");
    ASSERT_EQ(subjects.size(), 1u);
    EXPECT_THAT(subjects[0], Not(::testing::ContainsRegex("[\r\n]")));
  }
  EXPECT_EQ(DecodedHeaders(DecodeMailWithPython(Render(
                               {"a@example.org", "b@example.org", "talk\r\nBcc: v@e.org", "", ""})),
                           "Subject"),
            std::vector<std::string>{"talk Bcc: v@e.org"});
}

TEST(MailMessageTest, RefusesAddressesThatCouldInjectHeaders) {
  for (const MailMessage& m :
       {MailMessage{"a@example.org\r\nBcc: v@evil.org", "b@example.org", "s", "b", ""},
        MailMessage{"a@example.org", "b@example.org\r\nBcc: v@evil.org", "s", "b", ""},
        MailMessage{"Eve\r\nBcc: v@evil.org <a@example.org>", "b@example.org", "s", "b", ""},
        MailMessage{"a@example.org", "", "s", "b", ""}}) {
    auto rendered = RenderMail(m, kNowMs, "example.org");
    ASSERT_FALSE(rendered);
    EXPECT_EQ(rendered.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(MailMessageTest, BodiesAreQuotedPrintableWithShortLines) {
  std::string text = "Grüße aus Köln — 東京 👋\n";
  text += std::string(200, 'a') + "\n";  // long ASCII line
  text += "Ünïcode " + std::string(40, 'x') + " 日本語のテキスト" + std::string(20, ' ') + "ü" +
          std::string(100, 'y') + "\n";              // long mixed line
  text += ".\n";                                     // a lone dot (SMTP's end of data)
  text += ".hidden line\n";                          // a leading dot
  text += "From here on, mbox would mangle this\n";  // a leading "From "
  text += "trailing spaces   \n";                    // trailing whitespace
  text += "tab\tinside and at end\t\r\n";            // CRLF input
  text += "lone CR\rnext\n";                         // CR input
  text += "equals = sign and =3D literal\n";
  text += std::string(75, 'b') + "=" + "\n";  // an escape at the line's end
  text += "no newline at the end";
  const std::string mail = Render({"a@example.org", "b@example.org", "s", text, ""});
  const std::string body = mail.substr(mail.find("\r\n\r\n") + 4);
  for (const std::string& line : CrlfLines(body)) {
    EXPECT_LE(line.size(), 76u) << line;
    EXPECT_FALSE(line.starts_with(".")) << line;
    EXPECT_FALSE(line.starts_with("From ")) << line;
    EXPECT_FALSE(line.ends_with(" ") || line.ends_with("\t")) << line;
    for (char c : line) EXPECT_TRUE(c == '\t' || (c >= 0x20 && c < 0x7F)) << line;
  }
  const nlohmann::json decoded = DecodeMailWithPython(mail);
  ASSERT_FALSE(decoded.is_null());
  EXPECT_THAT(decoded["defects"], ::testing::IsEmpty());
  EXPECT_EQ(decoded["parts"][0]["charset"], "utf-8");
  std::string expected = text;
  // Line breaks come back as "\n" (CRLF on the wire); the mail ends with one.
  expected = std::regex_replace(expected, std::regex("\r\n|\r"), "\n") + "\n";
  EXPECT_EQ(decoded["parts"][0]["body"].get<std::string>(), expected);
}

TEST(MailMessageTest, HtmlMakesAMultipartAlternative) {
  const std::string text = "Hello Zoë,\nyour MP3 is ready.\n";
  const std::string html =
      "<!doctype html><p>Hello Zoë,</p><p>your MP3 is <a href=\"https://vmp3.example.org/v1/"
      "jobs/abc/mp3\">ready</a>.</p>" +
      std::string(100, 'z') + "\n";
  const std::string mail = Render({"a@example.org", "b@example.org", "s", text, html});
  auto [headers, body] = SplitMail(mail);
  std::smatch match;
  ASSERT_TRUE(std::regex_search(
      mail, match,
      std::regex(
          "\r\nContent-Type: multipart/alternative; boundary=\"(=_vmp3_[0-9a-f]{24})\"\r\n")))
      << mail;
  const std::string boundary = match[1];
  EXPECT_THAT(mail, Not(HasSubstr("Content-Transfer-Encoding: quoted-printable\r\nMIME")));
  // The boundary opens both parts and closes the multipart, and occurs nowhere else.
  size_t count = 0;
  for (size_t at = body.find(boundary); at != std::string::npos; at = body.find(boundary, at + 1))
    ++count;
  EXPECT_EQ(count, 3u);
  EXPECT_THAT(body, ::testing::EndsWith("--" + boundary + "--\r\n"));
  for (const std::string& line : CrlfLines(body)) EXPECT_LE(line.size(), 76u) << line;

  const nlohmann::json decoded = DecodeMailWithPython(mail);
  ASSERT_FALSE(decoded.is_null());
  EXPECT_THAT(decoded["defects"], ::testing::IsEmpty());
  ASSERT_EQ(decoded["parts"].size(), 2u);
  EXPECT_EQ(decoded["parts"][0]["type"], "text/plain");
  EXPECT_EQ(decoded["parts"][0]["body"], text);
  EXPECT_EQ(decoded["parts"][1]["type"], "text/html");
  EXPECT_EQ(decoded["parts"][1]["body"], html);
}

JobMailFacts FactsFor(std::string event, std::string file_name) {
  JobMailFacts facts;
  facts.event_type = std::move(event);
  facts.file_name = std::move(file_name);
  facts.download_url = "https://vmp3.example.org/v1/jobs/abc123/mp3";
  facts.job_url = "https://vmp3.example.org/v1/jobs/abc123";
  facts.settings_url = "https://vmp3.example.org/v1/account/notifications";
  return facts;
}

TEST(MailMessageTest, JobDoneMailNamesTheFileAndLinksTheMp3) {
  const MailMessage mail =
      JobMail(FactsFor("job.done", "talk.mp4"), "vmp3 <noreply@example.org>", "u@example.net");
  EXPECT_EQ(mail.from, "vmp3 <noreply@example.org>");
  EXPECT_EQ(mail.to, "u@example.net");
  EXPECT_EQ(mail.subject, "\"talk.mp4\" is ready as MP3");
  EXPECT_THAT(mail.text_body, HasSubstr("\"talk.mp4\" has been converted to MP3"));
  EXPECT_THAT(mail.text_body, HasSubstr("https://vmp3.example.org/v1/jobs/abc123/mp3\n"));
  EXPECT_THAT(mail.text_body, HasSubstr("https://vmp3.example.org/v1/jobs/abc123\n"));
  EXPECT_THAT(mail.text_body,
              HasSubstr("  PUT https://vmp3.example.org/v1/account/notifications\nwith the body "
                        "{\"email\": false}"));
  EXPECT_TRUE(mail.html_body.empty());
}

TEST(MailMessageTest, JobMailsSayWhatHappened) {
  JobMailFacts failed = FactsFor("job.failed", "talk.mp4");
  failed.error_message = "the file has no audio stream";
  const MailMessage failed_mail = JobMail(failed, "noreply@example.org", "u@example.net");
  EXPECT_EQ(failed_mail.subject, "\"talk.mp4\" could not be converted");
  EXPECT_THAT(failed_mail.text_body,
              HasSubstr("could not be converted to MP3:\nthe file has no audio stream"));
  EXPECT_THAT(failed_mail.text_body, Not(HasSubstr("/mp3")));  // nothing to download

  EXPECT_EQ(JobMail(FactsFor("job.cancelled", "a.mp4"), "n@example.org", "u@example.net").subject,
            "Converting \"a.mp4\" was cancelled");
  const MailMessage expired =
      JobMail(FactsFor("job.expired", "a.mp4"), "n@example.org", "u@example.net");
  EXPECT_EQ(expired.subject, "The MP3 of \"a.mp4\" has expired");
  EXPECT_THAT(expired.text_body, HasSubstr("Upload the file again"));
  EXPECT_EQ(JobMail(FactsFor("job.queued", "a.mp4"), "n@example.org", "u@example.net").subject,
            "\"a.mp4\" is waiting to be converted");
  EXPECT_EQ(JobMail(FactsFor("job.converting", "a.mp4"), "n@example.org", "u@example.net").subject,
            "\"a.mp4\" is being converted");
  EXPECT_EQ(JobMail(FactsFor("job.frobbed", "a.mp4"), "n@example.org", "u@example.net").subject,
            "\"a.mp4\" has a new status: job.frobbed");
  EXPECT_EQ(JobMail(FactsFor("job.done", ""), "n@example.org", "u@example.net").subject,
            "\"untitled\" is ready as MP3");
}

TEST(MailMessageTest, JobMailWithAUnicodeFileNameRendersAndDecodes) {
  const MailMessage mail = JobMail(FactsFor("job.done", "Ünïcode 日本.mp4"),
                                   "vmp3 <noreply@example.org>", "u@example.net");
  auto rendered = RenderMail(mail, kNowMs, "example.org");
  ASSERT_TRUE(rendered) << rendered.error().message;
  const nlohmann::json decoded = DecodeMailWithPython(*rendered);
  ASSERT_FALSE(decoded.is_null());
  EXPECT_THAT(decoded["defects"], ::testing::IsEmpty());
  EXPECT_THAT(DecodedHeaders(decoded, "Subject"),
              ElementsAre("\"Ünïcode 日本.mp4\" is ready as MP3"));
  EXPECT_EQ(decoded["parts"][0]["body"], mail.text_body);
  EXPECT_THAT(decoded["parts"][0]["body"].get<std::string>(), HasSubstr("\"Ünïcode 日本.mp4\""));
}

TEST(MailMessageTest, JobMailNeutralisesHostileFileNames) {
  const MailMessage mail = JobMail(FactsFor("job.done", "talk\r\nBcc: victim@evil.org\r\n.mp4"),
                                   "noreply@example.org", "u@example.net");
  EXPECT_EQ(mail.subject, "\"talk Bcc: victim@evil.org .mp4\" is ready as MP3");
  EXPECT_THAT(mail.text_body, Not(HasSubstr("\nBcc")));
  auto rendered = RenderMail(mail, kNowMs, "example.org");
  ASSERT_TRUE(rendered);
  EXPECT_THAT(HeaderNames(SplitMail(*rendered).first), Not(::testing::Contains("Bcc")));

  // Long names are shortened in the subject only.
  const std::string long_name = std::string(50, 'a') + std::string(50, 'b') + ".mp4";
  const MailMessage long_mail =
      JobMail(FactsFor("job.done", long_name), "noreply@example.org", "u@example.net");
  EXPECT_EQ(long_mail.subject,
            "\"" + std::string(50, 'a') + std::string(29, 'b') + "…\" is ready as MP3");
  EXPECT_THAT(long_mail.text_body, HasSubstr(long_name));
  const std::string long_unicode = [] {
    std::string s;
    for (int i = 0; i < 90; ++i) s += "日";
    return s;
  }();
  const std::string subject =
      JobMail(FactsFor("job.done", long_unicode), "n@example.org", "u@example.net").subject;
  EXPECT_TRUE(IsWholeUtf8(subject));
  EXPECT_THAT(subject, HasSubstr("日…\""));
}

}  // namespace
}  // namespace vmp3::notify
