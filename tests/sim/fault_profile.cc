#include "tests/sim/fault_profile.h"

namespace raftlock::sim {

FaultProfile FaultProfile::None() {
  FaultProfile p;
  p.name = "none";
  p.link = LinkFaults{.drop_rate = 0, .duplicate_rate = 0, .min_delay = 1, .max_delay = 1};
  return p;
}

FaultProfile FaultProfile::Light() {
  FaultProfile p;
  p.name = "light";
  p.link = LinkFaults{.drop_rate = 0.01, .duplicate_rate = 0.01, .min_delay = 0, .max_delay = 3};
  p.partition_rate = 0.002;
  p.crash_rate = 0.002;
  p.tick_skip_rate = 0.02;
  return p;
}

FaultProfile FaultProfile::Medium() {
  FaultProfile p;
  p.name = "medium";
  p.link = LinkFaults{.drop_rate = 0.05, .duplicate_rate = 0.03, .min_delay = 0, .max_delay = 5};
  p.partition_rate = 0.01;
  p.crash_rate = 0.008;
  p.tick_skip_rate = 0.05;
  return p;
}

FaultProfile FaultProfile::Heavy() {
  FaultProfile p;
  p.name = "heavy";
  p.link = LinkFaults{.drop_rate = 0.15, .duplicate_rate = 0.08, .min_delay = 0, .max_delay = 10};
  p.partition_rate = 0.03;
  p.min_partition_ticks = 5;
  p.max_partition_ticks = 150;
  p.crash_rate = 0.02;
  p.crash_inside_ready_share = 0.5;
  p.tick_skip_rate = 0.1;
  return p;
}

FaultProfile FaultProfile::LeaderHunt() {
  FaultProfile p;
  p.name = "hunt";
  p.link = LinkFaults{.drop_rate = 0.05, .duplicate_rate = 0.02, .min_delay = 0, .max_delay = 3};
  p.partition_rate = 0.01;
  p.min_partition_ticks = 5;
  p.max_partition_ticks = 40;
  p.crash_rate = 0.02;
  p.crash_inside_ready_share = 0.5;
  p.min_down_ticks = 1;
  p.max_down_ticks = 30;
  p.new_leader_cut_rate = 0.5;
  p.tick_skip_rate = 0.05;
  return p;
}

std::optional<FaultProfile> FaultProfile::ByName(std::string_view name) {
  if (name == "none") return None();
  if (name == "light") return Light();
  if (name == "medium") return Medium();
  if (name == "heavy") return Heavy();
  if (name == "hunt") return LeaderHunt();
  return std::nullopt;
}

std::vector<std::string> FaultProfile::Names() {
  return {"none", "light", "medium", "heavy", "hunt"};
}

}  // namespace raftlock::sim
