#include "http/multipart.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace vmp3::http {
namespace {

struct RecordedPart {
  PartHeaders headers;
  std::string data;
  bool ended = false;
};

// Records every callback; can be told to fail on a given call.
class Recorder final : public MultipartHandler {
 public:
  Status OnPartBegin(const PartHeaders& headers) override {
    ++calls;
    EXPECT_TRUE(parts.empty() || parts.back().ended) << "a part began before the last one ended";
    parts.push_back({headers, "", false});
    return {};
  }
  Status OnPartData(std::span<const std::byte> data) override {
    ++calls;
    EXPECT_FALSE(data.empty());
    EXPECT_FALSE(parts.empty());
    if (parts.empty()) return {};
    EXPECT_FALSE(parts.back().ended);
    parts.back().data.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (data_limit && parts.back().data.size() > *data_limit) {
      return MakeError(ErrorCode::kTooLarge, "the upload is larger than the limit");
    }
    return {};
  }
  Status OnPartEnd() override {
    ++calls;
    EXPECT_FALSE(parts.empty());
    if (!parts.empty()) parts.back().ended = true;
    return {};
  }

  std::vector<RecordedPart> parts;
  size_t calls = 0;
  std::optional<size_t> data_limit;
};

constexpr std::string_view kBoundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

std::string Part(std::string_view headers, std::string_view body) {
  return "--" + std::string(kBoundary) + "\r\n" + std::string(headers) + "\r\n\r\n" +
         std::string(body) + "\r\n";
}

std::string Close() { return "--" + std::string(kBoundary) + "--\r\n"; }

// Binary content with a NUL and a line that starts like a boundary.
const std::string kBinary(
    "\x00\x01"
    "binary\r\n--not-a-boundary\r\n",
    28);

std::string TwoPartBody() {
  return Part("Content-Disposition: form-data; name=\"format\"", "V2") +
         Part(
             "Content-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n"
             "Content-Type: video/mp4",
             kBinary) +
         Close();
}

// Feeds `body` cut at the given sizes (cycled), then finishes.
Status FeedInPieces(MultipartParser& parser, std::string_view body,
                    const std::vector<size_t>& sizes) {
  size_t pos = 0;
  size_t k = 0;
  while (pos < body.size()) {
    size_t n = std::min(sizes[k++ % sizes.size()], body.size() - pos);
    if (auto ok = parser.Feed(body.substr(pos, n)); !ok) return ok;
    pos += n;
  }
  return parser.Finish();
}

Result<std::vector<RecordedPart>> ParseAll(std::string_view body, std::vector<size_t> sizes = {},
                                           MultipartLimits limits = {}) {
  Recorder recorder;
  MultipartParser parser(std::string(kBoundary), recorder, limits);
  if (sizes.empty()) sizes = {body.size() + 1};
  if (auto ok = FeedInPieces(parser, body, sizes); !ok) return tl::unexpected(ok.error());
  return recorder.parts;
}

void ExpectSameParts(const std::vector<RecordedPart>& a, const std::vector<RecordedPart>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].headers.name, b[i].headers.name);
    EXPECT_EQ(a[i].headers.filename, b[i].headers.filename);
    EXPECT_EQ(a[i].headers.content_type, b[i].headers.content_type);
    EXPECT_EQ(a[i].data, b[i].data) << "part " << i;
    EXPECT_EQ(a[i].ended, b[i].ended);
  }
}

TEST(BoundaryFromContentTypeTest, ExtractsTokenBoundary) {
  auto b = BoundaryFromContentType("multipart/form-data; boundary=abc123");
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(*b, "abc123");
}

TEST(BoundaryFromContentTypeTest, ExtractsQuotedBoundaryWithSpecialCharacters) {
  auto b = BoundaryFromContentType("multipart/form-data; boundary=\"a b:c=d?e\"");
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(*b, "a b:c=d?e");
}

TEST(BoundaryFromContentTypeTest, MatchesTypeAndParameterNamesCaseInsensitively) {
  auto b = BoundaryFromContentType("Multipart/Form-Data ; Charset=utf-8;BOUNDARY=XyZ");
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(*b, "XyZ");  // the value keeps its case
}

TEST(BoundaryFromContentTypeTest, AcceptsSeventyCharactersAndRejectsSeventyOne) {
  std::string seventy(70, 'a');
  auto ok = BoundaryFromContentType("multipart/form-data; boundary=" + seventy);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, seventy);
  auto bad = BoundaryFromContentType("multipart/form-data; boundary=" + seventy + "a");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("70"), std::string::npos);
}

TEST(BoundaryFromContentTypeTest, RejectsBadInput) {
  for (std::string_view ct : {
           "multipart/form-data",                          // no boundary
           "multipart/form-data; boundary=",               // empty
           "multipart/form-data; boundary=\"\"",           // empty quoted
           "multipart/form-data; boundary=\"abc",          // unterminated quote
           "multipart/form-data; boundary=a; boundary=b",  // duplicate
           "multipart/form-data; boundary=\"ab \"",        // ends with a space
           "multipart/form-data; boundary=a\x01z",         // control character
           "multipart/form-data; boundary=a{b}",           // not a bchar
           "multipart/mixed; boundary=abc",                // wrong subtype
           "application/octet-stream",                     // wrong type
           "",                                             // nothing
           "multipart/form-data; =abc",                    // parameter without a name
       }) {
    auto b = BoundaryFromContentType(ct);
    EXPECT_FALSE(b.has_value()) << "accepted: " << ct;
    if (!b) {
      EXPECT_EQ(b.error().code, ErrorCode::kInvalidArgument) << ct;
    }
  }
}

TEST(MultipartParserTest, ParsesFieldAndFile) {
  auto parts = ParseAll(TwoPartBody());
  ASSERT_TRUE(parts.has_value()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  const RecordedPart& field = (*parts)[0];
  EXPECT_EQ(field.headers.name, "format");
  EXPECT_FALSE(field.headers.is_file());
  EXPECT_EQ(field.headers.content_type, "");
  EXPECT_EQ(field.data, "V2");
  EXPECT_TRUE(field.ended);
  const RecordedPart& file = (*parts)[1];
  EXPECT_EQ(file.headers.name, "file");
  ASSERT_TRUE(file.headers.is_file());
  EXPECT_EQ(*file.headers.filename, "clip.mp4");
  EXPECT_EQ(file.headers.content_type, "video/mp4");
  EXPECT_EQ(file.data, kBinary);
  EXPECT_TRUE(file.ended);
}

TEST(MultipartParserTest, OneByteAtATimeGivesTheSameResult) {
  auto whole = ParseAll(TwoPartBody());
  auto bytewise = ParseAll(TwoPartBody(), {1});
  ASSERT_TRUE(whole.has_value());
  ASSERT_TRUE(bytewise.has_value()) << bytewise.error().message;
  ExpectSameParts(*whole, *bytewise);
}

// Payload bytes built to contain many near-misses of the delimiter: CRs, CRLFs, dashes, and
// prefixes of "\r\n--boundary" of every length, plus random bytes.
std::string TrickyPayload(std::mt19937& rng, size_t pieces) {
  const std::string delimiter = "\r\n--" + std::string(kBoundary);
  std::string out;
  std::uniform_int_distribution<int> kind(0, 5);
  for (size_t i = 0; i < pieces; ++i) {
    switch (kind(rng)) {
      case 0:
        out += delimiter.substr(
            0, std::uniform_int_distribution<size_t>(1, delimiter.size() - 1)(rng));
        break;
      case 1:
        out += "\r\r\n-\r\n--";
        break;
      case 2:
        out += "--" + std::string(kBoundary);  // the boundary, but not at a line start
        break;
      case 3:
        out += delimiter.substr(0, delimiter.size() - 1) + "X";  // last byte differs
        break;
      default:
        for (int k = 0; k < 8; ++k) out.push_back(static_cast<char>(rng() & 0xFF));
    }
  }
  // Nothing random may form the whole delimiter.
  for (size_t at; (at = out.find(delimiter)) != std::string::npos;) out[at + 2] = 'x';
  return out;
}

TEST(MultipartParserTest, RandomSplitsOfTrickyBinaryPayloadsRoundTrip) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 200; ++round) {
    std::string a = TrickyPayload(rng, 20);
    std::string b = TrickyPayload(rng, 5);
    std::string body =
        "preamble\r\n" +
        Part("Content-Disposition: form-data; name=\"file\"; filename=\"a.bin\"", a) +
        Part("Content-Disposition: form-data; name=\"f\"", b) + Close() + "epilogue --" +
        std::string(kBoundary) + "--\r\n";
    std::vector<size_t> sizes;
    for (int i = 0; i < 16; ++i) sizes.push_back(std::uniform_int_distribution<size_t>(1, 97)(rng));
    auto parts = ParseAll(body, sizes);
    ASSERT_TRUE(parts.has_value()) << parts.error().message;
    ASSERT_EQ(parts->size(), 2u);
    EXPECT_EQ((*parts)[0].data, a) << "round " << round;
    EXPECT_EQ((*parts)[1].data, b) << "round " << round;
    EXPECT_TRUE((*parts)[1].ended);
  }
}

TEST(MultipartParserTest, EveryTwoWaySplitGivesTheSameResult) {
  std::string body = TwoPartBody();
  auto whole = ParseAll(body);
  ASSERT_TRUE(whole.has_value());
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    Recorder recorder;
    MultipartParser parser(std::string(kBoundary), recorder);
    ASSERT_TRUE(parser.Feed(std::string_view(body).substr(0, cut)).has_value());
    ASSERT_TRUE(parser.Feed(std::string_view(body).substr(cut)).has_value());
    ASSERT_TRUE(parser.Finish().has_value()) << "cut at " << cut;
    ExpectSameParts(*whole, recorder.parts);
  }
}

TEST(MultipartParserTest, IgnoresPreambleAndEpilogue) {
  std::string body = "This is a preamble.\r\nIt has lines.\r\n" +
                     Part("Content-Disposition: form-data; name=\"a\"", "1") + Close() +
                     "This is the epilogue, with a fake boundary:\r\n--" + std::string(kBoundary) +
                     "\r\nignored";
  auto parts = ParseAll(body, {3});
  ASSERT_TRUE(parts.has_value()) << parts.error().message;
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].data, "1");
}

TEST(MultipartParserTest, FirstBoundaryNeedsALineStart) {
  // "x--boundary" is preamble text, not a boundary; the real one follows on its own line.
  std::string body = "x--" + std::string(kBoundary) + "\r\n" +
                     Part("Content-Disposition: form-data; name=\"a\"", "1") + Close();
  auto parts = ParseAll(body);
  ASSERT_TRUE(parts.has_value()) << parts.error().message;
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].headers.name, "a");
}

TEST(MultipartParserTest, AllowsTransportPaddingAfterBoundary) {
  std::string body = "--" + std::string(kBoundary) + " \t \r\n" +
                     "Content-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--" +
                     std::string(kBoundary) + "--";
  auto parts = ParseAll(body, {1});
  ASSERT_TRUE(parts.has_value()) << parts.error().message;
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].data, "value");
}

TEST(MultipartParserTest, EmptyPartBodyHasNoDataCalls) {
  Recorder recorder;
  MultipartParser parser(std::string(kBoundary), recorder);
  std::string body = Part("Content-Disposition: form-data; name=\"e\"", "") + Close();
  ASSERT_TRUE(parser.Feed(body).has_value());
  ASSERT_TRUE(parser.Finish().has_value());
  ASSERT_EQ(recorder.parts.size(), 1u);
  EXPECT_EQ(recorder.parts[0].data, "");
  EXPECT_EQ(recorder.calls, 2u);  // begin + end
}

TEST(MultipartParserTest, DataEndingInCarriageReturnsIsKept) {
  auto parts = ParseAll(Part("Content-Disposition: form-data; name=\"a\"", "x\r\r") + Close(), {1});
  ASSERT_TRUE(parts.has_value()) << parts.error().message;
  EXPECT_EQ((*parts)[0].data, "x\r\r");
}

TEST(MultipartParserTest, FilenameStarTakesPrecedenceAndIsDecoded) {
  auto parts =
      ParseAll(Part("Content-Disposition: form-data; name=\"file\"; filename=\"fallback.mp4\"; "
                    "filename*=UTF-8''%E2%82%AC%20rates%2Emp4",
                    "x") +
               Close());
  ASSERT_TRUE(parts.has_value()) << parts.error().message;
  EXPECT_EQ((*parts)[0].headers.filename, "\xE2\x82\xAC rates.mp4");
}

TEST(MultipartParserTest, FilenameStarInLatin1IsConvertedToUtf8) {
  auto parts = ParseAll(
      Part("Content-Disposition: form-data; name=\"file\"; filename*=iso-8859-1'en'%A3%20x", "x") +
      Close());
  ASSERT_TRUE(parts.has_value()) << parts.error().message;
  EXPECT_EQ((*parts)[0].headers.filename, "\xC2\xA3 x");
}

TEST(MultipartParserTest, RejectsMalformedFilenameStar) {
  for (std::string_view ext : {"UTF-8''%E2%8", "UTF-8''%zz", "koi8-r''abc", "noquotes"}) {
    auto parts = ParseAll(
        Part("Content-Disposition: form-data; name=\"f\"; filename*=" + std::string(ext), "x") +
        Close());
    ASSERT_FALSE(parts.has_value()) << ext;
    EXPECT_EQ(parts.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(MultipartParserTest, RawUtf8FilenameAndEscapesInQuotedValues) {
  auto parts = ParseAll(Part("Content-Disposition: form-data; name=\"file\"; "
                             "filename=\"C:\\Users\\\xC3\xA9t\xC3\xA9\\say \\\"hi\\\".mp4\"",
                             "x") +
                        Close());
  ASSERT_TRUE(parts.has_value()) << parts.error().message;
  // \U, \\, \s stay (not escapes of " or \); \" becomes ".
  EXPECT_EQ((*parts)[0].headers.filename, "C:\\Users\\\xC3\xA9t\xC3\xA9\\say \"hi\".mp4");
}

TEST(MultipartParserTest, EmptyFilenameMarksAFilePart) {
  auto parts =
      ParseAll(Part("Content-Disposition: form-data; name=\"file\"; filename=\"\"", "") + Close());
  ASSERT_TRUE(parts.has_value()) << parts.error().message;
  ASSERT_TRUE((*parts)[0].headers.is_file());
  EXPECT_EQ(*(*parts)[0].headers.filename, "");
}

TEST(MultipartParserTest, HeaderNamesAreCaseInsensitiveAndFoldedLinesJoin) {
  auto parts = ParseAll(Part("content-DISPOSITION: Form-Data;\r\n\tname=\"a\"\r\nX-Other: y\r\n"
                             "CONTENT-TYPE: text/plain; charset=utf-8",
                             "v") +
                        Close());
  ASSERT_TRUE(parts.has_value()) << parts.error().message;
  EXPECT_EQ((*parts)[0].headers.name, "a");
  EXPECT_EQ((*parts)[0].headers.content_type, "text/plain; charset=utf-8");
}

void ExpectInvalid(const std::string& body, std::string_view fragment) {
  auto parts = ParseAll(body);
  ASSERT_FALSE(parts.has_value()) << "accepted: " << body;
  EXPECT_EQ(parts.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(parts.error().message.find(fragment), std::string::npos) << parts.error().message;
  // The same verdict byte by byte.
  auto bytewise = ParseAll(body, {1});
  ASSERT_FALSE(bytewise.has_value());
  EXPECT_EQ(bytewise.error().message, parts.error().message);
}

TEST(MultipartParserTest, RejectsMalformedParts) {
  ExpectInvalid(Part("Content-Type: text/plain", "x") + Close(), "no Content-Disposition");
  ExpectInvalid("--" + std::string(kBoundary) + "\r\n\r\nx\r\n" + Close(),
                "no Content-Disposition");
  ExpectInvalid(Part("Content-Disposition: attachment; name=\"a\"", "x") + Close(), "form-data");
  ExpectInvalid(Part("Content-Disposition: form-data; filename=\"a\"", "x") + Close(),
                "no name parameter");
  ExpectInvalid(Part("Content-Disposition: form-data; name=\"a\"; name=\"b\"", "x") + Close(),
                "duplicate parameter");
  ExpectInvalid(Part("Content-Disposition: form-data; name=\"a", "x") + Close(), "unterminated");
  ExpectInvalid(Part("Content-Disposition form-data; name=\"a\"", "x") + Close(), "not a header");
  ExpectInvalid(Part(" folded: before anything", "x") + Close(), "continuation");
  ExpectInvalid(Part("Content-Disposition: form-data; name=\"a\x01\"", "x") + Close(),
                "control character");
  ExpectInvalid(Part("Content-Disposition: form-data; name=\"a\"\r\n"
                     "Content-Disposition: form-data; name=\"b\"",
                     "x") +
                    Close(),
                "more than one Content-Disposition");
  ExpectInvalid(Part("Content-Disposition: form-data; name=\"a\"\r\n"
                     "Content-Transfer-Encoding: base64",
                     "eA==") +
                    Close(),
                "Content-Transfer-Encoding");
}

TEST(MultipartParserTest, RejectsBoundaryFollowedByOtherText) {
  ExpectInvalid(Part("Content-Disposition: form-data; name=\"a\"", "x") + "--" +
                    std::string(kBoundary) + "zzz\r\n",
                "boundary is followed by other text");
  ExpectInvalid(Part("Content-Disposition: form-data; name=\"a\"", "x") + "--" +
                    std::string(kBoundary) + "-x",
                "boundary is followed by other text");
  ExpectInvalid(Part("Content-Disposition: form-data; name=\"a\"", "x") + "--" +
                    std::string(kBoundary) + " --",
                "boundary is followed by other text");
  ExpectInvalid(Part("Content-Disposition: form-data; name=\"a\"", "x") + "--" +
                    std::string(kBoundary) + "\rX",
                "does not end with CRLF");
}

TEST(MultipartParserTest, TruncatedBodyFailsOnFinish) {
  std::string body = TwoPartBody();
  // Cut anywhere after the first boundary line and before the closing "--".
  const size_t close = body.rfind("--" + std::string(kBoundary) + "--");
  for (size_t cut : {kBoundary.size() + 4, size_t{60}, body.size() / 2, close, close + 3,
                     close + kBoundary.size() + 3}) {
    Recorder recorder;
    MultipartParser parser(std::string(kBoundary), recorder);
    ASSERT_TRUE(parser.Feed(std::string_view(body).substr(0, cut)).has_value()) << cut;
    auto finished = parser.Finish();
    ASSERT_FALSE(finished.has_value()) << "cut at " << cut;
    EXPECT_EQ(finished.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(finished.error().message, "upload ended before the multipart body was complete")
        << "cut at " << cut;
  }
}

TEST(MultipartParserTest, BodyWithoutAnyBoundaryFailsOnFinish) {
  for (std::string_view body : {"", "just some text", "--other-boundary\r\n"}) {
    Recorder recorder;
    MultipartParser parser(std::string(kBoundary), recorder);
    ASSERT_TRUE(parser.Feed(body).has_value());
    auto finished = parser.Finish();
    ASSERT_FALSE(finished.has_value());
    EXPECT_EQ(finished.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(finished.error().message.find("no multipart boundary"), std::string::npos);
    EXPECT_TRUE(recorder.parts.empty());
  }
}

TEST(MultipartParserTest, CompleteAfterCloseDelimiterWithoutTrailingCrlf) {
  Recorder recorder;
  MultipartParser parser(std::string(kBoundary), recorder);
  std::string body = Part("Content-Disposition: form-data; name=\"a\"", "1") + "--" +
                     std::string(kBoundary) + "--";
  ASSERT_TRUE(parser.Feed(body).has_value());
  EXPECT_TRUE(parser.done());
  ASSERT_TRUE(parser.Feed("anything after is epilogue").has_value());
  EXPECT_TRUE(parser.Finish().has_value());
  EXPECT_EQ(recorder.parts.size(), 1u);
}

TEST(MultipartParserTest, HeaderBlockAtTheLimitPassesAndOneMoreByteFails) {
  MultipartLimits limits;
  limits.max_header_bytes = 100;
  std::string prefix = "Content-Disposition: form-data; name=\"a\"\r\nX-Pad: ";
  std::string at_limit = prefix + std::string(100 - prefix.size(), 'p');
  ASSERT_EQ(at_limit.size(), 100u);
  for (std::vector<size_t> sizes : {std::vector<size_t>{}, std::vector<size_t>{1}}) {
    auto ok = ParseAll(Part(at_limit, "v") + Close(), sizes, limits);
    ASSERT_TRUE(ok.has_value()) << ok.error().message;
    EXPECT_EQ((*ok)[0].data, "v");
    auto too_big = ParseAll(Part(at_limit + "p", "v") + Close(), sizes, limits);
    ASSERT_FALSE(too_big.has_value());
    EXPECT_EQ(too_big.error().code, ErrorCode::kTooLarge);
  }
}

TEST(MultipartParserTest, HugeHeaderBlockFailsWithoutBufferingIt) {
  Recorder recorder;
  MultipartParser parser(std::string(kBoundary), recorder);  // default 16 KiB
  ASSERT_TRUE(parser
                  .Feed("--" + std::string(kBoundary) +
                        "\r\nContent-Disposition: form-data; name=\"a\"\r\nX: ")
                  .has_value());
  std::string chunk(4096, 'h');
  Status status;
  int fed = 0;
  while (status.has_value() && fed < 1000) {
    status = parser.Feed(chunk);
    ++fed;
  }
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kTooLarge);
  EXPECT_LE(fed, 5);  // failed as soon as 16 KiB were passed
}

TEST(MultipartParserTest, TooManyParts) {
  MultipartLimits limits;
  limits.max_parts = 3;
  std::string three;
  for (int i = 0; i < 3; ++i) three += Part("Content-Disposition: form-data; name=\"a\"", "1");
  auto ok = ParseAll(three + Close(), {}, limits);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->size(), 3u);
  auto bad = ParseAll(three + Part("Content-Disposition: form-data; name=\"a\"", "1") + Close(), {},
                      limits);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kTooLarge);
  EXPECT_NE(bad.error().message.find("more than 3 parts"), std::string::npos);
}

TEST(MultipartParserTest, FieldValueLimitAppliesToFieldsOnly) {
  MultipartLimits limits;
  limits.max_field_bytes = 10;
  auto field_ok =
      ParseAll(Part("Content-Disposition: form-data; name=\"a\"", std::string(10, 'x')) + Close(),
               {1}, limits);
  ASSERT_TRUE(field_ok.has_value()) << field_ok.error().message;
  auto field_big = ParseAll(
      Part("Content-Disposition: form-data; name=\"title\"", std::string(11, 'x')) + Close(), {},
      limits);
  ASSERT_FALSE(field_big.has_value());
  EXPECT_EQ(field_big.error().code, ErrorCode::kTooLarge);
  EXPECT_NE(field_big.error().message.find("'title'"), std::string::npos);
  auto file_big = ParseAll(
      Part("Content-Disposition: form-data; name=\"f\"; filename=\"a\"", std::string(1000, 'x')) +
          Close(),
      {}, limits);
  ASSERT_TRUE(file_big.has_value()) << file_big.error().message;
  EXPECT_EQ((*file_big)[0].data.size(), 1000u);
}

// A field over the limit reaches the handler up to the limit, then fails, however it is cut: so a
// handler limit below the field limit wins whether the body comes whole or byte by byte.
TEST(MultipartParserTest, FieldLimitAndHandlerLimitGiveTheSameVerdictHoweverTheBodyIsCut) {
  MultipartLimits limits;
  limits.max_field_bytes = 10;
  const std::string body =
      Part("Content-Disposition: form-data; name=\"title\"", std::string(20, 'x')) + Close();
  for (const std::vector<size_t>& sizes : std::vector<std::vector<size_t>>{{}, {1}, {7}}) {
    for (const std::optional<size_t> handler_limit :
         {std::optional<size_t>(), std::optional<size_t>(5)}) {
      Recorder recorder;
      recorder.data_limit = handler_limit;
      MultipartParser parser(std::string(kBoundary), recorder, limits);
      const std::vector<size_t> pieces = sizes.empty() ? std::vector<size_t>{body.size()} : sizes;
      Status status = FeedInPieces(parser, body, pieces);
      ASSERT_FALSE(status.has_value());
      EXPECT_EQ(status.error().code, ErrorCode::kTooLarge);
      ASSERT_EQ(recorder.parts.size(), 1u);
      if (handler_limit) {
        EXPECT_EQ(status.error().message, "the upload is larger than the limit");
        EXPECT_GT(recorder.parts[0].data.size(), 5u);
      } else {
        EXPECT_NE(status.error().message.find("'title' is longer than 10 bytes"),
                  std::string::npos);
        EXPECT_EQ(recorder.parts[0].data, std::string(10, 'x'));
      }
    }
  }
}

TEST(MultipartParserTest, HandlerErrorAbortsAndSticks) {
  Recorder recorder;
  recorder.data_limit = 100;
  MultipartParser parser(std::string(kBoundary), recorder);
  ASSERT_TRUE(parser
                  .Feed("--" + std::string(kBoundary) +
                        "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n")
                  .has_value());
  auto status = parser.Feed(std::string(500, 'x'));
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kTooLarge);
  EXPECT_EQ(status.error().message, "the upload is larger than the limit");
  const size_t calls = recorder.calls;
  auto again = parser.Feed("\r\n" + Close());
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().message, "the upload is larger than the limit");
  auto finished = parser.Finish();
  ASSERT_FALSE(finished.has_value());
  EXPECT_EQ(finished.error().code, ErrorCode::kTooLarge);
  EXPECT_EQ(recorder.calls, calls);  // no callbacks after the error
  EXPECT_FALSE(recorder.parts.back().ended);
}

TEST(MultipartParserTest, StreamsDataBeforeThePartEnds) {
  Recorder recorder;
  MultipartParser parser(std::string(kBoundary), recorder);
  ASSERT_TRUE(parser
                  .Feed("--" + std::string(kBoundary) +
                        "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n")
                  .has_value());
  std::string chunk(64 * 1024, 'z');
  chunk.back() = '\r';  // may start a delimiter: must be held back, and only that
  size_t fed = 0;
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(parser.Feed(chunk).has_value());
    fed += chunk.size();
    // Everything but the possible start of a delimiter has been handed on already.
    EXPECT_EQ(recorder.parts[0].data.size(), fed - 1);
  }
  ASSERT_TRUE(parser.Feed("\r\n--" + std::string(kBoundary) + "--").has_value());
  ASSERT_TRUE(parser.Finish().has_value());
  EXPECT_EQ(recorder.parts[0].data.size(), fed);
}

TEST(MultipartParserTest, InvalidBoundaryFailsOnFirstFeed) {
  Recorder recorder;
  MultipartParser parser(std::string(71, 'b'), recorder);
  auto status = parser.Feed("anything");
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  MultipartParser empty("", recorder);
  EXPECT_FALSE(empty.Feed("").has_value());
}

TEST(MultipartParserTest, ShortBoundaryWithSelfOverlap) {
  // The boundary "-" makes the delimiter "\r\n---", which overlaps itself.
  Recorder recorder;
  MultipartParser parser("-", recorder);
  std::string body =
      "---\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
      "--\r\n--\r\n-x\r\n---\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n"
      "\r\n-----";
  ASSERT_TRUE(FeedInPieces(parser, body, {1}).has_value());
  ASSERT_EQ(recorder.parts.size(), 2u);
  EXPECT_EQ(recorder.parts[0].data, "--\r\n--\r\n-x");
  EXPECT_EQ(recorder.parts[1].data, "");
}

}  // namespace
}  // namespace vmp3::http
