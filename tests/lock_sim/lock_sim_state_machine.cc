#include "tests/lock_sim/lock_sim_state_machine.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace raftlock::lock_sim {

bool ParseFault(std::string_view name, Fault* fault) {
  for (Fault f :
       {Fault::kNone, Fault::kGrantSecondExclusive, Fault::kEarlyExpiry, Fault::kLostKeepAlive}) {
    if (name == FaultName(f)) {
      *fault = f;
      return true;
    }
  }
  return false;
}

std::string_view FaultName(Fault fault) {
  switch (fault) {
    case Fault::kNone:
      return "none";
    case Fault::kGrantSecondExclusive:
      return "double-grant";
    case Fault::kEarlyExpiry:
      return "early-expiry";
    case Fault::kLostKeepAlive:
      return "lost-keepalive";
  }
  return "?";
}

LockSimStateMachine::LockSimStateMachine(const lock::Limits& limits, Fault fault, uint64_t node,
                                         uint64_t serial, RestoreObserver on_restore)
    : sm_(limits),
      fault_(fault),
      node_(node),
      serial_(serial),
      on_restore_(std::move(on_restore)) {}

void LockSimStateMachine::Apply(const raft::Entry& entry) {
  last_index_ = entry.index();
  last_was_command_ = false;
  last_command_.Clear();
  last_result_ = lock::ApplyResult{};
  // As the replica does: configuration entries are the core's business.
  if (entry.type() != v1::ENTRY_NORMAL) return;
  const std::string& data = entry.data();
  last_was_command_ = !data.empty() && last_command_.ParseFromString(data);
  if (!last_was_command_) last_command_.Clear();
  if (fault_ == Fault::kNone || !last_was_command_) {
    last_result_ = sm_.ApplyEntry(entry.index(), data);
    return;
  }
  Misbehave(entry.index(), last_command_);
}

void LockSimStateMachine::Misbehave(uint64_t index, const v1::Command& command) {
  switch (fault_) {
    case Fault::kNone:
      last_result_ = sm_.Apply(index, command);
      return;
    case Fault::kGrantSecondExclusive: {
      last_result_ = sm_.Apply(index, command);
      if (!command.has_lock_acquire() || last_result_.duplicate ||
          command.lock_acquire().mode() != v1::LOCK_MODE_EXCLUSIVE ||
          !last_result_.result.has_lock_acquire()) {
        return;
      }
      v1::LockAcquireResult* r = last_result_.result.mutable_lock_acquire();
      if (r->outcome() != v1::ACQUIRE_OUTCOME_BUSY && r->outcome() != v1::ACQUIRE_OUTCOME_QUEUED) {
        return;
      }
      r->set_outcome(v1::ACQUIRE_OUTCOME_GRANTED);
      r->set_token(index);
      v1::LockGranted* g = last_result_.events.emplace_back().mutable_lock_granted();
      g->set_name(command.lock_acquire().name());
      g->set_lease_id(command.lock_acquire().lease_id());
      g->set_mode(v1::LOCK_MODE_EXCLUSIVE);
      g->set_token(index);
      g->set_client_id(command.client_id());
      g->set_sequence(command.sequence());
      return;
    }
    case Fault::kEarlyExpiry: {
      v1::Command late = command;
      if (late.has_time_advance()) late.set_cluster_time_ms(late.cluster_time_ms() + 1000);
      last_result_ = sm_.Apply(index, late);
      return;
    }
    case Fault::kLostKeepAlive: {
      if (!command.has_lease_keep_alive()) {
        last_result_ = sm_.Apply(index, command);
        return;
      }
      const uint64_t id = command.lease_keep_alive().lease_id();
      v1::Command ignored = command;
      ignored.mutable_time_advance();  // replaces the keepalive
      last_result_ = sm_.Apply(index, ignored);
      const lock::Lease* lease = sm_.leases().Find(id);
      if (lease == nullptr || last_result_.duplicate) return;
      // The lie: an accepted keepalive that moved nothing.
      last_result_.result.clear_payload();
      v1::LeaseKeepAliveResult* r = last_result_.result.mutable_lease_keep_alive();
      r->set_lease_id(id);
      r->set_ttl_ms(lease->ttl_ms);
      r->set_deadline_ms(sm_.cluster_time_ms() + lease->ttl_ms);
      return;
    }
  }
}

std::string LockSimStateMachine::Snapshot() const { return sm_.Snapshot(); }

absl::Status LockSimStateMachine::Restore(const std::string& data) {
  ++restores_;
  last_index_ = 0;
  last_was_command_ = false;
  absl::Status s = sm_.Restore(data);
  if (s.ok() && on_restore_) on_restore_(node_, *this);
  return s;
}

std::string LockSimStateMachine::Digest() const { return absl::StrCat(absl::Hex(sm_.Digest())); }

sim::StateMachineFactory LockSimFactory(const lock::Limits& limits, Fault fault,
                                        RestoreObserver on_restore) {
  auto serial = std::make_shared<uint64_t>(0);
  return
      [limits, fault, serial, on_restore](uint64_t node) -> std::unique_ptr<sim::SimStateMachine> {
        return std::make_unique<LockSimStateMachine>(limits, fault, node, ++*serial, on_restore);
      };
}

}  // namespace raftlock::lock_sim
