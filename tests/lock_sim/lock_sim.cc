#include "tests/lock_sim/lock_sim.h"

#include <memory>

#include "absl/strings/str_cat.h"

namespace raftlock::lock_sim {

lock::Limits SimLimits() { return lock::Limits{}; }

std::string LockSimResult::Summary() const {
  return absl::StrCat(sim.Summary(), "\n  activity: ", activity.ToString());
}

LockSimResult RunLockSim(const LockSimOptions& options) {
  ProposalLog proposals;
  LockChecker checker(&proposals);
  LockWorkload workload(options.clients, &proposals);
  uint64_t committed = 0;  // highest index applied anywhere

  sim::SimOptions so;
  so.seed = options.seed;
  so.num_nodes = options.nodes;
  if (auto profile = sim::FaultProfile::ByName(options.faults); profile.has_value()) {
    so.faults = *profile;
  }
  so.steps = options.steps;
  so.verbose = options.verbose;
  so.replay_program = options.replay_program;
  if (options.fault != Fault::kNone) {
    so.replay_extra_args = "--broken " + std::string(FaultName(options.fault));
  }
  so.state_machine = LockSimFactory(
      SimLimits(), options.fault,
      [&](uint64_t node, const LockSimStateMachine& sm) { checker.OnRestore(node, sm); });
  so.client = [&](sim::Simulation& sim) { workload.Step(sim); };
  so.on_apply = [&](uint64_t node, const raft::Entry& entry, const sim::SimStateMachine& base) {
    const auto& sm = static_cast<const LockSimStateMachine&>(base);
    const bool first = entry.index() > committed;
    if (first) committed = entry.index();
    checker.OnApply(node, entry, sm, first);
    if (first) workload.OnCommitted(entry, sm);
  };
  so.extra_checks.push_back([&](const sim::Simulation& sim) { return checker.CheckStep(sim); });

  sim::Simulation simulation(std::move(so));
  LockSimResult result;
  result.sim = simulation.Run();
  // A violation found while applying the last entries (after the last step).
  if (result.sim.ok) {
    if (auto v = checker.CheckStep(simulation); v.has_value()) {
      simulation.ReportViolation("Invariant", *v);
      result.sim.ok = false;
      result.sim.violation = simulation.violation();
    }
  }
  result.activity = checker.activity();
  result.workload = workload.stats();
  return result;
}

}  // namespace raftlock::lock_sim
