#include "tests/lock_sim/lock_workload.h"

#include <algorithm>
#include <utility>

namespace raftlock::lock_sim {
namespace {

// The locks the clients share: two exclusive-only locks, one read/write lock
// and one semaphore of two permits (shared holders; an exclusive acquire of it
// waits until no permit is held).
struct LockSpec {
  const char* name;
  uint32_t permits;
  double shared_share;
};
constexpr LockSpec kLocks[] = {{"x0", 0, 0.0}, {"x1", 0, 0.0}, {"rw", 0, 0.6}, {"sem", 2, 0.85}};
constexpr int64_t kTtlsMs[] = {1000, 1500, 2000, 3000};
// A request not answered after this many ticks is sent again (same sequence).
constexpr int64_t kRetryTicks = 30;

v1::Command KeepAliveCommand(uint64_t lease) {
  v1::Command c;
  c.mutable_lease_keep_alive()->set_lease_id(lease);
  return c;
}

}  // namespace

LockWorkload::LockWorkload(int num_clients, ProposalLog* log) : log_(log) {
  for (int i = 0; i < num_clients; ++i) {
    Client c;
    c.id = 1000 + static_cast<uint64_t>(i);
    clients_.push_back(std::move(c));
  }
}

LockWorkload::Pending LockWorkload::NewRequest(Client& c, v1::Command command) {
  Pending p;
  p.sequence = c.next_sequence++;
  command.set_client_id(c.id);
  command.set_sequence(p.sequence);
  p.command = std::move(command);
  return p;
}

void LockWorkload::UpdateLeaderClocks(sim::Simulation& sim) {
  for (uint64_t id : sim.Leaders()) {
    const uint64_t term = sim.node(id)->term();
    LeaderClock& clock = clocks_[id];
    if (clock.term == term) continue;
    // Replica::OnRoleChange: the new leader continues from the cluster time it
    // has applied, and measures the time it leads on its own clock.
    const auto* sm = dynamic_cast<const LockSimStateMachine*>(sim.state_machine(id));
    clock = LeaderClock{term, now_, sm != nullptr ? sm->state().cluster_time_ms() : 0, -1000};
  }
}

bool LockWorkload::NeedsSending(const sim::Simulation& sim, const Pending& p) const {
  if (p.sent_tick < 0 || now_ - p.sent_tick >= kRetryTicks) return true;
  // The leader it went to lost its leadership: the server fails the call and
  // the client retries with the same sequence.
  const raft::Node* node = sim.node(p.sent_to);
  return node == nullptr || node->role() != raft::Role::kLeader || node->term() != p.sent_term;
}

void LockWorkload::ChooseAction(sim::Simulation& sim, Client& c) {
  sim::SimRng& rng = sim.rng();
  if (now_ < c.idle_until) return;
  if (c.lease == 0) {
    v1::Command grant;
    grant.mutable_lease_grant()->set_ttl_ms(kTtlsMs[rng.Below(std::size(kTtlsMs))]);
    c.op = NewRequest(c, std::move(grant));
    return;
  }
  const uint64_t roll = rng.Below(100);
  if (roll < 45) {
    const LockSpec& spec = kLocks[rng.Below(std::size(kLocks))];
    if ((c.holds.contains(spec.name) || c.waits.contains(spec.name)) && !rng.Chance(0.1)) return;
    v1::Command cmd;
    v1::LockAcquire* a = cmd.mutable_lock_acquire();
    a->set_name(spec.name);
    a->set_lease_id(c.lease);
    const bool shared = rng.Chance(spec.shared_share);
    a->set_mode(shared ? v1::LOCK_MODE_SHARED : v1::LOCK_MODE_EXCLUSIVE);
    a->set_permits(spec.permits);
    a->set_wait_timeout_ms(rng.Chance(0.4) ? 0 : rng.Range(100, 3000));
    c.op = NewRequest(c, std::move(cmd));
  } else if (roll < 75) {
    if (c.holds.empty()) return;
    auto it = c.holds.begin();
    std::advance(it, static_cast<long>(rng.Below(c.holds.size())));
    v1::Command cmd;
    v1::LockRelease* r = cmd.mutable_lock_release();
    r->set_name(it->first);
    r->set_lease_id(c.lease);
    // Now and then a stale token: the owner check must refuse it.
    r->set_token(rng.Chance(0.1) ? it->second - 1 : it->second);
    c.op = NewRequest(c, std::move(cmd));
  } else if (roll < 82) {
    if (c.waits.empty()) return;
    v1::Command cmd;
    cmd.mutable_lock_cancel_wait()->set_name(*c.waits.begin());
    cmd.mutable_lock_cancel_wait()->set_lease_id(c.lease);
    c.op = NewRequest(c, std::move(cmd));
  } else if (roll < 85) {
    v1::Command cmd;
    cmd.mutable_lease_revoke()->set_lease_id(c.lease);
    c.op = NewRequest(c, std::move(cmd));
  } else if (roll < 89) {
    c.keep_alive = false;  // the client hangs: its lease will lapse
  }
}

void LockWorkload::Step(sim::Simulation& sim) {
  now_ = sim.now();
  UpdateLeaderClocks(sim);
  for (Client& c : clients_) {
    if (!c.op && sim.rng().Chance(0.3)) ChooseAction(sim, c);
    if (c.lease != 0 && c.keep_alive && !c.keepalive && now_ >= c.next_keepalive_tick) {
      c.keepalive = NewRequest(c, KeepAliveCommand(c.lease));
      c.next_keepalive_tick = now_ + std::max<int64_t>(1, c.ttl_ms / 3 / kMsPerTick);
    }
  }
  const std::vector<uint64_t> leaders = sim.Leaders();
  const std::optional<uint64_t> current = sim.CurrentLeader();
  if (!current) return;  // nobody to send to; cluster time stands still

  // Which requests go to which leader (mostly the newest; sometimes a stale
  // one, whose entries may never commit). Identified by (client, slot, seq).
  struct Ref {
    size_t client;
    bool keepalive;
    uint64_t sequence;
  };
  std::map<uint64_t, std::vector<Ref>> batches;
  for (size_t i = 0; i < clients_.size(); ++i) {
    Client& c = clients_[i];
    for (bool ka : {false, true}) {
      const std::optional<Pending>& p = ka ? c.keepalive : c.op;
      if (!p || !NeedsSending(sim, *p)) continue;
      uint64_t target = *current;
      if (leaders.size() > 1 && sim.rng().Chance(0.2))
        target = leaders[sim.rng().Below(leaders.size())];
      batches[target].push_back(Ref{i, ka, p->sequence});
    }
  }
  for (uint64_t id : leaders) {
    const auto* sm = dynamic_cast<const LockSimStateMachine*>(sim.state_machine(id));
    const LeaderClock& clock = clocks_[id];
    if (sm != nullptr && sm->state().leases().size() > 0 && !batches.contains(id) &&
        now_ - clock.last_proposal_tick >= kTimeAdvanceTicks) {
      batches[id];  // Replica::OnTick: a TimeAdvance alone
    }
  }
  for (auto& [id, refs] : batches) {
    LeaderClock& clock = clocks_[id];
    const int64_t stamp = clock.base_ms + (now_ - clock.since_tick) * kMsPerTick;
    std::vector<std::string> data;
    for (const Ref& r : refs) {
      const Client& c = clients_[r.client];
      v1::Command cmd = (r.keepalive ? c.keepalive : c.op)->command;
      cmd.set_cluster_time_ms(stamp);
      data.push_back(cmd.SerializeAsString());
    }
    if (refs.empty()) {
      v1::Command advance;
      advance.mutable_time_advance();
      advance.set_cluster_time_ms(stamp);
      data.push_back(advance.SerializeAsString());
    }
    const uint64_t term = sim.node(id)->term();
    const size_t count = data.size();
    absl::StatusOr<uint64_t> first = sim.ProposeBatch(id, std::move(data));
    if (!first.ok()) continue;
    clock.last_proposal_tick = now_;
    for (size_t k = 0; k < count; ++k) log_->Record(*first + k, term, now_);
    stats_.commands_sent += count;
    if (refs.empty()) ++stats_.time_advances;
    for (const Ref& r : refs) {
      std::optional<Pending>& p =
          r.keepalive ? clients_[r.client].keepalive : clients_[r.client].op;
      if (!p || p->sequence != r.sequence) continue;  // answered meanwhile
      if (p->sent_tick >= 0) ++stats_.retries;
      p->sent_tick = now_;
      p->sent_to = id;
      p->sent_term = term;
    }
  }
}

void LockWorkload::LoseLease(Client& c, int64_t now) {
  c.lease = 0;
  c.holds.clear();
  c.waits.clear();
  c.keepalive.reset();
  c.keep_alive = true;
  c.idle_until = now + 5 + static_cast<int64_t>(c.id % 7);
}

void LockWorkload::Event(const v1::LockEvent& ev, int64_t now) {
  for (Client& c : clients_) {
    if (c.lease == 0) continue;
    switch (ev.kind_case()) {
      case v1::LockEvent::kLeaseEnded:
        if (ev.lease_ended().lease_id() == c.lease) LoseLease(c, now);
        break;
      case v1::LockEvent::kLockGranted:
        if (ev.lock_granted().lease_id() == c.lease) {
          c.holds[ev.lock_granted().name()] = ev.lock_granted().token();
          c.waits.erase(ev.lock_granted().name());
        }
        break;
      case v1::LockEvent::kLockReleased: {
        const v1::LockReleased& r = ev.lock_released();
        auto it = c.holds.find(r.name());
        if (r.lease_id() == c.lease && it != c.holds.end() && it->second == r.token()) {
          c.holds.erase(it);
        }
        break;
      }
      case v1::LockEvent::kWaitEnded:
        if (ev.wait_ended().lease_id() == c.lease) c.waits.erase(ev.wait_ended().name());
        break;
      default:
        break;
    }
  }
}

void LockWorkload::Answer(Client& c, const Pending& p, const v1::CommandResult& result,
                          int64_t now) {
  ++stats_.answers;
  const v1::Command& cmd = p.command;
  if (result.reason() == v1::ERROR_REASON_LEASE_NOT_FOUND) {
    uint64_t named = 0;
    if (cmd.has_lease_keep_alive()) named = cmd.lease_keep_alive().lease_id();
    if (cmd.has_lock_acquire()) named = cmd.lock_acquire().lease_id();
    if (cmd.has_lock_release()) named = cmd.lock_release().lease_id();
    if (cmd.has_lock_cancel_wait()) named = cmd.lock_cancel_wait().lease_id();
    if (named != 0 && named == c.lease) LoseLease(c, now);
    return;
  }
  if (result.has_lease_grant()) {
    if (c.lease == 0) {
      c.lease = result.lease_grant().lease_id();
      c.ttl_ms = result.lease_grant().ttl_ms();
      c.keep_alive = true;
      c.next_keepalive_tick = now + std::max<int64_t>(1, c.ttl_ms / 3 / kMsPerTick);
    }
  } else if (result.has_lock_acquire() && cmd.lock_acquire().lease_id() == c.lease) {
    const std::string& name = cmd.lock_acquire().name();
    if (result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_QUEUED) c.waits.insert(name);
    if (result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_GRANTED) {
      c.holds[name] = result.lock_acquire().token();
    }
  } else if (result.reason() == v1::ERROR_REASON_NOT_HELD && cmd.has_lock_release()) {
    c.holds.erase(cmd.lock_release().name());
  } else if (result.reason() == v1::ERROR_REASON_NOT_WAITING && cmd.has_lock_cancel_wait()) {
    c.waits.erase(cmd.lock_cancel_wait().name());
  }
}

void LockWorkload::OnCommitted(const raft::Entry&, const LockSimStateMachine& sm) {
  if (!sm.last_was_command()) return;
  const v1::Command& cmd = sm.last_command();
  const lock::ApplyResult& applied = sm.last_result();
  for (const v1::LockEvent& ev : applied.events) Event(ev, now_);
  if (cmd.client_id() == 0) return;
  for (Client& c : clients_) {
    if (c.id != cmd.client_id()) continue;
    for (std::optional<Pending>* slot : {&c.op, &c.keepalive}) {
      if (*slot && (*slot)->sequence == cmd.sequence()) {
        const Pending p = std::move(**slot);
        slot->reset();
        Answer(c, p, applied.result, now_);
      }
    }
  }
}

}  // namespace raftlock::lock_sim
