#include "tests/sim/simulator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "raft/memory_storage.h"

namespace raftlock::sim {

absl::StatusOr<std::unique_ptr<raft::LogStorage>> MemoryStorageFactory::Create(uint64_t) {
  return std::make_unique<raft::MemoryStorage>();
}

absl::StatusOr<std::unique_ptr<raft::LogStorage>> MemoryStorageFactory::Reopen(
    uint64_t, std::unique_ptr<raft::LogStorage> crashed) {
  auto* memory = dynamic_cast<raft::MemoryStorage*>(crashed.get());
  if (memory == nullptr) return absl::InvalidArgumentError("not a MemoryStorage");
  return std::unique_ptr<raft::LogStorage>(memory->Clone());
}

std::string SimResult::Summary() const {
  std::string s = ok ? "ok  " : "FAIL";
  absl::StrAppend(&s, " steps=", stats.steps, " leaders=", stats.leaders,
                  " committed=", stats.max_committed, " crashes=", stats.crashes,
                  " partitions=", stats.partitions, " snapshots=", stats.snapshots_installed,
                  " msgs=", stats.messages_delivered, " [", config_summary, "]");
  if (violation.has_value()) {
    absl::StrAppend(&s, "\n  ", violation->property, " violated at tick ", violation->tick, ": ",
                    violation->detail, "\n  replay: ", replay_command);
  }
  return s;
}

Simulation::Simulation(SimOptions options)
    : options_(std::move(options)),
      rng_(options_.seed),
      network_(options_.num_nodes, &rng_),
      checker_(options_.num_nodes),
      nodes_(static_cast<size_t>(options_.num_nodes)) {
  network_.set_faults(options_.faults.link);
  for (int i = 0; i < options_.num_nodes; ++i) nodes_[i].id = static_cast<uint64_t>(i) + 1;
}

Simulation::~Simulation() = default;

void Simulation::ChooseClusterConfig() {
  if (!options_.randomize_config) return;
  // A separate stream, so the choice does not shift the rest of the run.
  SimRng config_rng(MixHash(options_.seed, 0xc0f16));
  pre_vote_ = config_rng.Chance(0.75);
  check_quorum_ = config_rng.Chance(0.75);
  static constexpr uint64_t kSizes[] = {1 << 20, 1 << 20, 256, 1};
  max_size_per_msg_ = kSizes[config_rng.Below(4)];
  // A tiny window only with multi-entry messages: one entry per round trip
  // would be correct but too slow for the liveness bound.
  const bool small_window = max_size_per_msg_ > 1 && config_rng.Chance(0.5);
  max_inflight_msgs_ = small_window ? config_rng.Range(1, 4) : 256;
}

std::string Simulation::ConfigSummary() const {
  return absl::StrCat("nodes=", options_.num_nodes, " faults=", options_.faults.name,
                      " pre_vote=", pre_vote_, " check_quorum=", check_quorum_,
                      " max_msg_bytes=", max_size_per_msg_, " max_inflight=", max_inflight_msgs_,
                      options_.unsafe_commit_prior_term ? " UNSAFE_COMMIT_PRIOR_TERM" : "");
}

std::string Simulation::ReplayCommand() const {
  std::string s = absl::StrCat(options_.replay_program, " --seed ", options_.seed, " --nodes ",
                               options_.num_nodes, " --faults ", options_.faults.name, " --steps ",
                               options_.steps);
  if (options_.unsafe_commit_prior_term) s += " --unsafe-commit-prior-term";
  if (!options_.replay_extra_args.empty()) absl::StrAppend(&s, " ", options_.replay_extra_args);
  return s + " --verbose";
}

void Simulation::Trace(const std::string& line) const {
  if (options_.verbose)
    std::fprintf(stderr, "[t=%lld] %s\n", static_cast<long long>(now_), line.c_str());
}

void Simulation::ReportViolation(std::string property, std::string detail) {
  checker_.Report(std::move(property), std::move(detail));
}

raft::Config Simulation::ConfigFor(const SimNode& n) const {
  raft::Config c;
  c.id = n.id;
  c.election_tick = options_.election_tick;
  c.heartbeat_tick = options_.heartbeat_tick;
  c.storage = n.storage.get();
  c.applied = n.applied;
  c.max_size_per_msg = max_size_per_msg_;
  c.max_inflight_msgs = max_inflight_msgs_;
  c.check_quorum = check_quorum_;
  c.pre_vote = pre_vote_;
  c.random_seed = MixHash(MixHash(options_.seed, n.id), n.incarnation);
  c.testing_unsafe_commit_prior_term = options_.unsafe_commit_prior_term;
  if (options_.configure_node) options_.configure_node(c);
  return c;
}

absl::Status Simulation::CreateNode(SimNode& n) {
  ++n.incarnation;
  auto node = raft::Node::Create(ConfigFor(n));
  if (!node.ok()) return node.status();
  n.node = std::move(*node);
  return absl::OkStatus();
}

absl::Status Simulation::Start() {
  if (started_) return absl::FailedPreconditionError("already started");
  started_ = true;
  ChooseClusterConfig();
  liveness_prefix_ = absl::StrCat("live.", options_.seed, ".");
  std::vector<uint64_t> voters;
  for (const SimNode& n : nodes_) voters.push_back(n.id);
  for (SimNode& n : nodes_) {
    auto storage = options_.storage->Create(n.id);
    if (!storage.ok()) return storage.status();
    n.storage = std::move(*storage);
    if (absl::Status s = raft::Node::Bootstrap(*n.storage, voters); !s.ok()) return s;
    checker_.InitFromStorage(n.id, *n.storage);
    n.state_machine = options_.state_machine(n.id);
    checker_.ObserveStateMachineReset(n.id, 0, n.state_machine->Digest());
    if (absl::Status s = CreateNode(n); !s.ok()) return s;
  }
  Trace("started: " + ConfigSummary());
  for (SimNode& n : nodes_) AfterInput(n);
  return absl::OkStatus();
}

bool Simulation::IsUp(uint64_t id) const { return at(id).node != nullptr; }
raft::Node* Simulation::node(uint64_t id) const { return at(id).node.get(); }
raft::LogStorage* Simulation::storage(uint64_t id) const { return at(id).storage.get(); }
const SimStateMachine* Simulation::state_machine(uint64_t id) const {
  return at(id).node ? at(id).state_machine.get() : nullptr;
}
uint64_t Simulation::applied(uint64_t id) const { return at(id).applied; }

std::vector<uint64_t> Simulation::Leaders() const {
  std::vector<uint64_t> out;
  for (const SimNode& n : nodes_) {
    if (n.node && n.node->role() == raft::Role::kLeader) out.push_back(n.id);
  }
  return out;
}

std::optional<uint64_t> Simulation::CurrentLeader() const {
  std::optional<uint64_t> best;
  for (uint64_t id : Leaders()) {
    if (!best || node(id)->term() > node(*best)->term()) best = id;
  }
  return best;
}

SimStats Simulation::stats() const {
  SimStats s = stats_;
  s.leaders = checker_.leaders_seen();
  s.max_committed = checker_.max_committed();
  return s;
}

// ---------------------------------------------------------------------------
// Steps, faults, clients.

void Simulation::Step() {
  checker_.set_now(now_);
  if (random_faults_) InjectRandomFaults();
  for (SimNode& n : nodes_) {
    if (!n.node && n.restart_at >= 0 && now_ >= n.restart_at) Restart(n.id);
  }
  if (clients_paused_) {
    // The liveness check is the only client.
  } else if (options_.client) {
    options_.client(*this);
  } else {
    DefaultClient();
  }
  for (SimNode& n : nodes_) {
    if (!n.node) continue;
    if (random_faults_ && rng_.Chance(options_.faults.tick_skip_rate)) continue;
    n.node->Tick();
    AfterInput(n);
  }
  for (SimNode& n : nodes_) {
    if (n.node && !n.unsynced.empty() && !n.syncs_held &&
        rng_.Chance(options_.sync_complete_rate)) {
      FinishSyncs(n);
      AfterInput(n);
    }
  }
  InFlight f;
  while (network_.PopDue(now_, &f)) Deliver(f);
  if (rng_.Chance(options_.compaction_rate)) {
    const uint64_t id = rng_.Below(nodes_.size()) + 1;
    if (IsUp(id) && at(id).applied >= options_.compaction_min_entries) {
      const uint64_t snap = at(id).storage->GetSnapshot()->metadata().index();
      if (at(id).applied >= snap + options_.compaction_min_entries) {
        if (absl::Status s = Compact(id, rng_.Below(8)); !s.ok()) {
          checker_.Report("Storage", absl::StrCat("node ", id, ": compaction: ", s.ToString()));
        }
      }
    }
  }
  for (SimNode& n : nodes_) {
    if (n.node && n.pending_crash != CrashPoint::kNone) CrashNow(n, n.pending_down_ticks);
  }
  RunExtraChecks();
  if ((now_ & 255) == 255) {  // a full store-versus-shadow comparison now and then
    const uint64_t id = rng_.Below(nodes_.size()) + 1;
    if (IsUp(id)) checker_.VerifyStorage(id, *at(id).storage);
  }
  ++stats_.steps;
  ++now_;
}

void Simulation::RunExtraChecks() {
  for (const InvariantCheck& check : options_.extra_checks) {
    if (auto problem = check(*this); problem.has_value()) {
      checker_.Report("Invariant", *problem);
      return;
    }
  }
}

void Simulation::RunTicks(int ticks) {
  for (int i = 0; i < ticks && !violation(); ++i) Step();
}

bool Simulation::RunUntil(const std::function<bool()>& done, int max_ticks) {
  for (int i = 0; i < max_ticks; ++i) {
    if (done()) return true;
    if (violation()) return false;
    Step();
  }
  return done();
}

void Simulation::InjectRandomFaults() {
  const FaultProfile& p = options_.faults;
  if (newest_leader_ != 0 && partition_until_ < 0 && rng_.Chance(p.new_leader_cut_rate)) {
    ++stats_.partitions;
    network_.Isolate(newest_leader_);
    partition_until_ = now_ + rng_.Range(p.min_partition_ticks, p.max_partition_ticks);
    Trace(absl::StrCat("new leader n", newest_leader_, " cut off"));
  }
  newest_leader_ = 0;
  if (partition_until_ >= 0 && now_ >= partition_until_) {
    network_.Heal();
    partition_until_ = -1;
    Trace("network healed");
  } else if (partition_until_ < 0 && rng_.Chance(p.partition_rate)) {
    StartRandomPartition();
    partition_until_ = now_ + rng_.Range(p.min_partition_ticks, p.max_partition_ticks);
  }
  if (rng_.Chance(p.crash_rate)) {
    int down = 0;
    for (const SimNode& n : nodes_)
      down += (n.node == nullptr || n.pending_crash != CrashPoint::kNone);
    SimNode& victim = nodes_[rng_.Below(nodes_.size())];
    if (victim.node && victim.pending_crash == CrashPoint::kNone &&
        down + 1 <= options_.num_nodes / 2 + 1) {
      const int64_t down_ticks = rng_.Range(p.min_down_ticks, p.max_down_ticks);
      if (rng_.Chance(p.crash_inside_ready_share)) {
        victim.pending_crash =
            rng_.Chance(0.5) ? CrashPoint::kBeforePersist : CrashPoint::kAfterPersist;
        victim.pending_down_ticks = down_ticks;
      } else {
        CrashNow(victim, down_ticks);
      }
    }
  }
}

void Simulation::StartRandomPartition() {
  ++stats_.partitions;
  const uint64_t n = static_cast<uint64_t>(options_.num_nodes);
  std::vector<uint64_t> ids;
  for (uint64_t i = 1; i <= n; ++i) ids.push_back(i);
  for (size_t i = ids.size() - 1; i > 0; --i) std::swap(ids[i], ids[rng_.Below(i + 1)]);
  const uint64_t x = ids[0];
  switch (rng_.Below(6)) {
    case 0:
    case 1: {  // symmetric split, minority on one side
      const size_t k = static_cast<size_t>(rng_.Range(1, static_cast<int64_t>(n / 2)));
      network_.Partition({std::vector<uint64_t>(ids.begin(), ids.begin() + k),
                          std::vector<uint64_t>(ids.begin() + k, ids.end())});
      break;
    }
    case 2:  // x hears nothing but can still talk
      for (uint64_t y : ids) network_.Block(y, x);
      break;
    case 3:  // x can hear but nobody receives it
      for (uint64_t y : ids) network_.Block(x, y);
      break;
    case 4: {  // a few random one-way links
      const int links = static_cast<int>(rng_.Range(1, static_cast<int64_t>(n)));
      for (int i = 0; i < links; ++i) {
        network_.Block(rng_.Below(n) + 1, rng_.Below(n) + 1);
      }
      break;
    }
    default: {  // two sides joined only through a bridge node
      const size_t k = static_cast<size_t>(rng_.Range(1, static_cast<int64_t>(n / 2)));
      std::vector<uint64_t> a(ids.begin(), ids.begin() + k), b(ids.begin() + k, ids.end());
      network_.Partition({a, b});
      const uint64_t bridge = b.back();
      for (uint64_t y : a) {
        network_.Unblock(bridge, y);
        network_.Unblock(y, bridge);
      }
      break;
    }
  }
  Trace("partition: blocked " + network_.DescribeBlocked());
}

void Simulation::DefaultClient() {
  std::vector<uint64_t> leaders = Leaders();
  if (rng_.Chance(options_.propose_rate)) {
    uint64_t target = 0;
    if (!leaders.empty() && !rng_.Chance(0.1)) {
      target = leaders[rng_.Below(leaders.size())];
    } else {
      target = rng_.Below(nodes_.size()) + 1;  // sometimes a follower: must be refused
    }
    if (rng_.Chance(0.1)) {
      std::vector<std::string> batch;
      const int size = static_cast<int>(rng_.Range(2, 4));
      for (int i = 0; i < size; ++i) batch.push_back(absl::StrCat("p", next_proposal_++));
      (void)ProposeBatch(target, std::move(batch));
    } else {
      (void)Propose(target, absl::StrCat("p", next_proposal_++));
    }
  }
  if (!leaders.empty() && rng_.Chance(options_.read_rate)) {
    (void)ReadIndex(leaders[rng_.Below(leaders.size())]);
  }
  if (!leaders.empty() && rng_.Chance(options_.transfer_rate)) {
    const uint64_t leader = leaders[rng_.Below(leaders.size())];
    (void)TransferLeader(leader, rng_.Below(nodes_.size()) + 1);
  }
}

// ---------------------------------------------------------------------------
// Node lifecycle and inputs.

void Simulation::CrashNow(SimNode& n, int64_t down_ticks) {
  if (!n.node) return;
  ++stats_.crashes;
  LoseUnsyncedWrites(n);
  n.syncs_held = false;
  n.node.reset();
  n.state_machine.reset();
  n.pending_crash = CrashPoint::kNone;
  n.restart_at = down_ticks >= 0 ? now_ + down_ticks : -1;
  Trace(absl::StrCat("n", n.id, " crashed",
                     down_ticks >= 0 ? absl::StrCat(" for ", down_ticks, " ticks") : ""));
}

void Simulation::Crash(uint64_t id) { CrashNow(at(id), -1); }

void Simulation::HoldSyncs(uint64_t id, bool held) { at(id).syncs_held = held; }

bool Simulation::HasUnsyncedWrites(uint64_t id) const { return !at(id).unsynced.empty(); }

void Simulation::Restart(uint64_t id) {
  SimNode& n = at(id);
  if (n.node) return;
  n.restart_at = -1;
  auto reopened = options_.storage->Reopen(id, std::move(n.storage));
  if (!reopened.ok()) {
    checker_.Report("Storage",
                    absl::StrCat("node ", id, ": reopen failed: ", reopened.status().ToString()));
    return;
  }
  n.storage = std::move(*reopened);
  checker_.VerifyStorage(id, *n.storage);
  n.state_machine = options_.state_machine(id);
  n.applied = 0;
  auto snapshot = n.storage->GetSnapshot();
  if (!snapshot.ok()) {
    checker_.Report("Storage", absl::StrCat("node ", id, ": ", snapshot.status().ToString()));
    return;
  }
  if (snapshot->metadata().index() > 0) {
    if (absl::Status s = n.state_machine->Restore(snapshot->data()); !s.ok()) {
      checker_.Report("Storage", absl::StrCat("node ", id, ": restore: ", s.ToString()));
      return;
    }
    n.applied = snapshot->metadata().index();
  }
  checker_.ObserveStateMachineReset(id, n.applied, n.state_machine->Digest());
  if (absl::Status s = CreateNode(n); !s.ok()) {
    checker_.Report("Restart", absl::StrCat("node ", id, ": ", s.ToString()));
    return;
  }
  Trace(absl::StrCat("n", id, " restarted (applied ", n.applied, ", last index ",
                     n.storage->LastIndex(), ")"));
  AfterInput(n);
}

void Simulation::Campaign(uint64_t id) {
  if (!IsUp(id)) return;
  at(id).node->Campaign();
  AfterInput(at(id));
}

absl::StatusOr<uint64_t> Simulation::Propose(uint64_t id, std::string data) {
  if (!IsUp(id)) return absl::UnavailableError("node is down");
  ++stats_.proposals;
  auto index = at(id).node->Propose(std::move(data));
  if (index.ok()) ++stats_.proposals_accepted;
  AfterInput(at(id));
  return index;
}

absl::StatusOr<uint64_t> Simulation::ProposeBatch(uint64_t id, std::vector<std::string> data) {
  if (!IsUp(id)) return absl::UnavailableError("node is down");
  stats_.proposals += data.size();
  const size_t size = data.size();
  auto index = at(id).node->ProposeBatch(std::move(data));
  if (index.ok()) stats_.proposals_accepted += size;
  AfterInput(at(id));
  return index;
}

absl::Status Simulation::ReadIndex(uint64_t id) {
  if (!IsUp(id)) return absl::UnavailableError("node is down");
  std::string ctx = absl::StrCat("r", next_read_++);
  absl::Status s = at(id).node->ReadIndex(ctx);
  if (s.ok()) pending_reads_[ctx] = checker_.max_committed();
  AfterInput(at(id));
  return s;
}

absl::Status Simulation::TransferLeader(uint64_t leader, uint64_t target) {
  if (!IsUp(leader)) return absl::UnavailableError("node is down");
  absl::Status s = at(leader).node->TransferLeader(target);
  Trace(absl::StrCat("n", leader, " transfer leadership to n", target, ": ", s.ToString()));
  AfterInput(at(leader));
  return s;
}

absl::Status Simulation::Compact(uint64_t id, uint64_t keep) {
  SimNode& n = at(id);
  if (!n.node) return absl::UnavailableError("node is down");
  FinishSyncs(n);  // a snapshot is written with a synced write
  if (absl::Status s =
          n.storage->CreateSnapshot(n.applied, n.node->conf_state(), n.state_machine->Snapshot());
      !s.ok()) {
    return s;
  }
  ++stats_.compactions;
  const uint64_t to = n.applied > keep ? n.applied - keep : 0;
  if (to + 1 > n.storage->FirstIndex()) {
    if (absl::Status s = n.storage->Compact(to); !s.ok()) return s;
    checker_.ObserveCompact(id, to);
  }
  Trace(absl::StrCat("n", id, " snapshot at ", n.applied, ", compacted to ", to));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Whole runs.

void Simulation::HealAll() {
  random_faults_ = false;
  partition_until_ = -1;
  network_.Heal();
  LinkFaults link = network_.faults();
  link.drop_rate = 0;
  link.duplicate_rate = 0;
  link.min_delay = std::min(link.min_delay, 1);
  link.max_delay = std::min(link.max_delay, 2);
  network_.set_faults(link);
  for (SimNode& n : nodes_) {
    n.pending_crash = CrashPoint::kNone;
    if (!n.node) Restart(n.id);
  }
  Trace("healed: all nodes up, network whole");
}

bool Simulation::CheckLiveness() {
  const int bound =
      options_.liveness_ticks > 0 ? options_.liveness_ticks : 20 * options_.election_tick;
  liveness_index_ = 0;
  clients_paused_ = true;
  struct Resume {
    bool* paused;
    ~Resume() { *paused = false; }
  } resume{&clients_paused_};
  const int64_t start = now_;
  uint64_t proposed_to = 0, proposed_term = 0, attempt = 0;
  // Nodes whose state machine covers the first liveness entry that committed
  // (applied one by one or through a snapshot).
  auto applied_count = [&] {
    if (liveness_index_ == 0) return 0;
    return static_cast<int>(std::count_if(nodes_.begin(), nodes_.end(), [&](const SimNode& n) {
      return n.node && n.applied >= liveness_index_;
    }));
  };
  const int quorum = options_.num_nodes / 2 + 1;
  while (!violation()) {
    const int64_t elapsed = now_ - start;
    if (applied_count() >= options_.num_nodes) return true;
    if ((applied_count() < quorum && elapsed >= bound) || elapsed >= 2 * bound) break;
    if (auto leader = CurrentLeader(); leader.has_value()) {
      // Propose again whenever leadership changed: the old proposal may be lost.
      // A refused proposal (e.g. during a leadership transfer) is retried.
      if (*leader != proposed_to || node(*leader)->term() != proposed_term) {
        auto index = Propose(*leader, absl::StrCat(liveness_prefix_, attempt++));
        Trace(
            absl::StrCat("liveness proposal to n", *leader, ": ",
                         index.ok() ? absl::StrCat("index ", *index) : index.status().ToString()));
        if (index.ok()) {
          proposed_to = *leader;
          proposed_term = node(*leader)->term();
        }
      }
    }
    Step();
  }
  if (violation()) return false;
  std::string state;
  for (const SimNode& n : nodes_) {
    absl::StrAppend(&state, " n", n.id, "=", n.node ? raft::RoleName(n.node->role()) : "down",
                    n.node ? absl::StrCat("/t", n.node->term()) : "", "/applied", n.applied);
  }
  if (auto leader = CurrentLeader(); leader.has_value()) {
    const raft::NodeStatus st = node(*leader)->Status();
    absl::StrAppend(&state, "; leader n", *leader, " commit ", st.commit, " last ", st.last_index,
                    " progress:");
    for (const auto& [peer, pr] : st.progress) {
      absl::StrAppend(&state, " n", peer, "{match ", pr.match, " next ", pr.next, " ",
                      raft::ProgressStateName(pr.state), " inflight ", pr.inflight,
                      pr.recent_active ? "" : " inactive", "}");
    }
  }
  checker_.Report("Liveness",
                  absl::StrCat("after healing at tick ", start, ", a proposal was not applied by ",
                               applied_count() < quorum ? "a quorum" : "every node", " within ",
                               applied_count() < quorum ? bound : 2 * bound,
                               " ticks (proposals tried: ", attempt, "):", state));
  return false;
}

SimResult Simulation::Run() {
  const auto wall_start = std::chrono::steady_clock::now();
  SimResult result;
  if (!started_) {
    if (absl::Status s = Start(); !s.ok()) checker_.Report("Start", s.ToString());
  }
  for (int64_t i = 0; i < options_.steps && !violation(); ++i) Step();
  if (!violation()) HealAll();
  if (!violation() && options_.check_liveness) CheckLiveness();
  if (!violation()) {
    for (const SimNode& n : nodes_) checker_.VerifyStorage(n.id, *n.storage);
  }
  result.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  result.violation = violation();
  result.ok = !result.violation.has_value();
  result.stats = stats();
  result.replay_command = ReplayCommand();
  result.config_summary = ConfigSummary();
  return result;
}

}  // namespace raftlock::sim
