// The simulation's only source of randomness. Everything a run does follows
// from its seed; never read a clock or std::random_device in the simulator.
#pragma once

#include <cstdint>
#include <random>

namespace raftlock::sim {

class SimRng {
 public:
  explicit SimRng(uint64_t seed) : gen_(seed) {}

  uint64_t Next() { return gen_(); }
  // Uniform in [0, n); n must be > 0.
  uint64_t Below(uint64_t n) { return gen_() % n; }
  // Uniform in [lo, hi] (inclusive); lo <= hi.
  int64_t Range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
  }
  // True with probability p. Portable: avoids std::*_distribution, whose
  // output differs between standard libraries.
  bool Chance(double p) {
    const double u = static_cast<double>(gen_() >> 11) * 0x1.0p-53;
    return u < p;
  }

 private:
  std::mt19937_64 gen_;
};

}  // namespace raftlock::sim
