// What the notifier keeps in the metadata backend: webhook endpoints, push subscriptions, users'
// notification settings, deliveries (with their retry schedule) and its read position in the
// event log. Kept here rather than in the notifier's memory so that replicas share it and a
// `kill -9` loses nothing: a delivery that was due is sent after the restart, with the same
// event id.
//
// The store holds small JSON documents (Record) of a few kinds; what is in them is the
// notifier's business (src/roles/notifier_*). Each kind is indexed by owner and by parent (a
// delivery's endpoint), newest first, and records with a due time are found by it. Every
// implementation (SQLite, Redis, memory: the same classes as the MetadataStore of the backend)
// passes tests/metadata/notification_store_contract_test.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace vmp3 {

// The kinds of record: letters only, used in keys and table rows.
namespace notice_kind {
inline constexpr std::string_view kEndpoint = "endpoint";          // a webhook endpoint
inline constexpr std::string_view kSubscription = "subscription";  // a browser's push subscription
inline constexpr std::string_view kSettings = "settings";  // a user's settings (id = user id)
inline constexpr std::string_view kDelivery = "delivery";  // one event to one destination
}  // namespace notice_kind

struct Record {
  std::string id;
  std::string owner_id;    // the user it belongs to
  std::string parent;      // the record it belongs to (a delivery's endpoint), or empty
  int64_t created_at = 0;  // unix ms; with id, the listing order
  // Unix ms when the record is due (a delivery's next attempt); 0 = nothing due.
  int64_t due_at = 0;
  std::string body;  // JSON
};

struct RecordPage {
  std::vector<Record> records;  // newest first (created_at, then id, descending)
  std::string next_cursor;      // empty on the last page
};

enum class ListBy { kOwner, kParent };

// Thread-safe; errors as MetadataStore's (kNotFound, kAlreadyExists, kInvalidArgument,
// kUnavailable, kIo).
class NotificationStore {
 public:
  virtual ~NotificationStore() = default;

  // kAlreadyExists when a record of this kind has the id: what makes the notifier's fan-out
  // idempotent (a delivery's id is derived from its event and destination).
  virtual Status Insert(std::string_view kind, const Record& record) = 0;
  virtual Result<Record> Get(std::string_view kind, std::string_view id) = 0;
  // Atomic read-modify-write, as MetadataStore::UpdateJob: mutate may change body and due_at
  // (anything else is kInternal), may run more than once, must not call the store. Returns the
  // record as written.
  virtual Result<Record> Update(std::string_view kind, std::string_view id,
                                const std::function<Status(Record&)>& mutate) = 0;
  // kNotFound when missing.
  virtual Status Remove(std::string_view kind, std::string_view id) = 0;
  // The records of one owner or parent, newest first, at most limit (>= 1) per page; pass
  // next_cursor back for the next page (kInvalidArgument when malformed).
  virtual Result<RecordPage> List(std::string_view kind, ListBy by, std::string_view key, int limit,
                                  std::string_view cursor) = 0;
  // Records with 0 < due_at <= now_ms, soonest first, at most limit: each is claimed in the same
  // step by moving its due_at to now_ms + lease_ms, so concurrent claimers never get the same
  // record before that lease ends (the claimer then sets due_at to 0, or to its next attempt).
  virtual Result<std::vector<Record>> ClaimDue(std::string_view kind, int64_t now_ms,
                                               int64_t lease_ms, int limit) = 0;
  // Removes up to `limit` records of `kind` created before before_ms that are not due (due_at
  // 0: finished deliveries), oldest first; returns how many. Retention of the delivery log.
  virtual Result<int> PruneRecords(std::string_view kind, int64_t before_ms, int limit) = 0;
  // A named position (the notifier's place in the event log); "" when never set.
  virtual Result<std::string> GetCursor(std::string_view name) = 0;
  virtual Status SetCursor(std::string_view name, std::string_view value) = 0;
};

// Shared by the implementations: the list cursor ("created_at:id", as jobs') and argument checks.
Status CheckRecord(std::string_view kind, const Record& record);
std::string EncodeRecordCursor(const Record& record);
// kInternal when an Update's mutate changed more than body and due_at.
Status CheckRecordUpdate(std::string_view kind, const Record& before, const Record& after);

}  // namespace vmp3
