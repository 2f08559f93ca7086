// S3's XML, on answers shaped as AWS documents them and as Ceph RGW sends them.
#include "storage/s3_xml.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vmp3::s3 {
namespace {

// ---------------------------------------------------------------------------------- ListObjectsV2

TEST(S3Xml, ListObjectsV2LastPage) {
  // As Ceph RGW answers GET /bucket?list-type=2&prefix=p/inputs/&max-keys=1000.
  const std::string xml =
      R"(<?xml version="1.0" encoding="UTF-8"?>)"
      R"(<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
      "<Name>vmp3-test</Name><Prefix>p/inputs/</Prefix><MaxKeys>1000</MaxKeys>"
      "<IsTruncated>false</IsTruncated>"
      "<Contents><Key>p/inputs/a</Key><LastModified>2024-05-01T10:20:30.123Z</LastModified>"
      "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>434234</Size>"
      "<StorageClass>STANDARD</StorageClass><Type>Normal</Type></Contents>"
      "<Contents><Key>p/inputs/b&amp;c</Key><LastModified>2024-05-01T10:20:31.000Z</LastModified>"
      "<ETag>\"d41d8cd98f00b204e9800998ecf8427e-2\"</ETag><Size>0</Size>"
      "<StorageClass>STANDARD</StorageClass></Contents>"
      "<KeyCount>2</KeyCount></ListBucketResult>";
  auto page = ParseListObjectsV2(xml);
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_FALSE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "");
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "p/inputs/a");
  EXPECT_EQ(page->objects[0].size, 434234u);
  EXPECT_EQ(page->objects[0].etag, "9b2cf535f27731c974343645a3985328");
  EXPECT_EQ(page->objects[0].modified_unix, 1714558830);
  EXPECT_EQ(page->objects[1].key, "p/inputs/b&c") << "entities are decoded";
  EXPECT_EQ(page->objects[1].size, 0u);
  EXPECT_EQ(page->objects[1].etag, "d41d8cd98f00b204e9800998ecf8427e-2");
}

TEST(S3Xml, ListObjectsV2WithContinuation) {
  // As AWS documents it (ListObjectsV2, "Example 2: Listing keys using the max-keys ...").
  const std::string xml =
      R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>quotes</Name>
  <Prefix>E</Prefix>
  <StartAfter>ExampleGuide.pdf</StartAfter>
  <KeyCount>1</KeyCount>
  <MaxKeys>1</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>ExampleObject.txt</Key>
    <LastModified>2013-09-17T18:07:53.000Z</LastModified>
    <ETag>"599bab3ed2c697f1d26842727561fd94"</ETag>
    <Size>857</Size>
    <StorageClass>REDUCED_REDUNDANCY</StorageClass>
  </Contents>
</ListBucketResult>)";
  auto page = ParseListObjectsV2(xml);
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "ExampleObject.txt") << "surrounding whitespace is not text";
  EXPECT_EQ(page->objects[0].size, 857u);
  EXPECT_EQ(page->objects[0].modified_unix, 1379441273);
}

TEST(S3Xml, ListObjectsV2Empty) {
  auto page = ParseListObjectsV2(
      R"(<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>)"
      "<Prefix>nothing/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
      "<IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_TRUE(page->objects.empty());
  EXPECT_FALSE(page->truncated);
}

TEST(S3Xml, ListObjectsV2RejectsBrokenEntries) {
  const std::string bad_entries[] = {
      "<Contents><LastModified>2024-05-01T10:20:30Z</LastModified><Size>1</Size></Contents>",
      "<Contents><Key></Key><LastModified>2024-05-01T10:20:30Z</LastModified><Size>1</Size>"
      "</Contents>",
      "<Contents><Key>k</Key><LastModified>2024-05-01T10:20:30Z</LastModified></Contents>",
      "<Contents><Key>k</Key><LastModified>2024-05-01T10:20:30Z</LastModified><Size>-1</Size>"
      "</Contents>",
      "<Contents><Key>k</Key><LastModified>2024-05-01T10:20:30Z</LastModified><Size>12x</Size>"
      "</Contents>",
      "<Contents><Key>k</Key><LastModified>99999999999999999999</LastModified><Size>1</Size>"
      "</Contents>",
      "<Contents><Key>k</Key><LastModified>yesterday</LastModified><Size>1</Size></Contents>",
  };
  for (const std::string& entry : bad_entries) {
    SCOPED_TRACE(entry);
    auto page = ParseListObjectsV2("<ListBucketResult>" + entry + "</ListBucketResult>");
    ASSERT_FALSE(page);
    EXPECT_EQ(page.error().code, ErrorCode::kIo);
    EXPECT_TRUE(page.error().message.starts_with("S3 sent an unreadable object listing"))
        << page.error().message;
  }
}

// --------------------------------------------------------------------------- multipart uploads

TEST(S3Xml, ListMultipartUploads) {
  // As AWS documents it, with RGW's shape for the owner fields.
  const std::string xml =
      R"(<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>bucket</Bucket>
  <KeyMarker></KeyMarker>
  <UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>my-movie.m2ts</NextKeyMarker>
  <NextUploadIdMarker>YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ</NextUploadIdMarker>
  <MaxUploads>3</MaxUploads>
  <IsTruncated>true</IsTruncated>
  <Upload>
    <Key>my-divisor</Key>
    <UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId>
    <Initiator><ID>arn:aws:iam::111122223333:user/user1-11111a31-17b5-4fb7-9df5-b111111f13de</ID>
      <DisplayName>user1-11111a31-17b5-4fb7-9df5-b111111f13de</DisplayName></Initiator>
    <Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>
      <DisplayName>OwnerDisplayName</DisplayName></Owner>
    <StorageClass>REDUCED_REDUNDANCY</StorageClass>
    <Initiated>2010-11-10T20:48:33.000Z</Initiated>
  </Upload>
  <Upload>
    <Key>my-movie.m2ts</Key>
    <UploadId>b7tZSqIlo91lWzbn2ud1Ab.jDNyMf.Eo0wXu6IIJmKGkMJ8O2OZyBAbWNu4iz</UploadId>
    <StorageClass>STANDARD</StorageClass>
  </Upload>
</ListMultipartUploadsResult>)";
  auto page = ParseListMultipartUploads(xml);
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_key_marker, "my-movie.m2ts");
  EXPECT_EQ(page->next_upload_id_marker, "YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ");
  ASSERT_EQ(page->uploads.size(), 2u);
  EXPECT_EQ(page->uploads[0].key, "my-divisor");
  EXPECT_EQ(page->uploads[0].upload_id, "XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw");
  EXPECT_EQ(page->uploads[0].initiated_unix, 1289422113);
  EXPECT_EQ(page->uploads[1].initiated_unix, -1) << "no <Initiated>: unknown, not an error";
}

TEST(S3Xml, ListMultipartUploadsRejectsAnUploadWithoutAnId) {
  auto page = ParseListMultipartUploads(
      "<ListMultipartUploadsResult><Upload><Key>k</Key></Upload></ListMultipartUploadsResult>");
  ASSERT_FALSE(page);
  EXPECT_EQ(page.error().code, ErrorCode::kIo);
}

TEST(S3Xml, InitiateMultipartUploadResult) {
  auto id = ParseInitiateMultipartUpload(
      R"(<?xml version="1.0" encoding="UTF-8"?>)"
      R"(<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
      "<Bucket>vmp3-test</Bucket><Key>p/outputs/x.mp3</Key>"
      "<UploadId>2~iCw_lDY8VoKhBAwyHxDnTjhfFXFcVXr</UploadId>"
      "</InitiateMultipartUploadResult>");
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(*id, "2~iCw_lDY8VoKhBAwyHxDnTjhfFXFcVXr");

  auto empty = ParseInitiateMultipartUpload(
      "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId/>"
      "</InitiateMultipartUploadResult>");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kIo);
  EXPECT_NE(empty.error().message.find("UploadId"), std::string::npos) << empty.error().message;
}

TEST(S3Xml, ErrorBody) {
  auto error = ParseError(
      R"(<?xml version="1.0" encoding="UTF-8"?>)"
      "<Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist</Message>"
      "<Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>");
  ASSERT_TRUE(error) << error.error().message;
  EXPECT_EQ(error->code, "NoSuchKey");
  EXPECT_EQ(error->message, "The resource you requested does not exist");
  EXPECT_EQ(error->region, "");
}

TEST(S3Xml, ErrorBodyWithAnEmptyMessageAndARegion) {
  // RGW sends <Message></Message>; AWS names the region of a bucket elsewhere in a redirect.
  auto error = ParseError(
      "<Error><Code>PermanentRedirect</Code><Message></Message><Bucket>b</Bucket>"
      "<Endpoint>b.s3.eu-west-1.amazonaws.com</Endpoint><Region>eu-west-1</Region>"
      "<RequestId>tx0</RequestId><HostId>h</HostId></Error>");
  ASSERT_TRUE(error) << error.error().message;
  EXPECT_EQ(error->code, "PermanentRedirect");
  EXPECT_EQ(error->message, "");
  EXPECT_EQ(error->region, "eu-west-1");

  auto self_closing = ParseError("<Error><Code>SlowDown</Code><Message/></Error>");
  ASSERT_TRUE(self_closing) << self_closing.error().message;
  EXPECT_EQ(self_closing->code, "SlowDown");
  EXPECT_EQ(self_closing->message, "");
}

TEST(S3Xml, TextInCdataAndCharacterReferences) {
  auto error = ParseError(
      "<Error><Code><![CDATA[AccessDenied]]></Code><Message>a &#60;b&#x3E; "
      "&apos;c&apos;</Message></Error>");
  ASSERT_TRUE(error) << error.error().message;
  EXPECT_EQ(error->code, "AccessDenied");
  EXPECT_EQ(error->message, "a <b> 'c'");
}

TEST(S3Xml, ADocumentOfAnotherKindIsAnError) {
  auto not_an_error = ParseError("<ListBucketResult></ListBucketResult>");
  ASSERT_FALSE(not_an_error);
  EXPECT_EQ(not_an_error.error().code, ErrorCode::kIo);
  EXPECT_NE(not_an_error.error().message.find("expected <Error>, found <ListBucketResult>"),
            std::string::npos)
      << not_an_error.error().message;
  EXPECT_FALSE(ParseListObjectsV2("<Error><Code>NoSuchBucket</Code></Error>"));
  EXPECT_FALSE(ParseInitiateMultipartUpload("<ListBucketResult/>"));
  EXPECT_FALSE(ParseListMultipartUploads("<InitiateMultipartUploadResult/>"));
}

TEST(S3Xml, MalformedXmlIsAnErrorNeverACrash) {
  const std::string inputs[] = {
      "",
      " ",
      "not xml at all",
      "<Error>",
      "<Error><Code>x</Code>",
      "<Error><Code>x</Message></Error>",
      "<Error></Error><Error></Error>",
      "<Error a=></Error>",
      "<Error>&unknown;</Error>",
      "<<<>>>",
      "<?xml version=\"1.0\"?>",
      "<!DOCTYPE Error [<!ENTITY x \"boom\">]><Error><Code>&x;</Code></Error>",
      std::string("<Error><Code>\0</Code></Error>", 28),
      std::string(100'000, '<'),
      [] {  // deep nesting
        std::string deep;
        for (int i = 0; i < 100'000; ++i) deep += "<a>";
        return deep;
      }(),
      "\xff\xfe<\0E\0r\0r\0o\0r\0>\0",
  };
  for (const std::string& input : inputs) {
    SCOPED_TRACE(input.substr(0, 60));
    auto error = ParseError(input);
    // A DOCTYPE is skipped, never interpreted: its entity stays unknown.
    if (error) {
      EXPECT_EQ(error->code.find("boom"), std::string::npos);
      continue;
    }
    EXPECT_EQ(error.error().code, ErrorCode::kIo);
    EXPECT_LT(error.error().message.size(), 200u) << "the input is never echoed";
    EXPECT_FALSE(ParseListObjectsV2(input));
    EXPECT_FALSE(ParseListMultipartUploads(input));
    EXPECT_FALSE(ParseInitiateMultipartUpload(input));
  }
  auto malformed = ParseError("<Error><Code>x</Message></Error>");
  ASSERT_FALSE(malformed);
  EXPECT_NE(malformed.error().message.find("malformed XML"), std::string::npos)
      << malformed.error().message;
}

// ---------------------------------------------------------------------------------------- times

TEST(S3Xml, IsoTimes) {
  EXPECT_EQ(ParseIsoTime("1970-01-01T00:00:00Z").value(), 0);
  EXPECT_EQ(ParseIsoTime("2024-05-01T10:20:30.123Z").value(), 1714558830);
  EXPECT_EQ(ParseIsoTime("2024-02-29T23:59:59.000000Z").value(), 1709251199);
  for (std::string_view bad :
       {"", "2024-05-01", "2024-05-01T10:20:30", "2024-05-01T10:20:30+00:00",
        "2024-05-01 10:20:30Z", "2024-13-01T10:20:30Z", "2024-05-01T24:00:00Z",
        "2024-05-01T10:20:30.Z", "2024-05-01T10:20:30.1aZ", "+024-05-01T10:20:30Z",
        "1969-12-31T23:59:59Z", "2024-05-01T10:2:030Z"}) {
    EXPECT_FALSE(ParseIsoTime(bad)) << bad;
  }
}

// -------------------------------------------------------------------------------- request bodies

TEST(S3Xml, CompleteMultipartUploadBody) {
  const std::vector<std::string> etags = {"\"a54357aff0632cce46d942af68356b38\"",
                                          "\"0c78aef83f66abc1fa1e8477f296d394\"", "odd<&>"};
  EXPECT_EQ(CompleteMultipartUploadXml(etags),
            R"(<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
            "<Part><PartNumber>1</PartNumber><ETag>\"a54357aff0632cce46d942af68356b38\"</ETag>"
            "</Part><Part><PartNumber>2</PartNumber>"
            "<ETag>\"0c78aef83f66abc1fa1e8477f296d394\"</ETag></Part>"
            "<Part><PartNumber>3</PartNumber><ETag>odd&lt;&amp;&gt;</ETag></Part>"
            "</CompleteMultipartUpload>");
}

TEST(S3Xml, CreateBucketConfigurationBody) {
  EXPECT_EQ(CreateBucketConfigurationXml("eu-west-3"),
            R"(<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
            "<LocationConstraint>eu-west-3</LocationConstraint></CreateBucketConfiguration>");
}

}  // namespace
}  // namespace vmp3::s3
