// Entry point for the S3 XML answers (storage/s3_xml.hpp): every parser on every input, and each
// parsed answer written back as XML and parsed again.
#include <ctime>
#include <pugixml.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "fuzz_targets.hpp"
#include "storage/s3_xml.hpp"

namespace vmp3::fuzz {
namespace {

// Text as XML character data that any conforming parser reads back as exactly `s`: markup
// characters, and every byte up to and including space, as character references (a raw CR
// would come back as LF, and text of spaces alone would be dropped as formatting).
std::string XmlText(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (u <= 0x20) {
      out += "&#" + std::to_string(u) + ";";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Element(std::string_view name, std::string_view text) {
  return "<" + std::string(name) + ">" + XmlText(text) + "</" + std::string(name) + ">";
}

std::string IsoTime(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  FUZZ_CHECK(gmtime_r(&t, &tm) != nullptr, std::to_string(unix_seconds));
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return text;
}

// An error that says what is wrong, in the documented code, without dumping the answer: the
// parsers show an element name only when it is short and plain.
void CheckError(const Error& error, ErrorCode expected) {
  FUZZ_CHECK(error.code == expected, error.message);
  FUZZ_CHECK(!error.message.empty() && error.message.size() <= 256, error.message);
  for (char c : error.message) {
    const auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u >= 0x20 && u < 0x7F, error.message);
  }
}

void CheckErrorBody(std::string_view xml) {
  auto body = s3::ParseError(xml);
  if (!body) return CheckError(body.error(), ErrorCode::kIo);
  const std::string rebuilt = "<Error>" + Element("Code", body->code) +
                              Element("Message", body->message) + Element("Region", body->region) +
                              "</Error>";
  auto again = s3::ParseError(rebuilt);
  FUZZ_CHECK(again.has_value(), rebuilt);
  FUZZ_CHECK(
      again->code == body->code && again->message == body->message && again->region == body->region,
      rebuilt);
}

void CheckObjectsPage(std::string_view xml) {
  auto page = s3::ParseListObjectsV2(xml);
  if (!page) return CheckError(page.error(), ErrorCode::kIo);
  std::string rebuilt = "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  rebuilt += Element("IsTruncated", page->truncated ? "true" : "false");
  rebuilt += Element("NextContinuationToken", page->next_continuation_token);
  for (const s3::ListedObject& object : page->objects) {
    FUZZ_CHECK(!object.key.empty(), "an object without a key");
    FUZZ_CHECK(object.modified_unix >= 0, std::to_string(object.modified_unix));
    rebuilt += "<Contents>" + Element("Key", object.key) +
               Element("LastModified", IsoTime(object.modified_unix)) +
               Element("ETag", "\"" + object.etag + "\"") +
               Element("Size", std::to_string(object.size)) + "</Contents>";
  }
  rebuilt += "</ListBucketResult>";
  auto again = s3::ParseListObjectsV2(rebuilt);
  FUZZ_CHECK(again.has_value(), rebuilt + ": " + again.error().message);
  FUZZ_CHECK(again->truncated == page->truncated &&
                 again->next_continuation_token == page->next_continuation_token &&
                 again->objects.size() == page->objects.size(),
             rebuilt);
  for (size_t i = 0; i < page->objects.size(); ++i) {
    const s3::ListedObject& a = page->objects[i];
    const s3::ListedObject& b = again->objects[i];
    FUZZ_CHECK(a.key == b.key && a.size == b.size && a.etag == b.etag &&
                   a.modified_unix == b.modified_unix,
               rebuilt);
  }
}

void CheckUploadsPage(std::string_view xml) {
  auto page = s3::ParseListMultipartUploads(xml);
  if (!page) return CheckError(page.error(), ErrorCode::kIo);
  std::string rebuilt = "<ListMultipartUploadsResult>";
  rebuilt += Element("IsTruncated", page->truncated ? "true" : "false");
  rebuilt += Element("NextKeyMarker", page->next_key_marker);
  rebuilt += Element("NextUploadIdMarker", page->next_upload_id_marker);
  for (const s3::ListedUpload& upload : page->uploads) {
    FUZZ_CHECK(!upload.key.empty() && !upload.upload_id.empty(), "an upload without key or id");
    FUZZ_CHECK(upload.initiated_unix >= -1, std::to_string(upload.initiated_unix));
    rebuilt += "<Upload>" + Element("Key", upload.key) + Element("UploadId", upload.upload_id);
    if (upload.initiated_unix >= 0) rebuilt += Element("Initiated", IsoTime(upload.initiated_unix));
    rebuilt += "</Upload>";
  }
  rebuilt += "</ListMultipartUploadsResult>";
  auto again = s3::ParseListMultipartUploads(rebuilt);
  FUZZ_CHECK(again.has_value(), rebuilt + ": " + again.error().message);
  FUZZ_CHECK(again->truncated == page->truncated &&
                 again->next_key_marker == page->next_key_marker &&
                 again->next_upload_id_marker == page->next_upload_id_marker &&
                 again->uploads.size() == page->uploads.size(),
             rebuilt);
  for (size_t i = 0; i < page->uploads.size(); ++i) {
    const s3::ListedUpload& a = page->uploads[i];
    const s3::ListedUpload& b = again->uploads[i];
    FUZZ_CHECK(a.key == b.key && a.upload_id == b.upload_id && a.initiated_unix == b.initiated_unix,
               rebuilt);
  }
}

void CheckInitiate(std::string_view xml) {
  auto upload_id = s3::ParseInitiateMultipartUpload(xml);
  if (!upload_id) return CheckError(upload_id.error(), ErrorCode::kIo);
  FUZZ_CHECK(!upload_id->empty(), "an empty upload id");
  const std::string rebuilt = "<InitiateMultipartUploadResult>" + Element("Bucket", "b") +
                              Element("UploadId", *upload_id) + "</InitiateMultipartUploadResult>";
  auto again = s3::ParseInitiateMultipartUpload(rebuilt);
  FUZZ_CHECK(again.has_value() && *again == *upload_id, rebuilt);
}

void CheckIsoTime(std::string_view text) {
  auto time = s3::ParseIsoTime(text);
  if (!time) return CheckError(time.error(), ErrorCode::kInvalidArgument);
  FUZZ_CHECK(*time >= 0, std::string(text));
  auto again = s3::ParseIsoTime(IsoTime(*time));
  FUZZ_CHECK(again.has_value() && *again == *time, std::string(text) + " vs " + IsoTime(*time));
}

// Whether `s` comes back unchanged from XML character data as pugixml reads it (like any XML
// reader): no NUL (C strings), no CR (end-of-line normalisation), not whitespace alone (dropped).
bool SurvivesXmlText(std::string_view s) {
  if (s.find_first_of(std::string_view("\0\r", 2)) != std::string_view::npos) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) > 0x20) return true;
  }
  return s.empty();
}

// The request bodies we build are XML whose text reads back as what was put in.
void CheckBuilders(std::string_view input) {
  std::vector<std::string> etags;
  for (size_t start = 0; etags.size() < 4;) {
    const size_t cut = input.find('\n', start);
    etags.emplace_back(input.substr(start, cut == std::string_view::npos ? cut : cut - start));
    if (cut == std::string_view::npos) break;
    start = cut + 1;
  }
  const std::string body = s3::CompleteMultipartUploadXml(etags);
  pugi::xml_document doc;
  FUZZ_CHECK(doc.load_buffer(body.data(), body.size()), body);
  pugi::xml_node root = doc.child("CompleteMultipartUpload");
  FUZZ_CHECK(root, body);
  size_t i = 0;
  for (pugi::xml_node part : root.children("Part")) {
    FUZZ_CHECK(i < etags.size(), body);
    FUZZ_CHECK(part.child("PartNumber").text().as_ullong() == i + 1, body);
    if (SurvivesXmlText(etags[i])) FUZZ_CHECK(part.child("ETag").text().get() == etags[i], body);
    ++i;
  }
  FUZZ_CHECK(i == etags.size(), body);

  const std::string configuration = s3::CreateBucketConfigurationXml(etags.front());
  pugi::xml_document config_doc;
  FUZZ_CHECK(config_doc.load_buffer(configuration.data(), configuration.size()), configuration);
  const char* region =
      config_doc.child("CreateBucketConfiguration").child("LocationConstraint").text().get();
  if (SurvivesXmlText(etags.front())) FUZZ_CHECK(region == etags.front(), configuration);
}

}  // namespace

int FuzzS3Xml(const uint8_t* data, size_t size) {
  const std::string_view xml = AsText(data, size);
  // Every parser sees every input: one answer is malformed input for the others.
  CheckErrorBody(xml);
  CheckObjectsPage(xml);
  CheckUploadsPage(xml);
  CheckInitiate(xml);
  CheckIsoTime(xml);
  CheckBuilders(xml);
  return 0;
}

}  // namespace vmp3::fuzz
