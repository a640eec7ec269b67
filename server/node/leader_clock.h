// LeaderClock: the cluster time a leader stamps on its proposals
// (docs/semantics.md §1). It is the cluster time already applied when this
// node's leadership of a term began, plus the steady time it has led since,
// so it never runs ahead of real time and a new leader continues where the
// applied entries stopped.
//
// The clock is keyed by term and starts on the first stamp of a term. A stamp
// can therefore never come from an earlier term's leadership, nor from the
// default time point of a process that never led (which once added the
// machine's uptime to cluster time and expired every lease at once).
#pragma once

#include <chrono>
#include <cstdint>

namespace raftlock::server {

class LeaderClock {
 public:
  using Clock = std::chrono::steady_clock;

  // The cluster time (ms) to stamp on a proposal made as leader of `term`.
  // The first call for a term starts its clock at `applied_cluster_ms` (the
  // state machine's cluster time now) and `now`; later calls for that term
  // return that base plus the time since, and ignore `applied_cluster_ms`.
  // Preconditions: `term` never decreases between calls; `now` is monotonic.
  int64_t StampMs(uint64_t term, int64_t applied_cluster_ms, Clock::time_point now);

  // The term whose clock runs (0: none yet) and where it started.
  uint64_t term() const { return term_; }
  int64_t base_ms() const { return base_ms_; }

 private:
  uint64_t term_ = 0;
  int64_t base_ms_ = 0;
  Clock::time_point since_{};
};

}  // namespace raftlock::server
