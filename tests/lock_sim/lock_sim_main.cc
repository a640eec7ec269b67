// lock_sim: run the lock-service simulation from the command line.
//
//   lock_sim --seed 1234 --nodes 5 --faults heavy --steps 600 [--verbose]
//   lock_sim --seed 1 --seeds 100 --nodes 3 --faults medium
//   lock_sim --seed 1 --broken double-grant     (the checker must object)
//
// Exit status 0 when every seed passed, 1 on a violation, 2 on bad flags.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/lock_sim/lock_sim.h"

namespace {

using raftlock::lock_sim::LockSimOptions;

void Usage() {
  std::fprintf(stderr,
               "usage: lock_sim [--seed S] [--seeds N] [--nodes 3|5|7] "
               "[--faults none|light|medium|heavy|hunt] [--steps K] [--clients C]\n"
               "                [--broken none|double-grant|early-expiry|lost-keepalive] "
               "[--verbose]\n");
}

}  // namespace

int main(int argc, char** argv) {
  LockSimOptions options;
  options.replay_program = argv[0];
  uint64_t seeds = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    bool used_value = true;
    if (arg == "--verbose") {
      options.verbose = true;
      used_value = false;
    } else if (v == nullptr) {
      Usage();
      return 2;
    } else if (arg == "--seed") {
      options.seed = std::strtoull(v, nullptr, 10);
    } else if (arg == "--seeds") {
      seeds = std::strtoull(v, nullptr, 10);
    } else if (arg == "--nodes") {
      options.nodes = std::atoi(v);
      if (options.nodes < 1 || options.nodes > 9) return Usage(), 2;
    } else if (arg == "--faults") {
      options.faults = v;
      if (!raftlock::sim::FaultProfile::ByName(options.faults)) return Usage(), 2;
    } else if (arg == "--steps") {
      options.steps = std::strtoll(v, nullptr, 10);
    } else if (arg == "--clients") {
      options.clients = std::atoi(v);
    } else if (arg == "--broken") {
      if (!raftlock::lock_sim::ParseFault(v, &options.fault)) return Usage(), 2;
    } else {
      Usage();
      return 2;
    }
    if (used_value) ++i;
  }
  const auto start = std::chrono::steady_clock::now();
  raftlock::lock_sim::Activity total;
  int failed = 0;
  const uint64_t first = options.seed;
  for (uint64_t s = first; s < first + seeds; ++s) {
    options.seed = s;
    const raftlock::lock_sim::LockSimResult r = raftlock::lock_sim::RunLockSim(options);
    total.Add(r.activity);
    if (!r.ok() || seeds == 1) {
      std::printf("seed %llu: %s\n", static_cast<unsigned long long>(s), r.Summary().c_str());
    }
    if (!r.ok()) {
      ++failed;
      break;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: seeds from %llu, %.2fs | %s\n", failed ? "FAILED" : "passed",
              static_cast<unsigned long long>(first), secs, total.ToString().c_str());
  return failed ? 1 : 0;
}
