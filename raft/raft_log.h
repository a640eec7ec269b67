// The core's view of the whole log: durable entries in Storage followed by the
// UnstableLog, plus the commit and apply cursors. Modelled on etcd's log.go.
//
// Invariants: applied <= applying <= committed <= LastIndex();
// FirstIndex()-1 <= applied (entries below are compacted into a snapshot).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "raft/storage.h"
#include "raft/unstable_log.h"

namespace raftlock::raft {

class RaftLog {
 public:
  // Reads the durable log bounds from `storage` (which must outlive this).
  explicit RaftLog(const Storage* storage);

  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  uint64_t LastTerm() const;
  // Term of entry i, for FirstIndex()-1 <= i <= LastIndex(); CompactedError()
  // or UnavailableError() outside that range.
  absl::StatusOr<uint64_t> Term(uint64_t i) const;
  // Term(i), or 0 when unknown.
  uint64_t TermOrZero(uint64_t i) const;
  bool MatchTerm(uint64_t i, uint64_t t) const;

  // The follower side of the consistency check (section 5.3): if entry
  // `index` has term `log_term`, appends `ents` (truncating a conflicting
  // suffix), advances commit to min(committed, last new index) and returns
  // the last new index. Returns nullopt if the check fails.
  std::optional<uint64_t> MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                      const std::vector<Entry>& ents);
  // Appends entries after (possibly overwriting) the log; returns LastIndex().
  uint64_t Append(const std::vector<Entry>& ents);
  // Index of the first entry of `ents` that is not in the log with the same
  // term (0 if all match).
  uint64_t FindConflict(const std::vector<Entry>& ents) const;
  // Fast backtracking: the largest index <= `index` whose term is <= `term`,
  // with that term. Stops (returning term 0) at an index whose term is
  // unknown (compacted).
  std::pair<uint64_t, uint64_t> FindConflictByTerm(uint64_t index, uint64_t term) const;

  // Entries [lo, hi) bounded by max_bytes (at least one when lo < hi).
  absl::StatusOr<std::vector<Entry>> Slice(uint64_t lo, uint64_t hi, uint64_t max_bytes) const;
  // Entries [lo, LastIndex()] bounded by max_bytes.
  absl::StatusOr<std::vector<Entry>> EntriesFrom(uint64_t lo, uint64_t max_bytes) const;

  // Section 5.4.1: a candidate whose last entry is (lasti, term) is at least
  // as up to date as this log.
  bool IsUpToDate(uint64_t lasti, uint64_t term) const;

  // Advances commit to max_index if entry max_index has term `term`
  // (or unconditionally when `term` is 0). Returns true on a change.
  bool MaybeCommit(uint64_t max_index, uint64_t term);
  // Raises commit to `to` (never lowers it; clamps at LastIndex()).
  void CommitTo(uint64_t to);

  // The latest snapshot: the unstable one if pending, else from storage.
  absl::StatusOr<Snapshot> GetSnapshot() const;
  // Installs a snapshot received from the leader.
  void Restore(const Snapshot& s);

  // Last index that is durable and still part of this log.
  uint64_t PersistedLastIndex() const;
  // Committed entries ready to hand to the state machine (applying, bound],
  // where bound = min(committed, PersistedLastIndex()); none while a snapshot
  // is pending.
  bool HasNextCommittedEntries() const;
  std::vector<Entry> NextCommittedEntries(uint64_t max_bytes) const;
  void AcceptApplying(uint64_t i) { applying_ = std::max(applying_, i); }
  void AppliedTo(uint64_t i);

  UnstableLog& unstable() { return unstable_; }
  const UnstableLog& unstable() const { return unstable_; }
  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }
  uint64_t applying() const { return applying_; }
  // Used at creation only.
  void SetCommitted(uint64_t c) { committed_ = c; }
  void SetApplied(uint64_t a) { applied_ = applying_ = a; }

 private:
  uint64_t NextCommittedBound() const;

  const Storage* storage_;
  UnstableLog unstable_;
  uint64_t committed_ = 0;
  uint64_t applying_ = 0;
  uint64_t applied_ = 0;
};

}  // namespace raftlock::raft
