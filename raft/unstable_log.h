// Log entries (and possibly a snapshot) that the core holds but the driver has
// not yet made durable; modelled on etcd-io/raft's log_unstable.go.
//
// Entries [offset, offset+entries.size()) are unstable. Those below
// offset_in_progress were handed to the driver in a Ready and are being
// persisted; they leave this buffer only at stable_to() (Advance).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "raft/storage.h"

namespace raftlock::raft {

class UnstableLog {
 public:
  // `offset` is the index the first unstable entry will have.
  explicit UnstableLog(uint64_t offset = 1) : offset_(offset), offset_in_progress_(offset) {}

  // First index known only from the unstable snapshot, if there is one.
  std::optional<uint64_t> MaybeFirstIndex() const;
  // Last index held here (last entry, else the snapshot index), if any.
  std::optional<uint64_t> MaybeLastIndex() const;
  // Term of entry i if this buffer knows it (including the snapshot's index).
  std::optional<uint64_t> MaybeTerm(uint64_t i) const;

  // Entries not yet handed to the driver.
  std::vector<Entry> NextEntries() const;
  bool HasNextEntries() const {
    return std::max(offset_in_progress_, offset_) < offset_ + entries_.size();
  }
  // The snapshot if it is not yet handed to the driver.
  const Snapshot* NextSnapshot() const;
  // True when a snapshot is held (handed out or not).
  bool HasSnapshot() const { return snapshot_.has_value(); }
  const Snapshot* snapshot() const { return snapshot_ ? &*snapshot_ : nullptr; }

  // Marks everything currently held as handed to the driver.
  void AcceptInProgress();
  // Entries up to i (term t) are durable: drops them if they still match.
  void StableTo(uint64_t i, uint64_t t);
  // The snapshot at index i is durable: drops it.
  void StableSnapTo(uint64_t i);
  // Replaces everything with snapshot `s`.
  void Restore(const Snapshot& s);
  // Appends entries, truncating any conflicting suffix (possibly reaching
  // below offset, in which case the stored suffix is overridden).
  void TruncateAndAppend(const std::vector<Entry>& ents);
  // Entries [lo, hi); precondition offset <= lo <= hi <= last+1.
  std::vector<Entry> Slice(uint64_t lo, uint64_t hi) const;

  uint64_t offset() const { return offset_; }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::optional<Snapshot> snapshot_;
  bool snapshot_in_progress_ = false;
  std::vector<Entry> entries_;
  uint64_t offset_;
  uint64_t offset_in_progress_;
};

}  // namespace raftlock::raft
