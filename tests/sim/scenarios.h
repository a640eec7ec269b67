// Scripted scenarios driven through the Simulation API, for faults too precise
// to wait for from random seeds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tests/sim/checker.h"

namespace raftlock::sim {

struct ScenarioOutcome {
  // Every stage of the script happened as planned (the network and crashes
  // produced the intended logs). A run that stops at a violation stops early.
  bool completed = false;
  int stages_done = 0;
  // What happened, one line per stage.
  std::string narrative;
  std::optional<Violation> violation;
};

// The Raft paper's Figure 8 on five nodes, with one entry per MSG_APP:
//   1. P leads term T1 and replicates X (index k) to Q only; P crashes.
//   2. W (one of the other three) wins term T2 with their votes and appends
//      its no-op at index k, which reaches nobody; W is cut off.
//   3. P restarts; P or Q (call it L, the other F) wins a later term T3,
//      appends its no-op at k+1, reaches F, and re-replicates X alone to A.
//      X (term T1) is now on L, F and A - a majority - but k+1 is on L and F
//      only. A correct leader must not commit X by counting replicas; with
//      raft::Config::testing_unsafe_commit_prior_term it does, and applies X.
//      L is then cut off and crashes.
//   4. W wins again with the votes of A and B (its last term T2 beats their
//      T1) and overwrites index k with its own entry.
// With the unsafe rule the checker must report Leader Completeness (W becomes
// leader without the committed X) or State Machine Safety; with the correct
// rule the run completes and then heals and passes the liveness check.
ScenarioOutcome RunFigure8Scenario(bool unsafe_commit_prior_term, uint64_t seed,
                                   bool verbose = false);

// Raft thesis 10.2.1 on three nodes whose writes are synced after the fact
// (Node::AdvanceWritten, as the replica's LogSyncer does):
//   1. P leads; its syncs are held, and R is cut off from it.
//   2. P proposes X; Q stores and acknowledges it. P has X written, not
//      synced: a correct leader does not count itself, so X (on Q only of
//      three) is not committed. With
//      raft::Config::testing_count_unsynced_entries it is, and P applies X.
//   3. P crashes and loses X; Q is cut off; P restarts and P or R wins a new
//      term without X.
// With the unsafe rule the checker must report Leader Completeness; with the
// correct rule the run completes and then heals and passes the liveness check.
ScenarioOutcome RunUnsyncedLeaderScenario(bool count_unsynced_entries, uint64_t seed,
                                          bool verbose = false);

// A follower's unsynced overwrite lost in a crash, on three nodes whose
// writes are synced after the fact:
//   1. P leads term T1, is cut off, and appends Y at index k alone (synced).
//   2. Q and R elect L in a later term, which commits its own entries at k.
//   3. P's syncs are held; the network heals and P replaces Y with L's
//      entries, written but not synced, so it acknowledges nothing.
//   4. P crashes: the overwrite is lost and Y (term T1) is back at k.
//   5. P restarts; the cluster heals and must converge (P's log is repaired
//      again) and pass the liveness check, with no safety violation.
ScenarioOutcome RunUnsyncedOverwriteScenario(uint64_t seed, bool verbose = false);

}  // namespace raftlock::sim
