// The leader's record of one peer's replication (etcd's tracker/progress.go):
// what it is known to store (match), what to send next (next), and the flow
// control state: probe (one append per heartbeat until an ack), replicate
// (pipelined appends bounded by an in-flight window), snapshot (paused while
// a snapshot is sent).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "raft/types.h"

namespace raftlock::raft {

// A FIFO of the last indexes of un-acknowledged MSG_APP, bounded in count.
class Inflights {
 public:
  explicit Inflights(size_t capacity) : capacity_(capacity) {}
  // Records an append whose last entry is `last`; precondition !Full().
  void Add(uint64_t last) { q_.push_back(last); }
  // Frees every append whose last index is <= `to` (acknowledged).
  void FreeLE(uint64_t to);
  // Frees the oldest append (a heartbeat response unsticks a full window).
  void FreeFirstOne();
  bool Full() const { return q_.size() >= capacity_; }
  size_t Count() const { return q_.size(); }
  void Reset() { q_.clear(); }

 private:
  size_t capacity_;
  std::deque<uint64_t> q_;
};

class Progress {
 public:
  Progress(uint64_t next, size_t max_inflight, bool is_learner)
      : next(next), inflights(max_inflight), is_learner(is_learner) {}

  // Back to probing from match+1 (or past a pending snapshot that was sent).
  void BecomeProbe();
  // Pipelining from match+1.
  void BecomeReplicate();
  // Pauses appends while snapshot `snap_index` is sent.
  void BecomeSnapshot(uint64_t snap_index);

  // An ack for `n`: raises match (and next). Returns true if match grew.
  bool MaybeUpdate(uint64_t n);
  // A rejection of the append at `rejected` with the follower's hint mapped
  // into the leader's log (`match_hint`). Returns false for a stale reject.
  bool MaybeDecrTo(uint64_t rejected, uint64_t match_hint);
  // Records that an append of `entries` entries ending at `last` was sent.
  void SentEntries(size_t entries, uint64_t last);
  // True when no append may be sent now.
  bool IsPaused() const;

  PeerProgress ToPublic() const;

  uint64_t match = 0;
  uint64_t next = 1;
  ProgressState state = ProgressState::kProbe;
  uint64_t pending_snapshot = 0;
  // Heard from within the current check-quorum period.
  bool recent_active = false;
  // Heard from within the previous check-quorum period.
  bool active_last_period = false;
  // Probe state: an append was sent and is not yet answered.
  bool msg_app_flow_paused = false;
  Inflights inflights;
  bool is_learner = false;

 private:
  void ResetState(ProgressState s);
};

}  // namespace raftlock::raft
