// LeaderClock: the cluster time a leader stamps (docs/semantics.md §1).
#include "server/node/leader_clock.h"

#include <catch2/catch.hpp>

using raftlock::server::LeaderClock;
using namespace std::chrono_literals;

namespace {
// A steady time far from the clock's epoch, as on a machine up for hours.
const LeaderClock::Clock::time_point kUp3Hours = LeaderClock::Clock::time_point{} + 3h;
}  // namespace

TEST_CASE("semantics 1: a leader's first stamp is the applied cluster time, not its uptime",
          "[leader_clock]") {
  LeaderClock clock;
  CHECK(clock.StampMs(7, 15'000, kUp3Hours) == 15'000);
  CHECK(clock.term() == 7);
  CHECK(clock.base_ms() == 15'000);
}

TEST_CASE("semantics 1: stamps in a term advance with the time led, never faster",
          "[leader_clock]") {
  LeaderClock clock;
  REQUIRE(clock.StampMs(7, 15'000, kUp3Hours) == 15'000);
  // Later calls ignore the applied time: the term's clock already runs.
  CHECK(clock.StampMs(7, 99'000, kUp3Hours + 250ms) == 15'250);
  CHECK(clock.StampMs(7, 0, kUp3Hours + 1s) == 16'000);
}

TEST_CASE("semantics 1: a later term restarts from the applied time, not the old term's clock",
          "[leader_clock]") {
  LeaderClock clock;
  REQUIRE(clock.StampMs(7, 15'000, kUp3Hours) == 15'000);
  // Leader again, ten minutes later, after others led: continue from what
  // was applied, not from 15 s plus ten minutes of not leading.
  CHECK(clock.StampMs(9, 40'000, kUp3Hours + 10min) == 40'000);
  CHECK(clock.StampMs(9, 40'000, kUp3Hours + 10min + 20ms) == 40'020);
}
