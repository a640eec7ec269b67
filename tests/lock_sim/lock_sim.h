// One seed of the lock-service simulation: the deterministic Raft simulator
// (tests/sim) with every node applying the lock state machine, LockWorkload's
// clients, and LockChecker's rules after every applied entry and every step.
#pragma once

#include <cstdint>
#include <string>

#include "server/lock/limits.h"
#include "tests/lock_sim/lock_checker.h"
#include "tests/lock_sim/lock_sim_state_machine.h"
#include "tests/lock_sim/lock_workload.h"
#include "tests/sim/simulator.h"

namespace raftlock::lock_sim {

struct LockSimOptions {
  uint64_t seed = 1;
  int nodes = 3;
  std::string faults = "light";  // a FaultProfile name
  int64_t steps = 600;
  int clients = 5;
  Fault fault = Fault::kNone;  // a deliberately broken adapter
  bool verbose = false;
  // The replay line printed on failure names this program (lock_sim).
  std::string replay_program = "./build/tests/lock_sim/lock_sim";
};

struct LockSimResult {
  sim::SimResult sim;
  Activity activity;
  WorkloadStats workload;
  bool ok() const { return sim.ok; }
  // "ok ..." or "FAIL ... <rule>: <detail>" plus the replay command.
  std::string Summary() const;
};

// The limits every node runs with (the server's defaults).
lock::Limits SimLimits();

// Runs one seed: options.steps steps of faults and clients, then healing and
// the simulator's liveness check. Stops at the first violation.
LockSimResult RunLockSim(const LockSimOptions& options);

}  // namespace raftlock::lock_sim
