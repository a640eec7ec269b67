// The private state machine behind raft::Node. Split by concern:
//   node.cc         construction, the public API, Tick, Ready/Advance;
//   election.cc     Step dispatch, terms, roles, (pre-)votes, check quorum;
//   replication.cc  appends, heartbeats, snapshots, commit, ReadIndex,
//                   leadership transfer, membership changes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "raft/node.h"
#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/raft_log.h"

namespace raftlock::raft {

class Node::Impl {
 public:
  Impl(const Config& config, std::shared_ptr<spdlog::logger> logger);

  // Loads hard state, configuration and cursors from storage.
  absl::Status Init();

  // ---- node.cc ----
  void Tick();
  absl::StatusOr<uint64_t> ProposeEntries(std::vector<Entry> entries);
  absl::Status ReadIndex(std::string ctx);
  absl::Status TransferLeader(uint64_t target);
  void ReportUnreachable(uint64_t peer);
  void ReportSnapshot(uint64_t peer, bool success);
  bool HasReady() const;
  Ready GetReady();
  // `durable`: the Ready's entries are durable (Node::Advance), or only
  // written (Node::AdvanceWritten; MarkDurable follows).
  void Advance(const Ready& rd, bool durable);
  void MarkDurable(uint64_t index, uint64_t term);
  // Leader: counts its log through `index` (if it has `term` there) as its
  // own acknowledgement.
  void CountOwnDurableEntries(uint64_t index, uint64_t term);
  NodeStatus Status() const;
  ConfState GetConfState() const;

  // ---- election.cc ----
  // Handles any message, local (term 0) or from a peer.
  void Step(const Message& m);
  void Campaign(bool transfer);
  void Hup(bool transfer);
  // A follower got a message from the leader of its term: restarts the
  // election timer and forgets an ignored pre-vote.
  void HeardFromLeader(uint64_t leader);
  // Common to every role change: adopts `term` (clearing the vote if it
  // changed), clears leader, timers, votes, progress and pending reads.
  void Reset(uint64_t term);
  void BecomeFollower(uint64_t term, uint64_t lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  // True when this node is a voter (can campaign).
  bool Promotable() const;

  // ---- replication.cc ----
  // Sends an append (or snapshot) to `to` if flow control allows; returns
  // whether a message was sent.
  bool MaybeSendAppend(uint64_t to, bool send_if_empty);
  void BcastAppend();
  void BcastHeartbeat();
  void SendHeartbeat(uint64_t to, const std::string& ctx);
  void SendTimeoutNow(uint64_t to);
  // Recomputes commit from the voters' match indexes (section 5.4.2).
  bool MaybeCommit();
  // MaybeCommit, then, if the commit index moved: answers the reads waiting
  // for it, and tells followers at once when the commit covers a pending
  // configuration change or the entries a new leader inherited (others learn
  // it from the next append or heartbeat).
  void AdvanceCommit();
  void HandleAppendResponse(const Message& m);
  void HandleHeartbeatResponse(const Message& m);
  void HandleAppendEntries(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  bool RestoreSnapshot(const Snapshot& s);
  void StartReadIndex(const std::string& ctx);
  void ReleasePendingReads();
  bool CommittedEntryInCurrentTerm() const;
  void AbortLeaderTransfer();
  void ApplyConfChange(const ConfChange& cc);
  void SetConfig(const ConfState& cs);
  void ResetProgress();

  // ---- helpers ----
  void Send(Message m);
  void ResetRandomizedElectionTimeout();
  bool PastElectionTimeout() const { return election_elapsed_ >= randomized_election_timeout_; }
  bool IsVoter(uint64_t id) const;
  bool IsMember(uint64_t id) const;
  HardState CurrentHardState() const;
  SoftState CurrentSoftState() const;
  bool HasUnappliedConfChanges() const;

  Config cfg_;
  std::shared_ptr<spdlog::logger> log_;  // never null
  uint64_t id_;
  uint64_t term_ = 0;
  uint64_t vote_ = kNone;
  uint64_t lead_ = kNone;
  Role role_ = Role::kFollower;
  RaftLog raft_log_;

  std::vector<uint64_t> voters_;    // sorted
  std::vector<uint64_t> learners_;  // sorted
  std::map<uint64_t, Progress> prs_;
  std::map<uint64_t, bool> votes_;

  int election_elapsed_ = 0;
  // A peer asked for a pre-vote while we still heard from a leader (so we
  // ignored it); if no leader speaks again before our lease ends, we campaign
  // then instead of waiting out our randomized timeout. Cleared by any leader
  // message and by Reset.
  bool pre_vote_seen_in_lease_ = false;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  std::mt19937_64 rng_;

  uint64_t lead_transferee_ = kNone;
  // Ticks since the current leadership transfer began. Its own timer: the
  // check-quorum round runs on election_elapsed_, which a transfer must not
  // restart (a cut-off leader asked to transfer again and again would never
  // step down).
  int transfer_elapsed_ = 0;
  uint64_t pending_conf_index_ = 0;
  // Conf changes at or below this index are already part of voters_ and
  // learners_ (replayed at start, or from a restored snapshot).
  uint64_t config_index_ = 0;
  ReadOnly read_only_;
  std::vector<std::string> pending_read_ctxs_;  // waiting for a commit in this term
  // The last error (other than "temporarily unavailable") that kept the
  // snapshot from being loaded for a follower; logged once per change.
  std::string snapshot_load_error_;

  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;
  HardState prev_hard_;
  SoftState prev_soft_;
};

}  // namespace raftlock::raft
