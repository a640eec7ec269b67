// Elections for users' own services, on the lock machinery: an election is an
// exclusive lock whose holder is the leader and whose holder value is the
// leader value. Every change gets the next epoch of one global, strictly
// increasing counter (so epochs also increase across an election that was
// forgotten and used again); each election keeps a bounded history of its
// events for Observe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "proto/lock.pb.h"
#include "server/lock/limits.h"
#include "server/lock/locks.h"

namespace raftlock::lock {

struct CampaignReply {
  Error error;
  v1::ElectionCampaignResult result;
};

class Elections {
 public:
  explicit Elections(const Limits& limits);

  const LockTable& table() const { return table_; }
  uint64_t last_epoch() const { return last_epoch_; }

  // Becomes leader now (ELECTED event), queues (FIFO), or answers BUSY for a
  // try-once campaign. A lease already leading / queued gets that back
  // (already = true; the value is not changed: use Proclaim).
  CampaignReply Campaign(const AcquireRequest& req, const ApplyCtx& ctx,
                         std::vector<v1::LockEvent>* events);
  // The leader (lease + token) sets a new value: PROCLAIMED event. Returns its epoch.
  Error Proclaim(const std::string& name, uint64_t lease, uint64_t token, const std::string& value,
                 const ApplyCtx& ctx, std::vector<v1::LockEvent>* events, uint64_t* epoch);
  // token != 0: the leader steps down (NO_LEADER, then ELECTED if a candidate
  // is queued). token == 0: a queued candidate withdraws.
  Error Resign(const std::string& name, uint64_t lease, uint64_t token, const ApplyCtx& ctx,
               std::vector<v1::LockEvent>* events, v1::ElectionResignResult* result);
  // Ends the lease's leaderships and candidacies. Returns {leaderships, candidacies}.
  std::pair<uint32_t, uint32_t> EndLease(uint64_t lease, v1::EndReason reason, const ApplyCtx& ctx,
                                         std::vector<v1::LockEvent>* events);
  // Drops candidates whose wait deadline passed (and elects the next one).
  void ExpireWaits(const ApplyCtx& ctx, std::vector<v1::LockEvent>* events);
  // LockTable::PumpWaitsOf for the candidates' queues.
  void PumpWaitsOf(uint64_t lease, const ApplyCtx& ctx, std::vector<v1::LockEvent>* events);

  // Who leads `name` now, at which epoch (0 if no event is kept).
  v1::ElectionInfo Info(const std::string& name) const;
  // Kept events with epoch > after_epoch; skipped = true (and no events) if
  // some such event is no longer kept -- resynchronise from `current`.
  v1::ObserveResult Observe(const std::string& name, uint64_t after_epoch) const;
  // Names of elections that exist (leader, candidates or kept history), sorted.
  std::vector<std::string> Names() const;
  // The epoch of the kept ELECTED event that gave `lease` the leadership with
  // `token`; 0 if the history no longer keeps it.
  uint64_t ElectedEpoch(const std::string& name, uint64_t lease, uint64_t token) const;

  void ToSnapshot(v1::LockSnapshot* out) const;
  void FromSnapshot(const v1::LockSnapshot& in);
  // `bounds`: also that at most max_idle_elections idle elections are kept.
  std::string CheckInvariants(const LeaseTable& leases, int64_t now_ms, bool bounds = true) const;

 private:
  struct Meta {
    std::deque<v1::ElectionEvent> history;
    uint64_t dropped_through = 0;
    uint64_t last_change_index = 0;
  };
  // Turns table changes into election events (and history), then settles the
  // idle set of every touched election.
  void Absorb(const Changes& changes, const ApplyCtx& ctx, std::vector<v1::LockEvent>* events);
  uint64_t Record(v1::ElectionEvent ev, const ApplyCtx& ctx, std::vector<v1::LockEvent>* events);
  void Settle(const std::string& name);
  void TrimIdle();

  Limits limits_;
  LockTable table_;
  uint64_t last_epoch_ = 0;
  std::map<std::string, Meta> meta_;
  // Elections with kept history but no leader and no candidate, oldest change first.
  std::set<std::pair<uint64_t, std::string>> idle_;
};

}  // namespace raftlock::lock
