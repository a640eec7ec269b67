// Raft's safety properties (Raft paper, Figure 3), checked incrementally as the
// simulator reports each event, so a violation is caught at the step that
// causes it:
//
//  * Election Safety: at most one leader per term, over the whole run.
//  * Log Matching: if two persisted logs hold an entry with the same index and
//    term, the logs are identical up to and including that index. Checked
//    with a hash chain per persisted entry: (index, term) must always map to
//    the same chain value, on every node, at every time.
//  * Leader Completeness: when a node becomes leader of a term, its log holds
//    every entry committed so far (here "committed" = applied by any node,
//    the strongest evidence of commitment the outside world can see).
//  * State Machine Safety: no two nodes apply different entries at the same
//    index, and their state machines have equal digests after applying it.
//
// The checker also keeps a "shadow" of every node's persisted log (what
// Persist wrote, plus compactions), used by Leader Completeness and to verify
// that a store reopened after a crash returns exactly what was persisted.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace raftlock::sim {

struct Violation {
  std::string property;  // e.g. "Election Safety"
  std::string detail;
  int64_t tick = 0;
};

class SafetyChecker {
 public:
  explicit SafetyChecker(int num_nodes);

  // The tick stamped on violations.
  void set_now(int64_t tick) { now_ = tick; }

  // Reads a freshly bootstrapped (or otherwise externally written) store into
  // the shadow log of node `id`.
  void InitFromStorage(uint64_t id, const raft::Storage& storage);

  // Node `id` is in `role` at `term`. Call after every input to the node.
  // The first time a node is seen leading a term, Election Safety and Leader
  // Completeness are checked against its persisted log.
  void ObserveRole(uint64_t id, uint64_t term, raft::Role role);

  // Node `id` durably wrote `request` (call after Persist returned OK).
  void ObservePersist(uint64_t id, const raft::PersistRequest& request);
  // Node `id` compacted its store up to and including `index`.
  void ObserveCompact(uint64_t id, uint64_t index);
  // Node `id` lost every entry after `index` (appends it never synced).
  void ObserveLostSuffix(uint64_t id, uint64_t index);

  // Node `id` (re)started with a state machine restored to `applied`
  // (0 = empty) whose digest is `digest`.
  void ObserveStateMachineReset(uint64_t id, uint64_t applied, const std::string& digest);
  // Node `id` installed a snapshot covering up to `index` in its state machine.
  void ObserveInstallSnapshot(uint64_t id, const raft::SnapshotMetadata& metadata,
                              const std::string& digest);
  // Node `id` applied `entry`; `digest` is its state machine's digest after.
  void ObserveApply(uint64_t id, const raft::Entry& entry, const std::string& digest);

  // Compares a node's store with its shadow log (after reopen, at the end).
  void VerifyStorage(uint64_t id, const raft::Storage& storage);

  // Records a violation found elsewhere (liveness, extra checks, storage).
  void Report(std::string property, std::string detail);

  const std::optional<Violation>& violation() const { return violation_; }
  // Highest index applied by any node.
  uint64_t max_committed() const { return committed_.empty() ? 0 : committed_.size() - 1; }
  // The number of distinct (term, leader) pairs seen.
  size_t leaders_seen() const { return leader_of_term_.size(); }
  // The term of the committed entry at `index`, if some node applied it.
  std::optional<uint64_t> CommittedTerm(uint64_t index) const;

 private:
  struct ShadowEntry {
    uint64_t term = 0;
    uint64_t chain = 0;  // hash of every entry up to and including this one
  };
  // A node's persisted log: position 0 is the compaction point (index `base`).
  struct ShadowLog {
    uint64_t base = 0;
    std::vector<ShadowEntry> entries{ShadowEntry{}};
    uint64_t last() const { return base + entries.size() - 1; }
  };
  struct CommittedEntry {
    bool known = false;
    uint64_t term = 0;
    uint64_t entry_hash = 0;
    uint64_t digest_hash = 0;
    uint64_t first_node = 0;
  };

  void AppendToShadow(uint64_t id, const raft::Entry& entry);
  void CheckLeaderCompleteness(uint64_t id, uint64_t term);

  int num_nodes_;
  int64_t now_ = 0;
  std::optional<Violation> violation_;
  std::vector<ShadowLog> shadow_;  // by node id (index 0 unused)
  // Log Matching: (index, term) -> chain hash of the log prefix ending there.
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, uint64_t> chain_of_;
  // Election Safety: term -> the one leader of that term.
  std::map<uint64_t, uint64_t> leader_of_term_;
  // State Machine Safety: by index (index 0 unused).
  std::vector<CommittedEntry> committed_;
  std::vector<uint64_t> applied_;                 // by node id: the last index applied
  std::map<uint64_t, uint64_t> snapshot_digest_;  // index -> digest hash at snapshots
};

}  // namespace raftlock::sim
