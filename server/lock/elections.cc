#include "server/lock/elections.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace raftlock::lock {

Elections::Elections(const Limits& limits)
    : limits_(limits),
      table_(limits.max_elections, limits.max_waiters_per_lock,
             v1::ERROR_REASON_TOO_MANY_ELECTIONS) {}

uint64_t Elections::Record(v1::ElectionEvent ev, const ApplyCtx& ctx,
                           std::vector<v1::LockEvent>* events) {
  ev.set_epoch(++last_epoch_);
  ev.set_index(ctx.index);
  ev.set_cluster_time_ms(ctx.now_ms);
  Meta& meta = meta_[ev.name()];
  idle_.erase({meta.last_change_index, ev.name()});
  meta.last_change_index = ctx.index;
  meta.history.push_back(ev);
  const size_t keep = std::max<size_t>(1, limits_.election_history);
  while (meta.history.size() > keep) {
    meta.dropped_through = meta.history.front().epoch();
    meta.history.pop_front();
  }
  *events->emplace_back().mutable_election() = std::move(ev);
  return last_epoch_;
}

void Elections::Absorb(const Changes& changes, const ApplyCtx& ctx,
                       std::vector<v1::LockEvent>* events) {
  std::set<std::string> touched;
  for (const Change& c : changes) {
    touched.insert(c.name);
    if (c.kind == Change::Kind::kWaitEnded) {
      v1::WaitEnded* w = events->emplace_back().mutable_wait_ended();
      w->set_name(c.name);
      w->set_lease_id(c.waiter.lease);
      w->set_election(true);
      w->set_reason(c.reason);
      w->set_client_id(c.waiter.client_id);
      w->set_sequence(c.waiter.sequence);
      continue;
    }
    v1::ElectionEvent ev;
    ev.set_name(c.name);
    if (c.kind == Change::Kind::kGranted) {
      ev.set_type(v1::ELECTION_EVENT_ELECTED);
      ev.set_leader_lease_id(c.holder.lease);
      ev.set_value(c.holder.value);
      ev.set_token(c.holder.token);
    } else {
      ev.set_type(v1::ELECTION_EVENT_NO_LEADER);
      ev.set_reason(c.reason);
    }
    Record(std::move(ev), ctx, events);
  }
  for (const std::string& name : touched) Settle(name);
  TrimIdle();
}

void Elections::Settle(const std::string& name) {
  auto it = meta_.find(name);
  if (it == meta_.end()) return;
  std::pair<uint64_t, std::string> key{it->second.last_change_index, name};
  if (table_.Find(name) != nullptr) {
    idle_.erase(key);
  } else {
    idle_.insert(key);
  }
}

void Elections::TrimIdle() {
  while (idle_.size() > limits_.max_idle_elections) {
    meta_.erase(idle_.begin()->second);
    idle_.erase(idle_.begin());
  }
}

CampaignReply Elections::Campaign(const AcquireRequest& req, const ApplyCtx& ctx,
                                  std::vector<v1::LockEvent>* events) {
  CampaignReply reply;
  Changes changes;
  ApplyCtx local = ctx;
  local.changes = &changes;
  AcquireReply a = table_.Acquire(req, local);
  Absorb(changes, ctx, events);
  Settle(req.name);
  TrimIdle();
  reply.error = a.error;
  if (!a.error.ok()) return reply;
  v1::ElectionCampaignResult& r = reply.result;
  r.set_outcome(a.outcome);
  r.set_token(a.token);
  r.set_queue_position(a.position);
  r.set_wait_deadline_ms(a.deadline_ms);
  r.set_already(a.already);
  if (a.outcome == v1::ACQUIRE_OUTCOME_GRANTED) r.set_epoch(Info(req.name).epoch());
  return reply;
}

Error Elections::Proclaim(const std::string& name, uint64_t lease, uint64_t token,
                          const std::string& value, const ApplyCtx& ctx,
                          std::vector<v1::LockEvent>* events, uint64_t* epoch) {
  const Holder* h = table_.HoldOf(name, lease);
  if (h == nullptr) {
    return {v1::ERROR_REASON_NOT_HELD,
            absl::StrCat("lease_id: lease ", lease, " is not the leader of '", name, "'")};
  }
  if (h->token != token) {
    return {v1::ERROR_REASON_WRONG_TOKEN, absl::StrCat("token: the leadership of '", name,
                                                       "' has token ", h->token, ", not ", token)};
  }
  table_.SetValue(name, lease, value);
  v1::ElectionEvent ev;
  ev.set_name(name);
  ev.set_type(v1::ELECTION_EVENT_PROCLAIMED);
  ev.set_leader_lease_id(lease);
  ev.set_value(value);
  ev.set_token(token);
  *epoch = Record(std::move(ev), ctx, events);
  return {};
}

Error Elections::Resign(const std::string& name, uint64_t lease, uint64_t token,
                        const ApplyCtx& ctx, std::vector<v1::LockEvent>* events,
                        v1::ElectionResignResult* result) {
  const Holder* h = table_.HoldOf(name, lease);
  Changes changes;
  ApplyCtx local = ctx;
  local.changes = &changes;
  if (token == 0) {
    if (h != nullptr) {
      return {v1::ERROR_REASON_WRONG_TOKEN,
              absl::StrCat("token: the leader of '", name, "' must name its token to resign")};
    }
    Error e = table_.CancelWait(name, lease, local);
    Absorb(changes, ctx, events);
    return e;
  }
  if (h == nullptr) {
    return {v1::ERROR_REASON_NOT_HELD,
            absl::StrCat("lease_id: lease ", lease, " is not the leader of '", name, "'")};
  }
  if (h->token != token) {
    return {v1::ERROR_REASON_WRONG_TOKEN, absl::StrCat("token: the leadership of '", name,
                                                       "' has token ", h->token, ", not ", token)};
  }
  table_.Release(name, lease, token, v1::END_REASON_RELEASED, local);
  const uint64_t before = last_epoch_;
  Absorb(changes, ctx, events);
  result->set_was_leader(true);
  result->set_epoch(before + 1);  // the NO_LEADER event is recorded first
  return {};
}

std::pair<uint32_t, uint32_t> Elections::EndLease(uint64_t lease, v1::EndReason reason,
                                                  const ApplyCtx& ctx,
                                                  std::vector<v1::LockEvent>* events) {
  Changes changes;
  ApplyCtx local = ctx;
  local.changes = &changes;
  auto counts = table_.EndLease(lease, reason, local);
  Absorb(changes, ctx, events);
  return counts;
}

void Elections::ExpireWaits(const ApplyCtx& ctx, std::vector<v1::LockEvent>* events) {
  Changes changes;
  ApplyCtx local = ctx;
  local.changes = &changes;
  table_.ExpireWaits(local);
  Absorb(changes, ctx, events);
}

void Elections::PumpWaitsOf(uint64_t lease, const ApplyCtx& ctx,
                            std::vector<v1::LockEvent>* events) {
  Changes changes;
  ApplyCtx local = ctx;
  local.changes = &changes;
  table_.PumpWaitsOf(lease, local);
  Absorb(changes, ctx, events);
}

v1::ElectionInfo Elections::Info(const std::string& name) const {
  v1::ElectionInfo info;
  info.set_name(name);
  if (const LockEntry* e = table_.Find(name)) {
    if (!e->holders.empty()) {
      const Holder& h = e->holders.front();
      info.set_has_leader(true);
      info.set_leader_lease_id(h.lease);
      info.set_value(h.value);
      info.set_token(h.token);
    }
    for (const Waiter& w : e->waiters) info.add_candidates(w.lease);
  }
  auto it = meta_.find(name);
  if (it != meta_.end() && !it->second.history.empty()) {
    info.set_epoch(it->second.history.back().epoch());
  }
  return info;
}

v1::ObserveResult Elections::Observe(const std::string& name, uint64_t after_epoch) const {
  v1::ObserveResult r;
  *r.mutable_current() = Info(name);
  auto it = meta_.find(name);
  if (it == meta_.end()) {
    // Nothing kept: the election never changed, or was idle and forgotten. If
    // any epoch was handed out after `after_epoch`, it may have been ours.
    r.set_skipped(after_epoch > 0 && after_epoch < last_epoch_);
    return r;
  }
  const Meta& meta = it->second;
  // An observer's after_epoch is 0 or the epoch of an event of this name. One
  // older than the kept history that is not its last dropped event was lost:
  // trimmed, or in an earlier use of the name that was forgotten while idle.
  const uint64_t oldest_kept = meta.history.empty() ? 0 : meta.history.front().epoch();
  if (after_epoch < meta.dropped_through ||
      (after_epoch > meta.dropped_through && after_epoch < oldest_kept)) {
    r.set_skipped(true);
    return r;
  }
  for (const v1::ElectionEvent& ev : meta.history) {
    if (ev.epoch() > after_epoch) *r.add_events() = ev;
  }
  return r;
}

uint64_t Elections::ElectedEpoch(const std::string& name, uint64_t lease, uint64_t token) const {
  auto it = meta_.find(name);
  if (it == meta_.end()) return 0;
  for (const v1::ElectionEvent& ev : it->second.history) {
    if (ev.type() == v1::ELECTION_EVENT_ELECTED && ev.leader_lease_id() == lease &&
        ev.token() == token) {
      return ev.epoch();
    }
  }
  return 0;
}

std::vector<std::string> Elections::Names() const {
  std::set<std::string> names;
  for (const auto& [name, e] : table_.all()) names.insert(name);
  for (const auto& [name, m] : meta_) names.insert(name);
  return {names.begin(), names.end()};
}

void Elections::ToSnapshot(v1::LockSnapshot* out) const {
  out->set_last_epoch(last_epoch_);
  table_.ToSnapshot(out->mutable_election_locks());
  for (const auto& [name, meta] : meta_) {
    v1::SnapshotElection* s = out->add_elections();
    s->set_name(name);
    for (const v1::ElectionEvent& ev : meta.history) *s->add_history() = ev;
    s->set_last_change_index(meta.last_change_index);
    s->set_dropped_through_epoch(meta.dropped_through);
  }
}

void Elections::FromSnapshot(const v1::LockSnapshot& in) {
  last_epoch_ = in.last_epoch();
  table_.FromSnapshot(in.election_locks());
  for (const v1::SnapshotElection& s : in.elections()) {
    Meta& meta = meta_[s.name()];
    meta.history.assign(s.history().begin(), s.history().end());
    meta.last_change_index = s.last_change_index();
    meta.dropped_through = s.dropped_through_epoch();
    Settle(s.name());
  }
}

std::string Elections::CheckInvariants(const LeaseTable& leases, int64_t now_ms,
                                       bool bounds) const {
  std::string err = table_.CheckInvariants(leases, now_ms);
  if (!err.empty()) return "election " + err;
  for (const auto& [name, e] : table_.all()) {
    if (e.holders.size() > 1) return "two leaders: " + name;
  }
  for (const auto& [name, meta] : meta_) {
    uint64_t prev = meta.dropped_through;
    for (const v1::ElectionEvent& ev : meta.history) {
      if (ev.epoch() <= prev || ev.epoch() > last_epoch_) return "epochs out of order: " + name;
      prev = ev.epoch();
    }
    const bool idle = table_.Find(name) == nullptr;
    if (idle != idle_.contains({meta.last_change_index, name})) return "idle index: " + name;
  }
  if (bounds && idle_.size() > limits_.max_idle_elections) return "too many idle elections kept";
  return "";
}

}  // namespace raftlock::lock
