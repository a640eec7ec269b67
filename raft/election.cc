// Terms, roles and elections: Step's dispatch (section 5.1 term rules),
// (pre-)vote handling (sections 5.2, 5.4.1; thesis 9.6), leader stickiness
// (thesis 4.2.3) and check quorum (thesis 6.2).
#include <set>

#include "raft/node_impl.h"
#include "spdlog/spdlog.h"

namespace raftlock::raft {
namespace {
using raftlock::v1::MSG_APP;
using raftlock::v1::MSG_APP_RESP;
using raftlock::v1::MSG_CHECK_QUORUM;
using raftlock::v1::MSG_HEARTBEAT;
using raftlock::v1::MSG_HEARTBEAT_RESP;
using raftlock::v1::MSG_PRE_VOTE;
using raftlock::v1::MSG_PRE_VOTE_RESP;
using raftlock::v1::MSG_SNAP;
using raftlock::v1::MSG_TIMEOUT_NOW;
using raftlock::v1::MSG_VOTE;
using raftlock::v1::MSG_VOTE_RESP;

bool IsLeaderMessage(MessageType t) { return t == MSG_APP || t == MSG_HEARTBEAT || t == MSG_SNAP; }
}  // namespace

void Node::Impl::Step(const Message& m) {
  const MessageType t = m.type();
  if (t == MSG_CHECK_QUORUM) {
    if (role_ != Role::kLeader) return;
    std::set<uint64_t> active;
    for (uint64_t v : voters_) {
      auto it = prs_.find(v);
      if (v == id_ || (it != prs_.end() && it->second.recent_active)) active.insert(v);
    }
    if (!HasQuorum(voters_, active)) {
      log_->warn("raft node {} term {}: leader stepping down, no quorum active (check quorum)", id_,
                 term_);
      BecomeFollower(term_, kNone);
      return;
    }
    for (auto& [id, pr] : prs_) {
      if (id == id_) continue;
      pr.active_last_period = pr.recent_active;
      pr.recent_active = false;
    }
    return;
  }

  if (m.term() > term_) {
    if (t == MSG_VOTE || t == MSG_PRE_VOTE) {
      // Leader stickiness (thesis 4.2.3): a node that heard from a leader
      // within the minimum election timeout ignores (pre-)vote requests,
      // unless the campaign is a leadership transfer.
      const bool in_lease =
          cfg_.check_quorum && lead_ != kNone && election_elapsed_ < cfg_.election_tick;
      if (!m.leader_transfer() && in_lease) {
        if (t == MSG_PRE_VOTE && role_ == Role::kFollower) pre_vote_seen_in_lease_ = true;
        return;
      }
    }
    if (t == MSG_PRE_VOTE) {
      // A pre-vote never changes our term.
    } else if (t == MSG_PRE_VOTE_RESP && !m.reject()) {
      // Granted pre-votes carry the future term; the term bumps on winning.
    } else {
      log_->info("raft node {} term {}: saw higher term {} from {} (type {})", id_, term_, m.term(),
                 m.from(), static_cast<int>(t));
      BecomeFollower(m.term(), IsLeaderMessage(t) ? m.from() : kNone);
    }
  } else if (m.term() < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) && (t == MSG_APP || t == MSG_HEARTBEAT)) {
      // A stale leader (possibly partitioned away) learns our term and steps
      // down; otherwise with pre-vote it could keep us from electing anyone.
      Message resp;
      resp.set_type(MSG_APP_RESP);
      resp.set_to(m.from());
      Send(std::move(resp));
    } else if (t == MSG_PRE_VOTE) {
      Message resp;
      resp.set_type(MSG_PRE_VOTE_RESP);
      resp.set_to(m.from());
      resp.set_term(term_);
      resp.set_reject(true);
      Send(std::move(resp));
    }
    return;
  }

  if (t == MSG_VOTE || t == MSG_PRE_VOTE) {
    // One vote per term (Figure 2), for an up-to-date log (section 5.4.1).
    const bool can_vote = vote_ == m.from() || (vote_ == kNone && lead_ == kNone) ||
                          (t == MSG_PRE_VOTE && m.term() > term_);
    const bool up_to_date = raft_log_.IsUpToDate(m.index(), m.log_term());
    Message resp;
    resp.set_type(t == MSG_VOTE ? MSG_VOTE_RESP : MSG_PRE_VOTE_RESP);
    resp.set_to(m.from());
    if (can_vote && up_to_date) {
      resp.set_term(m.term());
      if (t == MSG_VOTE) {
        election_elapsed_ = 0;
        vote_ = m.from();
      }
    } else {
      resp.set_term(term_);
      resp.set_reject(true);
    }
    Send(std::move(resp));
    // A pre-candidate whose log is behind ours cannot win (section 5.4.1),
    // and it only asks because it heard no leader for an election timeout.
    // If we heard none for that long either, campaign now rather than wait
    // out our own randomized timeout: after a leader crash under load the
    // follower that times out first is often the one that lags, and waiting
    // would add up to another election timeout to the failover.
    if (t == MSG_PRE_VOTE && !up_to_date && role_ == Role::kFollower &&
        election_elapsed_ >= cfg_.election_tick) {
      log_->info("raft node {} term {}: refused pre-vote of less up-to-date {}, campaigning", id_,
                 term_, m.from());
      election_elapsed_ = 0;
      Hup(/*transfer=*/false);
    }
    return;
  }

  switch (role_) {
    case Role::kFollower:
      switch (t) {
        case MSG_APP:
          HeardFromLeader(m.from());
          HandleAppendEntries(m);
          break;
        case MSG_HEARTBEAT:
          HeardFromLeader(m.from());
          HandleHeartbeat(m);
          break;
        case MSG_SNAP:
          HeardFromLeader(m.from());
          HandleSnapshot(m);
          break;
        case MSG_TIMEOUT_NOW:
          if (Promotable()) {
            log_->info("raft node {} term {}: received timeout-now from {}, campaigning", id_,
                       term_, m.from());
            Hup(/*transfer=*/true);
          }
          break;
        default:
          break;
      }
      break;
    case Role::kPreCandidate:
    case Role::kCandidate: {
      if (IsLeaderMessage(t)) {
        BecomeFollower(m.term(), m.from());
        if (t == MSG_APP) HandleAppendEntries(m);
        if (t == MSG_HEARTBEAT) HandleHeartbeat(m);
        if (t == MSG_SNAP) HandleSnapshot(m);
        break;
      }
      const MessageType want = role_ == Role::kPreCandidate ? MSG_PRE_VOTE_RESP : MSG_VOTE_RESP;
      if (t != want) break;
      votes_.emplace(m.from(), !m.reject());
      switch (TallyVotes(voters_, votes_)) {
        case VoteResult::kWon:
          if (role_ == Role::kPreCandidate) {
            Campaign(/*transfer=*/false);
          } else {
            BecomeLeader();
          }
          break;
        case VoteResult::kLost:
          log_->info("raft node {} term {}: lost the {}election", id_, term_,
                     role_ == Role::kPreCandidate ? "pre-" : "");
          BecomeFollower(term_, kNone);
          break;
        case VoteResult::kPending:
          break;
      }
      break;
    }
    case Role::kLeader:
      switch (t) {
        case MSG_APP_RESP:
          HandleAppendResponse(m);
          break;
        case MSG_HEARTBEAT_RESP:
          HandleHeartbeatResponse(m);
          break;
        default:
          break;
      }
      break;
  }
}

void Node::Impl::Hup(bool transfer) {
  if (role_ == Role::kLeader) return;
  if (!Promotable()) return;
  if (HasUnappliedConfChanges()) {
    log_->info("raft node {} term {}: not campaigning, committed conf changes unapplied", id_,
               term_);
    return;
  }
  if (cfg_.pre_vote && !transfer) {
    BecomePreCandidate();
    const uint64_t next_term = term_ + 1;
    votes_[id_] = true;
    if (TallyVotes(voters_, votes_) == VoteResult::kWon) {
      Campaign(transfer);
      return;
    }
    for (uint64_t v : voters_) {
      if (v == id_) continue;
      Message m;
      m.set_type(MSG_PRE_VOTE);
      m.set_to(v);
      m.set_term(next_term);
      m.set_index(raft_log_.LastIndex());
      m.set_log_term(raft_log_.LastTerm());
      Send(std::move(m));
    }
    return;
  }
  Campaign(transfer);
}

void Node::Impl::Campaign(bool transfer) {
  BecomeCandidate();
  votes_[id_] = true;
  if (TallyVotes(voters_, votes_) == VoteResult::kWon) {
    BecomeLeader();
    return;
  }
  for (uint64_t v : voters_) {
    if (v == id_) continue;
    Message m;
    m.set_type(MSG_VOTE);
    m.set_to(v);
    m.set_term(term_);
    m.set_index(raft_log_.LastIndex());
    m.set_log_term(raft_log_.LastTerm());
    m.set_leader_transfer(transfer);
    Send(std::move(m));
  }
}

void Node::Impl::HeardFromLeader(uint64_t leader) {
  election_elapsed_ = 0;
  pre_vote_seen_in_lease_ = false;
  lead_ = leader;
}

void Node::Impl::Reset(uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  lead_ = kNone;
  election_elapsed_ = 0;
  pre_vote_seen_in_lease_ = false;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  votes_.clear();
  ResetProgress();
  pending_conf_index_ = 0;
  read_only_.Reset();
  pending_read_ctxs_.clear();
}

void Node::Impl::BecomeFollower(uint64_t term, uint64_t lead) {
  const Role old = role_;
  const uint64_t old_term = term_;
  Reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
  if (old != Role::kFollower || old_term != term) {
    log_->info("raft node {} became follower at term {} (leader {})", id_, term_, lead_);
  }
}

void Node::Impl::BecomePreCandidate() {
  // Pre-vote keeps term and vote; it only asks whether an election could win.
  votes_.clear();
  lead_ = kNone;
  role_ = Role::kPreCandidate;
  log_->info("raft node {} became pre-candidate at term {}", id_, term_);
}

void Node::Impl::BecomeCandidate() {
  Reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
  log_->info("raft node {} became candidate at term {}", id_, term_);
}

void Node::Impl::BecomeLeader() {
  Reset(term_);
  lead_ = id_;
  role_ = Role::kLeader;
  auto self = prs_.find(id_);
  if (self != prs_.end()) {
    self->second.BecomeReplicate();
    self->second.recent_active = true;
  }
  // Conservatively treat any uncommitted entry as a pending conf change.
  pending_conf_index_ = raft_log_.LastIndex();
  log_->info("raft node {} became leader at term {}", id_, term_);
  // A no-op in the new term lets the leader commit (section 5.4.2, 8).
  Entry noop;
  noop.set_term(term_);
  noop.set_index(raft_log_.LastIndex() + 1);
  noop.set_type(raftlock::v1::ENTRY_NORMAL);
  raft_log_.Append({noop});
  BcastAppend();
}

}  // namespace raftlock::raft
