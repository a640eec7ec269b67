// Replica: the driver of one raftlock replica.
//
// One thread (the loop) owns the raft::Node, the log store and the lock state
// machine. Everything else talks to it through a queue: peer messages from the
// transport, proposals and reads from the API, admin requests. For each Ready
// the loop sends the leader's replication messages, writes the Ready (one
// batch), applies committed entries, answers the waiting calls, and advances
// -- so all proposals queued meanwhile share one Ready. The fsync happens on
// the LogSyncer thread, one for every write made meanwhile, and the
// acknowledgements go out after it; the leader counts its own entries only
// once synced, so its disk write overlaps its followers' (Raft thesis
// 10.2.1). A new term or vote, or a snapshot, is synced on the loop before
// anything that depends on it is sent.
//
// Callbacks given to the public methods run on the loop thread: they must be
// quick and must not block (finish a gRPC reactor, queue work elsewhere).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/cluster.pb.h"
#include "proto/lock.pb.h"
#include "raft/node.h"
#include "server/lock/lock_state_machine.h"
#include "server/node/leader_clock.h"
#include "server/node/log_syncer.h"
#include "server/transport/transport.h"

namespace spdlog {
class logger;
}

namespace raftlock::server {

struct MemberAddress {
  std::string peer;    // replica-to-replica address
  std::string client;  // client API address
};

struct ReplicaOptions {
  std::string cluster_id;
  uint64_t node_id = 0;
  // Every initial member, this node included.
  std::map<uint64_t, MemberAddress> members;
  std::chrono::milliseconds tick{50};
  int heartbeat_ticks = 1;
  int election_ticks = 8;
  // Take a state-machine snapshot after this many applied entries.
  uint64_t snapshot_interval = 10000;
  // Entries kept behind a snapshot, so a briefly lagging follower catches up
  // from the log rather than by snapshot.
  uint64_t snapshot_catchup_entries = 1000;
  // How often a leader with live leases or waits proposes a TimeAdvance.
  std::chrono::milliseconds time_advance_interval{100};
  lock::Limits limits;
  // Upper bound on commands taken into one Ready.
  size_t max_proposals_per_ready = 4096;
  // Seed of the election-timeout randomness (node id mixed in).
  uint64_t random_seed = 0;
  // TESTING: makes the sender of this replica's Raft messages instead of the
  // gRPC Transport (transport() is then unavailable). Called once, by the
  // constructor; `handler` is the replica.
  std::function<std::unique_ptr<PeerSender>(TransportHandler* handler)> testing_peer_sender;
};

// What a client needs to redirect a write.
struct LeaderInfo {
  uint64_t leader_id = raft::kNone;
  std::string client_address;
  uint64_t term = 0;
};

class Replica : public TransportHandler {
 public:
  using ApplyCallback = std::function<void(absl::StatusOr<lock::ApplyResult>)>;
  using ReadCallback = std::function<void(absl::Status, const lock::LockStateMachine*)>;
  using EventListener =
      std::function<void(uint64_t index, const std::vector<v1::LockEvent>& events)>;

  // `storage` holds this node's log (RocksDB in production, memory in tests).
  Replica(ReplicaOptions options, std::unique_ptr<raft::LogStorage> storage,
          std::shared_ptr<spdlog::logger> logger);
  ~Replica() override;  // calls Stop(false)

  // Restores the state machine from the latest snapshot, bootstraps an empty
  // store with the initial members, creates the Raft node and starts the loop.
  // Calls made before it returns OK are answered UNAVAILABLE at once.
  absl::Status Start();

  // Stops the loop. With `transfer_leadership` a leader first hands
  // leadership to its most caught-up follower (waiting at most `wait`).
  // Pending calls are answered UNAVAILABLE.
  void Stop(bool transfer_leadership = false,
            std::chrono::milliseconds wait = std::chrono::milliseconds(2000));

  // The peer transport; register transport().service() on the peer server.
  // Precondition: no testing_peer_sender.
  Transport& transport() { return *transport_; }

  // Proposes `command` (the loop stamps its cluster time). `done` gets the
  // state machine's result once the entry is applied, or UNAVAILABLE when
  // this node is not the leader, loses leadership first, or stops.
  void Propose(v1::Command command, ApplyCallback done);

  // Runs `read` against state that reflects every write acknowledged before
  // this call (ReadIndex, thesis 6.4). UNAVAILABLE when not the leader.
  void LinearizableRead(ReadCallback read);

  // Runs `fn` on the loop with the current state (not linearizable); dropped
  // once the replica is stopping.
  void RunOnLoop(std::function<void()> fn);

  // Receives the events of every applied entry, on the loop thread. Set
  // before Start().
  void SetEventListener(EventListener listener) { event_listener_ = std::move(listener); }
  // Called on the loop thread each time this node stops being the leader,
  // after its pending proposals were failed. Set before Start().
  void SetLeadershipLostListener(std::function<void()> listener) {
    leadership_lost_listener_ = std::move(listener);
  }

  // Promotes `target` (leader only). `done` gets OK once `target` is known to
  // lead, or an error: not leader, unknown target, ABORTED when the transfer
  // lapsed after an election timeout, DEADLINE_EXCEEDED after `deadline`.
  void TransferLeadership(uint64_t target, std::chrono::steady_clock::time_point deadline,
                          std::function<void(absl::Status, LeaderInfo)> done);

  // Fills a status view (on the loop thread) and hands it to `done`;
  // UNAVAILABLE once the replica is stopping.
  void Status(std::function<void(absl::StatusOr<v1::StatusResponse>)> done);

  // The state machine. Loop thread only (inside callbacks and listeners).
  const lock::LockStateMachine& state() const { return state_; }

  // Thread-safe snapshot of who leads, for redirect hints.
  LeaderInfo leader() const;
  uint64_t node_id() const { return options_.node_id; }
  const ReplicaOptions& options() const { return options_; }

  // TransportHandler (called from gRPC threads).
  void OnMessages(std::vector<raft::Message> messages) override;
  void OnUnreachable(uint64_t peer) override;
  void OnSnapshotStatus(uint64_t peer, bool success) override;

 private:
  struct PendingProposal {
    uint64_t term = 0;
    ApplyCallback done;
  };
  struct PendingTransfer {
    uint64_t target = 0;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(absl::Status, LeaderInfo)> done;
  };

  // Queues `fn` for the loop. Before Start() and once stopping, drops `fn`
  // and returns the UNAVAILABLE error to answer its caller with.
  absl::Status Post(std::function<void()> fn);
  // OK while the loop takes work, else why not. Requires mu_.
  absl::Status AcceptingLocked() const;
  void Loop();
  void OnTick();
  void FlushProposals();
  void FlushReads();
  void HandleReady();
  // Sends rd.replication_messages (the leader's appends, which need no
  // durable write first) and clears them; a no-op once they are sent.
  void SendReplication(raft::Ready& rd);
  // Sends rd.messages, or queues on the syncer those that must wait until
  // the Ready's write (and every earlier one) is durable. `synced`: the loop
  // already synced this Ready.
  void SendAfterDurable(raft::Ready& rd, bool synced);
  void ApplyCommitted(const std::vector<raft::Entry>& entries);
  void AnswerReads();
  void OnRoleChange(const raft::SoftState& soft);
  void FailPending(const absl::Status& status);
  // Every snapshot_interval applied entries: serializes the state and hands
  // the snapshot to snapshot_writer_, which writes its file off the loop and
  // posts RecordSnapshot. One snapshot at a time.
  void MaybeSnapshot();
  // Loop: makes the written snapshot current (unless one at or above its
  // index was installed meanwhile), then compacts the log.
  void RecordSnapshot(raft::Snapshot snapshot);
  void CheckTransfers();
  // The cluster time to stamp now; starts this term's clock on first use.
  // Precondition: this node leads (node_->role() is leader).
  int64_t ClusterNowMs();
  LeaderInfo LeaderInfoFor(uint64_t leader_id) const;

  const ReplicaOptions options_;
  std::unique_ptr<raft::LogStorage> storage_;
  const std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<PeerSender> peers_;  // sends Raft messages
  Transport* transport_ = nullptr;     // peers_ when it is the gRPC Transport
  std::unique_ptr<raft::Node> node_;
  // Syncs the loop's writes; created in Start(), stopped after the loop.
  std::unique_ptr<LogSyncer> syncer_;
  lock::LockStateMachine state_;
  EventListener event_listener_;
  std::function<void()> leadership_lost_listener_;

  // The queue into the loop.
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::function<void()>> inbox_;
  bool running_ = false;  // Start() succeeded; work queued now will be run
  bool stopping_ = false;
  // A snapshot written after the loop stopped taking work; Stop() records it.
  std::optional<raft::Snapshot> unrecorded_snapshot_;
  std::thread loop_;

  // Loop-thread state.
  std::vector<std::pair<v1::Command, ApplyCallback>> proposals_;
  std::vector<ReadCallback> reads_to_start_;
  std::map<std::string, std::vector<ReadCallback>> reads_awaiting_quorum_;
  std::multimap<uint64_t, ReadCallback> reads_awaiting_apply_;
  uint64_t next_read_id_ = 1;
  std::map<uint64_t, PendingProposal> pending_;
  std::vector<PendingTransfer> transfers_;
  raft::SoftState soft_;
  uint64_t applied_ = 0;
  uint64_t snapshot_index_ = 0;
  // Writes one snapshot's file; started by the loop, joined by the loop
  // before the next one and by Stop().
  std::thread snapshot_writer_;
  bool snapshot_writing_ = false;  // until its RecordSnapshot runs
  std::chrono::steady_clock::time_point next_tick_;
  std::chrono::steady_clock::time_point last_time_advance_;
  // Cluster time stamped on proposals (docs/semantics.md §1).
  LeaderClock leader_clock_;

  mutable std::mutex leader_mu_;
  LeaderInfo leader_;
};

}  // namespace raftlock::server
