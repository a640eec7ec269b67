// The simulator on the durable store (issue 3): the same seeded faults and
// safety checks, but every node keeps its log, hard state and snapshots in a
// RocksDbLogStore in a temporary directory. A crash closes the store and a
// restart reopens the directory, so the checker's storage rule ("a reopened
// store holds exactly what was persisted") and the four Raft safety properties
// hold for RocksDB as they do for MemoryStorage.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/sim/rocksdb_storage_factory.h"
#include "tests/sim/simulator.h"

namespace raftlock::sim {
namespace {

#ifndef RAFT_SIM_PATH
#define RAFT_SIM_PATH "./build/tests/sim/raft_sim"
#endif

// Fewer steps than the in-memory sets: every Persist is a synced RocksDB write.
constexpr int64_t kStepsPerSeed = 600;

void RunRocksDbSeeds(int nodes, const std::string& faults, uint64_t first_seed, int count) {
  const auto start = std::chrono::steady_clock::now();
  uint64_t committed = 0, crashes = 0, snapshots = 0;
  for (int i = 0; i < count; ++i) {
    auto factory = std::make_shared<RocksDbStorageFactory>();
    SimOptions options;
    options.seed = first_seed + static_cast<uint64_t>(i);
    options.num_nodes = nodes;
    options.faults = *FaultProfile::ByName(faults);
    options.steps = kStepsPerSeed;
    options.storage = factory;
    options.replay_program = RAFT_SIM_PATH;
    options.replay_extra_args = "--storage rocksdb";
    SimResult r;
    {
      Simulation sim(options);
      r = sim.Run();
    }
    committed += r.stats.max_committed;
    crashes += r.stats.crashes;
    snapshots += r.stats.snapshots_installed;
    if (!r.ok) {
      FAIL("seed " << options.seed << " on RocksDB failed: " << r.violation->property << ": "
                   << r.violation->detail << "\nreplay: " << r.replay_command);
    }
    // Crash-restarts really reopened directories on disk.
    REQUIRE(std::filesystem::exists(factory->root() + "/node-1"));
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "[sim rocksdb] nodes=%d faults=%s seeds=%d wall=%.2fs | committed=%llu crashes=%llu "
      "snapshots-installed=%llu\n",
      nodes, faults.c_str(), count, secs, static_cast<unsigned long long>(committed),
      static_cast<unsigned long long>(crashes), static_cast<unsigned long long>(snapshots));
  std::fflush(stdout);
  // The seeds must have exercised restarts, or the reopen path went untested.
  CHECK(crashes > 0);
}

TEST_CASE("safety and the storage rule hold on RocksDB stores, 3 nodes, medium faults",
          "[sim][rocksdb]") {
  RunRocksDbSeeds(3, "medium", 1, 20);
}

TEST_CASE("safety and the storage rule hold on RocksDB stores, 5 nodes, heavy faults",
          "[sim][rocksdb]") {
  RunRocksDbSeeds(5, "heavy", 1001, 10);
}

TEST_CASE("a RocksDB store reopened after a crash refuses a missing directory", "[sim][rocksdb]") {
  RocksDbStorageFactory factory;
  auto store = factory.Create(7);
  REQUIRE(store.ok());
  std::filesystem::remove_all(factory.root() + "/node-7");
  auto reopened = factory.Reopen(7, std::move(*store));
  CHECK_FALSE(reopened.ok());
}

}  // namespace
}  // namespace raftlock::sim
