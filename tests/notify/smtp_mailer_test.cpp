#include "notify/smtp_mailer.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "notify/mail_decode.hpp"
#include "notify/mail_message.hpp"
#include "support/fixtures.hpp"
#include "support/process.hpp"

namespace vmp3::notify {
namespace {

namespace fs = std::filesystem;
using test::DecodedHeaders;
using test::DecodeMailWithPython;
using test::RunProcess;
using test::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace std::chrono_literals;

constexpr std::string_view kSender = "vmp3 tests <noreply@vmp3.example.org>";

std::string EnvOr(const char* name, std::string fallback = "") {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : fallback;
}

// scripts/servers/smtp.sh of this source tree.
fs::path SmtpServerScript() {
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "scripts/servers/smtp.sh";
}

// A TCP port on 127.0.0.1 that nothing listens on right now.
int UnusedLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string ReadMailFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The message the server of `maildir` stored for `recipient` (its X-RcptTo names it); nullopt
// if there is none. The server stores a message before it answers 250 to its data, so a
// successful Send has stored it.
std::optional<std::string> MailFor(const fs::path& maildir, std::string_view recipient) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(maildir / "new", ec)) {
    std::string mail = ReadMailFile(entry.path());
    if (mail.find(fmt::format("\r\nX-RcptTo: {}\r\n", recipient)) != std::string::npos) return mail;
  }
  return std::nullopt;
}

// A recipient address no other test run uses, so its mail is found among all others.
std::string UniqueRecipient() {
  static std::mt19937_64 random{std::random_device{}()};
  return fmt::format("u-{:016x}@example.net", random());
}

// The tests with "Server" in their names run against the aiosmtpd server of
// scripts/test-servers (STARTTLS required, then a login) and skip without it.
class SmtpMailerTest : public ::testing::Test {
 protected:
  // False (and the test should skip) when VMP3_TEST_SMTP_URL is not set.
  bool UseTestServer() {
    if (EnvOr("VMP3_TEST_SMTP_URL").empty()) return false;
    config_.url = EnvOr("VMP3_TEST_SMTP_URL");
    config_.ca_file = EnvOr("VMP3_TEST_SMTP_CA_FILE");
    config_.user = EnvOr("VMP3_TEST_SMTP_USER");
    config_.password = EnvOr("VMP3_TEST_SMTP_PASSWORD");
    config_.from = std::string(kSender);
    config_.timeout = 20s;
    maildir_ = EnvOr("VMP3_TEST_SMTP_MAILDIR");
    EXPECT_FALSE(maildir_.empty()) << "VMP3_TEST_SMTP_MAILDIR is not set";
    return true;
  }

  Status SendWith(const SmtpConfig& config, std::string_view to, const std::string& message) {
    auto mailer = SmtpMailer::Create(config);
    if (!mailer) return tl::unexpected(mailer.error());
    return mailer->Send(to, message);
  }

  SmtpConfig config_;
  fs::path maildir_;
};

constexpr std::string_view kNoSmtpServer =
    "VMP3_TEST_SMTP_URL is not set (scripts/test-servers start DIR)";

TEST_F(SmtpMailerTest, ValidatesTheConfiguration) {
  auto config_with = [](auto change) {
    SmtpConfig config;
    config.url = "smtp://mail.example.org:587";
    config.from = std::string(kSender);
    change(config);
    return config.Validate();
  };
  EXPECT_TRUE(config_with([](SmtpConfig&) {}));
  EXPECT_TRUE(config_with([](SmtpConfig& c) { c.url = "smtps://mail.example.org"; }));
  EXPECT_TRUE(config_with([](SmtpConfig& c) { c.url = "smtp://[::1]:25/vmp3.example.org"; }));
  EXPECT_TRUE(config_with([](SmtpConfig& c) {
    c.user = "vmp3";
    c.password = "secret";
    c.from = "noreply@example.org";
  }));
  struct Bad {
    std::function<void(SmtpConfig&)> change;
    std::string_view says;
  };
  const std::vector<Bad> bad = {
      {[](SmtpConfig& c) { c.url = "http://mail.example.org"; }, "smtp://"},
      {[](SmtpConfig& c) { c.url = "mail.example.org:25"; }, "smtp://"},
      {[](SmtpConfig& c) { c.url = ""; }, "smtp://"},
      {[](SmtpConfig& c) { c.url = "smtp://"; }, "host"},
      {[](SmtpConfig& c) { c.url = "smtp://u:p@mail.example.org"; }, "user or password"},
      {[](SmtpConfig& c) { c.url = "smtp://mail.example.org:99999"; }, "port"},
      {[](SmtpConfig& c) { c.url = "smtp://mail.example.org?x=1"; }, "parameter"},
      {[](SmtpConfig& c) { c.from = "not an address"; }, "from"},
      {[](SmtpConfig& c) { c.from = "a@example.org\r\nBcc: x@evil.org"; }, "from"},
      {[](SmtpConfig& c) { c.password = "secret"; }, "needs an SMTP user"},
      {[](SmtpConfig& c) { c.user = "vmp3"; }, "needs an SMTP password"},
      {[](SmtpConfig& c) { c.timeout = 0ms; }, "timeout"},
      {[](SmtpConfig& c) { c.timeout = 11min; }, "timeout"},
      {[](SmtpConfig& c) { c.ca_file = "/nonexistent/ca.pem"; }, "CA file"},
  };
  for (const Bad& b : bad) {
    Status s = config_with(b.change);
    ASSERT_FALSE(s) << "accepted a configuration that " << b.says;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(s.error().message, HasSubstr(std::string(b.says)));
    EXPECT_THAT(s.error().message, Not(HasSubstr("secret")));
  }
  SmtpConfig invalid;
  invalid.url = "ftp://x";
  invalid.from = "a@example.org";
  EXPECT_FALSE(SmtpMailer::Create(invalid));
}

TEST_F(SmtpMailerTest, RefusesABadRecipientWithoutConnecting) {
  SmtpConfig config;
  config.url = fmt::format("smtp://127.0.0.1:{}", UnusedLoopbackPort());
  config.from = std::string(kSender);
  auto mailer = SmtpMailer::Create(config);
  ASSERT_TRUE(mailer) << mailer.error().message;
  for (std::string_view to : {"", "nobody", "a@example.org\r\nRCPT TO:<x@evil.org>", "a b@c.d"}) {
    Status s = mailer->Send(to, "Subject: x\r\n\r\nx\r\n");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << s.error().message;
  }
}

TEST_F(SmtpMailerTest, AnUnreachableRelayIsUnavailable) {
  SmtpConfig config;
  config.url = fmt::format("smtp://127.0.0.1:{}", UnusedLoopbackPort());
  config.from = std::string(kSender);
  config.timeout = 5s;
  auto mailer = SmtpMailer::Create(config);
  ASSERT_TRUE(mailer);
  Status s = mailer->Send("u@example.net", "Subject: x\r\n\r\nx\r\n");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr(config.url));
}

TEST_F(SmtpMailerTest, AStalledRelayTimesOut) {
  // A socket that listens but never answers: the kernel completes the TCP handshake, no
  // greeting ever comes.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  SmtpConfig config;
  config.url = fmt::format("smtp://127.0.0.1:{}", ntohs(address.sin_port));
  config.from = std::string(kSender);
  config.timeout = 300ms;
  auto mailer = SmtpMailer::Create(config);
  ASSERT_TRUE(mailer);
  const auto started = std::chrono::steady_clock::now();
  Status s = mailer->Send("u@example.net", "Subject: x\r\n\r\nx\r\n");
  const auto took = std::chrono::steady_clock::now() - started;
  ::close(fd);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("no answer within 300 ms"));
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 5s);
}

TEST_F(SmtpMailerTest, ServerSendsAJobMailThroughStartTlsWithALogin) {
  if (!UseTestServer()) GTEST_SKIP() << kNoSmtpServer;
  const std::string to = UniqueRecipient();
  JobMailFacts facts;
  facts.event_type = "job.done";
  facts.file_name = "Ünïcode 日本.mp4";
  facts.download_url = "https://vmp3.example.org/v1/jobs/abc/mp3";
  facts.job_url = "https://vmp3.example.org/v1/jobs/abc";
  facts.settings_url = "https://vmp3.example.org/v1/account/notifications";
  const MailMessage message = JobMail(facts, std::string(kSender), "Jürgen <" + to + ">");
  auto rendered = RenderMail(message, 1796475108000, "vmp3.example.org");
  ASSERT_TRUE(rendered) << rendered.error().message;

  Status sent = SendWith(config_, to, *rendered);
  ASSERT_TRUE(sent) << sent.error().message;

  const std::optional<std::string> stored = MailFor(maildir_, to);
  ASSERT_TRUE(stored) << "no mail for " << to << " in " << maildir_;
  // The server's trace headers: envelope, encryption, login.
  EXPECT_THAT(*stored, StartsWith("X-MailFrom: noreply@vmp3.example.org\r\nX-RcptTo: " + to +
                                  "\r\nX-Test-TLS: TLSv1."));
  EXPECT_THAT(*stored, HasSubstr("\r\nX-Test-Auth: " + config_.user + "\r\n"));
  // Then the message, byte for byte as rendered.
  EXPECT_THAT(*stored, ::testing::EndsWith("\r\n" + *rendered));

  const nlohmann::json decoded = DecodeMailWithPython(*stored);
  ASSERT_FALSE(decoded.is_null());
  EXPECT_THAT(decoded["defects"], ::testing::IsEmpty());
  EXPECT_THAT(DecodedHeaders(decoded, "Subject"),
              ::testing::ElementsAre("\"Ünïcode 日本.mp4\" is ready as MP3"));
  EXPECT_EQ(decoded["to_name"], "Jürgen");
  EXPECT_EQ(decoded["to_addr"], to);
  EXPECT_EQ(decoded["from_name"], "vmp3 tests");
  EXPECT_THAT(decoded["parts"][0]["body"].get<std::string>(),
              HasSubstr("https://vmp3.example.org/v1/jobs/abc/mp3\n"));
}

TEST_F(SmtpMailerTest, ServerDataIsDotStuffedByLibcurl) {
  if (!UseTestServer()) GTEST_SKIP() << kNoSmtpServer;
  // Not RenderMail's output (it never starts a line with "."): raw lines that end SMTP's data
  // early unless the client escapes them (RFC 5321 §4.5.2).
  const std::string to = UniqueRecipient();
  const std::string message = fmt::format(
      "From: {}\r\nTo: {}\r\nSubject: dots\r\n\r\nbefore\r\n.\r\n..two\r\n.after\r\n", kSender, to);
  Status sent = SendWith(config_, to, message);
  ASSERT_TRUE(sent) << sent.error().message;
  const std::optional<std::string> stored = MailFor(maildir_, to);
  ASSERT_TRUE(stored);
  EXPECT_THAT(*stored, ::testing::EndsWith("\r\nbefore\r\n.\r\n..two\r\n.after\r\n"));
}

TEST_F(SmtpMailerTest, ServerAPermanentlyRefusedRecipientIsNotRetried) {
  if (!UseTestServer()) GTEST_SKIP() << kNoSmtpServer;
  // The test server answers 550 to RCPT TO for @reject.invalid.
  Status s = SendWith(config_, "nobody@reject.invalid", "Subject: x\r\n\r\nx\r\n");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << s.error().message;
  EXPECT_THAT(s.error().message, HasSubstr("refused the recipient for nobody@reject.invalid: 550"));
}

TEST_F(SmtpMailerTest, ServerATemporarilyRefusedRecipientIsUnavailable) {
  if (!UseTestServer()) GTEST_SKIP() << kNoSmtpServer;
  // 451 for @defer.invalid.
  Status s = SendWith(config_, "nobody@defer.invalid", "Subject: x\r\n\r\nx\r\n");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().message;
  EXPECT_THAT(s.error().message, HasSubstr("451"));
}

TEST_F(SmtpMailerTest, ServerAWrongPasswordIsUnavailableAndNeverQuoted) {
  if (!UseTestServer()) GTEST_SKIP() << kNoSmtpServer;
  SmtpConfig config = config_;
  config.password = "wrong-Pa55word-for-the-test";
  const std::string to = UniqueRecipient();
  Status s = SendWith(config, to, "Subject: x\r\n\r\nx\r\n");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().message;
  EXPECT_THAT(s.error().message, HasSubstr("refused the login"));
  EXPECT_THAT(s.error().message, HasSubstr("535"));
  EXPECT_THAT(s.error().message, Not(HasSubstr(config.password)));
  EXPECT_THAT(s.error().message, Not(HasSubstr(config_.password)));
  EXPECT_FALSE(MailFor(maildir_, to).has_value());
}

TEST_F(SmtpMailerTest, ServerAnUntrustedCertificateFails) {
  if (!UseTestServer()) GTEST_SKIP() << kNoSmtpServer;
  // A CA of our own that did not sign the server's certificate.
  const fs::path dir = TempDir();
  test::ProcessResult ca =
      RunProcess({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-days", "1", "-subj", "/CN=another CA", "-keyout",
                  (dir / "ca.key").string(), "-out", (dir / "ca.pem").string()});
  ASSERT_EQ(ca.exit_code, 0) << ca.err;
  SmtpConfig config = config_;
  config.ca_file = (dir / "ca.pem").string();
  const std::string to = UniqueRecipient();
  Status s = SendWith(config, to, "Subject: x\r\n\r\nx\r\n");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("certificate"));
  EXPECT_THAT(s.error().message, Not(HasSubstr(config_.password)));

  // The system's CAs do not know the test CA either.
  config.ca_file.clear();
  Status system = SendWith(config, to, "Subject: x\r\n\r\nx\r\n");
  ASSERT_FALSE(system);
  EXPECT_EQ(system.error().code, ErrorCode::kUnavailable);
  EXPECT_FALSE(MailFor(maildir_, to).has_value());
}

TEST_F(SmtpMailerTest, ServerImplicitTlsAgainstAStartTlsServerFails) {
  if (!UseTestServer()) GTEST_SKIP() << kNoSmtpServer;
  SmtpConfig config = config_;
  config.url.replace(0, 4, "smtps");
  config.timeout = 5s;
  Status s = SendWith(config, UniqueRecipient(), "Subject: x\r\n\r\nx\r\n");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().message;
}

// A second aiosmtpd from scripts/servers/smtp.sh in `plain` mode: no STARTTLS, no AUTH. Stopped
// (by its PID, by the script) when the test ends.
class PlainSmtpServer {
 public:
  PlainSmtpServer() : dir_(TempDir() / "plain-smtp"), port_(UnusedLoopbackPort()) {
    test::ProcessResult r = RunProcess(
        {SmtpServerScript().string(), "start", dir_.string(), std::to_string(port_), "plain"}, 60s);
    started_ = r.exit_code == 0;
    EXPECT_TRUE(started_) << r.out << r.err;
  }
  ~PlainSmtpServer() {
    test::ProcessResult r = RunProcess(
        {SmtpServerScript().string(), "stop", dir_.string(), std::to_string(port_)}, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  PlainSmtpServer(const PlainSmtpServer&) = delete;
  PlainSmtpServer& operator=(const PlainSmtpServer&) = delete;

  bool started() const { return started_; }
  std::string url() const { return fmt::format("smtp://127.0.0.1:{}", port_); }
  fs::path maildir() const { return dir_ / "maildir"; }

 private:
  fs::path dir_;
  int port_;
  bool started_ = false;
};

TEST_F(SmtpMailerTest, ServerRequiredTlsIsNeverSkippedForAServerWithoutStartTls) {
  if (!UseTestServer()) GTEST_SKIP() << kNoSmtpServer;
  PlainSmtpServer plain;
  ASSERT_TRUE(plain.started());
  SmtpConfig config;
  config.url = plain.url();
  config.from = std::string(kSender);
  config.timeout = 10s;
  const std::string to = UniqueRecipient();
  Status s = SendWith(config, to, "Subject: x\r\n\r\nsecret\r\n");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(s.error().message, HasSubstr("does not offer STARTTLS"));
  EXPECT_FALSE(MailFor(plain.maildir(), to).has_value());

  // The same server takes the mail once TLS is not required: the refusal above was the client's.
  config.require_tls = false;
  Status plain_sent = SendWith(config, to, "Subject: x\r\n\r\nplain\r\n");
  ASSERT_TRUE(plain_sent) << plain_sent.error().message;
  const std::optional<std::string> stored = MailFor(plain.maildir(), to);
  ASSERT_TRUE(stored);
  EXPECT_THAT(*stored, HasSubstr("\r\nX-Test-TLS: none\r\n"));
}

}  // namespace
}  // namespace vmp3::notify
