#include "server/lock/lock_state_machine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace raftlock::lock {
namespace {

void SetError(v1::CommandResult* result, const Error& e) {
  result->clear_payload();
  result->set_code(CodeOf(e.reason));
  result->set_reason(e.reason);
  result->set_message(e.message);
}

// Whether a cached result can answer `cmd`: its payload is of cmd's
// operation. (An error result has no payload and is not checked.) A client
// that reuses a sequence for another operation gets an error, not the other
// operation's answer.
bool SameOperation(const v1::CommandResult& cached, const v1::Command& cmd) {
  // Each result payload shares its field number with its command.
  static_assert(int{v1::CommandResult::kLeaseGrant} == int{v1::Command::kLeaseGrant});
  static_assert(int{v1::CommandResult::kLeaseKeepAlive} == int{v1::Command::kLeaseKeepAlive});
  static_assert(int{v1::CommandResult::kLeaseRevoke} == int{v1::Command::kLeaseRevoke});
  static_assert(int{v1::CommandResult::kLockAcquire} == int{v1::Command::kLockAcquire});
  static_assert(int{v1::CommandResult::kLockRelease} == int{v1::Command::kLockRelease});
  static_assert(int{v1::CommandResult::kLockCancelWait} == int{v1::Command::kLockCancelWait});
  static_assert(int{v1::CommandResult::kElectionCampaign} == int{v1::Command::kElectionCampaign});
  static_assert(int{v1::CommandResult::kElectionProclaim} == int{v1::Command::kElectionProclaim});
  static_assert(int{v1::CommandResult::kElectionResign} == int{v1::Command::kElectionResign});
  static_assert(int{v1::CommandResult::kTimeAdvance} == int{v1::Command::kTimeAdvance});
  if (cached.payload_case() == v1::CommandResult::PAYLOAD_NOT_SET) return true;
  return static_cast<int>(cached.payload_case()) == static_cast<int>(cmd.op_case());
}

// Appends the events of a user-lock table's changes.
void LockEvents(const Changes& changes, std::vector<v1::LockEvent>* events) {
  for (const Change& c : changes) {
    v1::LockEvent& ev = events->emplace_back();
    switch (c.kind) {
      case Change::Kind::kGranted: {
        v1::LockGranted* g = ev.mutable_lock_granted();
        g->set_name(c.name);
        g->set_lease_id(c.holder.lease);
        g->set_mode(c.holder.mode);
        g->set_token(c.holder.token);
        g->set_from_queue(c.from_queue);
        g->set_client_id(c.holder.client_id);
        g->set_sequence(c.holder.sequence);
        break;
      }
      case Change::Kind::kReleased: {
        v1::LockReleased* r = ev.mutable_lock_released();
        r->set_name(c.name);
        r->set_lease_id(c.holder.lease);
        r->set_token(c.holder.token);
        r->set_reason(c.reason);
        break;
      }
      case Change::Kind::kWaitEnded: {
        v1::WaitEnded* w = ev.mutable_wait_ended();
        w->set_name(c.name);
        w->set_lease_id(c.waiter.lease);
        w->set_election(false);
        w->set_reason(c.reason);
        w->set_client_id(c.waiter.client_id);
        w->set_sequence(c.waiter.sequence);
        break;
      }
    }
  }
}

uint64_t Fnv1a(std::string_view bytes) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

LockStateMachine::LockStateMachine(const Limits& limits)
    : limits_(limits),
      locks_(limits.max_locks, limits.max_waiters_per_lock, v1::ERROR_REASON_TOO_MANY_LOCKS),
      elections_(limits),
      dedup_(limits) {}

ApplyCtx LockStateMachine::Ctx(uint64_t index, Changes* changes, uint64_t ending_lease) const {
  return ApplyCtx{index, now_ms_, &leases_, changes, ending_lease};
}

// ---------------------------------------------------------------- apply

ApplyResult LockStateMachine::ApplyEntry(uint64_t index, std::string_view data) {
  if (data.empty()) {
    ApplyResult out;
    if (index <= applied_index_) {
      SetError(&out.result, {v1::ERROR_REASON_STALE_INDEX,
                             absl::StrCat("index: ", index, " <= applied index ", applied_index_)});
      return out;
    }
    applied_index_ = index;
    out.result.set_index(index);
    out.result.set_cluster_time_ms(now_ms_);
    return out;
  }
  v1::Command cmd;
  if (!cmd.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    // Consumed like any entry, so every replica advances the same way.
    cmd.Clear();
  }
  return Apply(index, cmd);
}

ApplyResult LockStateMachine::Apply(uint64_t index, const v1::Command& cmd) {
  ApplyResult out;
  if (index <= applied_index_) {
    SetError(&out.result, {v1::ERROR_REASON_STALE_INDEX,
                           absl::StrCat("index: ", index, " <= applied index ", applied_index_)});
    return out;
  }
  applied_index_ = index;
  now_ms_ = std::max(now_ms_, cmd.cluster_time_ms());
  // Expiry runs first, but must grant nothing to a lease this entry revokes:
  // the revoke would end that grant and hand the lock on with the same token
  // (the entry's index). Queues stop before that lease; if the revoke then
  // does not happen (a duplicate, an error), they are pumped after it.
  const uint64_t revoked =
      cmd.op_case() == v1::Command::kLeaseRevoke ? cmd.lease_revoke().lease_id() : 0;
  ExpireDue(index, revoked, &out.events);
  ApplyCommand(index, cmd, &out);
  if (revoked != 0 && leases_.Find(revoked) != nullptr) {
    Changes changes;
    locks_.PumpWaitsOf(revoked, Ctx(index, &changes));
    LockEvents(changes, &out.events);
    elections_.PumpWaitsOf(revoked, Ctx(index, nullptr), &out.events);
  }
  return out;
}

void LockStateMachine::ApplyCommand(uint64_t index, const v1::Command& cmd, ApplyResult* out) {
  const uint64_t client = cmd.client_id();
  if (client != 0) {
    if (cmd.sequence() == 0) {
      SetError(&out->result, {v1::ERROR_REASON_MALFORMED_COMMAND,
                              "sequence: must be >= 1 when client_id is set"});
      out->result.set_index(index);
      out->result.set_cluster_time_ms(now_ms_);
      return;
    }
    const v1::CommandResult* cached = nullptr;
    switch (dedup_.Lookup(client, cmd.sequence(), &cached)) {
      case DedupTable::Verdict::kDuplicate:
        if (!SameOperation(*cached, cmd)) {
          SetError(&out->result,
                   {v1::ERROR_REASON_MALFORMED_COMMAND,
                    absl::StrCat("sequence: ", cmd.sequence(), " of client ", client,
                                 " was used by another operation; a retry repeats its request")});
          out->result.set_index(index);
          out->result.set_cluster_time_ms(now_ms_);
          return;
        }
        out->result = *cached;
        out->duplicate = true;
        return;
      case DedupTable::Verdict::kTooOld:
        SetError(&out->result, {v1::ERROR_REASON_SEQUENCE_TOO_OLD,
                                absl::StrCat("sequence: ", cmd.sequence(), " of client ", client,
                                             " is older than the last ", limits_.dedup_window,
                                             " results kept (dedup_window)")});
        out->result.set_index(index);
        out->result.set_cluster_time_ms(now_ms_);
        return;
      case DedupTable::Verdict::kNew:
        break;
    }
  }
  uint64_t bound_lease = 0;
  Execute(index, cmd, &out->result, &out->events, &bound_lease);
  out->result.set_index(index);
  out->result.set_cluster_time_ms(now_ms_);
  if (client != 0) {
    dedup_.Record(client, cmd.sequence(), out->result, bound_lease,
                  leases_.Find(bound_lease) != nullptr, now_ms_, index);
  }
}

void LockStateMachine::ExpireDue(uint64_t index, uint64_t ending_lease,
                                 std::vector<v1::LockEvent>* events) {
  for (uint64_t lease : leases_.Due(now_ms_)) {
    EndLease(lease, v1::END_REASON_LEASE_EXPIRED, index, events, nullptr, ending_lease);
  }
  Changes changes;
  locks_.ExpireWaits(Ctx(index, &changes, ending_lease));
  LockEvents(changes, events);
  elections_.ExpireWaits(Ctx(index, nullptr, ending_lease), events);
  dedup_.Expire(now_ms_);
}

void LockStateMachine::EndLease(uint64_t lease, v1::EndReason reason, uint64_t index,
                                std::vector<v1::LockEvent>* events, v1::LeaseRevokeResult* counts,
                                uint64_t ending_lease) {
  v1::LeaseEnded* ended = events->emplace_back().mutable_lease_ended();
  ended->set_lease_id(lease);
  ended->set_reason(reason);
  Changes changes;
  auto [lock_holds, lock_waits] =
      locks_.EndLease(lease, reason, Ctx(index, &changes, ending_lease));
  LockEvents(changes, events);
  auto [leads, campaigns] =
      elections_.EndLease(lease, reason, Ctx(index, nullptr, ending_lease), events);
  dedup_.OnLeaseEnded(lease, now_ms_);
  leases_.Erase(lease);
  if (counts != nullptr) {
    counts->set_lease_id(lease);
    counts->set_released_holds(lock_holds + leads);
    counts->set_cancelled_waits(lock_waits + campaigns);
  }
}

Error CheckName(const std::string& name, const Limits& limits) {
  if (name.empty()) return {v1::ERROR_REASON_NAME_EMPTY, "name: must not be empty"};
  if (name.size() > limits.max_name_bytes) {
    return {v1::ERROR_REASON_NAME_TOO_LONG,
            absl::StrCat("name: ", name.size(), " bytes, limit is ", limits.max_name_bytes,
                         " (max_name_bytes)")};
  }
  return {};
}

namespace {

Error CheckValue(const std::string& value, const Limits& limits) {
  if (value.size() > limits.max_value_bytes) {
    return {v1::ERROR_REASON_VALUE_TOO_LONG,
            absl::StrCat("value: ", value.size(), " bytes, limit is ", limits.max_value_bytes,
                         " (max_value_bytes)")};
  }
  return {};
}

Error CheckWait(int64_t wait_timeout_ms, const Limits& limits) {
  if (wait_timeout_ms < 0 || wait_timeout_ms > limits.max_wait_timeout_ms) {
    return {v1::ERROR_REASON_WAIT_TIMEOUT_OUT_OF_RANGE,
            absl::StrCat("wait_timeout_ms: ", wait_timeout_ms, " is outside [0, ",
                         limits.max_wait_timeout_ms, "] (max_wait_timeout_ms)")};
  }
  return {};
}

// The lease a command acts for (0 for a grant, which makes its own lease).
uint64_t LeaseNamedBy(const v1::Command& cmd) {
  switch (cmd.op_case()) {
    case v1::Command::kLeaseKeepAlive:
      return cmd.lease_keep_alive().lease_id();
    case v1::Command::kLeaseRevoke:
      return cmd.lease_revoke().lease_id();
    case v1::Command::kLockAcquire:
      return cmd.lock_acquire().lease_id();
    case v1::Command::kLockRelease:
      return cmd.lock_release().lease_id();
    case v1::Command::kLockCancelWait:
      return cmd.lock_cancel_wait().lease_id();
    case v1::Command::kElectionCampaign:
      return cmd.election_campaign().lease_id();
    case v1::Command::kElectionProclaim:
      return cmd.election_proclaim().lease_id();
    case v1::Command::kElectionResign:
      return cmd.election_resign().lease_id();
    case v1::Command::kLeaseGrant:
    case v1::Command::kTimeAdvance:
    case v1::Command::OP_NOT_SET:
      return 0;
  }
  return 0;
}

}  // namespace

Error CheckCommand(const v1::Command& cmd, const Limits& limits) {
  Error err;
  switch (cmd.op_case()) {
    case v1::Command::kLeaseGrant: {
      const int64_t ttl = cmd.lease_grant().ttl_ms();
      if (ttl < limits.min_ttl_ms || ttl > limits.max_ttl_ms) {
        return {v1::ERROR_REASON_TTL_OUT_OF_RANGE,
                absl::StrCat("ttl_ms: ", ttl, " is outside [", limits.min_ttl_ms, ", ",
                             limits.max_ttl_ms, "] (min_ttl_ms, max_ttl_ms)")};
      }
      return {};
    }
    case v1::Command::kLockAcquire: {
      const v1::LockAcquire& c = cmd.lock_acquire();
      if (err = CheckName(c.name(), limits); !err.ok()) return err;
      if (!v1::LockMode_IsValid(c.mode())) {
        return {v1::ERROR_REASON_INVALID_MODE,
                absl::StrCat("mode: ", static_cast<int>(c.mode()), " is not a lock mode")};
      }
      if (c.permits() > limits.max_permits) {
        return {v1::ERROR_REASON_PERMITS_OUT_OF_RANGE,
                absl::StrCat("permits: ", c.permits(), " exceeds ", limits.max_permits,
                             " (max_permits)")};
      }
      return CheckWait(c.wait_timeout_ms(), limits);
    }
    case v1::Command::kLockRelease:
      return CheckName(cmd.lock_release().name(), limits);
    case v1::Command::kLockCancelWait:
      return CheckName(cmd.lock_cancel_wait().name(), limits);
    case v1::Command::kElectionCampaign: {
      const v1::ElectionCampaign& c = cmd.election_campaign();
      if (err = CheckName(c.name(), limits); !err.ok()) return err;
      if (err = CheckValue(c.value(), limits); !err.ok()) return err;
      return CheckWait(c.wait_timeout_ms(), limits);
    }
    case v1::Command::kElectionProclaim: {
      const v1::ElectionProclaim& c = cmd.election_proclaim();
      if (err = CheckName(c.name(), limits); !err.ok()) return err;
      return CheckValue(c.value(), limits);
    }
    case v1::Command::kElectionResign:
      return CheckName(cmd.election_resign().name(), limits);
    case v1::Command::kLeaseKeepAlive:
    case v1::Command::kLeaseRevoke:
    case v1::Command::kTimeAdvance:
      return {};
    case v1::Command::OP_NOT_SET:
      return {v1::ERROR_REASON_MALFORMED_COMMAND, "op: no operation set (or unparsable entry)"};
  }
  return {v1::ERROR_REASON_MALFORMED_COMMAND, "op: unknown operation"};
}

Error LockStateMachine::CheckLease(uint64_t lease) const {
  if (leases_.Find(lease) == nullptr) {
    return {v1::ERROR_REASON_LEASE_NOT_FOUND,
            absl::StrCat("lease_id: lease ", lease, " does not exist (never granted, revoked or ",
                         "expired)")};
  }
  return {};
}

void LockStateMachine::Execute(uint64_t index, const v1::Command& cmd, v1::CommandResult* result,
                               std::vector<v1::LockEvent>* events, uint64_t* bound_lease) {
  *bound_lease = LeaseNamedBy(cmd);
  Error err = CheckCommand(cmd, limits_);
  if (!err.ok()) {
    SetError(result, err);
    return;
  }
  Changes changes;
  switch (cmd.op_case()) {
    case v1::Command::kLeaseGrant: {
      const int64_t ttl = cmd.lease_grant().ttl_ms();
      if (leases_.size() >= limits_.max_leases) {
        err = {v1::ERROR_REASON_TOO_MANY_LEASES,
               absl::StrCat("too many leases: limit is ", limits_.max_leases, " (max_leases)")};
        break;
      }
      leases_.Grant(index, ttl, now_ms_);
      *bound_lease = index;
      v1::LeaseGrantResult* r = result->mutable_lease_grant();
      r->set_lease_id(index);
      r->set_ttl_ms(ttl);
      r->set_deadline_ms(leases_.Find(index)->deadline_ms);
      break;
    }
    case v1::Command::kLeaseKeepAlive: {
      const uint64_t id = cmd.lease_keep_alive().lease_id();
      if (err = CheckLease(id); !err.ok()) break;
      leases_.KeepAlive(id, now_ms_);
      const Lease* lease = leases_.Find(id);
      v1::LeaseKeepAliveResult* r = result->mutable_lease_keep_alive();
      r->set_lease_id(id);
      r->set_ttl_ms(lease->ttl_ms);
      r->set_deadline_ms(lease->deadline_ms);
      break;
    }
    case v1::Command::kLeaseRevoke: {
      const uint64_t id = cmd.lease_revoke().lease_id();
      if (err = CheckLease(id); !err.ok()) break;
      EndLease(id, v1::END_REASON_LEASE_REVOKED, index, events, result->mutable_lease_revoke());
      break;
    }
    case v1::Command::kLockAcquire: {
      const v1::LockAcquire& c = cmd.lock_acquire();
      if (err = CheckLease(c.lease_id()); !err.ok()) break;
      AcquireRequest req;
      req.name = c.name();
      req.lease = c.lease_id();
      req.mode = c.mode();
      req.permits = c.permits();
      req.wait_timeout_ms = c.wait_timeout_ms();
      req.client_id = cmd.client_id();
      req.sequence = cmd.sequence();
      AcquireReply a = locks_.Acquire(req, Ctx(index, &changes));
      LockEvents(changes, events);
      if (err = a.error; !err.ok()) break;
      v1::LockAcquireResult* r = result->mutable_lock_acquire();
      r->set_outcome(a.outcome);
      r->set_token(a.token);
      r->set_queue_position(a.position);
      r->set_wait_deadline_ms(a.deadline_ms);
      r->set_already(a.already);
      r->set_permits(a.permits);
      break;
    }
    case v1::Command::kLockRelease: {
      const v1::LockRelease& c = cmd.lock_release();
      if (err = CheckLease(c.lease_id()); !err.ok()) break;
      err = locks_.Release(c.name(), c.lease_id(), c.token(), v1::END_REASON_RELEASED,
                           Ctx(index, &changes));
      LockEvents(changes, events);
      if (err.ok()) result->mutable_lock_release()->set_token(c.token());
      break;
    }
    case v1::Command::kLockCancelWait: {
      const v1::LockCancelWait& c = cmd.lock_cancel_wait();
      if (err = CheckLease(c.lease_id()); !err.ok()) break;
      err = locks_.CancelWait(c.name(), c.lease_id(), Ctx(index, &changes));
      LockEvents(changes, events);
      if (err.ok()) result->mutable_lock_cancel_wait();
      break;
    }
    case v1::Command::kElectionCampaign: {
      const v1::ElectionCampaign& c = cmd.election_campaign();
      if (err = CheckLease(c.lease_id()); !err.ok()) break;
      AcquireRequest req;
      req.name = c.name();
      req.lease = c.lease_id();
      req.value = c.value();
      req.wait_timeout_ms = c.wait_timeout_ms();
      req.client_id = cmd.client_id();
      req.sequence = cmd.sequence();
      CampaignReply reply = elections_.Campaign(req, Ctx(index, nullptr), events);
      if (err = reply.error; !err.ok()) break;
      *result->mutable_election_campaign() = reply.result;
      break;
    }
    case v1::Command::kElectionProclaim: {
      const v1::ElectionProclaim& c = cmd.election_proclaim();
      if (err = CheckLease(c.lease_id()); !err.ok()) break;
      uint64_t epoch = 0;
      err = elections_.Proclaim(c.name(), c.lease_id(), c.token(), c.value(), Ctx(index, nullptr),
                                events, &epoch);
      if (err.ok()) result->mutable_election_proclaim()->set_epoch(epoch);
      break;
    }
    case v1::Command::kElectionResign: {
      const v1::ElectionResign& c = cmd.election_resign();
      if (err = CheckLease(c.lease_id()); !err.ok()) break;
      v1::ElectionResignResult r;
      err = elections_.Resign(c.name(), c.lease_id(), c.token(), Ctx(index, nullptr), events, &r);
      if (err.ok()) *result->mutable_election_resign() = r;
      break;
    }
    case v1::Command::kTimeAdvance:
      result->mutable_time_advance();
      break;
    case v1::Command::OP_NOT_SET:
      break;  // refused by CheckCommand above
  }
  if (!err.ok()) SetError(result, err);
}

// ---------------------------------------------------------------- queries

int64_t LockStateMachine::TtlLeft(uint64_t lease) const {
  const Lease* l = leases_.Find(lease);
  return l == nullptr ? 0 : std::max<int64_t>(0, l->deadline_ms - now_ms_);
}

v1::LeaseInfo LockStateMachine::LeaseView(const Lease& lease) const {
  v1::LeaseInfo info;
  info.set_lease_id(lease.id);
  info.set_ttl_ms(lease.ttl_ms);
  info.set_ttl_remaining_ms(TtlLeft(lease.id));
  info.set_deadline_ms(lease.deadline_ms);
  info.set_last_keepalive_ms(lease.last_keepalive_ms);
  for (const std::string& n : locks_.HeldBy(lease.id)) info.add_locks(n);
  for (const std::string& n : locks_.WaitedBy(lease.id)) info.add_waiting(n);
  for (const std::string& n : elections_.table().HeldBy(lease.id)) info.add_elections(n);
  return info;
}

std::optional<v1::LeaseInfo> LockStateMachine::TimeToLive(uint64_t lease_id) const {
  const Lease* lease = leases_.Find(lease_id);
  if (lease == nullptr) return std::nullopt;
  return LeaseView(*lease);
}

std::vector<v1::LeaseInfo> LockStateMachine::ListLeases() const {
  return ListLeasesPage(0, SIZE_MAX, SIZE_MAX).entries;
}

namespace {

// Adds `info` to `page` unless that would pass `limit` entries or `max_bytes`
// (the first entry is always added); returns false, marking more, if not.
template <typename Info>
bool AddToPage(Info info, size_t limit, size_t max_bytes, size_t* bytes, ListPage<Info>* page) {
  const size_t size = info.ByteSizeLong();
  if (page->entries.size() >= limit ||
      (!page->entries.empty() && (size > max_bytes || *bytes > max_bytes - size))) {
    page->more = true;
    return false;
  }
  *bytes += size;
  page->entries.push_back(std::move(info));
  return true;
}

}  // namespace

ListPage<v1::LeaseInfo> LockStateMachine::ListLeasesPage(uint64_t after_id, size_t limit,
                                                         size_t max_bytes) const {
  ListPage<v1::LeaseInfo> page;
  size_t bytes = 0;
  for (auto it = leases_.all().upper_bound(after_id); it != leases_.all().end(); ++it) {
    if (!AddToPage(LeaseView(it->second), limit, max_bytes, &bytes, &page)) break;
  }
  return page;
}

v1::LockInfo LockStateMachine::LockView(const std::string& name, const LockEntry& lock,
                                        size_t max_listed) const {
  v1::LockInfo info;
  info.set_name(name);
  info.set_permits(lock.permits);
  info.set_holder_count(static_cast<uint32_t>(lock.holders.size()));
  info.set_waiter_count(static_cast<uint32_t>(lock.waiters.size()));
  for (const Holder& h : lock.holders) {
    if (static_cast<size_t>(info.holders_size()) >= max_listed) break;
    v1::LockHolder* o = info.add_holders();
    o->set_lease_id(h.lease);
    o->set_mode(h.mode);
    o->set_token(h.token);
    o->set_granted_ms(h.granted_ms);
    o->set_lease_ttl_remaining_ms(TtlLeft(h.lease));
  }
  uint32_t pos = 0;
  for (const Waiter& w : lock.waiters) {
    if (pos >= max_listed) break;
    v1::LockWaiter* o = info.add_waiters();
    o->set_lease_id(w.lease);
    o->set_mode(w.mode);
    o->set_position(++pos);
    o->set_wait_deadline_ms(w.deadline_ms);
    o->set_lease_ttl_remaining_ms(TtlLeft(w.lease));
  }
  return info;
}

std::optional<v1::LockInfo> LockStateMachine::Describe(const std::string& name,
                                                       size_t max_listed) const {
  const LockEntry* lock = locks_.Find(name);
  if (lock == nullptr) return std::nullopt;
  return LockView(name, *lock, max_listed);
}

std::optional<uint64_t> LockStateMachine::HoldToken(const std::string& name, uint64_t lease) const {
  const Holder* hold = locks_.HoldOf(name, lease);
  if (hold == nullptr) return std::nullopt;
  return hold->token;
}

bool LockStateMachine::Waits(const std::string& name, uint64_t lease) const {
  return locks_.Waits(name, lease);
}

std::vector<v1::LockInfo> LockStateMachine::ListLocks(std::string_view prefix) const {
  return ListLocksPage(prefix, "", SIZE_MAX, SIZE_MAX).entries;
}

ListPage<v1::LockInfo> LockStateMachine::ListLocksPage(std::string_view prefix,
                                                       std::string_view after, size_t limit,
                                                       size_t max_bytes) const {
  ListPage<v1::LockInfo> page;
  size_t bytes = 0;
  auto it = after < prefix ? locks_.all().lower_bound(std::string(prefix))
                           : locks_.all().upper_bound(std::string(after));
  for (; it != locks_.all().end() && it->first.starts_with(prefix); ++it) {
    if (!AddToPage(LockView(it->first, it->second), limit, max_bytes, &bytes, &page)) break;
  }
  return page;
}

v1::TokenCheck LockStateMachine::ValidateToken(const std::string& name, uint64_t token) const {
  v1::TokenCheck check;
  const LockEntry* lock = locks_.Find(name);
  if (lock == nullptr) return check;
  for (const Holder& h : lock->holders) {
    if (h.token == token && token != 0) check.set_valid(true);
    check.set_current_token(std::max(check.current_token(), h.token));
  }
  return check;
}

v1::ElectionInfo LockStateMachine::Leader(const std::string& name) const {
  return elections_.Info(name);
}

std::vector<v1::ElectionInfo> LockStateMachine::ListElections(std::string_view prefix) const {
  std::vector<v1::ElectionInfo> out;
  for (const std::string& name : elections_.Names()) {
    if (name.starts_with(prefix)) out.push_back(elections_.Info(name));
  }
  return out;
}

v1::ObserveResult LockStateMachine::Observe(const std::string& name, uint64_t after_epoch) const {
  return elections_.Observe(name, after_epoch);
}

// ---------------------------------------------------------------- snapshots

std::string LockStateMachine::Snapshot() const {
  v1::LockSnapshot snap;
  snap.set_format_version(kSnapshotFormatVersion);
  snap.set_applied_index(applied_index_);
  snap.set_cluster_time_ms(now_ms_);
  for (const auto& [id, lease] : leases_.all()) {
    v1::SnapshotLease* s = snap.add_leases();
    s->set_lease_id(id);
    s->set_ttl_ms(lease.ttl_ms);
    s->set_deadline_ms(lease.deadline_ms);
    s->set_last_keepalive_ms(lease.last_keepalive_ms);
  }
  locks_.ToSnapshot(snap.mutable_locks());
  elections_.ToSnapshot(&snap);
  dedup_.ToSnapshot(&snap);
  std::string out;
  snap.SerializeToString(&out);
  return out;
}

absl::Status LockStateMachine::Restore(std::string_view image) {
  v1::LockSnapshot snap;
  if (!snap.ParseFromArray(image.data(), static_cast<int>(image.size()))) {
    return absl::DataLossError("lock snapshot: cannot parse");
  }
  if (snap.format_version() != kSnapshotFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("lock snapshot: format version ", snap.format_version(),
                     " is not supported (this build reads version ", kSnapshotFormatVersion, ")"));
  }
  LockStateMachine fresh(limits_);
  fresh.applied_index_ = snap.applied_index();
  fresh.now_ms_ = snap.cluster_time_ms();
  for (const v1::SnapshotLease& s : snap.leases()) {
    fresh.leases_.Insert(Lease{s.lease_id(), s.ttl_ms(), s.deadline_ms(), s.last_keepalive_ms()});
  }
  fresh.locks_.FromSnapshot(snap.locks());
  fresh.elections_.FromSnapshot(snap);
  fresh.dedup_.FromSnapshot(snap);
  if (std::string err = fresh.CheckInvariantsImpl(/*bounds=*/false); !err.empty()) {
    return absl::DataLossError("lock snapshot: inconsistent: " + err);
  }
  *this = std::move(fresh);
  return absl::OkStatus();
}

uint64_t LockStateMachine::Digest() const { return Fnv1a(Snapshot()); }

std::string LockStateMachine::CheckInvariants() const { return CheckInvariantsImpl(true); }

std::string LockStateMachine::CheckInvariantsImpl(bool bounds) const {
  for (const auto& [id, lease] : leases_.all()) {
    if (lease.deadline_ms <= now_ms_ && applied_index_ != 0) {
      return absl::StrCat("lease ", id, " past its deadline but not expired");
    }
    if (lease.deadline_ms != AddMs(lease.last_keepalive_ms, lease.ttl_ms)) {
      return absl::StrCat("lease ", id, " deadline is not last keepalive + ttl");
    }
  }
  if (bounds && leases_.size() > limits_.max_leases) return "more leases than max_leases";
  if (std::string e = locks_.CheckInvariants(leases_, now_ms_); !e.empty()) return e;
  if (std::string e = elections_.CheckInvariants(leases_, now_ms_, bounds); !e.empty()) return e;
  if (std::string e = dedup_.CheckInvariants(bounds); !e.empty()) return e;
  return "";
}

}  // namespace raftlock::lock
