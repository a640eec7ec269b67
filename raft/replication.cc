// Log replication and everything that rides on it: appends with the
// consistency check and fast backtracking (section 5.3), flow control,
// heartbeats, the commit rule (section 5.4.2), snapshots (section 7),
// ReadIndex (thesis 6.4), leadership transfer (thesis 3.10) and membership
// changes (thesis 4.1).
#include <algorithm>
#include <vector>

#include "raft/node_impl.h"
#include "spdlog/spdlog.h"

namespace raftlock::raft {
namespace {
using raftlock::v1::MSG_APP;
using raftlock::v1::MSG_APP_RESP;
using raftlock::v1::MSG_HEARTBEAT;
using raftlock::v1::MSG_HEARTBEAT_RESP;
using raftlock::v1::MSG_SNAP;
using raftlock::v1::MSG_TIMEOUT_NOW;
}  // namespace

// ---------------------------------------------------------------- leader side

bool Node::Impl::MaybeSendAppend(uint64_t to, bool send_if_empty) {
  auto it = prs_.find(to);
  if (it == prs_.end() || to == id_) return false;
  Progress& pr = it->second;
  if (pr.IsPaused()) return false;

  const uint64_t prev_index = pr.next - 1;
  absl::StatusOr<uint64_t> prev_term = raft_log_.Term(prev_index);
  absl::StatusOr<std::vector<Entry>> ents = raft_log_.EntriesFrom(pr.next, cfg_.max_size_per_msg);
  if (!prev_term.ok() || !ents.ok()) {
    // The follower needs entries we compacted: send the snapshot instead.
    if (!pr.recent_active) return false;
    absl::StatusOr<Snapshot> snap = raft_log_.GetSnapshot();
    if (!snap.ok()) {
      // Temporarily unavailable: retry later. Any other error keeps every
      // lagging follower behind until it is fixed, so it is logged (once,
      // not at every heartbeat).
      const std::string error = snap.status().ToString();
      if (!IsSnapshotTemporarilyUnavailable(snap.status()) && error != snapshot_load_error_) {
        log_->error("raft node {} term {}: cannot load the snapshot that node {} needs: {}", id_,
                    term_, to, error);
        snapshot_load_error_ = error;
      }
      return false;
    }
    snapshot_load_error_.clear();
    if (snap->metadata().index() == 0) return false;
    const uint64_t snap_index = snap->metadata().index();
    Message m;
    m.set_type(MSG_SNAP);
    m.set_to(to);
    *m.mutable_snapshot() = std::move(*snap);
    pr.BecomeSnapshot(snap_index);
    log_->info("raft node {} term {}: sending snapshot at index {} to {}", id_, term_, snap_index,
               to);
    Send(std::move(m));
    return true;
  }
  if (ents->empty() && !send_if_empty) return false;
  Message m;
  m.set_type(MSG_APP);
  m.set_to(to);
  m.set_index(prev_index);
  m.set_log_term(*prev_term);
  m.set_commit(raft_log_.committed());
  const size_t n = ents->size();
  const uint64_t last = n > 0 ? ents->back().index() : prev_index;
  for (Entry& e : *ents) *m.add_entries() = std::move(e);
  pr.SentEntries(n, last);
  Send(std::move(m));
  return true;
}

void Node::Impl::BcastAppend() {
  for (const auto& [id, pr] : prs_) {
    if (id != id_) MaybeSendAppend(id, /*send_if_empty=*/true);
  }
}

void Node::Impl::BcastHeartbeat() {
  const std::string ctx = read_only_.LastPendingCtx();
  for (const auto& [id, pr] : prs_) {
    if (id != id_) SendHeartbeat(id, ctx);
  }
}

void Node::Impl::SendHeartbeat(uint64_t to, const std::string& ctx) {
  auto it = prs_.find(to);
  if (it == prs_.end()) return;
  Message m;
  m.set_type(MSG_HEARTBEAT);
  m.set_to(to);
  // Never tell a follower to commit past what it is known to store.
  m.set_commit(std::min(it->second.match, raft_log_.committed()));
  m.set_context(ctx);
  Send(std::move(m));
}

void Node::Impl::SendTimeoutNow(uint64_t to) {
  Message m;
  m.set_type(MSG_TIMEOUT_NOW);
  m.set_to(to);
  log_->info("raft node {} term {}: sending timeout-now to {}", id_, term_, to);
  Send(std::move(m));
}

bool Node::Impl::MaybeCommit() {
  std::map<uint64_t, uint64_t> match;
  for (uint64_t v : voters_) {
    auto it = prs_.find(v);
    if (it != prs_.end()) match[v] = it->second.match;
  }
  const uint64_t mci = MajorityCommitIndex(voters_, match);
  if (cfg_.testing_unsafe_commit_prior_term) {
    // !!! DELIBERATE BUG, TESTING ONLY !!! Commits an entry of an earlier term
    // as soon as a quorum stores it (the Figure 8 hazard of section 5.4.2).
    return raft_log_.MaybeCommit(mci, /*term=*/0);
  }
  // Section 5.4.2: only entries of the current term are committed by
  // counting replicas; earlier ones are committed indirectly.
  return raft_log_.MaybeCommit(mci, term_);
}

void Node::Impl::AdvanceCommit() {
  const uint64_t previous = raft_log_.committed();
  if (!MaybeCommit()) return;
  ReleasePendingReads();
  // An append per commit would double the messages, follower wake-ups and
  // acknowledgements of every write; followers learn most commits from the
  // next append or heartbeat instead (within heartbeat_tick). A commit that
  // changes the configuration, or that settles a new leader's inherited log,
  // is announced now: a leader that removed itself sends no heartbeats.
  if (previous < pending_conf_index_ && raft_log_.committed() >= pending_conf_index_) {
    BcastAppend();
  }
}

void Node::Impl::HandleAppendResponse(const Message& m) {
  auto it = prs_.find(m.from());
  if (it == prs_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;

  if (m.reject()) {
    // Fast backtracking: map the follower's hint (index, term) into our log
    // to skip every entry of a term the follower cannot match.
    uint64_t next_probe = m.reject_hint();
    if (m.log_term() > 0) {
      next_probe = raft_log_.FindConflictByTerm(m.reject_hint(), m.log_term()).first;
    }
    if (pr.MaybeDecrTo(m.index(), next_probe)) {
      if (pr.state == ProgressState::kReplicate) pr.BecomeProbe();
      MaybeSendAppend(m.from(), /*send_if_empty=*/true);
    }
    return;
  }

  const bool old_paused = pr.IsPaused();
  if (!pr.MaybeUpdate(m.index()) && !(pr.match == m.index() && pr.state == ProgressState::kProbe)) {
    return;
  }
  switch (pr.state) {
    case ProgressState::kProbe:
      pr.BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      if (pr.match + 1 >= raft_log_.FirstIndex()) {
        pr.BecomeProbe();
        pr.BecomeReplicate();
      }
      break;
    case ProgressState::kReplicate:
      pr.inflights.FreeLE(m.index());
      break;
  }
  AdvanceCommit();
  // A follower that was paused may lack the latest commit index.
  if (old_paused) MaybeSendAppend(m.from(), /*send_if_empty=*/true);
  while (MaybeSendAppend(m.from(), /*send_if_empty=*/false)) {
  }
  if (m.from() == lead_transferee_ && pr.match == raft_log_.LastIndex()) {
    SendTimeoutNow(m.from());
  }
}

void Node::Impl::HandleHeartbeatResponse(const Message& m) {
  auto it = prs_.find(m.from());
  if (it == prs_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  pr.msg_app_flow_paused = false;  // probe state: one append per heartbeat
  if (pr.state == ProgressState::kReplicate && pr.inflights.Full()) pr.inflights.FreeFirstOne();
  if (pr.match < raft_log_.LastIndex() || pr.state == ProgressState::kProbe) {
    MaybeSendAppend(m.from(), /*send_if_empty=*/true);
  }
  if (m.context().empty()) return;
  const std::set<uint64_t>* acks = read_only_.RecvAck(m.from(), m.context());
  if (acks == nullptr || !HasQuorum(voters_, *acks)) return;
  for (ReadState& rs : read_only_.Advance(m.context())) read_states_.push_back(std::move(rs));
}

// ---------------------------------------------------------------- follower side

void Node::Impl::HandleAppendEntries(const Message& m) {
  Message resp;
  resp.set_type(MSG_APP_RESP);
  resp.set_to(m.from());
  if (m.index() < raft_log_.committed()) {
    resp.set_index(raft_log_.committed());
    Send(std::move(resp));
    return;
  }
  std::vector<Entry> ents(m.entries().begin(), m.entries().end());
  if (std::optional<uint64_t> last =
          raft_log_.MaybeAppend(m.index(), m.log_term(), m.commit(), ents)) {
    resp.set_index(*last);
    Send(std::move(resp));
    return;
  }
  // Consistency check failed (section 5.3). Hint the largest index <= the
  // probed one whose term is <= the probed term.
  const uint64_t hint_index = std::min(m.index(), raft_log_.LastIndex());
  auto [hi, ht] = raft_log_.FindConflictByTerm(hint_index, m.log_term());
  resp.set_index(m.index());
  resp.set_reject(true);
  resp.set_reject_hint(hi);
  resp.set_log_term(ht);
  Send(std::move(resp));
}

void Node::Impl::HandleHeartbeat(const Message& m) {
  raft_log_.CommitTo(m.commit());
  Message resp;
  resp.set_type(MSG_HEARTBEAT_RESP);
  resp.set_to(m.from());
  resp.set_context(m.context());
  Send(std::move(resp));
}

void Node::Impl::HandleSnapshot(const Message& m) {
  Message resp;
  resp.set_type(MSG_APP_RESP);
  resp.set_to(m.from());
  if (RestoreSnapshot(m.snapshot())) {
    log_->info("raft node {} term {}: restored snapshot at index {} term {}", id_, term_,
               m.snapshot().metadata().index(), m.snapshot().metadata().term());
    resp.set_index(raft_log_.LastIndex());
  } else {
    resp.set_index(raft_log_.committed());
  }
  Send(std::move(resp));
}

bool Node::Impl::RestoreSnapshot(const Snapshot& s) {
  const SnapshotMetadata& md = s.metadata();
  if (md.index() <= raft_log_.committed()) return false;
  if (raft_log_.MatchTerm(md.index(), md.term())) {
    // We already hold the snapshot's last entry: just fast-forward commit.
    raft_log_.CommitTo(md.index());
    return false;
  }
  raft_log_.Restore(s);
  SetConfig(md.conf_state());
  config_index_ = md.index();
  return true;
}

// ---------------------------------------------------------------- ReadIndex

bool Node::Impl::CommittedEntryInCurrentTerm() const {
  return raft_log_.TermOrZero(raft_log_.committed()) == term_;
}

absl::Status Node::Impl::ReadIndex(std::string ctx) {
  if (role_ != Role::kLeader) return absl::FailedPreconditionError("not the leader");
  if (ctx.empty()) return absl::InvalidArgumentError("read index context must not be empty");
  StartReadIndex(ctx);
  return absl::OkStatus();
}

void Node::Impl::StartReadIndex(const std::string& ctx) {
  if (!CommittedEntryInCurrentTerm()) {
    // Thesis 6.4: the commit index is only known to be current once the
    // leader has committed an entry of its own term (its no-op).
    pending_read_ctxs_.push_back(ctx);
    return;
  }
  if (voters_.size() == 1 && voters_[0] == id_) {
    read_states_.push_back(ReadState{raft_log_.committed(), ctx});
    return;
  }
  if (!read_only_.Add(raft_log_.committed(), ctx)) return;
  read_only_.RecvAck(id_, ctx);
  for (const auto& [id, pr] : prs_) {
    if (id != id_) SendHeartbeat(id, ctx);
  }
}

void Node::Impl::ReleasePendingReads() {
  if (pending_read_ctxs_.empty() || !CommittedEntryInCurrentTerm()) return;
  std::vector<std::string> ctxs = std::move(pending_read_ctxs_);
  pending_read_ctxs_.clear();
  for (const std::string& c : ctxs) StartReadIndex(c);
}

// ---------------------------------------------------------------- transfer

absl::Status Node::Impl::TransferLeader(uint64_t target) {
  if (role_ != Role::kLeader) return absl::FailedPreconditionError("not the leader");
  if (target == id_) return absl::OkStatus();  // already the leader
  if (!IsVoter(target)) return absl::InvalidArgumentError("transfer target is not a voter");
  if (lead_transferee_ == target) return absl::OkStatus();  // already in progress
  if (lead_transferee_ != kNone) AbortLeaderTransfer();
  // The transfer must finish within one election timeout.
  transfer_elapsed_ = 0;
  lead_transferee_ = target;
  log_->info("raft node {} term {}: starting leadership transfer to {}", id_, term_, target);
  if (prs_.at(target).match == raft_log_.LastIndex()) {
    SendTimeoutNow(target);
  } else {
    MaybeSendAppend(target, /*send_if_empty=*/true);
  }
  return absl::OkStatus();
}

void Node::Impl::AbortLeaderTransfer() { lead_transferee_ = kNone; }

void Node::Impl::ReportUnreachable(uint64_t peer) {
  if (role_ != Role::kLeader) return;
  auto it = prs_.find(peer);
  if (it == prs_.end()) return;
  if (it->second.state == ProgressState::kReplicate) it->second.BecomeProbe();
}

void Node::Impl::ReportSnapshot(uint64_t peer, bool success) {
  if (role_ != Role::kLeader) return;
  auto it = prs_.find(peer);
  if (it == prs_.end()) return;
  Progress& pr = it->second;
  if (pr.state != ProgressState::kSnapshot) return;
  if (!success) pr.pending_snapshot = 0;
  // Probe from past the snapshot (on success) or from match (on failure),
  // after the next heartbeat response.
  pr.BecomeProbe();
  pr.msg_app_flow_paused = true;
}

// ---------------------------------------------------------------- membership

void Node::Impl::SetConfig(const ConfState& cs) {
  voters_.assign(cs.voters().begin(), cs.voters().end());
  learners_.assign(cs.learners().begin(), cs.learners().end());
  std::sort(voters_.begin(), voters_.end());
  voters_.erase(std::unique(voters_.begin(), voters_.end()), voters_.end());
  std::sort(learners_.begin(), learners_.end());
  learners_.erase(std::unique(learners_.begin(), learners_.end()), learners_.end());
  ResetProgress();
}

void Node::Impl::ResetProgress() {
  std::map<uint64_t, Progress> prs;
  const uint64_t next = raft_log_.LastIndex() + 1;
  // Only a new leader uses its own match, and every entry it has written is
  // durable by then: the driver synced its term change, after every earlier
  // write, before the vote requests left (Node::AdvanceWritten).
  auto add = [&](uint64_t id, bool learner) {
    Progress p(next, cfg_.max_inflight_msgs, learner);
    if (id == id_) p.match = raft_log_.PersistedLastIndex();
    prs.emplace(id, std::move(p));
  };
  for (uint64_t v : voters_) add(v, false);
  for (uint64_t l : learners_) add(l, true);
  prs_ = std::move(prs);
}

void Node::Impl::ApplyConfChange(const ConfChange& cc) {
  const uint64_t id = cc.node_id();
  if (id == kNone) return;
  bool added = false;
  auto erase = [](std::vector<uint64_t>& v, uint64_t x) {
    v.erase(std::remove(v.begin(), v.end(), x), v.end());
  };
  auto insert = [](std::vector<uint64_t>& v, uint64_t x) {
    if (!std::binary_search(v.begin(), v.end(), x))
      v.insert(std::upper_bound(v.begin(), v.end(), x), x);
  };
  switch (cc.type()) {
    case raftlock::v1::CONF_CHANGE_ADD_NODE: {
      erase(learners_, id);
      insert(voters_, id);
      auto it = prs_.find(id);
      if (it != prs_.end()) {
        it->second.is_learner = false;
      } else {
        Progress p(raft_log_.LastIndex() + 1, cfg_.max_inflight_msgs, false);
        p.recent_active = true;
        prs_.emplace(id, std::move(p));
        added = true;
      }
      break;
    }
    case raftlock::v1::CONF_CHANGE_ADD_LEARNER: {
      if (IsVoter(id)) return;  // demotion is not supported
      insert(learners_, id);
      if (prs_.find(id) == prs_.end()) {
        Progress p(raft_log_.LastIndex() + 1, cfg_.max_inflight_msgs, true);
        p.recent_active = true;
        prs_.emplace(id, std::move(p));
        added = true;
      }
      break;
    }
    case raftlock::v1::CONF_CHANGE_REMOVE_NODE:
      erase(voters_, id);
      erase(learners_, id);
      prs_.erase(id);
      if (lead_transferee_ == id) AbortLeaderTransfer();
      break;
    default:
      return;
  }
  if (role_ != Role::kLeader) return;
  log_->info("raft node {} term {}: applied conf change type {} node {} ({} voters)", id_, term_,
             static_cast<int>(cc.type()), id, voters_.size());
  if (!IsVoter(id_)) {
    log_->info("raft node {} term {}: leader removed from the configuration, stepping down", id_,
               term_);
    BecomeFollower(term_, kNone);
    return;
  }
  AdvanceCommit();
  if (added) MaybeSendAppend(id, /*send_if_empty=*/true);
}

}  // namespace raftlock::raft
