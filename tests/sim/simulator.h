// The deterministic cluster simulator: N Raft nodes in one process, a seeded
// network, crash-restart, compaction and client load, driven in virtual ticks.
//
// Everything follows from SimOptions::seed: no clocks, no threads. One step is
// one tick: random faults are injected, clients propose, every up node ticks,
// then every message due by this tick is delivered (a delay of 0 delivers
// within the same step). After each input the node's Ready is driven exactly as
// raft/node.h prescribes and the SafetyChecker observes every role change,
// write and apply, so a broken property is reported at the step that broke it.
//
// A node's process state (raft::Node, state machine, anything not persisted)
// dies in a crash; its store keeps what Persist/CreateSnapshot/Compact made
// durable and is reopened through the StorageFactory on restart, where the
// state machine is rebuilt from the store's snapshot plus the committed entries
// the core replays.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/node.h"
#include "tests/sim/checker.h"
#include "tests/sim/fault_profile.h"
#include "tests/sim/network.h"
#include "tests/sim/sim_rng.h"
#include "tests/sim/state_machine.h"

namespace raftlock::sim {

// Creates each node's store and reopens it after a crash.
class StorageFactory {
 public:
  virtual ~StorageFactory() = default;
  // A new, empty store for node `id`.
  virtual absl::StatusOr<std::unique_ptr<raft::LogStorage>> Create(uint64_t id) = 0;
  // `crashed` is the store the crashed process had open; no Node refers to it
  // any more. Returns the store a restarted process opens: exactly what was
  // made durable, nothing that was only buffered.
  virtual absl::StatusOr<std::unique_ptr<raft::LogStorage>> Reopen(
      uint64_t id, std::unique_ptr<raft::LogStorage> crashed) = 0;
};

// raft::MemoryStorage, durable the moment Persist returns; Reopen hands back a
// deep copy so nothing in the old object survives but its contents.
class MemoryStorageFactory : public StorageFactory {
 public:
  absl::StatusOr<std::unique_ptr<raft::LogStorage>> Create(uint64_t id) override;
  absl::StatusOr<std::unique_ptr<raft::LogStorage>> Reopen(
      uint64_t id, std::unique_ptr<raft::LogStorage> crashed) override;
};

class Simulation;

// Client load, called once per step before the nodes tick (it replaces the
// default client, which proposes to a current leader at options.propose_rate).
using Workload = std::function<void(Simulation& sim)>;
// An extra invariant checked after every step: returns a description of the
// violation, or nullopt when the invariant holds.
using InvariantCheck = std::function<std::optional<std::string>(const Simulation& sim)>;
// Told about every entry a node applies, after its state machine applied it.
using ApplyObserver =
    std::function<void(uint64_t node, const raft::Entry& entry, const SimStateMachine& sm)>;

struct SimOptions {
  uint64_t seed = 1;
  int num_nodes = 3;
  FaultProfile faults = FaultProfile::Light();
  // Ticks of faults and client load before the network heals.
  int64_t steps = 2000;

  int election_tick = 10;
  int heartbeat_tick = 1;
  // Let the seed vary the cluster configuration (pre-vote, check-quorum,
  // message size and in-flight limits); otherwise the defaults are used.
  bool randomize_config = true;
  // Figure 8's broken commit rule (raft::Config); the checker must object.
  bool unsafe_commit_prior_term = false;
  // Chance that a node writes a Ready without syncing it (Node::AdvanceWritten,
  // as server/node/log_syncer.h does): its acknowledgements wait, and a later
  // step syncs (MarkDurable). A crash before that sync loses a random suffix
  // of those writes, overwrites included (MemoryStorage only). 0 syncs every
  // Ready at once.
  double deferred_sync_rate = 0.5;
  // A crash loses every unsynced write, not a random suffix of them.
  bool crash_loses_all_unsynced = false;
  // Chance per step that a node's unsynced writes finish syncing.
  double sync_complete_rate = 0.5;
  // Applied last to every node's raft::Config (after randomization).
  std::function<void(raft::Config&)> configure_node;

  // Default client: chance per step of a proposal, a linearizable read, and
  // a leadership transfer.
  double propose_rate = 0.3;
  double read_rate = 0.02;
  double transfer_rate = 0.002;
  // Chance per step that a random up node snapshots its state machine and
  // compacts its log, once it applied this many entries past its snapshot.
  double compaction_rate = 0.03;
  uint64_t compaction_min_entries = 10;

  // After healing: a leader must be elected and a fresh proposal applied by a
  // quorum within this many ticks (0 = 10 x the maximum election timeout,
  // i.e. 20 x election_tick), and by every node within twice that.
  int liveness_ticks = 0;
  bool check_liveness = true;

  StateMachineFactory state_machine = HashChainFactory();
  std::shared_ptr<StorageFactory> storage = std::make_shared<MemoryStorageFactory>();
  Workload client;  // empty: the default client
  std::vector<InvariantCheck> extra_checks;
  ApplyObserver on_apply;

  // Trace every event to stderr.
  bool verbose = false;
  // For the replay line printed on failure.
  std::string replay_program = "./build/tests/sim/raft_sim";
  std::string replay_extra_args;
};

struct SimStats {
  int64_t steps = 0;
  uint64_t messages_sent = 0;
  uint64_t messages_delivered = 0;
  uint64_t messages_dropped = 0;  // lost, partitioned, or to a down node
  uint64_t proposals = 0;
  uint64_t proposals_accepted = 0;
  uint64_t reads_checked = 0;
  uint64_t crashes = 0;
  uint64_t partitions = 0;
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_installed = 0;
  uint64_t compactions = 0;
  uint64_t unsynced_writes_lost = 0;  // undone by crashes
  uint64_t overwrites_lost = 0;       // of those, writes that had replaced entries
  uint64_t leaders = 0;               // distinct (term, leader) pairs
  uint64_t max_committed = 0;         // highest index applied anywhere
};

struct SimResult {
  bool ok = true;
  std::optional<Violation> violation;
  SimStats stats;
  double wall_seconds = 0;
  std::string replay_command;
  std::string config_summary;  // what the seed chose (pre-vote, sizes...)
  // One line: "ok seed=..." or "FAIL seed=... <property>: <detail>".
  std::string Summary() const;
};

class Simulation {
 public:
  explicit Simulation(SimOptions options);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // Creates and bootstraps the cluster (ids 1..num_nodes). Call once, first.
  absl::Status Start();

  // A whole seed: Start() if needed, options.steps steps with random faults
  // and client load, then HealAll(), the liveness check and the final checks.
  // Stops at the first violation.
  SimResult Run();

  // ---- Scripting: drive a scenario step by step ----
  // One tick (see the file comment).
  void Step();
  void RunTicks(int ticks);
  // Steps until `done()` holds (checked after each step) or a violation;
  // returns whether `done()` held within `max_ticks`.
  bool RunUntil(const std::function<bool()>& done, int max_ticks);
  // Enables/disables the fault profile's random partitions and crashes (link
  // drop/duplicate/delay rates stay those of network().faults()).
  void set_random_faults(bool enabled) { random_faults_ = enabled; }
  // Restarts every down node, heals the network, stops random faults,
  // removes drops and duplicates and brings delays down to 0..2 ticks.
  void HealAll();
  // The liveness check (see SimOptions::liveness_ticks): other clients pause
  // while it proposes to the current leader until the proposal is applied.
  // Reports a violation and returns false when it fails.
  bool CheckLiveness();

  void Crash(uint64_t id);
  // While held, node `id`'s unsynced writes stay unsynced (until a Ready that
  // must sync, or a crash, which loses them).
  void HoldSyncs(uint64_t id, bool held);
  // Whether node `id` has writes not yet synced.
  bool HasUnsyncedWrites(uint64_t id) const;
  void Restart(uint64_t id);
  void Campaign(uint64_t id);
  absl::StatusOr<uint64_t> Propose(uint64_t id, std::string data);
  absl::StatusOr<uint64_t> ProposeBatch(uint64_t id, std::vector<std::string> data);
  // A linearizable read; its answer is checked to be at or above every index
  // applied anywhere when the read was issued.
  absl::Status ReadIndex(uint64_t id);
  absl::Status TransferLeader(uint64_t leader, uint64_t target);
  // Snapshots node `id`'s state machine at its applied index and compacts
  // the log, keeping `keep` entries before it.
  absl::Status Compact(uint64_t id, uint64_t keep);
  SimNetwork& network() { return network_; }

  // ---- Observation ----
  int num_nodes() const { return options_.num_nodes; }
  int64_t now() const { return now_; }
  bool IsUp(uint64_t id) const;
  // Null while the node is down.
  raft::Node* node(uint64_t id) const;
  raft::LogStorage* storage(uint64_t id) const;
  const SimStateMachine* state_machine(uint64_t id) const;
  uint64_t applied(uint64_t id) const;
  // Up nodes that believe they lead, in id order (two when one is stale).
  std::vector<uint64_t> Leaders() const;
  // The leader with the highest term among up nodes, if any.
  std::optional<uint64_t> CurrentLeader() const;
  SimRng& rng() { return rng_; }
  const SafetyChecker& checker() const { return checker_; }
  const std::optional<Violation>& violation() const { return checker_.violation(); }
  // Reports a violation (for scripted scenarios and custom workloads).
  void ReportViolation(std::string property, std::string detail);
  SimStats stats() const;
  const SimOptions& options() const { return options_; }
  std::string ReplayCommand() const;
  std::string ConfigSummary() const;

 private:
  enum class CrashPoint { kNone, kBeforePersist, kAfterPersist };
  struct SimNode {
    uint64_t id = 0;
    std::unique_ptr<raft::LogStorage> storage;
    std::unique_ptr<raft::Node> node;  // null while down
    std::unique_ptr<SimStateMachine> state_machine;
    uint64_t applied = 0;
    uint64_t incarnation = 0;
    int64_t restart_at = -1;  // -1: stays down until Restart()
    CrashPoint pending_crash = CrashPoint::kNone;
    int64_t pending_down_ticks = 0;
    // Writes made with AdvanceWritten and not yet synced, oldest first.
    struct UnsyncedWrite {
      uint64_t first_index = 0;  // 0: no entries
      uint64_t last_index = 0;
      uint64_t last_term = 0;
      std::vector<raft::Message> messages;  // sent once synced
      // To undo the write on a crash: the entries it overwrote (from
      // first_index on) and the hard state before it.
      std::vector<raft::Entry> replaced;
      raft::HardState hard_state_before;
      bool undoable = true;  // false when the overwritten entries were compacted
    };
    std::vector<UnsyncedWrite> unsynced;
    bool syncs_held = false;
  };

  SimNode& at(uint64_t id) { return nodes_[id - 1]; }
  const SimNode& at(uint64_t id) const { return nodes_[id - 1]; }
  absl::Status CreateNode(SimNode& n);
  raft::Config ConfigFor(const SimNode& n) const;
  void ChooseClusterConfig();
  void AfterInput(SimNode& n);
  void ObserveRole(const SimNode& n);
  void DriveReady(SimNode& n);
  void SendAll(SimNode& n, const std::vector<raft::Message>& messages);
  void Deliver(const InFlight& f);
  void CrashNow(SimNode& n, int64_t down_ticks);
  // The sync of every unsynced write completes: their messages leave and the
  // node learns its log is durable (MarkDurable).
  void FinishSyncs(SimNode& n);
  // FinishSyncs without telling the node: returns the last durable entry
  // (index, term) for a MarkDurable after the Ready in progress.
  std::optional<std::pair<uint64_t, uint64_t>> CompleteSyncs(SimNode& n);
  // A crash undoes a suffix of the unsynced writes (entries and commit).
  void LoseUnsyncedWrites(SimNode& n);
  void InjectRandomFaults();
  void StartRandomPartition();
  void DefaultClient();
  void RunExtraChecks();
  void Trace(const std::string& line) const;

  SimOptions options_;
  SimRng rng_;
  SimNetwork network_;
  SafetyChecker checker_;
  std::vector<SimNode> nodes_;
  int64_t now_ = 0;
  bool started_ = false;
  bool random_faults_ = true;
  bool clients_paused_ = false;
  int64_t partition_until_ = -1;
  uint64_t newest_leader_ = 0;  // elected since the last fault injection
  // Cluster configuration the seed chose.
  bool pre_vote_ = true;
  bool check_quorum_ = true;
  uint64_t max_size_per_msg_ = 1 << 20;
  size_t max_inflight_msgs_ = 256;
  // Default client and read tracking.
  uint64_t next_proposal_ = 0;
  uint64_t next_read_ = 0;
  std::map<std::string, uint64_t> pending_reads_;  // ctx -> lowest acceptable index
  // Liveness tracking: the index of the first liveness proposal applied.
  std::string liveness_prefix_;
  uint64_t liveness_index_ = 0;
  SimStats stats_;
};

}  // namespace raftlock::sim
