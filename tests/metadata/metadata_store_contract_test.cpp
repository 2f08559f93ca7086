// The behaviour every MetadataStore and JobEventBus must have, run against each backend in
// metadata_store_contract.hpp.
#include "metadata/metadata_store_contract.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace vmp3::test {
namespace {

using namespace std::chrono_literals;

Job MakeJob(std::string id, std::string owner, int64_t created_at) {
  Job job;
  job.id = std::move(id);
  job.owner_id = std::move(owner);
  job.status = JobStatus::kQueued;
  job.progress = 0;
  job.input_name = "Café – 東京 \"clip\".mp4";
  job.input_key = "inputs/" + job.id;
  job.input_size = 12'345'678'901;
  job.input_duration = 183.25;
  job.options_json = R"({"bitrate_kbps":192,"mode":"cbr"})";
  job.created_at = created_at;
  job.updated_at = created_at;
  return job;
}

User MakeUser(std::string id, std::string username) {
  return User{.id = std::move(id),
              .username = std::move(username),
              .email = "someone@example.com",
              .password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA",
              .created_at = 1'700'000'000'123};
}

std::vector<std::string> Ids(const std::vector<Job>& jobs) {
  std::vector<std::string> ids;
  for (const Job& job : jobs) ids.push_back(job.id);
  return ids;
}

class MetadataStoreContract : public ::testing::TestWithParam<MetadataStoreBackend> {
 protected:
  void SetUp() override {
    const MetadataStoreBackend& backend = GetParam();
    if (!backend.required_env.empty() && std::getenv(backend.required_env.c_str()) == nullptr) {
      GTEST_SKIP() << "set " << backend.required_env << " to test the " << backend.name
                   << " metadata store";
    }
    harness_ = backend.make();
    auto store = harness_->Open();
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
  }

  void Create(const Job& job) {
    auto created = store_->CreateJob(job);
    ASSERT_TRUE(created) << created.error().message;
  }

  Job Get(std::string_view id) {
    auto job = store_->GetJob(id);
    EXPECT_TRUE(job) << job.error().message;
    return job ? *job : Job{};
  }

  // Every job of owner, following cursors with pages of `limit`; after each page, between_pages
  // may change the store.
  std::vector<std::string> ListAll(std::string_view owner, int limit,
                                   const std::function<void(int page)>& between_pages = {}) {
    std::vector<std::string> ids;
    std::string cursor;
    for (int page = 0; page < 1000; ++page) {
      auto listed = store_->ListJobs(owner, limit, cursor);
      EXPECT_TRUE(listed) << listed.error().message;
      if (!listed) break;
      EXPECT_LE(listed->jobs.size(), static_cast<size_t>(limit));
      for (const Job& job : listed->jobs) ids.push_back(job.id);
      if (listed->next_cursor.empty()) break;
      cursor = listed->next_cursor;
      if (between_pages) between_pages(page);
    }
    return ids;
  }

  std::unique_ptr<MetadataStoreHarness> harness_;
  std::unique_ptr<MetadataStore> store_;
};

// ---- users ----

TEST_P(MetadataStoreContract, UsersRoundTrip) {
  User alice = MakeUser("u-1", "Alice");
  ASSERT_TRUE(store_->CreateUser(alice));
  auto got = store_->GetUser("u-1");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(nlohmann::json(*got), nlohmann::json(alice));
}

TEST_P(MetadataStoreContract, UsernamesIgnoreCase) {
  ASSERT_TRUE(store_->CreateUser(MakeUser("u-1", "Alice")));
  for (std::string_view name : {"Alice", "alice", "ALICE", "aLiCe"}) {
    auto found = store_->FindUserByName(name);
    ASSERT_TRUE(found) << name << ": " << found.error().message;
    EXPECT_EQ(found->id, "u-1");
    EXPECT_EQ(found->username, "Alice") << "stored as given";
  }
  auto taken = store_->CreateUser(MakeUser("u-2", "aLICE"));
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(store_->GetUser("u-2").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store_->CreateUser(MakeUser("u-3", "Alicia")));
}

TEST_P(MetadataStoreContract, UserIdsAreUnique) {
  ASSERT_TRUE(store_->CreateUser(MakeUser("u-1", "alice")));
  auto again = store_->CreateUser(MakeUser("u-1", "bob"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(store_->FindUserByName("bob").error().code, ErrorCode::kNotFound);
}

TEST_P(MetadataStoreContract, ConcurrentSignupsForOneNameLetOneWin) {
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto result = store_->CreateUser(MakeUser("u-" + std::to_string(t), t % 2 ? "Eve" : "eve"));
      if (result) {
        ++created;
      } else {
        EXPECT_EQ(result.error().code, ErrorCode::kAlreadyExists);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
}

TEST_P(MetadataStoreContract, MissingUsersAreNotFound) {
  EXPECT_EQ(store_->GetUser("nobody").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->FindUserByName("nobody").error().code, ErrorCode::kNotFound);
}

// ---- jobs ----

TEST_P(MetadataStoreContract, JobsRoundTripEveryField) {
  Job job = MakeJob("j-1", "u-1", 1'700'000'000'000);
  job.status = JobStatus::kDone;
  job.progress = 1.0 / 3;  // not exactly representable in decimal
  job.error_code = "corrupt_media";
  job.error_message = "the input is damaged near 01:02";
  job.output_key = "outputs/j-1.mp3";
  job.output_size = 4'000'000'123;
  job.output_duration = 183.2501;
  job.output_bitrate_kbps = 320;
  job.attempts = 2;
  job.started_at = 1'700'000'001'000;
  job.finished_at = 1'700'000'002'000;
  job.expires_at = 1'700'086'400'000;
  Create(job);
  EXPECT_EQ(nlohmann::json(Get("j-1")), nlohmann::json(job));
}

TEST_P(MetadataStoreContract, JobIdsAreUnique) {
  Create(MakeJob("j-1", "u-1", 1));
  auto again = store_->CreateJob(MakeJob("j-1", "u-2", 2));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(Get("j-1").owner_id, "u-1");
}

TEST_P(MetadataStoreContract, MissingJobsAreNotFound) {
  EXPECT_EQ(store_->GetJob("nope").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->DeleteJob("nope").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->SetProgress("nope", 0.5).error().code, ErrorCode::kNotFound);
  bool called = false;
  auto updated = store_->UpdateJob("nope", [&](Job&) -> Status {
    called = true;
    return {};
  });
  ASSERT_FALSE(updated);
  EXPECT_EQ(updated.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(called);
}

TEST_P(MetadataStoreContract, DeleteJob) {
  Create(MakeJob("j-1", "u-1", 1));
  Create(MakeJob("j-2", "u-1", 2));
  ASSERT_TRUE(store_->DeleteJob("j-1"));
  EXPECT_EQ(store_->GetJob("j-1").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(ListAll("u-1", 10), std::vector<std::string>{"j-2"});
}

TEST_P(MetadataStoreContract, StoresNamesThatAreNotUtf8) {
  Job job = MakeJob("j-1", "u-1", 1);
  job.input_name = "bad \xff\xfe name.mp4";
  ASSERT_TRUE(store_->CreateJob(job));
  auto got = store_->GetJob("j-1");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->input_key, job.input_key);
  EXPECT_NE(got->input_name.find("name.mp4"), std::string::npos);
}

TEST_P(MetadataStoreContract, UpdateJobWritesWhatTheMutatorDid) {
  Create(MakeJob("j-1", "u-1", 1));
  auto updated = store_->UpdateJob("j-1", [](Job& job) -> Status {
    job.status = JobStatus::kConverting;
    job.started_at = 42;
    job.attempts += 1;
    return {};
  });
  ASSERT_TRUE(updated) << updated.error().message;
  EXPECT_EQ(updated->status, JobStatus::kConverting);
  EXPECT_EQ(updated->attempts, 1);
  Job stored = Get("j-1");
  EXPECT_EQ(nlohmann::json(stored), nlohmann::json(*updated));
}

TEST_P(MetadataStoreContract, RefusedUpdateChangesNothing) {
  Job original = MakeJob("j-1", "u-1", 1);
  original.status = JobStatus::kCancelled;
  Create(original);
  auto refused = store_->UpdateJob("j-1", [](Job& job) -> Status {
    job.progress = 1;  // edits made before refusing must not be written
    job.output_key = "outputs/j-1.mp3";
    if (IsTerminal(job.status)) return MakeError(ErrorCode::kConflict, "job is finished");
    job.status = JobStatus::kDone;
    return {};
  });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_EQ(refused.error().message, "job is finished");
  EXPECT_EQ(nlohmann::json(Get("j-1")), nlohmann::json(original));
}

TEST_P(MetadataStoreContract, UpdateJobCannotChangeIdOrOwner) {
  Job original = MakeJob("j-1", "u-1", 1);
  Create(original);
  auto moved = store_->UpdateJob("j-1", [](Job& job) -> Status {
    job.owner_id = "u-2";
    return {};
  });
  ASSERT_FALSE(moved);
  auto renamed = store_->UpdateJob("j-1", [](Job& job) -> Status {
    job.id = "j-2";
    return {};
  });
  ASSERT_FALSE(renamed);
  EXPECT_EQ(nlohmann::json(Get("j-1")), nlohmann::json(original));
  EXPECT_EQ(store_->GetJob("j-2").error().code, ErrorCode::kNotFound);
}

TEST_P(MetadataStoreContract, ConcurrentUpdatesAreAtomic) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 100;
  Create(MakeJob("j-1", "u-1", 1));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        auto updated = store_->UpdateJob("j-1", [](Job& job) -> Status {
          job.attempts += 1;
          job.output_size += 10;
          return {};
        });
        ASSERT_TRUE(updated) << updated.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  Job job = Get("j-1");
  EXPECT_EQ(job.attempts, kThreads * kIncrements);
  EXPECT_EQ(job.output_size, 10u * kThreads * kIncrements);
}

TEST_P(MetadataStoreContract, ProgressUpdatesOnlyUnfinishedJobs) {
  Job queued = MakeJob("queued", "u-1", 1);
  Job converting = MakeJob("converting", "u-1", 2);
  converting.status = JobStatus::kConverting;
  Create(queued);
  Create(converting);
  ASSERT_TRUE(store_->SetProgress("queued", 0.125));
  ASSERT_TRUE(store_->SetProgress("converting", 0.75));
  EXPECT_EQ(Get("queued").progress, 0.125);
  EXPECT_EQ(Get("converting").progress, 0.75);
  EXPECT_EQ(Get("converting").status, JobStatus::kConverting);

  for (JobStatus terminal : {JobStatus::kDone, JobStatus::kFailed, JobStatus::kCancelled}) {
    Job job = MakeJob(std::string(JobStatusName(terminal)), "u-1", 3);
    job.status = terminal;
    job.progress = terminal == JobStatus::kDone ? 1 : 0.5;
    Create(job);
    EXPECT_TRUE(store_->SetProgress(job.id, 0.9)) << "ignored, not an error";
    EXPECT_EQ(nlohmann::json(Get(job.id)), nlohmann::json(job));
  }
}

TEST_P(MetadataStoreContract, ProgressIsClampedAndMustBeANumber) {
  Create(MakeJob("j-1", "u-1", 1));
  ASSERT_TRUE(store_->SetProgress("j-1", 1.5));
  EXPECT_EQ(Get("j-1").progress, 1.0);
  ASSERT_TRUE(store_->SetProgress("j-1", -2));
  EXPECT_EQ(Get("j-1").progress, 0.0);
  auto nan = store_->SetProgress("j-1", std::numeric_limits<double>::quiet_NaN());
  ASSERT_FALSE(nan);
  EXPECT_EQ(nan.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(MetadataStoreContract, ListsNewestFirstAcrossPages) {
  // created_at has ties (two jobs per millisecond); id breaks them.
  std::vector<std::string> expected;
  for (int i = 0; i < 23; ++i) {
    Create(MakeJob(fmt::format("j-{:02}", i), "u-1", 1000 + i / 2));
  }
  for (int i = 22; i >= 0; --i) expected.push_back(fmt::format("j-{:02}", i));
  for (int limit : {1, 4, 5, 23, 100}) {
    SCOPED_TRACE(limit);
    EXPECT_EQ(ListAll("u-1", limit), expected);
  }
  auto first = store_->ListJobs("u-1", 23, "");
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->next_cursor.empty()) << "no cursor when nothing follows";
}

TEST_P(MetadataStoreContract, PaginationIsStableUnderInserts) {
  std::set<std::string> existing;
  for (int i = 0; i < 20; ++i) {
    std::string id = fmt::format("old-{:02}", i);
    Create(MakeJob(id, "u-1", 1000 + i));
    existing.insert(id);
  }
  int added = 0;
  std::vector<std::string> listed = ListAll("u-1", 3, [&](int page) {
    // Newer jobs arrive while the user pages, and one older job is deleted.
    Create(MakeJob(fmt::format("new-{:02}", added++), "u-1", 5000 + page));
    if (page == 2) {
      ASSERT_TRUE(store_->DeleteJob("old-00"));
      existing.erase("old-00");
    }
  });
  std::multiset<std::string> seen(listed.begin(), listed.end());
  for (const std::string& id : existing) EXPECT_EQ(seen.count(id), 1u) << id;
  EXPECT_EQ(seen.count("old-00"), 0u);
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()).size(), listed.size())
      << "a job was listed twice";
  EXPECT_GT(added, 3);
}

TEST_P(MetadataStoreContract, ListsOnlyTheOwnersJobs) {
  for (int i = 0; i < 10; ++i) {
    Create(MakeJob(fmt::format("a-{}", i), "alice", 100 + i));
    Create(MakeJob(fmt::format("b-{}", i), "bob", 100 + i));
  }
  for (const std::string& id : ListAll("alice", 3)) EXPECT_EQ(id.substr(0, 2), "a-");
  EXPECT_EQ(ListAll("alice", 3).size(), 10u);
  EXPECT_EQ(ListAll("bob", 4).size(), 10u);
  EXPECT_TRUE(ListAll("carol", 4).empty());
}

TEST_P(MetadataStoreContract, ListJobsRejectsBadArguments) {
  Create(MakeJob("j-1", "u-1", 1));
  EXPECT_EQ(store_->ListJobs("u-1", 0, "").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->ListJobs("u-1", 10, "garbage").error().code, ErrorCode::kInvalidArgument);
}

TEST_P(MetadataStoreContract, ListExpiredSoonestFirst) {
  const int64_t expiries[] = {0, 300, 100, 200, 5000, 250};
  for (size_t i = 0; i < std::size(expiries); ++i) {
    Job job = MakeJob(fmt::format("j-{}", i), "u-1", 1);
    job.expires_at = expiries[i];
    Create(job);
  }
  auto expired = store_->ListExpired(250, 10);
  ASSERT_TRUE(expired) << expired.error().message;
  EXPECT_EQ(Ids(*expired), (std::vector<std::string>{"j-2", "j-3", "j-5"}));
  auto limited = store_->ListExpired(250, 2);
  ASSERT_TRUE(limited);
  EXPECT_EQ(Ids(*limited), (std::vector<std::string>{"j-2", "j-3"}));
  EXPECT_TRUE(store_->ListExpired(99, 10)->empty());
}

TEST_P(MetadataStoreContract, UsageFollowsEveryWrite) {
  auto zero = store_->GetUsage("u-1");
  ASSERT_TRUE(zero) << zero.error().message;
  EXPECT_EQ(zero->active_jobs, 0u);
  EXPECT_EQ(zero->stored_bytes, 0u);

  Job a = MakeJob("j-1", "u-1", 1);
  a.input_key = "inputs/j-1";
  a.input_size = 1000;
  Create(a);
  Job b = MakeJob("j-2", "u-1", 2);
  b.input_key = "inputs/j-2";
  b.input_size = 500;
  Create(b);
  Create(MakeJob("j-3", "u-2", 3));  // someone else's
  auto both = store_->GetUsage("u-1");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->active_jobs, 2u);
  EXPECT_EQ(both->stored_bytes, 1500u);

  // Done with an output, then the input removed and forgotten.
  ASSERT_TRUE(store_->UpdateJob("j-1", [](Job& j) -> Status {
    j.status = JobStatus::kDone;
    j.output_key = "outputs/j-1.mp3";
    j.output_size = 300;
    return {};
  }));
  EXPECT_EQ(store_->GetUsage("u-1")->active_jobs, 1u);
  EXPECT_EQ(store_->GetUsage("u-1")->stored_bytes, 1800u);
  ASSERT_TRUE(store_->UpdateJob("j-1", [](Job& j) -> Status {
    j.input_key.clear();
    return {};
  }));
  EXPECT_EQ(store_->GetUsage("u-1")->stored_bytes, 800u);
  // A failure that refuses the update changes nothing.
  EXPECT_FALSE(store_->UpdateJob("j-2", [](Job& j) -> Status {
    j.status = JobStatus::kFailed;
    return MakeError(ErrorCode::kConflict, "no");
  }));
  EXPECT_EQ(store_->GetUsage("u-1")->active_jobs, 1u);
  // Deleting gives everything back.
  ASSERT_TRUE(store_->DeleteJob("j-1"));
  ASSERT_TRUE(store_->DeleteJob("j-2"));
  auto after = store_->GetUsage("u-1");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->active_jobs, 0u);
  EXPECT_EQ(after->stored_bytes, 0u);
  EXPECT_EQ(store_->GetUsage("u-2")->active_jobs, 1u);
}

TEST_P(MetadataStoreContract, CreateJobWithinRefusesPastALimitAndWritesNothing) {
  const UsageLimits two_jobs{.max_active_jobs = 2};
  ASSERT_TRUE(store_->CreateJobWithin(MakeJob("j-1", "u-1", 1), two_jobs));
  ASSERT_TRUE(store_->CreateJobWithin(MakeJob("j-2", "u-1", 2), two_jobs));
  Status third = store_->CreateJobWithin(MakeJob("j-3", "u-1", 3), two_jobs);
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, ErrorCode::kRateLimited);
  EXPECT_GT(third.error().retry_after_seconds, 0);
  EXPECT_EQ(store_->GetJob("j-3").error().code, ErrorCode::kNotFound);
  // Another user is not affected; an ended job frees a place.
  EXPECT_TRUE(store_->CreateJobWithin(MakeJob("j-4", "u-2", 4), two_jobs));
  ASSERT_TRUE(store_->UpdateJob("j-1", [](Job& j) -> Status {
    j.status = JobStatus::kFailed;
    return {};
  }));
  EXPECT_TRUE(store_->CreateJobWithin(MakeJob("j-3", "u-1", 3), two_jobs));

  const UsageLimits quota{.max_stored_bytes = 1000};
  Job big = MakeJob("j-5", "u-3", 5);
  big.input_key = "inputs/j-5";
  big.input_size = 900;
  ASSERT_TRUE(store_->CreateJobWithin(big, quota));
  Job more = MakeJob("j-6", "u-3", 6);
  more.input_key = "inputs/j-6";
  more.input_size = 101;
  Status over = store_->CreateJobWithin(more, quota);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, ErrorCode::kQuotaExceeded);
  EXPECT_EQ(store_->GetUsage("u-3")->stored_bytes, 900u);
  more.input_size = 100;
  EXPECT_TRUE(store_->CreateJobWithin(more, quota));
}

TEST_P(MetadataStoreContract, ConcurrentCreatesNeverPassALimit) {
  const UsageLimits five{.max_active_jobs = 5};
  std::atomic<int> created{0};
  std::atomic<int> limited{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 4; ++i) {
        Status s = store_->CreateJobWithin(MakeJob(fmt::format("j-{}-{}", t, i), "u-1", 1), five);
        if (s) {
          ++created;
        } else if (s.error().code == ErrorCode::kRateLimited) {
          ++limited;
        } else {
          ADD_FAILURE() << s.error().message;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created, 5);
  EXPECT_EQ(limited, 27);
  EXPECT_EQ(store_->GetUsage("u-1")->active_jobs, 5u);
}

TEST_P(MetadataStoreContract, CountByStatusListsEveryStatus) {
  auto empty = store_->CountByStatus();
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_EQ(empty->size(), 5u);
  for (const auto& [status, count] : *empty) EXPECT_EQ(count, 0u) << JobStatusName(status);

  const JobStatus statuses[] = {JobStatus::kQueued, JobStatus::kQueued, JobStatus::kDone,
                                JobStatus::kFailed, JobStatus::kFailed, JobStatus::kFailed};
  for (size_t i = 0; i < std::size(statuses); ++i) {
    Job job = MakeJob(fmt::format("j-{}", i), "u-1", 1);
    job.status = statuses[i];
    Create(job);
  }
  auto counts = store_->CountByStatus();
  ASSERT_TRUE(counts);
  EXPECT_EQ(*counts, (std::map<JobStatus, uint64_t>{{JobStatus::kQueued, 2},
                                                    {JobStatus::kConverting, 0},
                                                    {JobStatus::kDone, 1},
                                                    {JobStatus::kFailed, 3},
                                                    {JobStatus::kCancelled, 0}}));
}

TEST_P(MetadataStoreContract, UpdatesAreVisibleToEveryQuery) {
  Create(MakeJob("j-1", "u-1", 10));
  Create(MakeJob("j-2", "u-1", 20));
  ASSERT_TRUE(store_->UpdateJob("j-1", [](Job& job) -> Status {
    job.status = JobStatus::kDone;
    job.expires_at = 500;
    job.created_at = 30;  // now the newest
    return {};
  }));
  EXPECT_EQ(store_->CountByStatus()->at(JobStatus::kQueued), 1u);
  EXPECT_EQ(Ids(store_->ListExpired(1000, 10).value()), std::vector<std::string>{"j-1"});
  EXPECT_EQ(store_->CountByStatus()->at(JobStatus::kDone), 1u);
  EXPECT_EQ(ListAll("u-1", 1), (std::vector<std::string>{"j-1", "j-2"}));
  ASSERT_TRUE(store_->DeleteJob("j-1"));
  EXPECT_TRUE(store_->ListExpired(1000, 10)->empty());
  EXPECT_EQ(store_->CountByStatus()->at(JobStatus::kDone), 0u);
}

TEST_P(MetadataStoreContract, DataSurvivesReopen) {
  ASSERT_TRUE(store_->CreateUser(MakeUser("u-1", "Alice")));
  Create(MakeJob("j-1", "u-1", 1));
  ASSERT_TRUE(store_->SetProgress("j-1", 0.5));
  store_.reset();
  auto reopened = harness_->Open();
  ASSERT_TRUE(reopened) << reopened.error().message;
  store_ = std::move(*reopened);
  EXPECT_EQ(store_->FindUserByName("alice")->id, "u-1");
  EXPECT_EQ(Get("j-1").progress, 0.5);
}

TEST_P(MetadataStoreContract, TwoHandlesShareTheData) {
  auto other = harness_->Open();
  ASSERT_TRUE(other) << other.error().message;
  Create(MakeJob("j-1", "u-1", 1));
  ASSERT_TRUE((*other)->SetProgress("j-1", 0.25));
  EXPECT_EQ(Get("j-1").progress, 0.25);
  ASSERT_TRUE((*other)->CreateUser(MakeUser("u-1", "bob")));
  EXPECT_EQ(store_->CreateUser(MakeUser("u-2", "BOB")).error().code, ErrorCode::kAlreadyExists);
}

TEST_P(MetadataStoreContract, PingAndDescribe) {
  EXPECT_TRUE(store_->Ping());
  EXPECT_FALSE(store_->Describe().empty());
}

// ---- the event log ----

std::vector<std::string> Types(const std::vector<StoredEvent>& events) {
  std::vector<std::string> types;
  for (const StoredEvent& e : events) types.push_back(e.type);
  return types;
}

TEST_P(MetadataStoreContract, EveryStatusChangeIsLoggedOnceInOrder) {
  Job job = MakeJob("j-1", "alice", 1'000);
  Create(job);
  for (JobStatus status : {JobStatus::kConverting, JobStatus::kConverting, JobStatus::kDone}) {
    ASSERT_TRUE(store_->UpdateJob("j-1", [&](Job& j) -> Status {
      j.status = status;
      j.updated_at += 10;
      return {};
    }));
  }
  ASSERT_TRUE(store_->SetProgress("j-1", 0.5));  // not an event
  auto page = store_->ReadEvents("", "", 100);
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_EQ(Types(page->events),
            (std::vector<std::string>{"job.queued", "job.converting", "job.done"}));
  std::set<std::string> ids;
  for (const StoredEvent& e : page->events) {
    EXPECT_EQ(e.owner_id, "alice");
    EXPECT_EQ(e.job_id, "j-1");
    EXPECT_FALSE(e.cursor.empty());
    ids.insert(e.id);
    auto logged = nlohmann::json::parse(e.job).get<Job>();
    EXPECT_EQ("job." + std::string(JobStatusName(logged.status)), e.type) << "the job as written";
  }
  EXPECT_EQ(ids.size(), 3u) << "each event has its own id";
  EXPECT_EQ(page->events[0].created_at, 1'000);
  EXPECT_EQ(page->events[2].created_at, 1'030);
  EXPECT_EQ(page->next_cursor, page->events.back().cursor);
}

TEST_P(MetadataStoreContract, EventsAreReadOnceAcrossPagesAndHandles) {
  for (int i = 0; i < 7; ++i) Create(MakeJob(fmt::format("j-{}", i), i % 2 ? "bob" : "alice", i));
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    auto again = harness_->Open();  // another process continuing from the cursor
    ASSERT_TRUE(again);
    auto read = (*again)->ReadEvents("", cursor, 3);
    ASSERT_TRUE(read) << read.error().message;
    for (const StoredEvent& e : read->events) seen.push_back(e.job_id);
    if (read->events.empty()) {
      EXPECT_EQ(read->next_cursor, cursor) << "an empty page keeps the cursor";
      break;
    }
    cursor = read->next_cursor;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"j-0", "j-1", "j-2", "j-3", "j-4", "j-5", "j-6"}));
  // New events after the end are found from the last cursor.
  Create(MakeJob("j-7", "alice", 7));
  auto more = store_->ReadEvents("", cursor, 10);
  ASSERT_TRUE(more);
  ASSERT_EQ(more->events.size(), 1u);
  EXPECT_EQ(more->events[0].job_id, "j-7");
}

TEST_P(MetadataStoreContract, AnOwnerReadsOnlyTheirEvents) {
  Create(MakeJob("a-1", "alice", 1));
  Create(MakeJob("b-1", "bob", 2));
  Create(MakeJob("a-2", "alice", 3));
  auto alice = store_->ReadEvents("alice", "", 10);
  ASSERT_TRUE(alice);
  ASSERT_EQ(alice->events.size(), 2u);
  EXPECT_EQ(alice->events[0].job_id, "a-1");
  EXPECT_EQ(alice->events[1].job_id, "a-2");
  auto after = store_->ReadEvents("alice", alice->events[0].cursor, 10);
  ASSERT_TRUE(after);
  ASSERT_EQ(after->events.size(), 1u);
  EXPECT_EQ(after->events[0].job_id, "a-2");
  auto nobody = store_->ReadEvents("carol", "", 10);
  ASSERT_TRUE(nobody);
  EXPECT_TRUE(nobody->events.empty());
  EXPECT_FALSE(store_->ReadEvents("alice", "not a cursor", 10));
  EXPECT_FALSE(store_->ReadEvents("alice", "", 0));
}

TEST_P(MetadataStoreContract, ExpiringAFinishedJobLogsItAndDeletesIt) {
  Job done = MakeJob("j-done", "alice", 1);
  done.status = JobStatus::kDone;
  Create(done);
  Job cancelled = MakeJob("j-cancelled", "alice", 2);
  cancelled.status = JobStatus::kCancelled;
  Create(cancelled);
  ASSERT_TRUE(store_->ExpireJob("j-done", 5'000));
  ASSERT_TRUE(store_->ExpireJob("j-cancelled", 5'001));
  EXPECT_EQ(store_->GetJob("j-done").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetJob("j-cancelled").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->ExpireJob("j-done", 5'002).error().code, ErrorCode::kNotFound);
  auto page = store_->ReadEvents("alice", "", 10);
  ASSERT_TRUE(page);
  EXPECT_EQ(Types(page->events),
            (std::vector<std::string>{"job.done", "job.cancelled", "job.expired"}))
      << "a cancelled job was announced when cancelled";
  EXPECT_EQ(page->events.back().created_at, 5'000);
  auto usage = store_->GetUsage("alice");
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->stored_bytes, 0u) << "expiry gives the job's usage back";
}

TEST_P(MetadataStoreContract, AFailedWriteLogsNothing) {
  Create(MakeJob("j-1", "alice", 1));
  EXPECT_FALSE(store_->CreateJob(MakeJob("j-1", "alice", 2)));  // exists
  EXPECT_FALSE(store_->UpdateJob("j-1", [](Job& j) -> Status {
    j.status = JobStatus::kDone;
    return MakeError(ErrorCode::kConflict, "changed my mind");
  }));
  auto page = store_->ReadEvents("", "", 10);
  ASSERT_TRUE(page);
  EXPECT_EQ(Types(page->events), (std::vector<std::string>{"job.queued"}));
}

TEST_P(MetadataStoreContract, PruningForgetsOldEvents) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  Create(MakeJob("j-1", "alice", now - 1'000));
  Create(MakeJob("j-2", "alice", now - 500));
  ASSERT_TRUE(store_->PruneEvents(now - 3'600'000));
  auto kept = store_->ReadEvents("", "", 10);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->events.size(), 2u) << "nothing was that old";
  ASSERT_TRUE(store_->PruneEvents(now + 3'600'000));
  auto pruned = store_->ReadEvents("", "", 10);
  ASSERT_TRUE(pruned);
  EXPECT_TRUE(pruned->events.empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, MetadataStoreContract,
                         ::testing::ValuesIn(MetadataStoreBackends()),
                         [](const auto& info) { return info.param.name; });

// ---- job events ----

// Collects events delivered on any thread.
class Collector {
 public:
  void Add(const JobEvent& event) {
    std::lock_guard lock(mu_);
    events_.push_back(event);
    cv_.notify_all();
  }
  // Waits until at least n events arrived; false on timeout.
  bool WaitFor(size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return events_.size() >= n; });
  }
  std::vector<JobEvent> Events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::function<void(const JobEvent&)> Callback() {
    return [this](const JobEvent& event) { Add(event); };
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<JobEvent> events_;
};

JobEvent Progress(std::string job_id, double progress) {
  return JobEvent{.job_id = std::move(job_id),
                  .owner_id = "u-1",
                  .type = "progress",
                  .data = {{"progress", progress}}};
}

class JobEventBusContract : public ::testing::TestWithParam<JobEventBusBackend> {
 protected:
  void SetUp() override {
    const JobEventBusBackend& backend = GetParam();
    if (!backend.required_env.empty() && std::getenv(backend.required_env.c_str()) == nullptr) {
      GTEST_SKIP() << "set " << backend.required_env << " to test the " << backend.name
                   << " event bus";
    }
    bus_ = backend.make();
  }
  std::unique_ptr<JobEventBus> bus_;
};

TEST_P(JobEventBusContract, DeliversTheSubscribedJobsEventsInOrder) {
  Collector watched;
  auto subscription = bus_->Subscribe("j-1", watched.Callback());
  bus_->Publish(Progress("j-2", 0.1));
  bus_->Publish(Progress("j-1", 0.2));
  bus_->Publish(
      JobEvent{.job_id = "j-1", .owner_id = "u-1", .type = "status", .data = {{"status", "done"}}});
  ASSERT_TRUE(watched.WaitFor(2));
  auto events = watched.Events();
  ASSERT_EQ(events.size(), 2u) << "only j-1's events";
  EXPECT_EQ(events[0].job_id, "j-1");
  EXPECT_EQ(events[0].owner_id, "u-1");
  EXPECT_EQ(events[0].type, "progress");
  EXPECT_EQ(events[0].data["progress"], 0.2);
  EXPECT_EQ(events[1].type, "status");
  EXPECT_EQ(events[1].data["status"], "done");
}

TEST_P(JobEventBusContract, EverySubscriberGetsTheEvent) {
  Collector a;
  Collector b;
  auto sa = bus_->Subscribe("j-1", a.Callback());
  auto sb = bus_->Subscribe("j-1", b.Callback());
  bus_->Publish(Progress("j-1", 0.5));
  EXPECT_TRUE(a.WaitFor(1));
  EXPECT_TRUE(b.WaitFor(1));
}

TEST_P(JobEventBusContract, NothingArrivesAfterUnsubscribing) {
  Collector gone;
  Collector sentinel;
  auto subscription = bus_->Subscribe("j-1", gone.Callback());
  auto keep = bus_->Subscribe("j-1", sentinel.Callback());
  bus_->Publish(Progress("j-1", 0.1));
  ASSERT_TRUE(gone.WaitFor(1));
  subscription.reset();
  bus_->Publish(Progress("j-1", 0.2));
  ASSERT_TRUE(sentinel.WaitFor(2));  // the second event has been delivered to whoever listens
  EXPECT_EQ(gone.Events().size(), 1u);
}

TEST_P(JobEventBusContract, ACallbackMayEndItsOwnSubscription) {
  std::unique_ptr<Subscription> subscription;
  std::atomic<int> calls{0};
  Collector sentinel;
  subscription = bus_->Subscribe("j-1", [&](const JobEvent&) {
    ++calls;
    subscription.reset();
  });
  auto keep = bus_->Subscribe("j-1", sentinel.Callback());
  bus_->Publish(Progress("j-1", 0.1));
  bus_->Publish(Progress("j-1", 0.2));
  ASSERT_TRUE(sentinel.WaitFor(2));
  EXPECT_EQ(calls.load(), 1);
}

TEST_P(JobEventBusContract, NoCallbackRunsAfterTheSubscriptionIsDestroyed) {
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    while (!stop) bus_->Publish(Progress("j-1", 0.5));
  });
  for (int i = 0; i < 200; ++i) {
    auto alive = std::make_shared<std::atomic<bool>>(true);
    std::atomic<int> late_calls{0};
    auto subscription = bus_->Subscribe("j-1", [alive, &late_calls](const JobEvent&) {
      // Still running when the destructor is called: the destructor must wait for us.
      std::this_thread::sleep_for(50us);
      if (!*alive) ++late_calls;
    });
    std::this_thread::sleep_for(100us);
    subscription.reset();
    *alive = false;
    std::this_thread::sleep_for(100us);
    if (late_calls.load() != 0) {
      ADD_FAILURE() << "a callback ran after its subscription was destroyed";
      break;
    }
  }
  stop = true;
  publisher.join();
}

TEST_P(JobEventBusContract, SubscriptionMayOutliveTheBus) {
  Collector c;
  auto subscription = bus_->Subscribe("j-1", c.Callback());
  bus_.reset();
  subscription.reset();  // must not crash
  SUCCEED();
}

INSTANTIATE_TEST_SUITE_P(Backends, JobEventBusContract, ::testing::ValuesIn(JobEventBusBackends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace vmp3::test
