#include "web/assets.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace vmp3::web {
namespace {

// web/ in the source tree, found from this file's own path (tests/web/assets_test.cpp).
std::filesystem::path WebDir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "web";
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Text(const Asset& asset) {
  return std::string(reinterpret_cast<const char*>(asset.bytes.data()), asset.bytes.size());
}

TEST(AssetsTest, EveryFileOfWebIsEmbeddedWithItsBytes) {
  std::set<std::string> on_disk;
  for (const auto& entry : std::filesystem::directory_iterator(WebDir())) {
    std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.front() == '.' || name.back() == '~') continue;
    on_disk.insert(name);
    const Asset* asset = FindAsset(name);
    ASSERT_NE(asset, nullptr) << name << " is not embedded: rebuild";
    EXPECT_EQ(Text(*asset), ReadFile(entry.path())) << name << " is stale: rebuild";
  }
  std::set<std::string> embedded;
  for (const Asset& asset : AllAssets()) embedded.insert(std::string(asset.path));
  EXPECT_EQ(embedded, on_disk);
  EXPECT_TRUE(on_disk.count("index.html"));
}

TEST(AssetsTest, EtagIsQuotedSha256PrefixOfTheBytes) {
  ASSERT_GE(sodium_init(), 0);
  for (const Asset& asset : AllAssets()) {
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, asset.bytes.data(), asset.bytes.size());
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    EXPECT_EQ(asset.etag, "\"" + std::string(hex, 32) + "\"") << asset.path;
  }
}

TEST(AssetsTest, ContentTypesFollowTheExtension) {
  EXPECT_EQ(FindAsset("index.html")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(FindAsset("app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindAsset("app.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(FindAsset("icon.svg")->content_type, "image/svg+xml; charset=utf-8");
}

TEST(AssetsTest, FindAssetWantsTheExactRelativePath) {
  EXPECT_NE(FindAsset("index.html"), nullptr);
  EXPECT_EQ(FindAsset(""), nullptr);
  EXPECT_EQ(FindAsset("/index.html"), nullptr);
  EXPECT_EQ(FindAsset("index"), nullptr);
  EXPECT_EQ(FindAsset("index.html/"), nullptr);
  EXPECT_EQ(FindAsset("zzz.js"), nullptr);
}

// A broken reference would only show as a blank page in a browser.
TEST(AssetsTest, EveryReferenceOfThePageResolves) {
  const std::regex page_ref(R"re((?:href|src)="/assets/([^"]+)")re");
  std::string html = Text(*FindAsset("index.html"));
  int refs = 0;
  for (std::sregex_iterator it(html.begin(), html.end(), page_ref), end; it != end; ++it, ++refs)
    EXPECT_NE(FindAsset((*it)[1].str()), nullptr) << "index.html refers to " << (*it)[1];
  EXPECT_GE(refs, 3);  // icon, style sheet, script
  const std::regex import_ref(R"re(from '\./([^']+)')re");
  for (const Asset& asset : AllAssets()) {
    if (!asset.path.ends_with(".js")) continue;
    std::string js = Text(asset);
    for (std::sregex_iterator it(js.begin(), js.end(), import_ref), end; it != end; ++it)
      EXPECT_NE(FindAsset((*it)[1].str()), nullptr) << asset.path << " imports " << (*it)[1];
  }
}

// The page must stay light: it is downloaded on every first visit, on phones too.
TEST(AssetsTest, PageStaysWithinItsSizeBudget) {
  size_t total = 0, script = 0;
  for (const Asset& asset : AllAssets()) {
    total += asset.bytes.size();
    if (asset.path.ends_with(".js")) script += asset.bytes.size();
  }
  EXPECT_LT(total, 100u * 1024);
  EXPECT_LT(script, 60u * 1024);
}

}  // namespace
}  // namespace vmp3::web
