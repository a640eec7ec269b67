#include "server/lock/dedup.h"

#include "server/lock/common.h"

namespace raftlock::lock {

DedupTable::Verdict DedupTable::Lookup(uint64_t client, uint64_t sequence,
                                       const v1::CommandResult** cached) const {
  auto it = clients_.find(client);
  if (it == clients_.end()) return Verdict::kNew;
  auto r = it->second.results.find(sequence);
  if (r != it->second.results.end()) {
    *cached = &r->second;
    return Verdict::kDuplicate;
  }
  return sequence <= it->second.floor ? Verdict::kTooOld : Verdict::kNew;
}

void DedupTable::Index(uint64_t id, const Client& c) {
  if (c.expires_ms != kNever) by_expiry_.insert({c.expires_ms, id});
  by_last_index_.insert({c.last_index, id});
  if (c.lease != 0) by_lease_[c.lease].insert(id);
}

void DedupTable::Unindex(uint64_t id, const Client& c) {
  by_expiry_.erase({c.expires_ms, id});
  by_last_index_.erase({c.last_index, id});
  if (c.lease != 0) {
    auto it = by_lease_.find(c.lease);
    if (it != by_lease_.end()) {
      it->second.erase(id);
      if (it->second.empty()) by_lease_.erase(it);
    }
  }
}

void DedupTable::Forget(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Unindex(id, it->second);
  clients_.erase(it);
}

void DedupTable::Record(uint64_t client, uint64_t sequence, const v1::CommandResult& result,
                        uint64_t lease, bool lease_alive, int64_t now_ms, uint64_t index) {
  Client& c = clients_[client];
  Unindex(client, c);
  c.results[sequence] = result;
  const size_t window = limits_.dedup_window == 0 ? 1 : limits_.dedup_window;
  while (c.results.size() > window) {
    c.floor = std::max(c.floor, c.results.begin()->first);
    c.results.erase(c.results.begin());
  }
  if (lease != 0 && lease_alive) {
    c.lease = lease;
  } else if (lease != 0 && lease == c.lease) {
    c.lease = 0;  // the bound lease ended in this command
  }
  c.expires_ms = c.lease != 0 ? kNever : AddMs(now_ms, limits_.dedup_retention_ms);
  c.last_index = index;
  Index(client, c);
  while (clients_.size() > limits_.max_dedup_clients && !by_last_index_.empty()) {
    uint64_t victim = by_last_index_.begin()->second;
    if (victim == client) break;
    Forget(victim);
  }
}

void DedupTable::OnLeaseEnded(uint64_t lease, int64_t now_ms) {
  auto it = by_lease_.find(lease);
  if (it == by_lease_.end()) return;
  const std::set<uint64_t> ids = it->second;
  for (uint64_t id : ids) {
    Client& c = clients_.at(id);
    Unindex(id, c);
    c.lease = 0;
    c.expires_ms = AddMs(now_ms, limits_.dedup_retention_ms);
    Index(id, c);
  }
}

void DedupTable::Expire(int64_t now_ms) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now_ms) {
    Forget(by_expiry_.begin()->second);
  }
}

void DedupTable::ToSnapshot(v1::LockSnapshot* out) const {
  for (const auto& [id, c] : clients_) {
    v1::SnapshotDedupClient* s = out->add_clients();
    s->set_client_id(id);
    s->set_floor(c.floor);
    for (const auto& [seq, result] : c.results) {
      v1::SnapshotDedupResult* r = s->add_results();
      r->set_sequence(seq);
      *r->mutable_result() = result;
    }
    s->set_lease_id(c.lease);
    s->set_expires_ms(c.expires_ms);
    s->set_last_index(c.last_index);
  }
}

void DedupTable::FromSnapshot(const v1::LockSnapshot& in) {
  for (const v1::SnapshotDedupClient& s : in.clients()) {
    Client c;
    c.floor = s.floor();
    for (const v1::SnapshotDedupResult& r : s.results()) c.results[r.sequence()] = r.result();
    c.lease = s.lease_id();
    c.expires_ms = s.expires_ms();
    c.last_index = s.last_index();
    Index(s.client_id(), c);
    clients_[s.client_id()] = std::move(c);
  }
}

std::string DedupTable::CheckInvariants(bool bounds) const {
  if (bounds && clients_.size() > limits_.max_dedup_clients) return "dedup table over its bound";
  if (by_last_index_.size() != clients_.size()) return "dedup LRU index out of date";
  for (const auto& [id, c] : clients_) {
    if ((c.lease != 0) != (c.expires_ms == kNever)) return "dedup binding inconsistent";
    if (c.results.empty()) return "dedup client without results";
  }
  return "";
}

}  // namespace raftlock::lock
