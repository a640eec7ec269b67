// LockChecker: the lock service's safety rules, checked on every entry every
// node applies (the simulator's on_apply) and on every node's state after
// every step (an extra_check). Rules, as docs/semantics.md states them:
//
//  * Mutual exclusion: an exclusive holder is a lock's only holder, and a
//    semaphore never has more holders than permits -- in the state machine
//    and in the grant/release events the server answers clients from.
//  * Fencing: a grant's token is the index of the granting entry, and per
//    lock, tokens strictly increase in log order on every node.
//  * Owner-checked release: an explicit release frees exactly the hold the
//    command named (lease and token).
//  * Replica agreement: nodes at equal applied index have equal digests.
//  * Lease TTL: a lease expires only in an entry whose cluster time is at
//    least TTL past its last accepted grant/keepalive, and whose proposal came
//    at least TTL of simulated time after that keepalive's proposal.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proto/lock.pb.h"
#include "raft/storage.h"
#include "tests/lock_sim/lock_sim_state_machine.h"
#include "tests/lock_sim/proposal_log.h"
#include "tests/sim/simulator.h"

namespace raftlock::lock_sim {

// What the run did, counted once per committed entry (not per node).
struct Activity {
  uint64_t commands = 0;
  uint64_t grants = 0;
  uint64_t handoffs = 0;  // grants to queued waiters
  uint64_t shared_grants = 0;
  uint64_t releases = 0;
  uint64_t stale_releases_refused = 0;
  uint64_t busy = 0;
  uint64_t queued = 0;
  uint64_t wait_timeouts = 0;
  uint64_t keepalives = 0;
  uint64_t expiries = 0;
  uint64_t revokes = 0;
  uint64_t expiry_margin_checks = 0;  // expiries checked against simulated time
  // Smallest (simulated time from last keepalive to expiry) - TTL seen.
  int64_t min_expiry_slack_ms = std::numeric_limits<int64_t>::max();
  uint64_t max_semaphore_holders = 0;

  void Add(const Activity& o);
  std::string ToString() const;
};

class LockChecker {
 public:
  explicit LockChecker(const ProposalLog* proposals) : proposals_(proposals) {}

  // Node `node` applied `entry`; `first` when no node applied it before.
  void OnApply(uint64_t node, const raft::Entry& entry, const LockSimStateMachine& sm, bool first);
  // Node `node`'s machine was restored from a snapshot.
  void OnRestore(uint64_t node, const LockSimStateMachine& sm);
  // After every step: the first violation found so far, or one in the state
  // of an up node.
  std::optional<std::string> CheckStep(const sim::Simulation& sim);

  const Activity& activity() const { return activity_; }

 private:
  struct Hold {
    uint64_t lease = 0;
    v1::LockMode mode = v1::LOCK_MODE_EXCLUSIVE;
    uint64_t token = 0;
  };
  // One node's view, rebuilt when its machine is replaced or restored.
  struct NodeModel {
    uint64_t serial = 0;
    uint64_t restores = 0;
    std::map<std::string, std::vector<Hold>> holders;  // from events
    std::map<std::string, uint32_t> permits;
    std::map<std::string, uint64_t> last_token;  // per lock, in apply order
    std::map<std::string, uint64_t> last_grant_index;
    // Per lock, the index of the entry that last released a hold of it and
    // that hold's token: a token ended in an entry is never granted again.
    std::map<std::string, std::pair<uint64_t, uint64_t>> last_release;
  };
  struct Accepted {
    int64_t cluster_ms = 0;
    std::optional<int64_t> tick;
  };

  void Reseed(NodeModel& m, const LockSimStateMachine& sm);
  void Fail(std::string what);
  void OnGrant(uint64_t node, NodeModel& m, const v1::LockGranted& g, uint64_t index,
               const LockSimStateMachine& sm);
  void OnRelease(uint64_t node, NodeModel& m, const v1::LockReleased& r, uint64_t index,
                 const v1::Command& cmd);
  void OnExpiry(uint64_t node, uint64_t lease, const raft::Entry& entry,
                const LockSimStateMachine& sm, bool first);
  void RecordAccepted(const raft::Entry& entry, const LockSimStateMachine& sm);
  void CompareModel(uint64_t node, const NodeModel& m, const LockSimStateMachine& sm,
                    uint64_t index);
  void CheckState(uint64_t node, const LockSimStateMachine& sm, const std::string& when);
  void Count(const LockSimStateMachine& sm);

  const ProposalLog* proposals_;
  std::map<uint64_t, NodeModel> nodes_;
  // Per lock: log index of each grant -> its token (any node, first seen).
  std::map<std::string, std::map<uint64_t, uint64_t>> grants_;
  // Per lease: TTL, and every accepted grant/keepalive by log index.
  std::map<uint64_t, int64_t> ttl_;
  std::map<uint64_t, std::map<uint64_t, Accepted>> accepted_;
  std::optional<std::string> violation_;
  Activity activity_;
};

}  // namespace raftlock::lock_sim
