// Seeded randomized runs over the in-test cluster (drops, partitions,
// restarts), checking Figure 3's Election Safety and State Machine Safety
// after every step. The full simulator lives in tests/sim; this is a smoke
// check of the core alone.
#include <catch2/catch.hpp>
#include <random>

#include "tests/raft/harness.h"

namespace raftlock::raft::test {
namespace {

struct Outcome {
  size_t max_applied = 0;
  int elections = 0;
};

Outcome RunRandom(uint64_t seed, bool pre_vote, bool check_quorum) {
  std::mt19937_64 rng(seed);
  Cluster c(5, [&](Config& cfg) {
    cfg.pre_vote = pre_vote;
    cfg.check_quorum = check_quorum;
    cfg.max_inflight_msgs = 4;
    cfg.max_size_per_msg = 64;
  });
  std::map<uint64_t, uint64_t> leader_of_term;
  int proposals = 0;
  Outcome out;
  for (int step = 0; step < 600; ++step) {
    const uint64_t r = rng() % 100;
    if (r < 3) {
      c.Isolate(1 + rng() % 5);
    } else if (r < 6) {
      c.Heal();
    } else if (r < 8) {
      c.Start(1 + rng() % 5);  // crash-restart from durable state
    } else if (r < 12) {
      c.SetDrop([&rng](const Message&) { return rng() % 5 == 0; });
    }
    for (uint64_t id : c.ids()) c.Tick(id);
    if (uint64_t l = c.Leader(); l != kNone && rng() % 2 == 0) {
      if (c.node(l).Propose("v" + std::to_string(proposals)).ok()) ++proposals;
    }
    c.Stabilize();
    // Election Safety: at most one leader per term.
    for (uint64_t id : c.ids()) {
      if (c.node(id).role() != Role::kLeader) continue;
      auto [it, inserted] = leader_of_term.emplace(c.node(id).term(), id);
      if (inserted) ++out.elections;
      REQUIRE(it->second == id);
    }
  }
  // State Machine Safety: applied sequences agree index by index.
  std::map<uint64_t, std::pair<uint64_t, std::string>> truth;
  for (uint64_t id : c.ids()) {
    out.max_applied = std::max(out.max_applied, c.applied_[id].size());
    for (const Entry& e : c.applied_[id]) {
      auto [it, inserted] = truth.emplace(e.index(), std::make_pair(e.term(), e.data()));
      REQUIRE(it->second.first == e.term());
      REQUIRE(it->second.second == e.data());
    }
  }
  return out;
}

TEST_CASE("Figure 3 safety holds under drops, partitions and restarts (seeded)", "[safety]") {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    INFO("seed " << seed);
    Outcome o = RunRandom(seed, seed % 2 == 0, seed % 3 != 0);
    CHECK(o.elections >= 1);
    CHECK(o.max_applied > 10);  // the cluster made progress
  }
}

}  // namespace
}  // namespace raftlock::raft::test
