// The exactly-once table (Raft thesis 6.3): per client id, the results of its
// most recent commands, so a retried command returns its first result and
// changes nothing.
//
// Retention: a client is bound to the lease its latest command named (or
// granted). While that lease lives, the client's results are kept; once it
// ends -- or if the client's latest command named no live lease -- they are
// kept for Limits::dedup_retention_ms of cluster time more, then dropped.
// Bounds: Limits::dedup_window results per client (older sequences answer
// SEQUENCE_TOO_OLD), Limits::max_dedup_clients clients (the least recently
// used client is forgotten first).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "proto/lock.pb.h"
#include "server/lock/limits.h"

namespace raftlock::lock {

class DedupTable {
 public:
  explicit DedupTable(const Limits& limits) : limits_(limits) {}

  enum class Verdict { kNew, kDuplicate, kTooOld };
  // Classifies (client, sequence). On kDuplicate, *cached points at the first result.
  Verdict Lookup(uint64_t client, uint64_t sequence, const v1::CommandResult** cached) const;
  // Remembers the result of a new command. `lease`: the lease the command
  // named or granted (0: none); `lease_alive`: whether it lives after the command.
  void Record(uint64_t client, uint64_t sequence, const v1::CommandResult& result, uint64_t lease,
              bool lease_alive, int64_t now_ms, uint64_t index);
  // Starts the retention countdown of the clients bound to `lease`.
  void OnLeaseEnded(uint64_t lease, int64_t now_ms);
  // Forgets clients whose retention ended at or before now_ms.
  void Expire(int64_t now_ms);
  size_t size() const { return clients_.size(); }

  void ToSnapshot(v1::LockSnapshot* out) const;
  void FromSnapshot(const v1::LockSnapshot& in);
  // "" if the table is consistent. `bounds`: also that it holds at most
  // max_dedup_clients clients (a restored table may hold more, under lower
  // limits than it was written with, until new clients evict the excess).
  std::string CheckInvariants(bool bounds = true) const;

 private:
  struct Client {
    uint64_t floor = 0;  // highest sequence whose result was dropped from the window
    std::map<uint64_t, v1::CommandResult> results;
    uint64_t lease = 0;       // bound live lease, 0 if none
    int64_t expires_ms = 0;   // kNever while bound to a live lease
    uint64_t last_index = 0;  // for least-recently-used eviction
  };
  void Index(uint64_t id, const Client& c);
  void Unindex(uint64_t id, const Client& c);
  void Forget(uint64_t id);

  Limits limits_;
  std::map<uint64_t, Client> clients_;
  std::set<std::pair<int64_t, uint64_t>> by_expiry_;
  std::set<std::pair<uint64_t, uint64_t>> by_last_index_;
  std::map<uint64_t, std::set<uint64_t>> by_lease_;
};

}  // namespace raftlock::lock
