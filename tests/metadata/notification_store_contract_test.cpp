// The behaviour every NotificationStore must have, run against each metadata backend (the same
// rows as metadata_store_contract_test.cpp: every backend's store is also its NotificationStore).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "metadata/metadata_store_contract.hpp"

namespace vmp3::test {
namespace {

Record MakeRecord(std::string id, std::string owner, int64_t created_at, std::string parent = {}) {
  return Record{.id = std::move(id),
                .owner_id = std::move(owner),
                .parent = std::move(parent),
                .created_at = created_at,
                .due_at = 0,
                .body = R"({"url":"https://example.com/hook","name":"Café 東京"})"};
}

class NotificationStoreContract : public ::testing::TestWithParam<MetadataStoreBackend> {
 protected:
  void SetUp() override {
    const MetadataStoreBackend& backend = GetParam();
    if (!backend.required_env.empty() && std::getenv(backend.required_env.c_str()) == nullptr) {
      GTEST_SKIP() << "set " << backend.required_env << " to test the " << backend.name
                   << " notification store";
    }
    harness_ = backend.make();
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }

  // Another handle on the same data (another process).
  std::shared_ptr<NotificationStore> Open() {
    auto store = harness_->Open();
    EXPECT_TRUE(store) << store.error().message;
    if (!store) return nullptr;
    std::shared_ptr<MetadataStore> shared = std::move(*store);
    auto notifications = std::dynamic_pointer_cast<NotificationStore>(shared);
    EXPECT_NE(notifications, nullptr) << "the backend is no NotificationStore";
    return notifications;
  }

  std::vector<std::string> ListIds(ListBy by, std::string_view key, int limit) {
    std::vector<std::string> ids;
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
      auto listed = store_->List(notice_kind::kEndpoint, by, key, limit, cursor);
      EXPECT_TRUE(listed) << listed.error().message;
      if (!listed) break;
      EXPECT_LE(listed->records.size(), static_cast<size_t>(limit));
      for (const Record& r : listed->records) ids.push_back(r.id);
      if (listed->next_cursor.empty()) break;
      cursor = listed->next_cursor;
    }
    return ids;
  }

  std::unique_ptr<MetadataStoreHarness> harness_;
  std::shared_ptr<NotificationStore> store_;
};

TEST_P(NotificationStoreContract, RecordsRoundTripAndIdsAreUniquePerKind) {
  Record r = MakeRecord("w-1", "alice", 100, "p-1");
  r.due_at = 5;
  ASSERT_TRUE(store_->Insert(notice_kind::kEndpoint, r));
  auto got = Open()->Get(notice_kind::kEndpoint, "w-1");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->owner_id, "alice");
  EXPECT_EQ(got->parent, "p-1");
  EXPECT_EQ(got->created_at, 100);
  EXPECT_EQ(got->due_at, 5);
  EXPECT_EQ(got->body, r.body);
  auto again = store_->Insert(notice_kind::kEndpoint, MakeRecord("w-1", "bob", 1));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists) << "what makes fan-out idempotent";
  EXPECT_TRUE(store_->Insert(notice_kind::kDelivery, MakeRecord("w-1", "bob", 1)))
      << "another kind, another id space";
  EXPECT_EQ(store_->Get(notice_kind::kEndpoint, "w-2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->Insert(notice_kind::kEndpoint, MakeRecord("a:b", "alice", 1)).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->Insert(notice_kind::kEndpoint, MakeRecord("", "alice", 1)).error().code,
            ErrorCode::kInvalidArgument);
}

TEST_P(NotificationStoreContract, UpdateChangesBodyAndDueTimeOnly) {
  ASSERT_TRUE(store_->Insert(notice_kind::kEndpoint, MakeRecord("w-1", "alice", 100)));
  auto updated = store_->Update(notice_kind::kEndpoint, "w-1", [](Record& r) -> Status {
    r.body = R"({"enabled":false})";
    r.due_at = 42;
    return {};
  });
  ASSERT_TRUE(updated) << updated.error().message;
  EXPECT_EQ(updated->body, R"({"enabled":false})");
  auto got = Open()->Get(notice_kind::kEndpoint, "w-1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->body, R"({"enabled":false})");
  EXPECT_EQ(got->due_at, 42);
  auto refused = store_->Update(notice_kind::kEndpoint, "w-1", [](Record& r) -> Status {
    r.body = "{}";
    return MakeError(ErrorCode::kConflict, "no");
  });
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  auto moved = store_->Update(notice_kind::kEndpoint, "w-1", [](Record& r) -> Status {
    r.owner_id = "mallory";
    return {};
  });
  EXPECT_EQ(moved.error().code, ErrorCode::kInternal);
  EXPECT_EQ(store_->Get(notice_kind::kEndpoint, "w-1")->body, R"({"enabled":false})");
  EXPECT_EQ(store_->Update(notice_kind::kEndpoint, "nope", [](Record&) -> Status { return {}; })
                .error()
                .code,
            ErrorCode::kNotFound);
}

TEST_P(NotificationStoreContract, ListsByOwnerAndParentNewestFirstAcrossPages) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(store_->Insert(notice_kind::kEndpoint,
                               MakeRecord(fmt::format("w-{}", i), i % 2 ? "bob" : "alice",
                                          1000 + i / 2, i < 4 ? "p-1" : "p-2")));
  }
  EXPECT_EQ(ListIds(ListBy::kOwner, "alice", 2),
            (std::vector<std::string>{"w-6", "w-4", "w-2", "w-0"}));
  EXPECT_EQ(ListIds(ListBy::kOwner, "bob", 10), (std::vector<std::string>{"w-5", "w-3", "w-1"}));
  EXPECT_EQ(ListIds(ListBy::kParent, "p-1", 3),
            (std::vector<std::string>{"w-3", "w-2", "w-1", "w-0"}));
  EXPECT_TRUE(ListIds(ListBy::kOwner, "carol", 5).empty());
  ASSERT_TRUE(store_->Remove(notice_kind::kEndpoint, "w-4"));
  EXPECT_EQ(store_->Remove(notice_kind::kEndpoint, "w-4").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(ListIds(ListBy::kOwner, "alice", 2), (std::vector<std::string>{"w-6", "w-2", "w-0"}));
  EXPECT_EQ(ListIds(ListBy::kParent, "p-2", 2), (std::vector<std::string>{"w-6", "w-5"}));
  EXPECT_FALSE(store_->List(notice_kind::kEndpoint, ListBy::kOwner, "alice", 2, "garbage"));
  EXPECT_FALSE(store_->List(notice_kind::kEndpoint, ListBy::kOwner, "alice", 0, ""));
}

TEST_P(NotificationStoreContract, DueRecordsAreClaimedSoonestFirstAndLeased) {
  for (auto [id, due] : {std::pair("d-late", 300), std::pair("d-soon", 100),
                         std::pair("d-mid", 200), std::pair("d-none", 0)}) {
    Record r = MakeRecord(id, "alice", 1);
    r.due_at = due;
    ASSERT_TRUE(store_->Insert(notice_kind::kDelivery, r));
  }
  auto first = store_->ClaimDue(notice_kind::kDelivery, 250, 1'000, 10);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id, "d-soon");
  EXPECT_EQ((*first)[1].id, "d-mid");
  EXPECT_EQ((*first)[0].due_at, 1'250) << "the lease";
  auto again = Open()->ClaimDue(notice_kind::kDelivery, 260, 1'000, 10);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty()) << "leased records are not claimed twice";
  auto later = store_->ClaimDue(notice_kind::kDelivery, 1'300, 1'000, 1);
  ASSERT_TRUE(later);
  ASSERT_EQ(later->size(), 1u);
  EXPECT_EQ((*later)[0].id, "d-late") << "limit 1, soonest first";
  // Done with one: due 0 takes it off the schedule.
  ASSERT_TRUE(store_->Update(notice_kind::kDelivery, "d-late", [](Record& r) -> Status {
    r.due_at = 0;
    return {};
  }));
  auto expired = store_->ClaimDue(notice_kind::kDelivery, 5'000, 1'000, 10);
  ASSERT_TRUE(expired);
  std::set<std::string> ids;
  for (const Record& r : *expired) ids.insert(r.id);
  EXPECT_EQ(ids, (std::set<std::string>{"d-soon", "d-mid"})) << "a lease that ran out";
  EXPECT_TRUE(store_->ClaimDue(notice_kind::kEndpoint, 5'000, 1'000, 10)->empty())
      << "only the kind asked for";
}

TEST_P(NotificationStoreContract, ConcurrentClaimersNeverShareARecord) {
  constexpr int kRecords = 40;
  for (int i = 0; i < kRecords; ++i) {
    Record r = MakeRecord(fmt::format("d-{}", i), "alice", 1);
    r.due_at = 1 + i;
    ASSERT_TRUE(store_->Insert(notice_kind::kDelivery, r));
  }
  std::mutex mu;
  std::vector<std::string> claimed;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, store = Open()] {
      for (int round = 0; round < 20; ++round) {
        auto got = store->ClaimDue(notice_kind::kDelivery, 1'000, 60'000, 3);
        if (!got) continue;
        std::lock_guard lock(mu);
        for (const Record& r : *got) claimed.push_back(r.id);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> unique(claimed.begin(), claimed.end());
  EXPECT_EQ(unique.size(), claimed.size()) << "a record claimed twice";
  EXPECT_EQ(unique.size(), static_cast<size_t>(kRecords));
}

TEST_P(NotificationStoreContract, PruningRemovesOldFinishedRecordsOnly) {
  for (int i = 0; i < 6; ++i) {
    Record r = MakeRecord(fmt::format("d-{}", i), "alice", 100 + i, "p-1");
    r.due_at = i == 1 ? 5 : 0;  // d-1 is still due
    ASSERT_TRUE(store_->Insert(notice_kind::kDelivery, r));
  }
  ASSERT_TRUE(store_->Insert(notice_kind::kEndpoint, MakeRecord("w-old", "alice", 1)));
  auto first = store_->PruneRecords(notice_kind::kDelivery, 104, 2);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(*first, 2);
  auto rest = Open()->PruneRecords(notice_kind::kDelivery, 104, 100);
  ASSERT_TRUE(rest);
  EXPECT_EQ(*rest, 1) << "d-0, d-2, d-3 are old and done; d-1 is due; d-4, d-5 are new";
  std::set<std::string> left;
  auto page = store_->List(notice_kind::kDelivery, ListBy::kParent, "p-1", 100, "");
  ASSERT_TRUE(page);
  for (const Record& r : page->records) left.insert(r.id);
  EXPECT_EQ(left, (std::set<std::string>{"d-1", "d-4", "d-5"}));
  EXPECT_TRUE(store_->Get(notice_kind::kEndpoint, "w-old")) << "only the kind asked for";
}

TEST_P(NotificationStoreContract, CursorsAreNamedAndSurviveReopening) {
  auto unset = store_->GetCursor("fanout");
  ASSERT_TRUE(unset);
  EXPECT_EQ(*unset, "");
  ASSERT_TRUE(store_->SetCursor("fanout", "17"));
  ASSERT_TRUE(store_->SetCursor("other", "x"));
  ASSERT_TRUE(store_->SetCursor("fanout", "18"));
  EXPECT_EQ(*Open()->GetCursor("fanout"), "18");
  EXPECT_EQ(*Open()->GetCursor("other"), "x");
}

INSTANTIATE_TEST_SUITE_P(Backends, NotificationStoreContract,
                         ::testing::ValuesIn(MetadataStoreBackends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace vmp3::test
