// LockSimStateMachine: the simulator's SimStateMachine backed by raftlock's
// LockStateMachine, applied exactly as server/node/replica.cc does (normal
// entries through ApplyEntry, configuration entries skipped). Snapshot,
// Restore and Digest are the lock state machine's own, so crash-restart and
// snapshot install exercise them. The last entry's command and ApplyResult
// stay readable for the workload and the checker.
//
// A non-kNone Fault makes the adapter deliberately wrong, only so that tests
// can show the checker reports real violations.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "proto/lock.pb.h"
#include "server/lock/lock_state_machine.h"
#include "tests/sim/state_machine.h"

namespace raftlock::lock_sim {

enum class Fault {
  kNone,
  // A BUSY or QUEUED exclusive acquire is answered GRANTED (with a grant
  // event) while the current holder keeps the lock: two exclusive holders.
  kGrantSecondExclusive,
  // TimeAdvance entries are applied one second later than stamped, so leases
  // expire before their TTL has passed in simulated time.
  kEarlyExpiry,
  // Keepalives are answered OK but not applied: the lease expires at the old
  // deadline although a keepalive was accepted since.
  kLostKeepAlive,
};

// Parses a fault name (none, double-grant, early-expiry, lost-keepalive).
bool ParseFault(std::string_view name, Fault* fault);
std::string_view FaultName(Fault fault);

class LockSimStateMachine;
// Told after a machine of node `node` was restored from a snapshot.
using RestoreObserver = std::function<void(uint64_t node, const LockSimStateMachine& sm)>;

class LockSimStateMachine : public sim::SimStateMachine {
 public:
  LockSimStateMachine(const lock::Limits& limits, Fault fault, uint64_t node, uint64_t serial,
                      RestoreObserver on_restore);

  void Apply(const raft::Entry& entry) override;
  std::string Snapshot() const override;
  absl::Status Restore(const std::string& data) override;
  std::string Digest() const override;

  const lock::LockStateMachine& state() const { return sm_; }
  // The last entry given to Apply: whether it carried a (parsed) command,
  // that command, and what applying it answered.
  uint64_t last_index() const { return last_index_; }
  bool last_was_command() const { return last_was_command_; }
  const v1::Command& last_command() const { return last_command_; }
  const lock::ApplyResult& last_result() const { return last_result_; }
  // Unique per object (a restarted node gets a new one); Restore() calls.
  uint64_t serial() const { return serial_; }
  uint64_t restores() const { return restores_; }

 private:
  void Misbehave(uint64_t index, const v1::Command& command);

  lock::LockStateMachine sm_;
  Fault fault_;
  uint64_t node_;
  uint64_t serial_;
  RestoreObserver on_restore_;
  uint64_t restores_ = 0;
  uint64_t last_index_ = 0;
  bool last_was_command_ = false;
  v1::Command last_command_;
  lock::ApplyResult last_result_;
};

// A factory giving every node (and every restart) a fresh machine.
sim::StateMachineFactory LockSimFactory(const lock::Limits& limits, Fault fault = Fault::kNone,
                                        RestoreObserver on_restore = {});

}  // namespace raftlock::lock_sim
