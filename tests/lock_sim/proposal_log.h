// What the lock workload proposed, for the checker: the simulated tick at which
// each log entry (index, term) was stamped and handed to a leader. Simulated
// time runs at kMsPerTick milliseconds per tick; it is the "real time" the
// lease promise is measured in (the leaders' steady clocks run at this rate).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

namespace raftlock::lock_sim {

inline constexpr int64_t kMsPerTick = 50;

class ProposalLog {
 public:
  void Record(uint64_t index, uint64_t term, int64_t tick) { ticks_[{index, term}] = tick; }
  // The tick entry (index, term) was proposed at, if this workload proposed it.
  std::optional<int64_t> TickOf(uint64_t index, uint64_t term) const {
    auto it = ticks_.find({index, term});
    if (it == ticks_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::map<std::pair<uint64_t, uint64_t>, int64_t> ticks_;
};

}  // namespace raftlock::lock_sim
