#include "server/lock/locks.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace raftlock::lock {
namespace {

std::string LeaseStr(uint64_t lease) { return absl::StrCat(lease); }

}  // namespace

LockTable::LockTable(size_t max_entries, size_t max_waiters, v1::ErrorReason too_many)
    : max_entries_(max_entries), max_waiters_(max_waiters), too_many_(too_many) {}

const LockEntry* LockTable::Find(const std::string& name) const {
  auto it = locks_.find(name);
  return it == locks_.end() ? nullptr : &it->second;
}

std::vector<std::string> LockTable::HeldBy(uint64_t lease) const {
  auto it = holds_by_lease_.find(lease);
  if (it == holds_by_lease_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::vector<std::string> LockTable::WaitedBy(uint64_t lease) const {
  auto it = waits_by_lease_.find(lease);
  if (it == waits_by_lease_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

bool LockTable::Waits(const std::string& name, uint64_t lease) const {
  auto it = waits_by_lease_.find(lease);
  return it != waits_by_lease_.end() && it->second.contains(name);
}

const Holder* LockTable::HoldOf(const std::string& name, uint64_t lease) const {
  const LockEntry* lock = Find(name);
  if (lock == nullptr) return nullptr;
  for (const Holder& h : lock->holders) {
    if (h.lease == lease) return &h;
  }
  return nullptr;
}

bool LockTable::Compatible(const LockEntry& lock, v1::LockMode mode) {
  if (lock.holders.empty()) return true;
  if (mode == v1::LOCK_MODE_EXCLUSIVE) return false;
  for (const Holder& h : lock.holders) {
    if (h.mode == v1::LOCK_MODE_EXCLUSIVE) return false;
  }
  return lock.permits == 0 || lock.holders.size() < lock.permits;
}

AcquireReply LockTable::Acquire(const AcquireRequest& req, const ApplyCtx& ctx) {
  AcquireReply reply;
  auto it = locks_.find(req.name);
  if (it == locks_.end()) {
    if (locks_.size() >= max_entries_) {
      reply.error = {too_many_, absl::StrCat("too many locks: limit is ", max_entries_)};
      return reply;
    }
  } else {
    LockEntry& lock = it->second;
    if (req.permits != 0 && req.permits != lock.permits) {
      reply.error = {v1::ERROR_REASON_PERMITS_CONFLICT,
                     absl::StrCat("permits: lock '", req.name, "' is declared with ", lock.permits,
                                  " permits (0 = ordinary lock), request says ", req.permits)};
      return reply;
    }
    reply.permits = lock.permits;
    for (const Holder& h : lock.holders) {
      if (h.lease != req.lease) continue;
      if (h.mode != req.mode) {
        reply.error = {v1::ERROR_REASON_MODE_CONFLICT,
                       absl::StrCat("mode: lease ", h.lease, " already holds '", req.name,
                                    "' in the other mode")};
        return reply;
      }
      reply.outcome = v1::ACQUIRE_OUTCOME_GRANTED;
      reply.token = h.token;
      reply.already = true;
      return reply;
    }
    for (size_t i = 0; i < lock.waiters.size(); ++i) {
      const Waiter& w = lock.waiters[i];
      if (w.lease != req.lease) continue;
      if (w.mode != req.mode) {
        reply.error = {v1::ERROR_REASON_MODE_CONFLICT,
                       absl::StrCat("mode: lease ", w.lease, " already waits for '", req.name,
                                    "' in the other mode")};
        return reply;
      }
      reply.outcome = v1::ACQUIRE_OUTCOME_QUEUED;
      reply.position = static_cast<uint32_t>(i + 1);
      reply.deadline_ms = w.deadline_ms;
      reply.already = true;
      return reply;
    }
    const bool grantable = lock.waiters.empty() && Compatible(lock, req.mode);
    if (!grantable) {
      if (req.wait_timeout_ms == 0) {
        reply.outcome = v1::ACQUIRE_OUTCOME_BUSY;
        return reply;
      }
      if (lock.waiters.size() >= max_waiters_) {
        reply.error = {
            v1::ERROR_REASON_TOO_MANY_WAITERS,
            absl::StrCat("too many waiters on '", req.name, "': limit is ", max_waiters_)};
        return reply;
      }
      Waiter w;
      w.lease = req.lease;
      w.mode = req.mode;
      w.deadline_ms = AddMs(ctx.now_ms, req.wait_timeout_ms);
      w.value = req.value;
      w.client_id = req.client_id;
      w.sequence = req.sequence;
      w.enqueued_index = ctx.index;
      lock.waiters.push_back(w);
      waits_by_lease_[w.lease].insert(req.name);
      waits_by_deadline_.insert({w.deadline_ms, req.name, w.lease});
      reply.outcome = v1::ACQUIRE_OUTCOME_QUEUED;
      reply.position = static_cast<uint32_t>(lock.waiters.size());
      reply.deadline_ms = w.deadline_ms;
      return reply;
    }
  }
  LockEntry& lock = locks_[req.name];
  if (it == locks_.end()) lock.permits = req.permits;
  Holder h;
  h.lease = req.lease;
  h.mode = req.mode;
  h.token = ctx.index;
  h.granted_ms = ctx.now_ms;
  h.value = req.value;
  h.client_id = req.client_id;
  h.sequence = req.sequence;
  GrantHolder(req.name, lock, h, /*from_queue=*/false, ctx);
  reply.outcome = v1::ACQUIRE_OUTCOME_GRANTED;
  reply.token = ctx.index;
  reply.permits = lock.permits;
  return reply;
}

void LockTable::GrantHolder(const std::string& name, LockEntry& lock, Holder holder,
                            bool from_queue, const ApplyCtx& ctx) {
  holds_by_lease_[holder.lease].insert(name);
  lock.holders.push_back(holder);
  Change c;
  c.kind = Change::Kind::kGranted;
  c.name = name;
  c.holder = std::move(holder);
  c.from_queue = from_queue;
  ctx.changes->push_back(std::move(c));
}

void LockTable::RemoveWaiterAt(const std::string& name, LockEntry& lock, size_t pos,
                               v1::EndReason reason, const ApplyCtx& ctx) {
  Waiter w = std::move(lock.waiters[pos]);
  lock.waiters.erase(lock.waiters.begin() + static_cast<std::ptrdiff_t>(pos));
  waits_by_deadline_.erase({w.deadline_ms, name, w.lease});
  auto wl = waits_by_lease_.find(w.lease);
  if (wl != waits_by_lease_.end()) {
    wl->second.erase(name);
    if (wl->second.empty()) waits_by_lease_.erase(wl);
  }
  Change c;
  c.kind = Change::Kind::kWaitEnded;
  c.name = name;
  c.waiter = std::move(w);
  c.reason = reason;
  ctx.changes->push_back(std::move(c));
}

void LockTable::Pump(const std::string& name, const ApplyCtx& ctx) {
  auto it = locks_.find(name);
  if (it == locks_.end()) return;
  LockEntry& lock = it->second;
  while (!lock.waiters.empty()) {
    const Waiter& head = lock.waiters.front();
    if (head.deadline_ms <= ctx.now_ms) {
      RemoveWaiterAt(name, lock, 0, v1::END_REASON_TIMED_OUT, ctx);
      continue;
    }
    if (!ctx.leases->Alive(head.lease, ctx.now_ms)) {
      RemoveWaiterAt(name, lock, 0, v1::END_REASON_LEASE_EXPIRED, ctx);
      continue;
    }
    if (head.lease == ctx.ending_lease) break;
    if (!Compatible(lock, head.mode)) break;
    Waiter w = std::move(lock.waiters.front());
    lock.waiters.pop_front();
    waits_by_deadline_.erase({w.deadline_ms, name, w.lease});
    auto wl = waits_by_lease_.find(w.lease);
    wl->second.erase(name);
    if (wl->second.empty()) waits_by_lease_.erase(wl);
    Holder h;
    h.lease = w.lease;
    h.mode = w.mode;
    h.token = ctx.index;
    h.granted_ms = ctx.now_ms;
    h.value = std::move(w.value);
    h.client_id = w.client_id;
    h.sequence = w.sequence;
    GrantHolder(name, lock, std::move(h), /*from_queue=*/true, ctx);
  }
  MaybeErase(name);
}

void LockTable::MaybeErase(const std::string& name) {
  auto it = locks_.find(name);
  if (it != locks_.end() && it->second.holders.empty() && it->second.waiters.empty()) {
    locks_.erase(it);
  }
}

Error LockTable::Release(const std::string& name, uint64_t lease, uint64_t token,
                         v1::EndReason reason, const ApplyCtx& ctx) {
  auto it = locks_.find(name);
  if (it != locks_.end()) {
    LockEntry& lock = it->second;
    for (size_t i = 0; i < lock.holders.size(); ++i) {
      if (lock.holders[i].lease != lease) continue;
      if (lock.holders[i].token != token) {
        return {v1::ERROR_REASON_WRONG_TOKEN,
                absl::StrCat("token: lease ", lease, " holds '", name, "' with token ",
                             lock.holders[i].token, ", not ", token)};
      }
      Holder h = std::move(lock.holders[i]);
      lock.holders.erase(lock.holders.begin() + static_cast<std::ptrdiff_t>(i));
      auto hl = holds_by_lease_.find(lease);
      hl->second.erase(name);
      if (hl->second.empty()) holds_by_lease_.erase(hl);
      Change c;
      c.kind = Change::Kind::kReleased;
      c.name = name;
      c.holder = std::move(h);
      c.reason = reason;
      ctx.changes->push_back(std::move(c));
      Pump(name, ctx);
      return {};
    }
  }
  return {v1::ERROR_REASON_NOT_HELD,
          absl::StrCat("name: '", name, "' is not held by lease ", LeaseStr(lease))};
}

Error LockTable::CancelWait(const std::string& name, uint64_t lease, const ApplyCtx& ctx) {
  auto it = locks_.find(name);
  if (it != locks_.end()) {
    LockEntry& lock = it->second;
    for (size_t i = 0; i < lock.waiters.size(); ++i) {
      if (lock.waiters[i].lease != lease) continue;
      RemoveWaiterAt(name, lock, i, v1::END_REASON_CANCELLED, ctx);
      Pump(name, ctx);
      return {};
    }
  }
  return {v1::ERROR_REASON_NOT_WAITING,
          absl::StrCat("name: lease ", LeaseStr(lease), " is not waiting for '", name, "'")};
}

std::pair<uint32_t, uint32_t> LockTable::EndLease(uint64_t lease, v1::EndReason reason,
                                                  const ApplyCtx& ctx) {
  uint32_t waits = 0;
  uint32_t holds = 0;
  // Remove every wait first, so no grant below can go to this lease; then pump
  // each touched lock once.
  std::set<std::string> touched;
  for (const std::string& name : WaitedBy(lease)) {
    LockEntry& lock = locks_.at(name);
    for (size_t i = 0; i < lock.waiters.size(); ++i) {
      if (lock.waiters[i].lease != lease) continue;
      RemoveWaiterAt(name, lock, i, reason, ctx);
      ++waits;
      touched.insert(name);
      break;
    }
  }
  for (const std::string& name : HeldBy(lease)) {
    const Holder* h = HoldOf(name, lease);
    if (h == nullptr) continue;
    Release(name, lease, h->token, reason, ctx);
    ++holds;
    touched.erase(name);
  }
  for (const std::string& name : touched) Pump(name, ctx);
  return {holds, waits};
}

void LockTable::ExpireWaits(const ApplyCtx& ctx) {
  std::set<std::string> touched;
  while (!waits_by_deadline_.empty()) {
    auto [deadline, name, lease] = *waits_by_deadline_.begin();
    if (deadline > ctx.now_ms) break;
    LockEntry& lock = locks_.at(name);
    for (size_t i = 0; i < lock.waiters.size(); ++i) {
      if (lock.waiters[i].lease != lease) continue;
      RemoveWaiterAt(name, lock, i, v1::END_REASON_TIMED_OUT, ctx);
      break;
    }
    touched.insert(name);
  }
  for (const std::string& name : touched) Pump(name, ctx);
}

void LockTable::PumpWaitsOf(uint64_t lease, const ApplyCtx& ctx) {
  for (const std::string& name : WaitedBy(lease)) Pump(name, ctx);
}

void LockTable::SetValue(const std::string& name, uint64_t lease, const std::string& value) {
  auto it = locks_.find(name);
  if (it == locks_.end()) return;
  for (Holder& h : it->second.holders) {
    if (h.lease == lease) h.value = value;
  }
}

void LockTable::ToSnapshot(google::protobuf::RepeatedPtrField<v1::SnapshotLock>* out) const {
  for (const auto& [name, lock] : locks_) {
    v1::SnapshotLock* s = out->Add();
    s->set_name(name);
    s->set_permits(lock.permits);
    for (const Holder& h : lock.holders) {
      v1::SnapshotHolder* sh = s->add_holders();
      sh->set_lease_id(h.lease);
      sh->set_mode(h.mode);
      sh->set_token(h.token);
      sh->set_granted_ms(h.granted_ms);
      sh->set_value(h.value);
      sh->set_client_id(h.client_id);
      sh->set_sequence(h.sequence);
    }
    for (const Waiter& w : lock.waiters) {
      v1::SnapshotWaiter* sw = s->add_waiters();
      sw->set_lease_id(w.lease);
      sw->set_mode(w.mode);
      sw->set_deadline_ms(w.deadline_ms);
      sw->set_value(w.value);
      sw->set_client_id(w.client_id);
      sw->set_sequence(w.sequence);
      sw->set_enqueued_index(w.enqueued_index);
    }
  }
}

void LockTable::FromSnapshot(const google::protobuf::RepeatedPtrField<v1::SnapshotLock>& in) {
  for (const v1::SnapshotLock& s : in) {
    LockEntry& lock = locks_[s.name()];
    lock.permits = s.permits();
    for (const v1::SnapshotHolder& sh : s.holders()) {
      Holder h;
      h.lease = sh.lease_id();
      h.mode = sh.mode();
      h.token = sh.token();
      h.granted_ms = sh.granted_ms();
      h.value = sh.value();
      h.client_id = sh.client_id();
      h.sequence = sh.sequence();
      holds_by_lease_[h.lease].insert(s.name());
      lock.holders.push_back(std::move(h));
    }
    for (const v1::SnapshotWaiter& sw : s.waiters()) {
      Waiter w;
      w.lease = sw.lease_id();
      w.mode = sw.mode();
      w.deadline_ms = sw.deadline_ms();
      w.value = sw.value();
      w.client_id = sw.client_id();
      w.sequence = sw.sequence();
      w.enqueued_index = sw.enqueued_index();
      waits_by_lease_[w.lease].insert(s.name());
      waits_by_deadline_.insert({w.deadline_ms, s.name(), w.lease});
      lock.waiters.push_back(std::move(w));
    }
  }
}

std::string LockTable::CheckInvariants(const LeaseTable& leases, int64_t now_ms) const {
  size_t holds = 0;
  size_t waits = 0;
  for (const auto& [name, lock] : locks_) {
    if (lock.holders.empty() && lock.waiters.empty()) return "empty lock kept: " + name;
    size_t exclusive = 0;
    std::set<uint64_t> seen;
    for (const Holder& h : lock.holders) {
      if (h.mode == v1::LOCK_MODE_EXCLUSIVE) ++exclusive;
      if (!seen.insert(h.lease).second) return "lease holds twice: " + name;
      if (leases.Find(h.lease) == nullptr) return "holder without lease: " + name;
      if (!holds_by_lease_.contains(h.lease) || !holds_by_lease_.at(h.lease).contains(name)) {
        return "hold index out of date: " + name;
      }
    }
    if (exclusive > 0 && lock.holders.size() > 1) return "exclusive holder not alone: " + name;
    if (lock.permits != 0 && lock.holders.size() > lock.permits) {
      return "more holders than permits: " + name;
    }
    for (const Waiter& w : lock.waiters) {
      if (!seen.insert(w.lease).second) return "lease waits twice or holds and waits: " + name;
      if (leases.Find(w.lease) == nullptr) return "waiter without lease: " + name;
      if (w.deadline_ms <= now_ms) return "timed-out waiter kept: " + name;
      if (!waits_by_deadline_.contains({w.deadline_ms, name, w.lease})) {
        return "wait deadline index out of date: " + name;
      }
    }
    if (!lock.waiters.empty() && Compatible(lock, lock.waiters.front().mode)) {
      return "grantable waiter left queued: " + name;
    }
    holds += lock.holders.size();
    waits += lock.waiters.size();
  }
  size_t indexed_holds = 0;
  for (const auto& [lease, names] : holds_by_lease_) indexed_holds += names.size();
  size_t indexed_waits = 0;
  for (const auto& [lease, names] : waits_by_lease_) indexed_waits += names.size();
  if (indexed_holds != holds || indexed_waits != waits || waits_by_deadline_.size() != waits) {
    return "lease index size mismatch";
  }
  return "";
}

}  // namespace raftlock::lock
