#include "server/lock/leases.h"

#include "server/lock/common.h"

namespace raftlock::lock {

const Lease* LeaseTable::Find(uint64_t id) const {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

bool LeaseTable::Alive(uint64_t id, int64_t now_ms) const {
  const Lease* lease = Find(id);
  return lease != nullptr && lease->deadline_ms > now_ms;
}

void LeaseTable::Grant(uint64_t id, int64_t ttl_ms, int64_t now_ms) {
  Insert(Lease{id, ttl_ms, AddMs(now_ms, ttl_ms), now_ms});
}

void LeaseTable::KeepAlive(uint64_t id, int64_t now_ms) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  Lease& lease = it->second;
  by_deadline_.erase({lease.deadline_ms, id});
  lease.last_keepalive_ms = now_ms;
  lease.deadline_ms = AddMs(now_ms, lease.ttl_ms);
  by_deadline_.insert({lease.deadline_ms, id});
}

void LeaseTable::Erase(uint64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  by_deadline_.erase({it->second.deadline_ms, id});
  leases_.erase(it);
}

void LeaseTable::Insert(const Lease& lease) {
  Erase(lease.id);
  leases_[lease.id] = lease;
  by_deadline_.insert({lease.deadline_ms, lease.id});
}

std::vector<uint64_t> LeaseTable::Due(int64_t now_ms) const {
  std::vector<uint64_t> due;
  for (const auto& [deadline, id] : by_deadline_) {
    if (deadline > now_ms) break;
    due.push_back(id);
  }
  return due;
}

}  // namespace raftlock::lock
