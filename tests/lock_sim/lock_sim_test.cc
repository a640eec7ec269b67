// The lock-service simulation's CI gate: seed sets on 3 and 5 nodes under
// light, medium and heavy faults (every node applies the lock state machine;
// LockChecker's rules run after every entry and step), and deliberately
// broken adapters that the checker must catch.
#include "tests/lock_sim/lock_sim.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <string>

namespace raftlock::lock_sim {
namespace {

#ifndef LOCK_SIM_PATH
#define LOCK_SIM_PATH "./build/tests/lock_sim/lock_sim"
#endif

constexpr int64_t kStepsPerSeed = 600;

LockSimOptions Options(int nodes, const std::string& faults, uint64_t seed,
                       int64_t steps = kStepsPerSeed, int clients = 5) {
  LockSimOptions o;
  o.seed = seed;
  o.nodes = nodes;
  o.faults = faults;
  o.steps = steps;
  o.clients = clients;
  o.replay_program = LOCK_SIM_PATH;
  return o;
}

// Runs `count` seeds from 1; fails with the replay line of the first failing
// seed. Prints wall time and what the clients did, and requires that they
// did it: grants, handoffs to waiters, shared grants, lease expiries.
void RunSeeds(int nodes, const std::string& faults, int count, int64_t steps = kStepsPerSeed,
              int clients = 5) {
  const auto start = std::chrono::steady_clock::now();
  Activity total;
  uint64_t crashes = 0, snapshots = 0, leaders = 0;
  for (int i = 0; i < count; ++i) {
    const LockSimOptions o = Options(nodes, faults, 1 + static_cast<uint64_t>(i), steps, clients);
    const LockSimResult r = RunLockSim(o);
    total.Add(r.activity);
    crashes += r.sim.stats.crashes;
    snapshots += r.sim.stats.snapshots_installed;
    leaders += r.sim.stats.leaders;
    if (!r.ok()) {
      std::fprintf(stderr, "seed %llu: %s\n", static_cast<unsigned long long>(o.seed),
                   r.Summary().c_str());
      FAIL("seed " << o.seed << " failed: " << r.sim.violation->property << ": "
                   << r.sim.violation->detail << "\nreplay: " << r.sim.replay_command
                   << "\nor the whole case: lock_sim_test \""
                   << Catch::getResultCapture().getCurrentTestName() << "\"");
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "[lock_sim] nodes=%d faults=%s seeds=%d steps/seed=%lld clients=%d wall=%.2fs | "
      "leaders=%llu crashes=%llu snapshots-installed=%llu | %s\n",
      nodes, faults.c_str(), count, static_cast<long long>(steps), clients, secs,
      static_cast<unsigned long long>(leaders), static_cast<unsigned long long>(crashes),
      static_cast<unsigned long long>(snapshots), total.ToString().c_str());
  std::fflush(stdout);
  CHECK(total.grants > static_cast<uint64_t>(count));
  CHECK(total.handoffs > 0);
  CHECK(total.shared_grants > 0);
  CHECK(total.expiries > 0);
  CHECK(total.expiry_margin_checks > 0);
  CHECK(total.keepalives > 0);
}

// ---- CI seed sets: 520 seeds in all ----

TEST_CASE(
    "lock sim 3 nodes light faults: mutual exclusion fencing replica agreement and lease TTL hold",
    "[lock_sim][seeds]") {
  RunSeeds(3, "light", 100);
}
TEST_CASE(
    "lock sim 3 nodes medium faults: mutual exclusion fencing replica agreement and lease TTL hold",
    "[lock_sim][seeds]") {
  RunSeeds(3, "medium", 100);
}
TEST_CASE(
    "lock sim 3 nodes heavy faults: mutual exclusion fencing replica agreement and lease TTL hold",
    "[lock_sim][seeds]") {
  RunSeeds(3, "heavy", 100);
}
TEST_CASE(
    "lock sim 5 nodes light faults: mutual exclusion fencing replica agreement and lease TTL hold",
    "[lock_sim][seeds]") {
  RunSeeds(5, "light", 70);
}
TEST_CASE(
    "lock sim 5 nodes medium faults: mutual exclusion fencing replica agreement and lease TTL hold",
    "[lock_sim][seeds]") {
  RunSeeds(5, "medium", 70);
}
TEST_CASE(
    "lock sim 5 nodes heavy faults: mutual exclusion fencing replica agreement and lease TTL hold",
    "[lock_sim][seeds]") {
  RunSeeds(5, "heavy", 70);
}

// Longer runs with more clients reach rarer interleavings: seed 5 of this
// set once found an entry whose revoke handed a lock on with the token the
// same entry's expiry pass had just granted to the revoked lease.
TEST_CASE("lock sim 3 nodes medium faults 8 clients long runs: fencing tokens are never reused",
          "[lock_sim][seeds]") {
  RunSeeds(3, "medium", 10, 3000, 8);
}

// ---- The checker catches real violations ----

// Every one of a few seeds with the broken adapter must be reported, under
// the rule the breakage violates.
void RequireCaught(Fault fault, const std::string& rule) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    LockSimOptions o = Options(3, "light", seed);
    o.fault = fault;
    const LockSimResult r = RunLockSim(o);
    INFO("broken adapter " << FaultName(fault) << ", seed " << seed << "\n" << r.Summary());
    REQUIRE_FALSE(r.ok());
    CHECK(r.sim.violation->property == "Invariant");
    CHECK(r.sim.violation->detail.rfind(rule, 0) == 0);
    CHECK(r.sim.replay_command.find("--broken " + std::string(FaultName(fault))) !=
          std::string::npos);
  }
}

TEST_CASE("broken adapter granting a second exclusive holder is reported as mutual exclusion",
          "[lock_sim][broken]") {
  RequireCaught(Fault::kGrantSecondExclusive, "Mutual exclusion");
}

TEST_CASE("broken adapter expiring leases early is reported against simulated time",
          "[lock_sim][broken]") {
  RequireCaught(Fault::kEarlyExpiry, "Lease TTL (simulated time)");
}

TEST_CASE("broken adapter dropping accepted keepalives is reported against cluster time",
          "[lock_sim][broken]") {
  RequireCaught(Fault::kLostKeepAlive, "Lease TTL (cluster time)");
}

// ---- Determinism: a seed replays exactly ----

TEST_CASE("lock sim seed replays identically", "[lock_sim]") {
  const LockSimOptions o = Options(5, "heavy", 42);
  const LockSimResult a = RunLockSim(o);
  const LockSimResult b = RunLockSim(o);
  REQUIRE(a.ok());
  CHECK(a.Summary() == b.Summary());
  CHECK(a.sim.stats.max_committed == b.sim.stats.max_committed);
}

}  // namespace
}  // namespace raftlock::lock_sim
