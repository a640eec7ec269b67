// raft_sim: run the deterministic Raft simulator from the command line.
//
//   raft_sim --seed 1234 --nodes 5 --faults heavy --steps 20000 [--verbose]
//   raft_sim --seed 1 --seeds 500 --nodes 3 --faults all
//   raft_sim --soak [--soak-seconds 3600] [--steps 20000]
//   raft_sim --scenario figure8 [--unsafe-commit-prior-term]
//   raft_sim --seed 1 --seeds 20 --storage rocksdb   (a RocksDbLogStore per node)
//
// Exit status 0 when every seed passed, 1 on a violation, 2 on bad flags.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/sim/rocksdb_storage_factory.h"
#include "tests/sim/scenarios.h"
#include "tests/sim/simulator.h"

namespace {

using raftlock::sim::FaultProfile;
using raftlock::sim::SimOptions;
using raftlock::sim::SimResult;
using raftlock::sim::Simulation;

struct Flags {
  uint64_t seed = 1;
  uint64_t seeds = 1;
  std::vector<int> nodes = {3};
  std::vector<std::string> faults = {"medium"};
  int64_t steps = 2000;
  bool steps_given = false;
  bool soak = false;
  double soak_seconds = 0;  // 0 = until a failure or interrupted
  bool verbose = false;
  bool unsafe = false;
  int liveness_ticks = 0;
  std::string scenario;
  std::string storage = "memory";  // or "rocksdb": a RocksDbLogStore per node
};

void Usage() {
  std::fprintf(stderr,
               "usage: raft_sim [--seed S] [--seeds N] [--nodes 3|5|7|all] "
               "[--faults none|light|medium|heavy|hunt|all] [--steps K] [--verbose]\n"
               "                [--soak [--soak-seconds T]] [--unsafe-commit-prior-term]\n"
               "                [--liveness-ticks T] [--scenario figure8] "
               "[--storage memory|rocksdb]\n");
}

bool Parse(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--seed") {
      const char* v = value();
      if (!v) return false;
      f->seed = std::strtoull(v, nullptr, 10);
    } else if (arg == "--seeds") {
      const char* v = value();
      if (!v) return false;
      f->seeds = std::strtoull(v, nullptr, 10);
    } else if (arg == "--nodes") {
      const char* v = value();
      if (!v) return false;
      if (std::strcmp(v, "all") == 0) {
        f->nodes = {3, 5, 7};
      } else {
        f->nodes = {std::atoi(v)};
        if (f->nodes[0] < 1 || f->nodes[0] > 9) return false;
      }
    } else if (arg == "--faults") {
      const char* v = value();
      if (!v) return false;
      if (std::strcmp(v, "all") == 0) {
        f->faults = {"light", "medium", "heavy"};
      } else {
        if (!FaultProfile::ByName(v)) return false;
        f->faults = {v};
      }
    } else if (arg == "--steps") {
      const char* v = value();
      if (!v) return false;
      f->steps = std::strtoll(v, nullptr, 10);
      f->steps_given = true;
    } else if (arg == "--soak") {
      f->soak = true;
    } else if (arg == "--soak-seconds") {
      const char* v = value();
      if (!v) return false;
      f->soak_seconds = std::strtod(v, nullptr);
    } else if (arg == "--verbose" || arg == "-v") {
      f->verbose = true;
    } else if (arg == "--unsafe-commit-prior-term") {
      f->unsafe = true;
    } else if (arg == "--liveness-ticks") {
      const char* v = value();
      if (!v) return false;
      f->liveness_ticks = std::atoi(v);
    } else if (arg == "--storage") {
      const char* v = value();
      if (!v || (std::string(v) != "memory" && std::string(v) != "rocksdb")) return false;
      f->storage = v;
    } else if (arg == "--scenario") {
      const char* v = value();
      if (!v) return false;
      f->scenario = v;
    } else {
      return false;
    }
  }
  return true;
}

int RunScenario(const Flags& flags) {
  if (flags.scenario != "figure8") {
    std::fprintf(stderr, "unknown scenario '%s'\n", flags.scenario.c_str());
    return 2;
  }
  auto out = raftlock::sim::RunFigure8Scenario(flags.unsafe, flags.seed, flags.verbose);
  std::printf("%s", out.narrative.c_str());
  if (out.violation) {
    std::printf("violation: %s at tick %lld: %s\n", out.violation->property.c_str(),
                static_cast<long long>(out.violation->tick), out.violation->detail.c_str());
    return 1;
  }
  std::printf(out.completed ? "completed without violation\n" : "script did not complete\n");
  return out.completed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!Parse(argc, argv, &flags)) {
    Usage();
    return 2;
  }
  if (!flags.scenario.empty()) return RunScenario(flags);
  if (flags.soak) {
    if (!flags.steps_given) flags.steps = 20000;
    flags.nodes = {3, 5, 7};
    flags.faults = {"light", "medium", "heavy"};
    flags.seeds = UINT64_MAX;
  }
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  uint64_t runs = 0, failures = 0;
  int64_t steps = 0;
  double last_progress = 0;
  for (uint64_t s = 0; s < flags.seeds; ++s) {
    // A soak cycles through every size and profile; a range runs each combination.
    for (size_t ni = 0; ni < flags.nodes.size(); ++ni) {
      for (size_t fi = 0; fi < flags.faults.size(); ++fi) {
        if (flags.soak && (s % flags.nodes.size() != ni ||
                           (s / flags.nodes.size()) % flags.faults.size() != fi)) {
          continue;
        }
        SimOptions options;
        options.seed = flags.seed + s;
        options.num_nodes = flags.nodes[ni];
        options.faults = *FaultProfile::ByName(flags.faults[fi]);
        options.steps = flags.steps;
        options.verbose = flags.verbose;
        options.unsafe_commit_prior_term = flags.unsafe;
        options.liveness_ticks = flags.liveness_ticks;
        options.replay_program = argv[0];
        if (flags.storage == "rocksdb") {
          options.storage = std::make_shared<raftlock::sim::RocksDbStorageFactory>();
          options.replay_extra_args = "--storage rocksdb";
        }
        Simulation sim(options);
        SimResult r = sim.Run();
        ++runs;
        steps += r.stats.steps;
        if (!r.ok) ++failures;
        if (!r.ok || flags.seeds == 1) {
          std::printf("seed %llu: %s\n", static_cast<unsigned long long>(options.seed),
                      r.Summary().c_str());
        }
        if (!r.ok && flags.soak) break;
      }
    }
    if (failures > 0 && flags.soak) break;
    if (flags.soak && flags.soak_seconds > 0 && elapsed() >= flags.soak_seconds) break;
    if (flags.soak && elapsed() - last_progress >= 10) {
      last_progress = elapsed();
      std::printf("soak: %llu seeds, %lld steps, %.0fs, %.0f steps/s\n",
                  static_cast<unsigned long long>(runs), static_cast<long long>(steps), elapsed(),
                  steps / elapsed());
      std::fflush(stdout);
    }
  }
  const double secs = elapsed();
  std::printf("%llu runs, %llu failed, %lld steps in %.2fs (%.0f steps/s)\n",
              static_cast<unsigned long long>(runs), static_cast<unsigned long long>(failures),
              static_cast<long long>(steps), secs, secs > 0 ? steps / secs : 0.0);
  return failures == 0 ? 0 : 1;
}
