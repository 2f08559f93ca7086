// The value types of metadata_store.hpp, the SQLite store's own details and the factory; the
// shared behaviour of stores is in metadata_store_contract_test.cpp.
#include "metadata/metadata_store.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/sqlite.hpp"
#include "metadata/metadata_store_factory.hpp"
#include "metadata/sqlite_metadata_store.hpp"
#include "support/fixtures.hpp"

namespace vmp3 {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

TEST(JobStatus, NamesRoundTrip) {
  for (JobStatus status : {JobStatus::kQueued, JobStatus::kConverting, JobStatus::kDone,
                           JobStatus::kFailed, JobStatus::kCancelled}) {
    EXPECT_EQ(ParseJobStatus(JobStatusName(status)), status);
  }
  EXPECT_EQ(JobStatusName(JobStatus::kConverting), "converting");
  EXPECT_EQ(ParseJobStatus("Queued"), std::nullopt);
  EXPECT_EQ(ParseJobStatus(""), std::nullopt);
}

TEST(JobStatus, TerminalStatuses) {
  EXPECT_FALSE(IsTerminal(JobStatus::kQueued));
  EXPECT_FALSE(IsTerminal(JobStatus::kConverting));
  EXPECT_TRUE(IsTerminal(JobStatus::kDone));
  EXPECT_TRUE(IsTerminal(JobStatus::kFailed));
  EXPECT_TRUE(IsTerminal(JobStatus::kCancelled));
}

TEST(JobJson, RoundTripsAndNamesTheStatus) {
  Job job;
  job.id = "j-1";
  job.owner_id = "u-1";
  job.status = JobStatus::kFailed;
  job.error_code = "no_audio_stream";
  job.input_size = 1ull << 40;
  job.progress = 0.3;
  job.expires_at = 1'700'000'000'000;
  nlohmann::json j = job;
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["input_size"], 1ull << 40);
  Job back = nlohmann::json::parse(j.dump()).get<Job>();
  EXPECT_EQ(nlohmann::json(back), j);
}

TEST(JobJson, MissingFieldsKeepDefaults) {
  Job job = nlohmann::json{{"id", "j-1"}, {"owner_id", "u-1"}}.get<Job>();
  EXPECT_EQ(job.id, "j-1");
  EXPECT_EQ(job.status, JobStatus::kQueued);
  EXPECT_EQ(job.expires_at, 0);
}

TEST(JobJson, RejectsAnUnknownStatus) {
  EXPECT_THROW((nlohmann::json{{"id", "j"}, {"status", "exploded"}}.get<Job>()),
               nlohmann::json::exception);
  EXPECT_THROW((nlohmann::json{{"id", "j"}, {"attempts", "three"}}.get<Job>()),
               nlohmann::json::exception);
}

TEST(UserJson, RoundTrips) {
  User user{.id = "u", .username = "Zoë", .email = "z@x", .password_hash = "h", .created_at = 7};
  EXPECT_EQ(nlohmann::json(nlohmann::json(user).get<User>()), nlohmann::json(user));
}

TEST(SqliteMetadataStore, RefusesADatabaseFromANewerVersion) {
  fs::path path = TempDir() / "future.db";
  {
    auto db = sqlite::Connection::Open(path, {});
    ASSERT_TRUE(db);
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version=99"));
  }
  auto store = SqliteMetadataStore::Open(path);
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().message.find("newer"), std::string::npos) << store.error().message;
}

TEST(SqliteMetadataStore, ReportsACorruptJobRecord) {
  fs::path path = TempDir() / "vmp3.db";
  {
    auto store = SqliteMetadataStore::Open(path);
    ASSERT_TRUE(store);
    Job job;
    job.id = "j-1";
    job.owner_id = "u-1";
    ASSERT_TRUE((*store)->CreateJob(job));
  }
  {
    auto db = sqlite::Connection::Open(path, {});
    ASSERT_TRUE(db);
    ASSERT_TRUE((*db)->Exec("UPDATE jobs SET doc = '{not json'"));
  }
  auto store = SqliteMetadataStore::Open(path);
  ASSERT_TRUE(store);
  auto job = (*store)->GetJob("j-1");
  ASSERT_FALSE(job);
  EXPECT_EQ(job.error().code, ErrorCode::kInternal);
}

TEST(SqliteMetadataStore, FailsCleanlyOnAFileThatIsNotADatabase) {
  fs::path path = TempDir() / "garbage.db";
  std::ofstream(path) << std::string(8192, 'x');
  auto store = SqliteMetadataStore::Open(path);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kIo);
}

TEST(MetadataStoreFactory, SqliteDefaultsToVmp3DbInTheDataDirectory) {
  fs::path data = TempDir() / "data";
  for (std::string_view url : {"", "sqlite"}) {
    auto store = MakeMetadataStore(url, data);
    ASSERT_TRUE(store) << store.error().message;
    EXPECT_EQ((*store)->Describe(), "sqlite://" + (data / "vmp3.db").string());
  }
  EXPECT_TRUE(fs::exists(data / "vmp3.db"));
}

TEST(MetadataStoreFactory, SqliteUrlWithAbsolutePath) {
  fs::path path = TempDir() / "meta" / "m.db";
  auto store = MakeMetadataStore("sqlite://" + path.string(), TempDir());
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_TRUE(fs::exists(path));
}

TEST(MetadataStoreFactory, RejectsOtherUrlsWithoutEchoingThem) {
  EXPECT_EQ(MakeMetadataStore("sqlite://x.db", TempDir()).error().code,
            ErrorCode::kInvalidArgument);
  auto mongo = MakeMetadataStore("mongodb://admin:p4ssw0rd@mongo:27017/vmp3", TempDir());
  ASSERT_FALSE(mongo);
  EXPECT_EQ(mongo.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(mongo.error().message.find("unsupported metadata URL"), std::string::npos);
  EXPECT_EQ(mongo.error().message.find("p4ssw0rd"), std::string::npos) << mongo.error().message;
}

}  // namespace
}  // namespace vmp3
