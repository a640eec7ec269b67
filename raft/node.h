// The Raft consensus core, in the style of etcd-io/raft's RawNode.
//
// A Node is a deterministic state machine: it takes inputs (Tick, Step,
// Propose, ReadIndex, TransferLeader) and produces output batches (Ready). It
// does no I/O, reads no clock, starts no thread, and draws election randomness
// only from the seed in Config. All calls must come from one thread.
//
// The driver loop:
//   while (running) {
//     feed inputs: Tick() every tick; Step() every peer message; Propose()...
//     if (node.HasReady()) {
//       Ready rd = node.GetReady();
//       send rd.replication_messages   (may overlap the write below)
//       persist rd.snapshot, rd.entries, rd.hard_state (one sync write)
//       send rd.messages               (only after the write is durable)
//       apply rd.snapshot then rd.committed_entries; answer rd.read_states
//       node.Advance(rd);
//     }
//   }
//
// A driver may also write a Ready's entries without waiting for them to be
// durable (AdvanceWritten), sync later off the loop, and report the sync with
// MarkDurable; see AdvanceWritten for when that is allowed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raft.pb.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace spdlog {
class logger;
}

namespace raftlock::raft {

using Message = raftlock::v1::Message;
using MessageType = raftlock::v1::MessageType;
using ConfChange = raftlock::v1::ConfChange;

struct Config {
  // This node's id (> 0).
  uint64_t id = kNone;
  // A follower or candidate that hears nothing from a leader for a randomized
  // number of ticks in [election_tick, 2*election_tick) campaigns (Figure 2,
  // section 5.2). Must be > heartbeat_tick.
  int election_tick = 10;
  // A leader sends heartbeats every heartbeat_tick ticks.
  int heartbeat_tick = 1;
  // The core reads the log through this; it must outlive the Node.
  const Storage* storage = nullptr;
  // The last index the state machine has applied (0 for a fresh state
  // machine). Committed entries at or below it are not emitted again.
  uint64_t applied = 0;
  // Upper bound on the bytes of entries in one MSG_APP (at least one entry is
  // always sent).
  uint64_t max_size_per_msg = 1 << 20;
  // Upper bound on the bytes of committed entries in one Ready.
  uint64_t max_committed_size_per_ready = 8 << 20;
  // Bound on un-acknowledged MSG_APP per follower in the replicate state.
  size_t max_inflight_msgs = 256;
  // Leader steps down when it has not heard from a quorum within an election
  // timeout (thesis 6.2); followers that heard from a leader ignore votes.
  bool check_quorum = true;
  // Pre-vote round before a real election (thesis 9.6).
  bool pre_vote = true;
  // Seed of the election-timeout randomness. Different nodes should differ.
  uint64_t random_seed = 1;
  // Logger for state changes; null uses a silent one.
  std::shared_ptr<spdlog::logger> logger;

  // TESTING ONLY. When set, the leader commits an entry of an earlier term as
  // soon as a quorum stores it, violating Figure 2's rule (section 5.4.2).
  // The simulator's checker must catch this; never set it elsewhere.
  bool testing_unsafe_commit_prior_term = false;
  // TESTING ONLY. When set, AdvanceWritten counts the leader's written but
  // unsynced entries toward commitment, so a crash can lose a committed
  // entry. The simulator's checker must catch this; never set it elsewhere.
  bool testing_count_unsynced_entries = false;
};

// One batch of work for the driver. Each field says what must happen before
// what; Advance(ready) must be called after all of it is done.
struct Ready {
  // Changed volatile state (leader, role), or nothing. Informational.
  std::optional<SoftState> soft_state;

  // Changed term/vote/commit. Persist before sending `messages`.
  std::optional<HardState> hard_state;

  // A snapshot to persist and install in the state machine. Persist it before
  // `entries`; install it before applying `committed_entries`.
  std::optional<Snapshot> snapshot;

  // New log entries to persist (they may overwrite an uncommitted suffix).
  // Persist before sending `messages`.
  std::vector<Entry> entries;

  // Entries known committed, in log order, to apply to the state machine.
  // Apply only after `entries` and `hard_state` of this Ready are durable.
  std::vector<Entry> committed_entries;

  // Leader replication traffic (MSG_APP, MSG_HEARTBEAT, MSG_SNAP,
  // MSG_TIMEOUT_NOW). May be sent before or while this Ready is persisted
  // (Raft thesis 10.2.1): the leader counts its own entries toward commitment
  // only once told they are durable (Advance or MarkDurable).
  std::vector<Message> replication_messages;

  // All other messages (votes, acknowledgements, read-index replies). Send
  // only after `snapshot`, `entries` and `hard_state` are durable: a vote or
  // an append acknowledged before it is durable breaks safety.
  std::vector<Message> messages;

  // Linearizable reads confirmed by a quorum. Answer each once the state
  // machine has applied its index.
  std::vector<ReadState> read_states;

  // True when the write of this Ready must be synced (it has entries, a
  // snapshot, or a changed term or vote).
  bool must_sync = false;

  // True when `hard_state` changes the term or the vote. Such a Ready must be
  // persisted synchronously (see AdvanceWritten).
  bool term_or_vote_changed = false;
};

class Node {
 public:
  // Creates a node from what `config.storage` holds. Fails on an invalid
  // config or unreadable storage.
  static absl::StatusOr<std::unique_ptr<Node>> Create(const Config& config);

  // Writes the initial configuration of a brand-new cluster into an empty
  // store: one ENTRY_CONF_CHANGE (ADD_NODE) per voter at indexes 1..n, term 1,
  // committed. Every initial member must bootstrap with the same voter list.
  // Fails if the store is not empty.
  static absl::Status Bootstrap(LogStorage& storage, const std::vector<uint64_t>& voters);

  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Advances logical time by one tick (election and heartbeat timers).
  void Tick();

  // Starts an election now (as if the election timer fired).
  void Campaign();

  // Handles one message from a peer. Messages of local-only types, from
  // unknown terms' non-members, or malformed are ignored with a log line.
  absl::Status Step(const Message& message);

  // Appends `data` as a normal entry. Leader only: other roles get
  // FailedPrecondition (the caller redirects to the leader), and a leader in
  // a leadership transfer gets Unavailable. Returns the entry's index; the
  // entry is committed once it appears in committed_entries with that index
  // and the term current at proposal (an entry can be overwritten).
  absl::StatusOr<uint64_t> Propose(std::string data);

  // Appends many normal entries at once; returns the index of the first.
  absl::StatusOr<uint64_t> ProposeBatch(std::vector<std::string> data);

  // Proposes a single-server membership change (thesis 4.1). Only one may be
  // pending at a time. The core applies an ENTRY_CONF_CHANGE to its own
  // configuration when it is committed, at the Advance() of the Ready that
  // carried it in committed_entries; on restart it replays the committed ones
  // after the snapshot.
  absl::StatusOr<uint64_t> ProposeConfChange(const ConfChange& change);

  // Requests a linearizable read. Leader only (FailedPrecondition otherwise).
  // The answer arrives as a ReadState carrying `request_ctx` in a later Ready
  // (immediately with a single voter), after a heartbeat round confirms the
  // leadership and the leader has committed an entry in its term.
  absl::Status ReadIndex(std::string request_ctx);

  // Asks the leader to hand leadership to `target` (thesis 3.10): it stops
  // accepting proposals, brings the target up to date, and sends it
  // MSG_TIMEOUT_NOW. The transfer is abandoned after an election timeout.
  absl::Status TransferLeader(uint64_t target);
  // Abandons the transfer in progress, if any, so the leader accepts
  // proposals again. A MSG_TIMEOUT_NOW already sent may still make the
  // target campaign (and win, deposing this leader as any election does).
  void AbortTransfer();

  // Tells the leader a peer could not be reached (it falls back to probing).
  void ReportUnreachable(uint64_t peer);
  // Tells the leader how sending a snapshot to `peer` ended.
  void ReportSnapshot(uint64_t peer, bool success);

  bool HasReady() const;
  // Collects pending work. Call Advance(ready) before the next GetReady().
  Ready GetReady();
  // Marks `ready` as done: its entries and snapshot durable, its committed
  // entries applied. A leader counts its own acknowledgement only through the
  // last entry of this Ready: entries written earlier by AdvanceWritten are
  // counted once MarkDurable reports them, even if this Ready's synced write
  // made them durable too.
  void Advance(const Ready& ready);

  // Like Advance, but the Ready's entries and hard state are only written:
  // readable through Storage, not yet durable. A leader does not count them
  // toward commitment until MarkDurable reports them (thesis 10.2.1), so its
  // followers alone can commit them meanwhile. Allowed only for a Ready
  // without a snapshot and without term_or_vote_changed; its `messages` must
  // still wait until the write is durable, and a later synchronous persist
  // must make every earlier write durable too (a node must not win an
  // election with entries that are not durable).
  void AdvanceWritten(const Ready& ready);

  // Reports that this node's log through `index`, whose entry has `term`, is
  // durable. A leader counts it as its own acknowledgement and may commit.
  // Reports about entries the log no longer holds (another term at `index`)
  // or already counted are ignored.
  void MarkDurable(uint64_t index, uint64_t term);

  NodeStatus Status() const;
  uint64_t id() const;
  uint64_t term() const;
  uint64_t leader() const;
  Role role() const;
  // The current voter configuration (after applied conf changes).
  ConfState conf_state() const;

 private:
  class Impl;
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace raftlock::raft
