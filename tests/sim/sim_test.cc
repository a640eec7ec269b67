// The simulator's CI gate: seed sets across cluster sizes and fault levels,
// the deliberately broken commit rule (Figure 8), liveness, determinism and
// the plug-in points other simulations build on.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "raft/memory_storage.h"
#include "tests/sim/scenarios.h"
#include "tests/sim/simulator.h"

namespace raftlock::sim {
namespace {

#ifndef RAFT_SIM_PATH
#define RAFT_SIM_PATH "./build/tests/sim/raft_sim"
#endif

constexpr int64_t kStepsPerSeed = 1500;

// Runs `count` seeds from `first_seed`; fails with the replay line of the
// first failing seed. Prints seeds, wall time and steps per second.
void RunSeeds(int nodes, const std::string& faults, uint64_t first_seed, int count) {
  const auto start = std::chrono::steady_clock::now();
  int64_t steps = 0;
  uint64_t committed = 0, leaders = 0, crashes = 0, snapshots = 0, lost = 0, overwrites = 0;
  for (int i = 0; i < count; ++i) {
    SimOptions options;
    options.seed = first_seed + static_cast<uint64_t>(i);
    options.num_nodes = nodes;
    options.faults = *FaultProfile::ByName(faults);
    options.steps = kStepsPerSeed;
    options.replay_program = RAFT_SIM_PATH;
    Simulation sim(options);
    SimResult r = sim.Run();
    steps += r.stats.steps;
    committed += r.stats.max_committed;
    leaders += r.stats.leaders;
    crashes += r.stats.crashes;
    snapshots += r.stats.snapshots_installed;
    lost += r.stats.unsynced_writes_lost;
    overwrites += r.stats.overwrites_lost;
    if (!r.ok) {
      std::fprintf(stderr, "seed %llu: %s\n", static_cast<unsigned long long>(options.seed),
                   r.Summary().c_str());
      FAIL("seed " << options.seed << " failed: " << r.violation->property << ": "
                   << r.violation->detail << "\nreplay: " << r.replay_command);
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "[sim] nodes=%d faults=%s seeds=%d steps=%lld wall=%.2fs steps/s=%.0f | committed=%llu "
      "leaders=%llu crashes=%llu snapshots-installed=%llu unsynced-writes-lost=%llu "
      "overwrites-lost=%llu\n",
      nodes, faults.c_str(), count, static_cast<long long>(steps), secs, steps / secs,
      static_cast<unsigned long long>(committed), static_cast<unsigned long long>(leaders),
      static_cast<unsigned long long>(crashes), static_cast<unsigned long long>(snapshots),
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(overwrites));
  std::fflush(stdout);
}

// ---- CI seed sets: 1,050 seeds in all ----

TEST_CASE("3 nodes, none and light faults: 200 seeds", "[sim][seeds]") {
  RunSeeds(3, "none", 1, 50);
  RunSeeds(3, "light", 1, 150);
}
TEST_CASE("3 nodes, medium faults: 150 seeds", "[sim][seeds]") { RunSeeds(3, "medium", 1, 150); }
TEST_CASE("3 nodes, heavy faults: 150 seeds", "[sim][seeds]") { RunSeeds(3, "heavy", 1, 150); }
TEST_CASE("5 nodes, light faults: 100 seeds", "[sim][seeds]") { RunSeeds(5, "light", 1, 100); }
TEST_CASE("5 nodes, medium faults: 100 seeds", "[sim][seeds]") { RunSeeds(5, "medium", 1, 100); }
TEST_CASE("5 nodes, heavy faults: 150 seeds", "[sim][seeds]") { RunSeeds(5, "heavy", 1, 150); }
TEST_CASE("7 nodes, light and medium faults: 100 seeds", "[sim][seeds]") {
  RunSeeds(7, "light", 1, 50);
  RunSeeds(7, "medium", 1, 50);
}
TEST_CASE("7 nodes, heavy faults: 100 seeds", "[sim][seeds]") { RunSeeds(7, "heavy", 1, 100); }

// ---- The checker catches a real bug ----

TEST_CASE("Figure 8: committing a prior-term entry by counting replicas is reported",
          "[sim][broken-rule]") {
  for (uint64_t seed : {1, 2, 3}) {
    ScenarioOutcome out = RunFigure8Scenario(/*unsafe_commit_prior_term=*/true, seed);
    INFO("seed " << seed << "\n" << out.narrative);
    REQUIRE(out.violation.has_value());
    INFO(out.violation->property << ": " << out.violation->detail);
    CHECK((out.violation->property == "Leader Completeness" ||
           out.violation->property == "State Machine Safety"));
    CHECK(out.stages_done >= 3);  // the violation came from the scripted schedule
  }
}

TEST_CASE("Figure 8: the same schedule with the correct commit rule is safe and live",
          "[sim][broken-rule]") {
  for (uint64_t seed : {1, 2, 3}) {
    ScenarioOutcome out = RunFigure8Scenario(/*unsafe_commit_prior_term=*/false, seed);
    INFO("seed " << seed << "\n" << out.narrative);
    INFO((out.violation ? out.violation->property + ": " + out.violation->detail : "no violation"));
    CHECK_FALSE(out.violation.has_value());
    CHECK(out.completed);
  }
}

TEST_CASE("Thesis 10.2.1: a leader counting its unsynced entries is reported after a crash",
          "[sim][broken-rule]") {
  for (uint64_t seed : {1, 2, 3}) {
    ScenarioOutcome out = RunUnsyncedLeaderScenario(/*count_unsynced_entries=*/true, seed);
    INFO("seed " << seed << "\n" << out.narrative);
    REQUIRE(out.violation.has_value());
    INFO(out.violation->property << ": " << out.violation->detail);
    CHECK((out.violation->property == "Leader Completeness" ||
           out.violation->property == "State Machine Safety"));
    CHECK(out.stages_done >= 2);  // the violation came from the scripted schedule
  }
}

TEST_CASE("Thesis 10.2.1: the same schedule with unsynced entries not counted is safe and live",
          "[sim][broken-rule]") {
  for (uint64_t seed : {1, 2, 3}) {
    ScenarioOutcome out = RunUnsyncedLeaderScenario(/*count_unsynced_entries=*/false, seed);
    INFO("seed " << seed << "\n" << out.narrative);
    INFO((out.violation ? out.violation->property + ": " + out.violation->detail : "no violation"));
    CHECK_FALSE(out.violation.has_value());
    CHECK(out.completed);
  }
}

TEST_CASE("a follower's unsynced overwrite lost in a crash brings back its old suffix safely",
          "[sim][crash]") {
  for (uint64_t seed : {1, 2, 3}) {
    ScenarioOutcome out = RunUnsyncedOverwriteScenario(seed);
    INFO("seed " << seed << "\n" << out.narrative);
    INFO((out.violation ? out.violation->property + ": " + out.violation->detail : "no violation"));
    CHECK_FALSE(out.violation.has_value());
    CHECK(out.completed);
  }
}

// ---- Liveness ----

TEST_CASE("liveness: after heavy faults heal, a leader commits within the bound", "[sim]") {
  for (uint64_t seed = 100; seed < 110; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.num_nodes = 5;
    options.faults = FaultProfile::Heavy();
    options.steps = 1000;
    options.check_liveness = false;
    Simulation sim(options);
    REQUIRE(sim.Start().ok());
    sim.RunTicks(1000);
    REQUIRE_FALSE(sim.violation().has_value());
    sim.HealAll();
    const int64_t healed_at = sim.now();
    INFO("seed " << seed);
    REQUIRE(sim.CheckLiveness());
    CHECK(sim.now() - healed_at <= 2 * 20 * options.election_tick);
    CHECK(sim.CurrentLeader().has_value());
  }
}

TEST_CASE("liveness: the check fails when a majority stays down", "[sim]") {
  SimOptions options;
  options.seed = 7;
  options.num_nodes = 3;
  options.faults = FaultProfile::None();
  Simulation sim(options);
  REQUIRE(sim.Start().ok());
  sim.RunTicks(100);
  sim.set_random_faults(false);
  sim.Crash(1);
  sim.Crash(2);
  REQUIRE_FALSE(sim.CheckLiveness());
  REQUIRE(sim.violation().has_value());
  CHECK(sim.violation()->property == "Liveness");
}

// ---- Determinism and replay ----

TEST_CASE("a seed replays identically", "[sim]") {
  auto run = [] {
    SimOptions options;
    options.seed = 42;
    options.num_nodes = 5;
    options.faults = FaultProfile::Heavy();
    options.steps = 1500;
    std::string digests;
    options.on_apply = [&digests](uint64_t node, const raft::Entry& e, const SimStateMachine&) {
      digests += std::to_string(node) + ":" + std::to_string(e.index()) + ";";
    };
    Simulation sim(options);
    SimResult r = sim.Run();
    REQUIRE(r.ok);
    return std::make_tuple(r.stats.steps, r.stats.messages_delivered, r.stats.max_committed,
                           r.stats.crashes, std::hash<std::string>{}(digests));
  };
  CHECK(run() == run());
}

TEST_CASE("a failing run prints the command that replays it", "[sim]") {
  SimOptions options;
  options.seed = 1234;
  options.num_nodes = 5;
  options.faults = FaultProfile::Heavy();
  options.steps = 20000;
  options.replay_program = "./build/tests/sim/raft_sim";
  Simulation sim(options);
  CHECK(sim.ReplayCommand() ==
        "./build/tests/sim/raft_sim --seed 1234 --nodes 5 --faults heavy --steps 20000 "
        "--verbose");
}

// ---- Plug-in points: state machine, storage, workload, extra checks ----

// Counts applied normal entries with data; a toy stand-in for the lock machine.
class CountingStateMachine : public SimStateMachine {
 public:
  void Apply(const raft::Entry& entry) override {
    if (entry.type() == raftlock::v1::ENTRY_NORMAL && !entry.data().empty()) ++count_;
  }
  std::string Snapshot() const override { return std::to_string(count_); }
  absl::Status Restore(const std::string& data) override {
    count_ = std::stoull(data);
    return absl::OkStatus();
  }
  std::string Digest() const override { return std::to_string(count_); }
  uint64_t count() const { return count_; }

 private:
  uint64_t count_ = 0;
};

class CountingStorageFactory : public MemoryStorageFactory {
 public:
  absl::StatusOr<std::unique_ptr<raft::LogStorage>> Reopen(
      uint64_t id, std::unique_ptr<raft::LogStorage> crashed) override {
    ++reopens;
    return MemoryStorageFactory::Reopen(id, std::move(crashed));
  }
  int reopens = 0;
};

TEST_CASE("plug-ins: custom state machine, storage, workload and invariant", "[sim]") {
  auto storage = std::make_shared<CountingStorageFactory>();
  int workload_calls = 0, check_calls = 0;
  uint64_t proposed = 0;
  SimOptions options;
  options.seed = 5;
  options.num_nodes = 3;
  options.faults = FaultProfile::Medium();
  options.steps = 2000;
  options.storage = storage;
  options.state_machine = [](uint64_t) { return std::make_unique<CountingStateMachine>(); };
  options.client = [&](Simulation& sim) {
    ++workload_calls;
    if (auto leader = sim.CurrentLeader(); leader && sim.rng().Chance(0.5)) {
      if (sim.Propose(*leader, "op" + std::to_string(proposed)).ok()) ++proposed;
    }
  };
  // Never more entries applied than were proposed (plus the liveness probes).
  options.extra_checks.push_back([&](const Simulation& sim) -> std::optional<std::string> {
    ++check_calls;
    for (uint64_t id = 1; id <= 3; ++id) {
      auto* sm = dynamic_cast<const CountingStateMachine*>(sim.state_machine(id));
      if (sm != nullptr && sm->count() > proposed + 100) return "applied more than proposed";
    }
    return std::nullopt;
  });
  Simulation sim(options);
  SimResult r = sim.Run();
  INFO(r.Summary());
  REQUIRE(r.ok);
  CHECK(workload_calls >= 2000);
  CHECK(check_calls >= 2000);
  CHECK(proposed > 100);
  CHECK(storage->reopens == static_cast<int>(r.stats.crashes));
}

TEST_CASE("an extra invariant that fails is reported", "[sim]") {
  SimOptions options;
  options.seed = 9;
  options.steps = 500;
  options.extra_checks.push_back([](const Simulation& sim) -> std::optional<std::string> {
    if (sim.checker().max_committed() > 20) return "too many commits";
    return std::nullopt;
  });
  Simulation sim(options);
  SimResult r = sim.Run();
  REQUIRE_FALSE(r.ok);
  CHECK(r.violation->property == "Invariant");
  CHECK(r.violation->detail == "too many commits");
}

}  // namespace
}  // namespace raftlock::sim
