#include "tests/lock_sim/lock_checker.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace raftlock::lock_sim {
namespace {

std::string ModeName(v1::LockMode mode) {
  return mode == v1::LOCK_MODE_EXCLUSIVE ? "exclusive" : "shared";
}

template <typename H>
std::string DescribeHolders(const std::vector<H>& holders) {
  std::string s;
  for (const H& h : holders) {
    absl::StrAppend(&s, s.empty() ? "" : ", ", "lease ", h.lease, " ", ModeName(h.mode), " token ",
                    h.token);
  }
  return s;
}

// Mutual exclusion over one lock's holders; "" if it holds.
template <typename H>
std::string ExclusionProblem(const std::vector<H>& holders, uint32_t permits) {
  const bool exclusive = std::any_of(holders.begin(), holders.end(),
                                     [](const H& h) { return h.mode == v1::LOCK_MODE_EXCLUSIVE; });
  if (exclusive && holders.size() > 1) {
    return absl::StrCat("an exclusive holder is not alone: ", DescribeHolders(holders));
  }
  if (permits != 0 && holders.size() > permits) {
    return absl::StrCat(holders.size(), " holders on a semaphore of ", permits,
                        " permits: ", DescribeHolders(holders));
  }
  return "";
}

}  // namespace

void Activity::Add(const Activity& o) {
  commands += o.commands;
  grants += o.grants;
  handoffs += o.handoffs;
  shared_grants += o.shared_grants;
  releases += o.releases;
  stale_releases_refused += o.stale_releases_refused;
  busy += o.busy;
  queued += o.queued;
  wait_timeouts += o.wait_timeouts;
  keepalives += o.keepalives;
  expiries += o.expiries;
  revokes += o.revokes;
  expiry_margin_checks += o.expiry_margin_checks;
  max_semaphore_holders = std::max(max_semaphore_holders, o.max_semaphore_holders);
  min_expiry_slack_ms = std::min(min_expiry_slack_ms, o.min_expiry_slack_ms);
}

std::string Activity::ToString() const {
  return absl::StrCat(
      "commands=", commands, " grants=", grants, " handoffs=", handoffs,
      " shared-grants=", shared_grants, " releases=", releases,
      " stale-releases-refused=", stale_releases_refused, " busy=", busy, " queued=", queued,
      " wait-timeouts=", wait_timeouts, " keepalives=", keepalives, " expiries=", expiries,
      " expiries-checked-in-sim-time=", expiry_margin_checks, " min-expiry-slack-ms=",
      expiry_margin_checks == 0 ? std::string("n/a") : absl::StrCat(min_expiry_slack_ms),
      " revokes=", revokes, " max-semaphore-holders=", max_semaphore_holders);
}

void LockChecker::Fail(std::string what) {
  if (!violation_) violation_ = std::move(what);
}

void LockChecker::Reseed(NodeModel& m, const LockSimStateMachine& sm) {
  m = NodeModel{};
  m.serial = sm.serial();
  m.restores = sm.restores();
  for (const auto& [name, lock] : sm.state().locks().all()) {
    m.permits[name] = lock.permits;
    for (const lock::Holder& h : lock.holders) {
      m.holders[name].push_back(Hold{h.lease, h.mode, h.token});
      if (h.token >= m.last_token[name]) {
        m.last_token[name] = h.token;
        m.last_grant_index[name] = h.token;
      }
    }
  }
}

void LockChecker::OnRestore(uint64_t node, const LockSimStateMachine& sm) {
  Reseed(nodes_[node], sm);
  CheckState(node, sm, "after a snapshot restore");
}

void LockChecker::OnApply(uint64_t node, const raft::Entry& entry, const LockSimStateMachine& sm,
                          bool first) {
  NodeModel& m = nodes_[node];
  if (m.serial != sm.serial()) {
    // A restarted node without a snapshot: its new machine started empty.
    m = NodeModel{};
    m.serial = sm.serial();
  }
  if (m.restores != sm.restores()) Reseed(m, sm);  // not expected: OnRestore reseeds
  if (!sm.last_was_command()) return;
  const uint64_t index = entry.index();
  const v1::Command& cmd = sm.last_command();
  for (const v1::LockEvent& ev : sm.last_result().events) {
    switch (ev.kind_case()) {
      case v1::LockEvent::kLockGranted:
        OnGrant(node, m, ev.lock_granted(), index, sm);
        break;
      case v1::LockEvent::kLockReleased:
        OnRelease(node, m, ev.lock_released(), index, cmd);
        break;
      case v1::LockEvent::kLeaseEnded:
        if (ev.lease_ended().reason() == v1::END_REASON_LEASE_EXPIRED) {
          OnExpiry(node, ev.lease_ended().lease_id(), entry, sm, first);
        }
        break;
      default:
        break;
    }
  }
  RecordAccepted(entry, sm);
  CompareModel(node, m, sm, index);
  CheckState(node, sm, absl::StrCat("after index ", index));
  if (first) Count(sm);
}

void LockChecker::OnGrant(uint64_t node, NodeModel& m, const v1::LockGranted& g, uint64_t index,
                          const LockSimStateMachine& sm) {
  const std::string& name = g.name();
  const uint64_t token = g.token();
  const std::string where = absl::StrCat("node ", node, ", index ", index, ", lock '", name,
                                         "' granted to lease ", g.lease_id());
  if (token != index) {
    Fail(absl::StrCat("Fencing: ", where, " with token ", token,
                      ", not the granting entry's index"));
  }
  std::map<uint64_t, uint64_t>& per = grants_[name];
  auto [it, inserted] = per.emplace(index, token);
  if (!inserted && it->second != token) {
    Fail(absl::StrCat("Fencing: ", where, " with token ", token, " but another node granted token ",
                      it->second, " in that entry"));
  }
  if (it != per.begin() && std::prev(it)->second >= token) {
    Fail(absl::StrCat("Fencing: ", where, " with token ", token, ", not above token ",
                      std::prev(it)->second, " granted at index ", std::prev(it)->first));
  }
  if (std::next(it) != per.end() && std::next(it)->second <= token) {
    Fail(absl::StrCat("Fencing: ", where, " with token ", token, ", not below token ",
                      std::next(it)->second, " granted later at index ", std::next(it)->first));
  }
  if (auto released = m.last_release.find(name);
      released != m.last_release.end() && released->second == std::pair{index, token}) {
    Fail(absl::StrCat("Fencing: ", where, " with token ", token,
                      ", which a hold released earlier in the same entry had"));
  }
  auto last = m.last_token.find(name);
  if (last != m.last_token.end() &&
      (token < last->second || (token == last->second && m.last_grant_index[name] != index))) {
    Fail(absl::StrCat("Fencing: ", where, " with token ", token, " after this node granted token ",
                      last->second));
  }
  m.last_token[name] = token;
  m.last_grant_index[name] = index;

  std::vector<Hold>& holds = m.holders[name];
  for (const Hold& h : holds) {
    if (h.lease == g.lease_id()) {
      Fail(absl::StrCat("Mutual exclusion: ", where, " which already holds it"));
    }
  }
  holds.push_back(Hold{g.lease_id(), g.mode(), token});
  if (const lock::LockEntry* e = sm.state().locks().Find(name); e != nullptr) {
    m.permits[name] = e->permits;
  }
  if (std::string p = ExclusionProblem(holds, m.permits[name]); !p.empty()) {
    Fail(absl::StrCat("Mutual exclusion: ", where, ": the grants answered to clients leave ", p));
  }
}

void LockChecker::OnRelease(uint64_t node, NodeModel& m, const v1::LockReleased& r, uint64_t index,
                            const v1::Command& cmd) {
  std::vector<Hold>& holds = m.holders[r.name()];
  auto it = std::find_if(holds.begin(), holds.end(), [&](const Hold& h) {
    return h.lease == r.lease_id() && h.token == r.token();
  });
  if (it == holds.end()) {
    Fail(absl::StrCat("Event stream: node ", node, ", index ", index, " released '", r.name(),
                      "' of lease ", r.lease_id(), " token ", r.token(),
                      ", which no grant gave it"));
  } else {
    holds.erase(it);
  }
  if (holds.empty()) m.holders.erase(r.name());
  m.last_release[r.name()] = {index, r.token()};
  if (r.reason() == v1::END_REASON_RELEASED &&
      (!cmd.has_lock_release() || cmd.lock_release().name() != r.name() ||
       cmd.lock_release().lease_id() != r.lease_id() || cmd.lock_release().token() != r.token())) {
    Fail(absl::StrCat("Owner-checked release: node ", node, ", index ", index, " released '",
                      r.name(), "' of lease ", r.lease_id(), " token ", r.token(),
                      " for a command that did not name that hold: ", cmd.ShortDebugString()));
  }
}

void LockChecker::RecordAccepted(const raft::Entry& entry, const LockSimStateMachine& sm) {
  const lock::ApplyResult& applied = sm.last_result();
  const v1::CommandResult& r = applied.result;
  if (applied.duplicate || r.code() != 0) return;
  uint64_t lease = 0;
  if (r.has_lease_grant()) {
    lease = r.lease_grant().lease_id();
    ttl_[lease] = r.lease_grant().ttl_ms();
  } else if (r.has_lease_keep_alive()) {
    lease = r.lease_keep_alive().lease_id();
  } else {
    return;
  }
  accepted_[lease].emplace(
      entry.index(),
      Accepted{r.cluster_time_ms(), proposals_->TickOf(entry.index(), entry.term())});
}

void LockChecker::OnExpiry(uint64_t node, uint64_t lease, const raft::Entry& entry,
                           const LockSimStateMachine& sm, bool first) {
  const uint64_t index = entry.index();
  auto acc = accepted_.find(lease);
  auto ttl = ttl_.find(lease);
  if (acc == accepted_.end() || ttl == ttl_.end() ||
      acc->second.lower_bound(index) == acc->second.begin()) {
    Fail(absl::StrCat("Lease TTL: node ", node, ", index ", index, ": lease ", lease,
                      " expired, but no accepted grant of it was seen"));
    return;
  }
  const auto last = std::prev(acc->second.lower_bound(index));
  const int64_t now_ms = sm.state().cluster_time_ms();
  const std::string where =
      absl::StrCat("node ", node, ", index ", index, ": lease ", lease, " (ttl ", ttl->second,
                   " ms) expired; its last accepted grant/keepalive is index ", last->first);
  if (now_ms - last->second.cluster_ms < ttl->second) {
    Fail(absl::StrCat("Lease TTL (cluster time): ", where, " at cluster time ",
                      last->second.cluster_ms, ", only ", now_ms - last->second.cluster_ms,
                      " ms before the expiring entry's cluster time ", now_ms));
  }
  const std::optional<int64_t> tick = proposals_->TickOf(index, entry.term());
  if (tick && last->second.tick) {
    const int64_t elapsed_ms = (*tick - *last->second.tick) * kMsPerTick;
    if (first) {
      ++activity_.expiry_margin_checks;
      activity_.min_expiry_slack_ms =
          std::min(activity_.min_expiry_slack_ms, elapsed_ms - ttl->second);
    }
    if (elapsed_ms < ttl->second) {
      Fail(absl::StrCat("Lease TTL (simulated time): ", where, ", proposed at tick ",
                        *last->second.tick, "; the expiring entry was proposed at tick ", *tick,
                        ", only ", elapsed_ms, " ms later"));
    }
  }
}

void LockChecker::CompareModel(uint64_t node, const NodeModel& m, const LockSimStateMachine& sm,
                               uint64_t index) {
  using Key = std::tuple<uint64_t, int, uint64_t>;
  std::set<std::pair<std::string, Key>> from_state, from_events;
  for (const auto& [name, lock] : sm.state().locks().all()) {
    for (const lock::Holder& h : lock.holders) {
      from_state.insert({name, Key{h.lease, h.mode, h.token}});
    }
  }
  for (const auto& [name, holds] : m.holders) {
    for (const Hold& h : holds) from_events.insert({name, Key{h.lease, h.mode, h.token}});
  }
  if (from_state != from_events) {
    Fail(absl::StrCat("Event stream: node ", node, ", index ", index,
                      ": the holders the grant/release events imply differ from the state's (",
                      from_events.size(), " holds by events, ", from_state.size(), " in state)"));
  }
}

void LockChecker::CheckState(uint64_t node, const LockSimStateMachine& sm,
                             const std::string& when) {
  for (const auto& [name, lock] : sm.state().locks().all()) {
    if (std::string p = ExclusionProblem(lock.holders, lock.permits); !p.empty()) {
      Fail(absl::StrCat("Mutual exclusion: node ", node, " ", when, ": lock '", name, "': ", p));
    }
  }
}

void LockChecker::Count(const LockSimStateMachine& sm) {
  const lock::ApplyResult& applied = sm.last_result();
  ++activity_.commands;
  for (const v1::LockEvent& ev : applied.events) {
    if (ev.has_lock_granted()) {
      ++activity_.grants;
      if (ev.lock_granted().from_queue()) ++activity_.handoffs;
      if (ev.lock_granted().mode() == v1::LOCK_MODE_SHARED) ++activity_.shared_grants;
    } else if (ev.has_lock_released() && ev.lock_released().reason() == v1::END_REASON_RELEASED) {
      ++activity_.releases;
    } else if (ev.has_lease_ended()) {
      if (ev.lease_ended().reason() == v1::END_REASON_LEASE_EXPIRED) {
        ++activity_.expiries;
      } else {
        ++activity_.revokes;
      }
    } else if (ev.has_wait_ended() && ev.wait_ended().reason() == v1::END_REASON_TIMED_OUT) {
      ++activity_.wait_timeouts;
    }
  }
  const v1::CommandResult& r = applied.result;
  if (!applied.duplicate) {
    if (r.has_lock_acquire() && r.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_BUSY) {
      ++activity_.busy;
    }
    if (r.has_lock_acquire() && r.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_QUEUED &&
        !r.lock_acquire().already()) {
      ++activity_.queued;
    }
    if (r.has_lease_keep_alive() && r.code() == 0) ++activity_.keepalives;
    if (r.reason() == v1::ERROR_REASON_WRONG_TOKEN) ++activity_.stale_releases_refused;
  }
  for (const auto& [name, lock] : sm.state().locks().all()) {
    if (lock.permits != 0) {
      activity_.max_semaphore_holders =
          std::max<uint64_t>(activity_.max_semaphore_holders, lock.holders.size());
    }
  }
}

std::optional<std::string> LockChecker::CheckStep(const sim::Simulation& sim) {
  if (violation_) return violation_;
  std::map<uint64_t, std::pair<uint64_t, std::string>> digest_at;  // applied -> (node, digest)
  for (uint64_t id = 1; id <= static_cast<uint64_t>(sim.num_nodes()); ++id) {
    const auto* sm = dynamic_cast<const LockSimStateMachine*>(sim.state_machine(id));
    if (sm == nullptr) continue;
    CheckState(id, *sm, absl::StrCat("at tick ", sim.now()));
    if (std::string e = sm->state().CheckInvariants(); !e.empty()) {
      Fail(absl::StrCat("State machine invariant: node ", id, ": ", e));
    }
    const std::string digest = sm->Digest();
    auto [it, inserted] = digest_at.emplace(sim.applied(id), std::make_pair(id, digest));
    if (!inserted && it->second.second != digest) {
      Fail(absl::StrCat("Replica agreement: nodes ", it->second.first, " and ", id,
                        " both applied through index ", sim.applied(id),
                        " but their lock states differ (digests ", it->second.second, " and ",
                        digest, ")"));
    }
  }
  return violation_;
}

}  // namespace raftlock::lock_sim
