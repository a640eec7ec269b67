// The reference in-memory LogStorage, in the style of etcd-io/raft's
// MemoryStorage. Used by unit tests and the deterministic simulator; it is
// "durable" the moment Persist returns.
//
// Layout: ents_[0] is a dummy entry at the compaction point (the index and
// term of the latest snapshot or compaction; 0/0 initially), so Term() of
// FirstIndex()-1 always succeeds. Real entries follow contiguously.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "raft/storage.h"

namespace raftlock::raft {

class MemoryStorage : public LogStorage {
 public:
  MemoryStorage();

  // A deep copy: the simulator keeps one as "what survived a crash".
  std::unique_ptr<MemoryStorage> Clone() const;

  // --- Storage ---
  absl::StatusOr<InitialState> GetInitialState() const override;
  absl::StatusOr<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi,
                                             uint64_t max_bytes) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  absl::StatusOr<Snapshot> GetSnapshot() const override;

  // --- LogStorage ---
  // Applies snapshot (if any; it must not be older than the current one),
  // then entries (truncating any suffix from the first new index; entries at
  // or below the compaction point are skipped), then the hard state.
  absl::Status Persist(const PersistRequest& request) override;
  // Every write is durable when it returns: nothing to do.
  absl::Status Sync() override { return absl::OkStatus(); }
  // Requires snapshot index <= index <= max(commit, snapshot index) and
  // index <= LastIndex(); FailedPrecondition otherwise.
  // Keeps nothing: RecordSnapshot takes the image.
  absl::Status WriteSnapshot(const Snapshot& snapshot) override;
  absl::StatusOr<bool> RecordSnapshot(Snapshot snapshot) override;
  absl::Status CreateSnapshot(uint64_t index, const ConfState& conf_state,
                              std::string data) override;
  // Requires index <= snapshot index (FailedPrecondition) and index above the
  // current compaction point (CompactedError otherwise).
  absl::Status Compact(uint64_t index) override;

  // --- Conveniences for tests (each is one Persist-like step) ---
  // Appends/overwrites entries as Persist would.
  absl::Status Append(const std::vector<Entry>& entries);
  // Replaces the hard state.
  void SetHardState(const HardState& hs);
  // Drops every entry after `index` (at or above the compaction point), as a
  // crash that loses appends written but never synced would.
  absl::Status TruncateAfter(uint64_t index);
  // Replaces the whole state with `snapshot` (as Persist with a snapshot).
  absl::Status ApplySnapshot(const Snapshot& snapshot);
  // The persisted hard state.
  const HardState& hard_state() const { return hard_state_; }

 private:
  uint64_t offset() const { return ents_.front().index(); }

  HardState hard_state_;
  Snapshot snapshot_;
  std::vector<Entry> ents_;  // ents_[0] is the dummy entry
};

}  // namespace raftlock::raft
