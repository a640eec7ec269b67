#include "server/node/leader_clock.h"

namespace raftlock::server {

int64_t LeaderClock::StampMs(uint64_t term, int64_t applied_cluster_ms, Clock::time_point now) {
  if (term != term_) {
    term_ = term;
    base_ms_ = applied_cluster_ms;
    since_ = now;
  }
  const auto led = std::chrono::duration_cast<std::chrono::milliseconds>(now - since_);
  return base_ms_ + (led.count() > 0 ? led.count() : 0);
}

}  // namespace raftlock::server
