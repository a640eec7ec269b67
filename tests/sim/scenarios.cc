#include "tests/sim/scenarios.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/sim/simulator.h"

namespace raftlock::sim {
namespace {

uint64_t TermAt(const Simulation& sim, uint64_t id, uint64_t index) {
  auto term = sim.storage(id)->Term(index);
  return term.ok() ? *term : 0;
}

// Options for a scripted run: exact one-tick links, the default
// configuration, no client, no compaction; the script does everything.
SimOptions ScriptedOptions(int num_nodes, uint64_t seed, bool verbose) {
  SimOptions options;
  options.seed = seed;
  options.num_nodes = num_nodes;
  options.faults = FaultProfile::None();
  options.randomize_config = false;
  options.client = [](Simulation&) {};
  options.compaction_rate = 0;
  options.verbose = verbose;
  options.replay_program = "sim_test";
  return options;
}

// ScriptedOptions on three nodes whose every eligible Ready is synced later,
// and whose crashes lose every unsynced write.
SimOptions UnsyncedScriptedOptions(uint64_t seed, bool verbose) {
  SimOptions options = ScriptedOptions(3, seed, verbose);
  options.deferred_sync_rate = 1.0;
  options.crash_loses_all_unsynced = true;
  return options;
}

// Records that the next stage of the script happened.
void Stage(ScenarioOutcome& out, const std::string& line) {
  ++out.stages_done;
  absl::StrAppend(&out.narrative, out.stages_done, ". ", line, "\n");
}

}  // namespace

ScenarioOutcome RunFigure8Scenario(bool unsafe_commit_prior_term, uint64_t seed, bool verbose) {
  ScenarioOutcome out;
  SimOptions options = ScriptedOptions(5, seed, verbose);
  options.unsafe_commit_prior_term = unsafe_commit_prior_term;
  options.configure_node = [](raft::Config& c) { c.max_size_per_msg = 1; };
  Simulation sim(options);
  sim.set_random_faults(false);
  auto stage = [&](const std::string& line) { Stage(out, line); };
  auto finish = [&] {
    out.violation = sim.violation();
    return out;
  };
  auto leader_among = [&](const std::vector<uint64_t>& ids, uint64_t min_term) {
    for (uint64_t id : ids) {
      if (sim.IsUp(id) && sim.node(id)->role() == raft::Role::kLeader &&
          sim.node(id)->term() > min_term) {
        return id;
      }
    }
    return uint64_t{0};
  };
  if (!sim.Start().ok()) return finish();

  // 1. A first leader P, everyone caught up; then X reaches Q only.
  if (!sim.RunUntil([&] { return sim.CurrentLeader().has_value(); }, 300)) return finish();
  const uint64_t p = *sim.CurrentLeader();
  const uint64_t t1 = sim.node(p)->term();
  const uint64_t caught_up = sim.storage(p)->LastIndex();
  if (!sim.RunUntil(
          [&] {
            for (uint64_t id = 1; id <= 5; ++id) {
              if (sim.applied(id) < caught_up) return false;
            }
            return true;
          },
          100)) {
    return finish();
  }
  const uint64_t q = p == 1 ? 2 : 1;
  std::vector<uint64_t> others;  // the three that never see X
  for (uint64_t id = 1; id <= 5; ++id) {
    if (id != p && id != q) others.push_back(id);
  }
  for (uint64_t r : others) sim.network().BlockBothWays(p, r);
  auto x = sim.Propose(p, "X");
  if (!x.ok()) return finish();
  const uint64_t k = *x;
  if (!sim.RunUntil([&] { return sim.storage(q)->LastIndex() >= k; }, 10)) return finish();
  if (sim.applied(p) >= k) return finish();  // X must not be committed yet
  sim.Crash(p);
  stage(absl::StrCat("n", p, " led term ", t1, ", stored X at index ", k, " on n", p, " and n", q,
                     " only, and crashed"));

  // 2. W wins among the three, appends its no-op at k, and is cut off.
  sim.network().Partition({others});
  uint64_t w = 0;
  if (!sim.RunUntil([&] { return (w = leader_among(others, t1)) != 0; }, 400)) return finish();
  sim.network().Isolate(w);
  const uint64_t t2 = sim.node(w)->term();
  if (sim.storage(w)->LastIndex() != k || TermAt(sim, w, k) != t2) return finish();
  stage(absl::StrCat("n", w, " won term ", t2, " and holds its own entry at index ", k,
                     "; it is cut off"));

  // 3. P restarts; L in {P, Q} wins; X alone reaches A; L is cut off, crashes.
  sim.Restart(p);
  std::vector<uint64_t> ab;
  for (uint64_t r : others) {
    if (r != w) ab.push_back(r);
  }
  const uint64_t a = ab[0], b = ab[1];
  sim.network().Partition({{p, q, a, b}});
  uint64_t l = 0;
  if (!sim.RunUntil([&] { return (l = leader_among({p, q}, t2)) != 0; }, 600)) return finish();
  const uint64_t f = l == p ? q : p;
  const uint64_t t3 = sim.node(l)->term();
  sim.network().BlockBothWays(l, b);
  auto a_matches_x = [&] {
    if (!sim.IsUp(l)) return false;
    auto progress = sim.node(l)->Status().progress;
    return progress.count(a) > 0 && progress[a].match >= k;
  };
  if (!sim.RunUntil(a_matches_x, 40)) return finish();
  sim.network().Isolate(l);
  const bool a_has_only_x = sim.storage(a)->LastIndex() == k && TermAt(sim, a, k) == t1;
  const bool x_applied_by_l = sim.applied(l) >= k;
  sim.Crash(l);
  if (!a_has_only_x) return finish();
  stage(absl::StrCat("n", l, " won term ", t3, "; X (term ", t1, ") is on n", l, ", n", f, " and n",
                     a, ", its no-op on n", l, " and n", f, " only; n", l,
                     x_applied_by_l ? " COMMITTED and applied X" : " did not commit X"));
  if (unsafe_commit_prior_term && !x_applied_by_l) return finish();

  // 4. W returns and wins with A and B, overwriting index k.
  sim.network().Partition({{w, a, b}});
  if (!sim.RunUntil([&] { return leader_among({w}, t3) != 0; }, 600)) return finish();
  if (!sim.RunUntil([&] { return sim.applied(w) > k; }, 100)) return finish();
  stage(absl::StrCat("n", w, " won term ", sim.node(w)->term(),
                     " and committed its entry at index ", k, " (term ", TermAt(sim, w, k), ")"));

  // 5. Everything heals; the cluster must converge.
  sim.HealAll();
  if (!sim.CheckLiveness()) return finish();
  stage("healed; a fresh proposal committed on every node");
  out.completed = true;
  return finish();
}

ScenarioOutcome RunUnsyncedLeaderScenario(bool count_unsynced_entries, uint64_t seed,
                                          bool verbose) {
  ScenarioOutcome out;
  SimOptions options = UnsyncedScriptedOptions(seed, verbose);
  options.configure_node = [count_unsynced_entries](raft::Config& c) {
    c.testing_count_unsynced_entries = count_unsynced_entries;
  };
  Simulation sim(options);
  sim.set_random_faults(false);
  auto stage = [&](const std::string& line) { Stage(out, line); };
  auto finish = [&] {
    out.violation = sim.violation();
    return out;
  };
  if (!sim.Start().ok()) return finish();

  // 1. A leader P with everyone caught up; then P's syncs stall and R is cut off.
  if (!sim.RunUntil([&] { return sim.CurrentLeader().has_value(); }, 300)) return finish();
  const uint64_t p = *sim.CurrentLeader();
  const uint64_t t1 = sim.node(p)->term();
  const uint64_t caught_up = sim.storage(p)->LastIndex();
  auto all_applied = [&](uint64_t index) {
    for (uint64_t id = 1; id <= 3; ++id) {
      if (sim.applied(id) < index) return false;
    }
    return true;
  };
  if (!sim.RunUntil([&] { return all_applied(caught_up); }, 100)) return finish();
  const uint64_t q = p == 1 ? 2 : 1;
  const uint64_t r = 6 - p - q;
  sim.HoldSyncs(p, true);
  sim.network().BlockBothWays(p, r);
  stage(absl::StrCat("n", p, " leads term ", t1, "; its syncs are held and n", r, " is cut off"));

  // 2. X reaches Q, whose acknowledgement reaches P.
  auto x = sim.Propose(p, "X");
  if (!x.ok()) return finish();
  const uint64_t k = *x;
  auto q_acknowledged = [&] {
    auto progress = sim.node(p)->Status().progress;
    return progress.count(q) > 0 && progress[q].match >= k;
  };
  if (!sim.RunUntil(q_acknowledged, 40)) return finish();
  sim.RunTicks(3);  // time for P to apply X if it (wrongly) committed it
  const bool x_applied_by_p = sim.applied(p) >= k;
  stage(absl::StrCat("X at index ", k, " is on n", q, " and unsynced on n", p, "; n", p,
                     x_applied_by_p ? " COMMITTED and applied X" : " did not commit X"));
  if (count_unsynced_entries && !x_applied_by_p) return finish();

  // 3. P crashes and loses X; with Q cut off, P and R elect a leader without X.
  sim.Crash(p);
  if (sim.storage(p)->LastIndex() >= k) return finish();  // the loss did not happen
  sim.network().Heal();
  sim.network().Isolate(q);
  sim.Restart(p);
  uint64_t w = 0;
  auto new_leader = [&] {
    for (uint64_t id : {p, r}) {
      if (sim.IsUp(id) && sim.node(id)->role() == raft::Role::kLeader &&
          sim.node(id)->term() > t1) {
        w = id;
        return true;
      }
    }
    return false;
  };
  if (!sim.RunUntil(new_leader, 600)) return finish();
  stage(absl::StrCat("n", p, " lost X in a crash; n", w, " won term ", sim.node(w)->term(),
                     " without it"));

  // 4. Everything heals; the cluster must converge.
  sim.HealAll();
  if (!sim.CheckLiveness()) return finish();
  stage("healed; a fresh proposal committed on every node");
  out.completed = true;
  return finish();
}

ScenarioOutcome RunUnsyncedOverwriteScenario(uint64_t seed, bool verbose) {
  ScenarioOutcome out;
  SimOptions options = UnsyncedScriptedOptions(seed, verbose);
  Simulation sim(options);
  sim.set_random_faults(false);
  auto stage = [&](const std::string& line) { Stage(out, line); };
  auto finish = [&] {
    out.violation = sim.violation();
    return out;
  };
  auto term_at = [&](uint64_t id, uint64_t index) -> uint64_t {
    auto term = sim.storage(id)->Term(index);
    return term.ok() ? *term : 0;
  };
  if (!sim.Start().ok()) return finish();

  // 1. P leads term T1, is cut off, and appends Y at index k alone.
  if (!sim.RunUntil([&] { return sim.CurrentLeader().has_value(); }, 300)) return finish();
  const uint64_t p = *sim.CurrentLeader();
  const uint64_t t1 = sim.node(p)->term();
  sim.network().Isolate(p);
  auto y = sim.Propose(p, "Y");
  if (!y.ok()) return finish();
  const uint64_t k = *y;
  if (!sim.RunUntil([&] { return !sim.HasUnsyncedWrites(p); }, 50)) return finish();
  stage(absl::StrCat("n", p, " leads term ", t1, ", is cut off, and holds Y at index ", k));

  // 2. Q and R elect L in a later term; L commits its entries at k and on.
  uint64_t l = 0;
  auto new_leader = [&] {
    for (uint64_t id = 1; id <= 3; ++id) {
      if (id != p && sim.node(id)->role() == raft::Role::kLeader && sim.node(id)->term() > t1) {
        l = id;
        return true;
      }
    }
    return false;
  };
  if (!sim.RunUntil(new_leader, 600)) return finish();
  auto z = sim.Propose(l, "Z");
  if (!z.ok()) return finish();
  if (!sim.RunUntil([&] { return sim.applied(l) >= *z; }, 100)) return finish();
  stage(absl::StrCat("n", l, " leads term ", sim.node(l)->term(), " and committed through ", *z));

  // 3. P's syncs are held; P hears from L and replaces Y, unsynced.
  sim.HoldSyncs(p, true);
  sim.network().Heal();
  auto overwritten = [&] {
    return sim.IsUp(p) && sim.storage(p)->LastIndex() >= *z && term_at(p, k) != t1;
  };
  if (!sim.RunUntil(overwritten, 200)) return finish();
  stage(absl::StrCat("n", p, " replaced Y with term ", term_at(p, k),
                     " entries, written but not synced"));

  // 4. P crashes: the overwrite is lost and Y is back.
  sim.Crash(p);
  if (term_at(p, k) != t1) return finish();
  stage(absl::StrCat("n", p, " crashed; Y (term ", t1, ") is back at index ", k));

  // 5. P restarts and everything heals; the cluster must converge.
  sim.Restart(p);
  sim.HealAll();
  if (!sim.CheckLiveness()) return finish();
  if (term_at(p, k) == t1) return finish();  // P's log was not repaired
  stage("healed; n" + std::to_string(p) + " repaired its log; a fresh proposal committed");
  out.completed = true;
  return finish();
}

}  // namespace raftlock::sim
