#include "metadata/notification_store.hpp"

#include <fmt/format.h>

#include "common/text.hpp"

namespace vmp3 {

Status CheckRecord(std::string_view kind, const Record& record) {
  if (kind.empty() || record.id.empty() || record.owner_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "a record needs a kind, an id and an owner");
  }
  for (std::string_view text : {kind, std::string_view(record.id)}) {
    // Kinds and ids end up in keys: no separators, nothing invisible.
    for (char c : text) {
      if (!IsAsciiAlnum(c) && c != '-' && c != '_') {
        return MakeError(ErrorCode::kInvalidArgument,
                         fmt::format("'{}' is not a valid record kind or id", text));
      }
    }
  }
  if (record.due_at < 0)
    return MakeError(ErrorCode::kInvalidArgument, "a record's due time must not be negative");
  return {};
}

std::string EncodeRecordCursor(const Record& record) {
  return fmt::format("{}:{}", record.created_at, record.id);
}

Status CheckRecordUpdate(std::string_view kind, const Record& before, const Record& after) {
  if (after.id != before.id || after.owner_id != before.owner_id || after.parent != before.parent ||
      after.created_at != before.created_at) {
    return MakeError(ErrorCode::kInternal,
                     fmt::format("an update of {} {} tried to change more than its body and due "
                                 "time",
                                 kind, before.id));
  }
  if (after.due_at < 0)
    return MakeError(ErrorCode::kInvalidArgument, "a record's due time must not be negative");
  return {};
}

}  // namespace vmp3
