// Small value types shared by the Raft core and its callers.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace raftlock::raft {

// Node ids are positive; 0 means "no node" (no leader, no vote).
inline constexpr uint64_t kNone = 0;

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };

const char* RoleName(Role role);

// Volatile state that callers may display or act on; never persisted.
struct SoftState {
  uint64_t leader = kNone;
  Role role = Role::kFollower;
  bool operator==(const SoftState&) const = default;
};

// A linearizable-read confirmation: once the local state machine has applied
// `index`, a read tagged `request_ctx` may be answered (Raft thesis 6.4).
struct ReadState {
  uint64_t index = 0;
  std::string request_ctx;
};

// Replication state of one follower as seen by the leader (etcd's tracker).
enum class ProgressState {
  kProbe,      // one append in flight at a time until the match index is found
  kReplicate,  // optimistic pipelining, bounded by the in-flight window
  kSnapshot,   // a snapshot is being sent; appends pause
};

const char* ProgressStateName(ProgressState state);

struct PeerProgress {
  uint64_t match = 0;
  uint64_t next = 0;
  ProgressState state = ProgressState::kProbe;
  bool recent_active = false;  // heard from in the current check-quorum period
  // Heard from in the current or the previous check-quorum period: unlike
  // recent_active, not false for everyone just after a check.
  bool active_lately = false;
  size_t inflight = 0;
};

// A point-in-time view of a node, for status pages and tests.
struct NodeStatus {
  uint64_t id = kNone;
  uint64_t term = 0;
  uint64_t vote = kNone;
  uint64_t commit = 0;
  uint64_t applied = 0;
  uint64_t last_index = 0;
  uint64_t leader = kNone;
  Role role = Role::kFollower;
  uint64_t lead_transferee = kNone;
  // Filled only on the leader: every voter and learner, including itself.
  std::map<uint64_t, PeerProgress> progress;
};

}  // namespace raftlock::raft
