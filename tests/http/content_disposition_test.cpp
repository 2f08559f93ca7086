#include "http/content_disposition.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>

#include "fuzz/fuzz_check.hpp"

namespace vmp3::http {
namespace {

// The fuzz targets' oracle: checked independently of the code under test.
using fuzz::IsValidUtf8;

TEST(DropInvalidUtf8Test, KeepsValidText) {
  const std::string text = "plain \xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xB5";
  EXPECT_EQ(DropInvalidUtf8(text), text);
}

TEST(DropInvalidUtf8Test, DropsIllFormedSequences) {
  EXPECT_EQ(DropInvalidUtf8("a\xFF"
                            "b"),
            "ab");
  EXPECT_EQ(DropInvalidUtf8("a\xC3"), "a");  // truncated
  EXPECT_EQ(DropInvalidUtf8("\xC0\xAF"
                            "x"),
            "x");  // overlong '/'
  EXPECT_EQ(DropInvalidUtf8("\xE0\x80\xAF"
                            "x"),
            "x");  // overlong
  EXPECT_EQ(DropInvalidUtf8("\xED\xA0\x80"
                            "x"),
            "x");  // surrogate
  EXPECT_EQ(DropInvalidUtf8("\xF4\x90\x80\x80"
                            "x"),
            "x");  // above U+10FFFF
  EXPECT_EQ(DropInvalidUtf8("\x80\x80"
                            "x"),
            "x");  // lone continuations
  EXPECT_EQ(DropInvalidUtf8("\xE2\x82"
                            "\xE2\x82\xAC"),
            "\xE2\x82\xAC");
}

TEST(Mp3NameForTest, ReplacesTheExtension) {
  EXPECT_EQ(Mp3NameFor("My Clip.final.mp4"), "My Clip.final.mp3");
  EXPECT_EQ(Mp3NameFor("song.MP3"), "song.mp3");
  EXPECT_EQ(Mp3NameFor("movie.webm"), "movie.mp3");
  EXPECT_EQ(Mp3NameFor("archive.tar.gz"), "archive.tar.mp3");
}

TEST(Mp3NameForTest, AppendsWhenThereIsNoExtension) {
  EXPECT_EQ(Mp3NameFor("notes"), "notes.mp3");
  EXPECT_EQ(Mp3NameFor("version 1.2 final"), "version 1.2 final.mp3");  // ". 2 final" is no ext
  EXPECT_EQ(Mp3NameFor("clip.verylongext"), "clip.verylongext.mp3");
  EXPECT_EQ(Mp3NameFor("a.b-c"), "a.b-c.mp3");
}

TEST(Mp3NameForTest, StripsDirectories) {
  EXPECT_EQ(Mp3NameFor("../../x"), "x.mp3");
  EXPECT_EQ(Mp3NameFor("C:\\a\\b"), "b.mp3");
  EXPECT_EQ(Mp3NameFor("C:\\Users\\me\\clip.mov"), "clip.mp3");
  EXPECT_EQ(Mp3NameFor("/etc/passwd"), "passwd.mp3");
  EXPECT_EQ(Mp3NameFor("C:clip.mov"), "clip.mp3");
  EXPECT_EQ(Mp3NameFor("dir/"), "audio.mp3");
  EXPECT_EQ(Mp3NameFor(".."), "audio.mp3");
  EXPECT_EQ(Mp3NameFor("a/.."), "audio.mp3");
}

TEST(Mp3NameForTest, EmptyAndDotNames) {
  EXPECT_EQ(Mp3NameFor(""), "audio.mp3");
  EXPECT_EQ(Mp3NameFor("."), "audio.mp3");
  EXPECT_EQ(Mp3NameFor("   "), "audio.mp3");
  EXPECT_EQ(Mp3NameFor(".mp4"), "mp4.mp3");  // no hidden files
  EXPECT_EQ(Mp3NameFor(".hidden.mov"), "hidden.mp3");
  EXPECT_EQ(Mp3NameFor("clip.mp4. "), "clip.mp3");
}

TEST(Mp3NameForTest, Utf8NamesSurviveAndInvalidBytesAreDropped) {
  EXPECT_EQ(Mp3NameFor("\xC3\xA9t\xC3\xA9 \xF0\x9F\x8E\xB5.mkv"),
            "\xC3\xA9t\xC3\xA9 \xF0\x9F\x8E\xB5.mp3");
  EXPECT_EQ(Mp3NameFor("caf\xC3\xA9\xFF.avi"), "caf\xC3\xA9.mp3");
  EXPECT_EQ(Mp3NameFor("\xFF\xFE"), "audio.mp3");
}

TEST(Mp3NameForTest, DropsControlAndBidiCharacters) {
  EXPECT_EQ(Mp3NameFor("a\nb\tc\x7F.mp4"), "abc.mp3");
  EXPECT_EQ(Mp3NameFor("clip\xE2\x80\xAEvom.exe"), "clipvom.mp3");  // U+202E RLO
  EXPECT_EQ(Mp3NameFor("x\xC2\x85y.mp4"), "xy.mp3");                // U+0085 NEL
}

TEST(Mp3NameForTest, LongNamesAreCutOnACharacterBoundary) {
  std::string name;
  for (int i = 0; i < 150; ++i) name += "\xC3\xA9";  // 300 bytes of 'é'
  name += ".mp4";
  std::string result = Mp3NameFor("x" + name);  // odd offset: a naive cut would split one
  EXPECT_LE(result.size(), 204u);
  EXPECT_TRUE(IsValidUtf8(result)) << result;
  EXPECT_EQ(result.substr(result.size() - 4), ".mp3");
  EXPECT_EQ(result.substr(0, 3), "x\xC3\xA9");
}

TEST(Mp3NameForTest, RandomBytesAlwaysGiveAValidName) {
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    std::string input(rng() % 40, '\0');
    for (char& c : input) c = static_cast<char>(rng() & 0xFF);
    std::string name = Mp3NameFor(input);
    ASSERT_TRUE(IsValidUtf8(name));
    ASSERT_GE(name.size(), 5u);
    ASSERT_EQ(name.substr(name.size() - 4), ".mp3");
    ASSERT_EQ(name.find_first_of("/\\"), std::string::npos);
    for (char c : name) ASSERT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7F);
    ASSERT_NE(name.front(), '.');
  }
}

TEST(AttachmentDispositionTest, AsciiName) {
  EXPECT_EQ(AttachmentDisposition("clip.mp3"),
            "attachment; filename=\"clip.mp3\"; filename*=UTF-8''clip.mp3");
  EXPECT_EQ(AttachmentDisposition("My Clip (1).mp3"),
            "attachment; filename=\"My Clip (1).mp3\"; filename*=UTF-8''My%20Clip%20%281%29.mp3");
}

TEST(AttachmentDispositionTest, Utf8NameGetsAFallbackAndAnEncodedForm) {
  EXPECT_EQ(AttachmentDisposition("\xE2\x82\xAC rates.mp3"),
            "attachment; filename=\"_ rates.mp3\"; filename*=UTF-8''%E2%82%AC%20rates.mp3");
  EXPECT_EQ(AttachmentDisposition("\xC3\xA9t\xC3\xA9.mp3"),
            "attachment; filename=\"_t_.mp3\"; filename*=UTF-8''%C3%A9t%C3%A9.mp3");
}

TEST(AttachmentDispositionTest, DangerousCharactersAreNeutralised) {
  EXPECT_EQ(AttachmentDisposition("a\"b\\c/d%41\r\n.mp3"),
            "attachment; filename=\"a_b_c_d_41__.mp3\"; filename*=UTF-8''a%22b_c_d%2541__.mp3");
}

TEST(AttachmentDispositionTest, EmptyOrInvalidName) {
  EXPECT_EQ(AttachmentDisposition(""),
            "attachment; filename=\"download\"; filename*=UTF-8''download");
  EXPECT_EQ(AttachmentDisposition("\xFF\xFE"),
            "attachment; filename=\"download\"; filename*=UTF-8''download");
  EXPECT_EQ(AttachmentDisposition("a\xFF.mp3"),
            "attachment; filename=\"a.mp3\"; filename*=UTF-8''a.mp3");
}

TEST(AttachmentDispositionTest, OutputIsAlwaysASafeHeaderValue) {
  std::mt19937 rng(11);
  for (int i = 0; i < 5000; ++i) {
    std::string input(rng() % 30, '\0');
    for (char& c : input) c = static_cast<char>(rng() & 0xFF);
    std::string value = AttachmentDisposition(input);
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      ASSERT_TRUE(u >= 0x20 && u < 0x7F) << "byte " << int(u) << " in " << value;
    }
    // Exactly the two quotes around the fallback.
    ASSERT_EQ(std::count(value.begin(), value.end(), '"'), 2);
    ASSERT_EQ(value.find('\\'), std::string::npos);
  }
}

TEST(ParseContentDispositionTest, FormDataPart) {
  auto cd = ParseContentDisposition(R"(Form-Data; name="file"; filename="C:\clips\a \"b\".mp4")");
  ASSERT_TRUE(cd) << cd.error().message;
  EXPECT_EQ(cd->type, "form-data");
  EXPECT_EQ(cd->name, "file");
  EXPECT_EQ(cd->filename, R"(C:\clips\a "b".mp4)");

  auto field = ParseContentDisposition("form-data; name=quality");
  ASSERT_TRUE(field) << field.error().message;
  EXPECT_EQ(field->name, "quality");
  EXPECT_FALSE(field->filename.has_value());

  auto empty = ParseContentDisposition(R"(form-data; name="file"; filename="")");
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_EQ(empty->filename, "");  // a file input with no file chosen
}

TEST(ParseContentDispositionTest, ExtendedFilenameWins) {
  auto cd = ParseContentDisposition(
      "attachment; filename=\"EUR rates.pdf\"; filename*=UTF-8''%E2%82%AC%20rates.pdf");
  ASSERT_TRUE(cd) << cd.error().message;
  EXPECT_EQ(cd->type, "attachment");
  EXPECT_FALSE(cd->name.has_value());
  EXPECT_EQ(cd->filename, "\xE2\x82\xAC rates.pdf");
  auto latin1 = ParseContentDisposition("inline; FILENAME*=iso-8859-1'fr'caf%E9.avi");
  ASSERT_TRUE(latin1) << latin1.error().message;
  EXPECT_EQ(latin1->filename, "caf\xC3\xA9.avi");
}

TEST(ParseContentDispositionTest, ReadsBackWhatAttachmentDispositionWrites) {
  struct Case {
    const char* name;
    const char* read_back;  // path separators become '_'; an empty name becomes "download"
  };
  for (const Case& c :
       {Case{"clip.mp3", "clip.mp3"},
        Case{"\xC3\xA9t\xC3\xA9 \"1\".mp3", "\xC3\xA9t\xC3\xA9 \"1\".mp3"},
        Case{"a/b\\c.mp3", "a_b_c.mp3"}, Case{"100%.mp3", "100%.mp3"}, Case{"", "download"}}) {
    auto cd = ParseContentDisposition(AttachmentDisposition(c.name));
    ASSERT_TRUE(cd) << c.name << ": " << cd.error().message;
    EXPECT_EQ(cd->type, "attachment");
    EXPECT_EQ(cd->filename, c.read_back);
  }
}

TEST(ParseContentDispositionTest, RejectsMalformedValues) {
  struct Case {
    const char* value;
    const char* says;
  };
  for (const Case& c :
       {Case{"", "no disposition type"}, Case{"; name=a", "no disposition type"},
        Case{"form-data name=a", "expected ';'"}, Case{"form-data; name=\"a", "unterminated"},
        Case{"form-data; name=a; NAME=b", "duplicate parameter 'name'"},
        Case{"form-data; name=a; filename*=x", "filename*"},
        Case{"form-data; name=a; filename*=UTF-8''%zz", "filename*"}}) {
    auto cd = ParseContentDisposition(c.value);
    ASSERT_FALSE(cd) << c.value;
    EXPECT_EQ(cd.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(cd.error().message.find("malformed Content-Disposition header: "), std::string::npos);
    EXPECT_NE(cd.error().message.find(c.says), std::string::npos)
        << c.value << ": " << cd.error().message;
  }
}

}  // namespace
}  // namespace vmp3::http
