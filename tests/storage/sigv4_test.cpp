// The signer against AWS's published values, never against values it computed itself:
//  - the S3 API Reference's worked examples ("Signature Calculations for the Authorization
//    Header: Transferring Payload in a Single Chunk" and "Authenticating Requests: Using Query
//    Parameters"), with AKIAIOSFODNN7EXAMPLE at 20130524T000000Z in us-east-1;
//  - cases from the AWS SigV4 test suite (aws-sig-v4-test-suite: service "service", us-east-1,
//    AKIDEXAMPLE at 20150830T123600Z);
//  - the IAM documentation's signing-key derivation example.
#include "storage/sigv4.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace vmp3::sigv4 {
namespace {

const Credentials kS3Example{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                             ""};
const Scope kS3Scope{"us-east-1", "s3", "20130524T000000Z"};
constexpr std::string_view kS3Host = "examplebucket.s3.amazonaws.com";

const Credentials kSuite{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const Scope kSuiteScope{"us-east-1", "service", "20150830T123600Z"};
constexpr std::string_view kSuiteHost = "example.amazonaws.com";

std::string SignatureOf(std::string_view authorization) {
  size_t at = authorization.find("Signature=");
  return at == std::string_view::npos ? "" : std::string(authorization.substr(at + 10));
}

TEST(SigV4, S3ExampleGetObjectWithRange) {
  Request request{.method = "GET",
                  .path = "/test.txt",
                  .headers = {{"Host", std::string(kS3Host)},
                              {"Range", "bytes=0-9"},
                              {"x-amz-content-sha256", std::string(kEmptyPayloadHash)},
                              {"x-amz-date", "20130524T000000Z"}}};
  EXPECT_EQ(
      CanonicalRequest(request),
      "GET\n"
      "/test.txt\n"
      "\n"
      "host:examplebucket.s3.amazonaws.com\n"
      "range:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n"
      "\n"
      "host;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(StringToSign(kS3Scope, CanonicalRequest(request)),
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  std::string authorization = SignHeaders(request, kS3Example, kS3Scope);
  EXPECT_EQ(authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(request.headers.size(), 4u) << "x-amz-date was present and is not added twice";
}

TEST(SigV4, S3ExamplePutObject) {
  const std::string payload_hash = Sha256Hex(std::string_view("Welcome to Amazon S3."));
  ASSERT_EQ(payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  // '$' in the key is encoded in the path ("/test%24file.text").
  Request request{.method = "PUT",
                  .path = "/test$file.text",
                  .headers = {{"Host", std::string(kS3Host)},
                              {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                              {"x-amz-date", "20130524T000000Z"},
                              {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                              {"x-amz-content-sha256", payload_hash}},
                  .payload_hash = payload_hash};
  EXPECT_EQ(EncodePath(request.path), "/test%24file.text");
  std::string authorization = SignHeaders(request, kS3Example, kS3Scope);
  EXPECT_NE(authorization.find(
                "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"),
            std::string::npos)
      << authorization;
  EXPECT_EQ(SignatureOf(authorization),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, S3ExampleGetBucketLifecycle) {
  // "?lifecycle": a parameter without a value is signed as "lifecycle=".
  Request request{.method = "GET",
                  .path = "/",
                  .query = {{"lifecycle", ""}},
                  .headers = {{"Host", std::string(kS3Host)},
                              {"x-amz-content-sha256", std::string(kEmptyPayloadHash)}}};
  EXPECT_EQ(CanonicalQueryString(request.query), "lifecycle=");
  std::string authorization = SignHeaders(request, kS3Example, kS3Scope);
  EXPECT_EQ(SignatureOf(authorization),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4, S3ExampleListObjects) {
  Request request{.method = "GET",
                  .path = "/",
                  .query = {{"prefix", "J"}, {"max-keys", "2"}},  // signed sorted
                  .headers = {{"Host", std::string(kS3Host)},
                              {"x-amz-content-sha256", std::string(kEmptyPayloadHash)}}};
  EXPECT_EQ(CanonicalQueryString(request.query), "max-keys=2&prefix=J");
  std::string authorization = SignHeaders(request, kS3Example, kS3Scope);
  EXPECT_EQ(SignatureOf(authorization),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, S3ExamplePresignedUrl) {
  Request request{
      .method = "GET", .path = "/test.txt", .headers = {{"Host", std::string(kS3Host)}}};
  std::string query = PresignQuery(request, kS3Example, kS3Scope, 86400);
  EXPECT_EQ(query,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  // The published string to sign ends with this hash of the canonical request.
  std::string string_to_sign = StringToSign(kS3Scope, CanonicalRequest(request));
  EXPECT_EQ(string_to_sign.substr(string_to_sign.rfind('\n') + 1),
            "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04");
}

TEST(SigV4, PresignedUrlSignsTheSessionToken) {
  Credentials temporary = kS3Example;
  temporary.session_token = "token/with+chars=";
  Request request{
      .method = "GET", .path = "/test.txt", .headers = {{"Host", std::string(kS3Host)}}};
  std::string query = PresignQuery(request, temporary, kS3Scope, 86400);
  EXPECT_NE(query.find("&X-Amz-Security-Token=token%2Fwith%2Bchars%3D&"), std::string::npos)
      << query;
  // The token is inside the signature: the published signature (no token) no longer comes out.
  EXPECT_EQ(query.find("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
            std::string::npos);
  EXPECT_EQ(query.rfind("&X-Amz-Signature=", std::string::npos), query.size() - 17 - 64);
}

TEST(SigV4, IamExampleSigningKey) {
  EXPECT_EQ(HexEncode(SigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215",
                                 "us-east-1", "iam")),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

struct SuiteCase {
  std::string name;
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> extra_headers;
  std::string authorization;  // the suite's .authz file
};

void PrintTo(const SuiteCase& c, std::ostream* os) { *os << c.name; }

class SigV4TestSuite : public ::testing::TestWithParam<SuiteCase> {};

TEST_P(SigV4TestSuite, MatchesTheSuitesAuthorization) {
  const SuiteCase& c = GetParam();
  Request request{.method = c.method, .path = c.path, .query = c.query};
  request.headers.emplace_back("Host", std::string(kSuiteHost));
  for (const auto& h : c.extra_headers) request.headers.push_back(h);
  Credentials credentials = kSuite;
  if (c.name == "post_sts_header_before") {
    credentials.session_token =
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfp"
        "SPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPky"
        "QDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBA"
        "z+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
  }
  EXPECT_EQ(SignHeaders(request, credentials, kSuiteScope), c.authorization);
}

std::string SuiteAuthz(std::string_view signed_headers, std::string_view signature) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
         "SignedHeaders=" +
         std::string(signed_headers) + ", Signature=" + std::string(signature);
}

const std::string kUnreserved =
    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

INSTANTIATE_TEST_SUITE_P(
    AwsSuite, SigV4TestSuite,
    ::testing::Values(
        SuiteCase{"get_vanilla",
                  "GET",
                  "/",
                  {},
                  {},
                  SuiteAuthz("host;x-amz-date",
                             "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")},
        SuiteCase{"post_vanilla",
                  "POST",
                  "/",
                  {},
                  {},
                  SuiteAuthz("host;x-amz-date",
                             "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")},
        SuiteCase{"get_vanilla_query_order_key_case",
                  "GET",
                  "/",
                  {{"Param2", "value2"}, {"Param1", "value1"}},
                  {},
                  SuiteAuthz("host;x-amz-date",
                             "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")},
        SuiteCase{"get_vanilla_query_unreserved",
                  "GET",
                  "/",
                  {{kUnreserved, kUnreserved}},
                  {},
                  SuiteAuthz("host;x-amz-date",
                             "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197")},
        SuiteCase{"get_utf8",
                  "GET",
                  "/\xE1\x88\xB4",
                  {},
                  {},
                  SuiteAuthz("host;x-amz-date",
                             "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85")},
        SuiteCase{"get_vanilla_utf8_query",
                  "GET",
                  "/",
                  {{"\xE1\x88\xB4", "bar"}},
                  {},
                  SuiteAuthz("host;x-amz-date",
                             "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04")},
        SuiteCase{"get_header_value_trim",
                  "GET",
                  "/",
                  {},
                  {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
                  SuiteAuthz("host;my-header1;my-header2;x-amz-date",
                             "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736")},
        SuiteCase{"post_sts_header_before",
                  "POST",
                  "/",
                  {},
                  {},
                  SuiteAuthz("host;x-amz-date;x-amz-security-token",
                             "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead")}),
    [](const auto& info) { return info.param.name; });

TEST(SigV4, UriEncodeFollowsTheS3Rules) {
  EXPECT_EQ(UriEncode("a b+c/d~e", true), "a%20b%2Bc%2Fd~e");
  EXPECT_EQ(UriEncode("a b+c/d~e", false), "a%20b%2Bc/d~e");
  EXPECT_EQ(UriEncode("\xE1\x88\xB4", true), "%E1%88%B4");
  EXPECT_EQ(EncodePath(""), "/");
  EXPECT_EQ(EncodePath("/bucket/inputs/job-1/source.mp4"), "/bucket/inputs/job-1/source.mp4");
  EXPECT_EQ(EncodePath("/b/a//./c"), "/b/a//./c") << "S3 paths are not normalized";
}

TEST(SigV4, CanonicalQuerySortsByEncodedName) {
  EXPECT_EQ(CanonicalQueryString({{"uploadId", "a+b"}, {"partNumber", "2"}, {"X-Amz-Date", "1"}}),
            "X-Amz-Date=1&partNumber=2&uploadId=a%2Bb");
  EXPECT_EQ(CanonicalQueryString({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(CanonicalQueryString({}), "");
}

TEST(SigV4, SessionTokenHeaderIsAddedAndSigned) {
  Credentials temporary = kS3Example;
  temporary.session_token = "session";
  Request request{.method = "GET", .path = "/k", .headers = {{"Host", "h"}}};
  std::string authorization = SignHeaders(request, temporary, kS3Scope);
  EXPECT_NE(authorization.find("SignedHeaders=host;x-amz-date;x-amz-security-token,"),
            std::string::npos)
      << authorization;
  bool has_token = false;
  for (const auto& [name, value] : request.headers) {
    has_token |= name == "X-Amz-Security-Token" && value == "session";
  }
  EXPECT_TRUE(has_token);
}

TEST(SigV4, FormatsAmzDateInUtc) {
  using namespace std::chrono;
  EXPECT_EQ(FormatAmzDate(system_clock::time_point(seconds(1'440'938'160))), "20150830T123600Z");
  EXPECT_EQ(FormatAmzDate(system_clock::time_point(seconds(0))), "19700101T000000Z");
}

}  // namespace
}  // namespace vmp3::sigv4
