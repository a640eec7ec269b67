// The lease table: ids, TTLs and deadlines in cluster time. Pure bookkeeping;
// what a lease holds lives in the lock tables and is released by the state
// machine when the lease ends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace raftlock::lock {

struct Lease {
  uint64_t id = 0;
  int64_t ttl_ms = 0;
  int64_t deadline_ms = 0;        // last_keepalive_ms + ttl_ms
  int64_t last_keepalive_ms = 0;  // cluster time of the grant or last keepalive
};

class LeaseTable {
 public:
  // The lease, or nullptr if it does not exist (never granted, or ended).
  const Lease* Find(uint64_t id) const;
  // True if the lease exists and its deadline is after `now_ms`.
  bool Alive(uint64_t id, int64_t now_ms) const;
  size_t size() const { return leases_.size(); }
  const std::map<uint64_t, Lease>& all() const { return leases_; }

  // Adds lease `id` (must not exist) expiring at now_ms + ttl_ms.
  void Grant(uint64_t id, int64_t ttl_ms, int64_t now_ms);
  // Restarts the TTL of an existing lease from now_ms.
  void KeepAlive(uint64_t id, int64_t now_ms);
  // Removes the lease; no-op if absent.
  void Erase(uint64_t id);
  // Inserts a lease as recorded in a snapshot.
  void Insert(const Lease& lease);

  // Ids of leases whose deadline is <= now_ms, earliest deadline first (ties by id).
  std::vector<uint64_t> Due(int64_t now_ms) const;

 private:
  std::map<uint64_t, Lease> leases_;
  std::set<std::pair<int64_t, uint64_t>> by_deadline_;
};

}  // namespace raftlock::lock
