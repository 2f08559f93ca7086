// ObjectStore in this process's memory, like leveldb's memenv: for unit tests (with the fault
// decorator of tests/support/faulty_backends.hpp in front when a test needs failures), demos
// (`vmp3 serve --storage memory`) and tools. It passes the same contract tests as the file and
// S3 stores (tests/storage/object_store_contract_test.cpp).
//
// The objects live in a State that every handle opened on it shares and that lives as long as
// anyone holds it: two handles on one State behave like two processes sharing a directory or a
// bucket, and a handle opened after the others were destroyed sees what a restarted process
// would. Nothing is kept on disk, so nothing survives the process.
//
// A committed object is an immutable byte string; committing again replaces it with a new one.
// A reader holds the version it opened (as an open file does), so it never fails or mixes
// versions when the object is replaced or removed. A writer buffers its bytes privately until
// Commit. The etag is a counter of commits on the State, so it changes on every commit, even of
// the same bytes. Bounded by nothing but memory: keep objects small in tests.
//
// Threading: as ObjectStore; one mutex per State guards the map of objects, never held while
// bytes are copied into a reader's buffer.
#pragma once

#include <memory>

#include "storage/object_store.hpp"

namespace vmp3 {

class MemoryObjectStore final : public ObjectStore {
 public:
  // The objects themselves, shared by the handles opened on them.
  class State;

  // A handle on a new, empty State.
  MemoryObjectStore();
  // Another handle on the objects of `state` (from state() of any handle).
  explicit MemoryObjectStore(std::shared_ptr<State> state);
  ~MemoryObjectStore() override;

  const std::shared_ptr<State>& state() const { return state_; }

  Result<std::unique_ptr<ObjectWriter>> Create(std::string_view key) override;
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view key) override;
  Result<ObjectInfo> Stat(std::string_view key) override;
  Status Remove(std::string_view key) override;
  Result<ObjectListing> List(std::string_view prefix, std::string_view start_after,
                             int limit) override;
  // Always succeeds: memory is always reachable.
  Status Ping() override;
  std::string Describe() const override;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace vmp3
