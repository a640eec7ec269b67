// How hostile a simulated run is. A seed picks its cluster configuration; the
// fault profile (chosen by name on the command line) sets the rates.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/sim/network.h"

namespace raftlock::sim {

struct FaultProfile {
  std::string name = "none";
  LinkFaults link;
  // Per step: chance that a partition starts when none is active. A
  // partition is a symmetric split, an isolated node, a node that can only
  // send or only receive, or a few one-way links; it lasts a random time.
  double partition_rate = 0;
  int min_partition_ticks = 10;
  int max_partition_ticks = 100;
  // Per step: chance that a random up node crashes (at most a majority are
  // down at once). Part of the crashes strike inside Ready handling: after
  // replication messages left but before the write, or after the write but
  // before the acknowledgements are sent.
  double crash_rate = 0;
  double crash_inside_ready_share = 0.4;
  int min_down_ticks = 1;
  int max_down_ticks = 60;
  // Chance that a newly elected leader is cut off from everyone right away
  // (for min..max partition ticks), before its first appends spread: the
  // pattern behind Figure 8 of the Raft paper.
  double new_leader_cut_rate = 0;
  // Per node and step: chance of skipping a tick (clock skew between nodes).
  double tick_skip_rate = 0;

  static FaultProfile None();
  static FaultProfile Light();
  static FaultProfile Medium();
  static FaultProfile Heavy();
  // Short partitions and crashes aimed at fresh leaders.
  static FaultProfile LeaderHunt();
  // Returns the profile named none/light/medium/heavy/hunt.
  static std::optional<FaultProfile> ByName(std::string_view name);
  static std::vector<std::string> Names();
};

}  // namespace raftlock::sim
