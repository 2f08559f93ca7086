#include "storage/s3_xml.hpp"

#include <fmt/format.h>

#include <charconv>
#include <ctime>
#include <pugixml.hpp>

namespace vmp3::s3 {
namespace {

constexpr const char* kS3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";

tl::unexpected<Error> Unreadable(std::string_view what, std::string_view why) {
  return MakeError(ErrorCode::kIo, fmt::format("S3 sent an unreadable {}: {}", what, why));
}

// Parses `xml` and checks that its root element is `root`. `what` names the answer in messages.
Result<pugi::xml_node> Load(pugi::xml_document& doc, std::string_view xml, const char* root,
                            std::string_view what) {
  // parse_default: elements, text, CDATA, entity and character references; no DOCTYPE
  // (skipped, never interpreted), no processing instructions or comments kept.
  pugi::xml_parse_result parsed =
      doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) {
    return Unreadable(
        what, fmt::format("malformed XML ({} at byte {})", parsed.description(), parsed.offset));
  }
  pugi::xml_node element = doc.document_element();
  if (std::string_view(element.name()) != root) {
    // The element name comes from the answer: shown only when short and plain.
    std::string_view name = element.name();
    bool plain = !name.empty() && name.size() <= 64 &&
                 name.find_first_not_of(
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789_-:.") == std::string_view::npos;
    return Unreadable(what, fmt::format("expected <{}>, found {}", root,
                                        plain ? fmt::format("<{}>", name) : "another document"));
  }
  return element;
}

std::string Text(pugi::xml_node parent, const char* name) {
  return parent.child(name).text().get();
}

bool IsTrue(pugi::xml_node parent, const char* name) { return Text(parent, name) == "true"; }

std::string Unquote(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

// A whole decimal string, nothing else.
template <typename T>
bool ParseNumber(std::string_view text, T& value) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

class StringWriter final : public pugi::xml_writer {
 public:
  void write(const void* data, size_t size) override {
    out.append(static_cast<const char*>(data), size);
  }
  std::string out;
};

std::string Serialize(const pugi::xml_document& doc) {
  StringWriter writer;
  doc.save(writer, "", pugi::format_raw | pugi::format_no_declaration, pugi::encoding_utf8);
  return std::move(writer.out);
}

}  // namespace

Result<ErrorBody> ParseError(std::string_view xml) {
  pugi::xml_document doc;
  auto root = Load(doc, xml, "Error", "error answer");
  if (!root) return tl::unexpected(root.error());
  return ErrorBody{.code = Text(*root, "Code"),
                   .message = Text(*root, "Message"),
                   .region = Text(*root, "Region")};
}

Result<ObjectsPage> ParseListObjectsV2(std::string_view xml) {
  constexpr std::string_view kWhat = "object listing";
  pugi::xml_document doc;
  auto root = Load(doc, xml, "ListBucketResult", kWhat);
  if (!root) return tl::unexpected(root.error());
  ObjectsPage page;
  page.truncated = IsTrue(*root, "IsTruncated");
  page.next_continuation_token = Text(*root, "NextContinuationToken");
  for (pugi::xml_node contents : root->children("Contents")) {
    ListedObject object;
    object.key = Text(contents, "Key");
    if (object.key.empty()) return Unreadable(kWhat, "an entry has no <Key>");
    if (!ParseNumber(std::string_view(contents.child("Size").text().get()), object.size)) {
      return Unreadable(kWhat, "an entry's <Size> is not a number");
    }
    auto modified = ParseIsoTime(contents.child("LastModified").text().get());
    if (!modified) return Unreadable(kWhat, "an entry's <LastModified> is not a time");
    object.modified_unix = *modified;
    object.etag = Unquote(Text(contents, "ETag"));
    page.objects.push_back(std::move(object));
  }
  return page;
}

Result<UploadsPage> ParseListMultipartUploads(std::string_view xml) {
  constexpr std::string_view kWhat = "multipart upload listing";
  pugi::xml_document doc;
  auto root = Load(doc, xml, "ListMultipartUploadsResult", kWhat);
  if (!root) return tl::unexpected(root.error());
  UploadsPage page;
  page.truncated = IsTrue(*root, "IsTruncated");
  page.next_key_marker = Text(*root, "NextKeyMarker");
  page.next_upload_id_marker = Text(*root, "NextUploadIdMarker");
  for (pugi::xml_node upload : root->children("Upload")) {
    ListedUpload listed;
    listed.key = Text(upload, "Key");
    listed.upload_id = Text(upload, "UploadId");
    if (listed.key.empty() || listed.upload_id.empty()) {
      return Unreadable(kWhat, "an upload has no <Key> or <UploadId>");
    }
    auto initiated = ParseIsoTime(upload.child("Initiated").text().get());
    listed.initiated_unix = initiated ? *initiated : -1;
    page.uploads.push_back(std::move(listed));
  }
  return page;
}

Result<std::string> ParseInitiateMultipartUpload(std::string_view xml) {
  constexpr std::string_view kWhat = "answer to CreateMultipartUpload";
  pugi::xml_document doc;
  auto root = Load(doc, xml, "InitiateMultipartUploadResult", kWhat);
  if (!root) return tl::unexpected(root.error());
  std::string upload_id = Text(*root, "UploadId");
  if (upload_id.empty()) return Unreadable(kWhat, "it has no <UploadId>");
  return upload_id;
}

Result<int64_t> ParseIsoTime(std::string_view text) {
  auto bad = [] { return MakeError(ErrorCode::kInvalidArgument, "not an ISO 8601 UTC time"); };
  // YYYY-MM-DDTHH:MM:SS[.fraction]Z
  if (text.size() < 20 || text.back() != 'Z') return bad();
  const std::string_view separators = "--T::";
  const size_t separator_at[] = {4, 7, 10, 13, 16};
  for (size_t i = 0; i < std::size(separator_at); ++i) {
    if (text[separator_at[i]] != separators[i]) return bad();
  }
  int fields[6];
  const size_t field_at[] = {0, 5, 8, 11, 14, 17};
  const size_t field_width[] = {4, 2, 2, 2, 2, 2};
  for (size_t i = 0; i < 6; ++i) {
    std::string_view digits = text.substr(field_at[i], field_width[i]);
    if (digits.find_first_not_of("0123456789") != std::string_view::npos ||
        !ParseNumber(digits, fields[i])) {
      return bad();
    }
  }
  std::string_view rest = text.substr(19, text.size() - 20);  // between seconds and 'Z'
  if (!rest.empty() && (rest.front() != '.' || rest.size() < 2 ||
                        rest.substr(1).find_first_not_of("0123456789") != std::string_view::npos)) {
    return bad();
  }
  auto [year, month, day, hour, minute, second] = fields;
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
      second > 60) {
    return bad();
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(::timegm(&tm));
}

std::string CompleteMultipartUploadXml(std::span<const std::string> part_etags) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("CompleteMultipartUpload");
  root.append_attribute("xmlns").set_value(kS3Namespace);
  for (size_t i = 0; i < part_etags.size(); ++i) {
    pugi::xml_node part = root.append_child("Part");
    part.append_child("PartNumber").text().set(static_cast<unsigned long long>(i + 1));
    part.append_child("ETag").text().set(part_etags[i].c_str());
  }
  return Serialize(doc);
}

std::string CreateBucketConfigurationXml(std::string_view region) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("CreateBucketConfiguration");
  root.append_attribute("xmlns").set_value(kS3Namespace);
  root.append_child("LocationConstraint").text().set(std::string(region).c_str());
  return Serialize(doc);
}

}  // namespace vmp3::s3
