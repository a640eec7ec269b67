#include "raft/progress.h"

#include <algorithm>

namespace raftlock::raft {

void Inflights::FreeLE(uint64_t to) {
  while (!q_.empty() && q_.front() <= to) q_.pop_front();
}

void Inflights::FreeFirstOne() {
  if (!q_.empty()) q_.pop_front();
}

void Progress::ResetState(ProgressState s) {
  msg_app_flow_paused = false;
  pending_snapshot = 0;
  state = s;
  inflights.Reset();
}

void Progress::BecomeProbe() {
  if (state == ProgressState::kSnapshot) {
    const uint64_t pending = pending_snapshot;
    ResetState(ProgressState::kProbe);
    next = std::max(match + 1, pending + 1);
  } else {
    ResetState(ProgressState::kProbe);
    next = match + 1;
  }
}

void Progress::BecomeReplicate() {
  ResetState(ProgressState::kReplicate);
  next = match + 1;
}

void Progress::BecomeSnapshot(uint64_t snap_index) {
  ResetState(ProgressState::kSnapshot);
  pending_snapshot = snap_index;
  next = snap_index + 1;
}

bool Progress::MaybeUpdate(uint64_t n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    msg_app_flow_paused = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::MaybeDecrTo(uint64_t rejected, uint64_t match_hint) {
  if (state == ProgressState::kReplicate) {
    // A rejection of an index at or below match is stale.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // Probe/snapshot: only the rejection of the last probe counts.
  if (next == 0 || next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  msg_app_flow_paused = false;
  return true;
}

void Progress::SentEntries(size_t entries, uint64_t last) {
  switch (state) {
    case ProgressState::kReplicate:
      if (entries > 0) {
        next = last + 1;
        inflights.Add(last);
      }
      break;
    case ProgressState::kProbe:
      // Any append in probe state is a probe: wait for its answer (or the
      // next heartbeat response) before sending another.
      msg_app_flow_paused = true;
      break;
    case ProgressState::kSnapshot:
      break;
  }
}

bool Progress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
      return msg_app_flow_paused;
    case ProgressState::kReplicate:
      return inflights.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

PeerProgress Progress::ToPublic() const {
  PeerProgress p;
  p.match = match;
  p.next = next;
  p.state = state;
  p.recent_active = recent_active;
  p.active_lately = recent_active || active_last_period;
  p.inflight = inflights.Count();
  return p;
}

}  // namespace raftlock::raft
