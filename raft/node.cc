// Node: construction, the public API, Tick, and the Ready/Advance protocol.
#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "raft/node_impl.h"
#include "spdlog/spdlog.h"

namespace raftlock::raft {
namespace {

bool IsLocalOnly(MessageType t) {
  return t <= raftlock::v1::MSG_READ_INDEX;  // MSG_UNSPECIFIED .. MSG_READ_INDEX
}

bool IsReplicationMessage(MessageType t) {
  return t == raftlock::v1::MSG_APP || t == raftlock::v1::MSG_HEARTBEAT ||
         t == raftlock::v1::MSG_SNAP || t == raftlock::v1::MSG_TIMEOUT_NOW;
}

bool SameHardState(const HardState& a, const HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}

std::shared_ptr<spdlog::logger> SilentLogger() {
  auto l = std::make_shared<spdlog::logger>("raft-silent");
  l->set_level(spdlog::level::off);
  return l;
}

}  // namespace

// ---------------------------------------------------------------- Impl basics

Node::Impl::Impl(const Config& config, std::shared_ptr<spdlog::logger> logger)
    : cfg_(config),
      log_(std::move(logger)),
      id_(config.id),
      raft_log_(config.storage),
      rng_(config.random_seed) {}

absl::Status Node::Impl::Init() {
  absl::StatusOr<InitialState> is = cfg_.storage->GetInitialState();
  if (!is.ok()) return is.status();
  const HardState& hs = is->hard_state;
  const uint64_t first = raft_log_.FirstIndex();
  const uint64_t last = raft_log_.LastIndex();
  if (hs.commit() > last) {
    return absl::DataLossError("hard state commit is beyond the last log index");
  }
  term_ = hs.term();
  vote_ = hs.vote();
  raft_log_.SetCommitted(std::max(hs.commit(), first - 1));
  const uint64_t applied = std::max<uint64_t>(cfg_.applied, first - 1);
  if (applied > raft_log_.committed()) {
    return absl::InvalidArgumentError("config.applied is beyond the committed index");
  }
  raft_log_.SetApplied(applied);

  // The configuration: the snapshot's, then every committed conf change.
  SetConfig(is->conf_state);
  if (raft_log_.committed() >= first) {
    absl::StatusOr<std::vector<Entry>> ents =
        raft_log_.Slice(first, raft_log_.committed() + 1, std::numeric_limits<uint64_t>::max());
    if (!ents.ok()) return ents.status();
    for (const Entry& e : *ents) {
      if (e.type() != raftlock::v1::ENTRY_CONF_CHANGE) continue;
      ConfChange cc;
      if (!cc.ParseFromString(e.data())) {
        return absl::DataLossError("unparsable conf change entry in the log");
      }
      ApplyConfChange(cc);
    }
  }
  config_index_ = raft_log_.committed();
  BecomeFollower(term_, kNone);
  prev_hard_ = CurrentHardState();
  prev_soft_ = CurrentSoftState();
  log_->info("raft node {} started: term={} vote={} commit={} applied={} last={} voters={}", id_,
             term_, vote_, raft_log_.committed(), applied, raft_log_.LastIndex(), voters_.size());
  return absl::OkStatus();
}

void Node::Impl::Send(Message m) {
  m.set_from(id_);
  const MessageType t = m.type();
  // Vote requests and responses carry their own term (pre-votes use term+1).
  if (t != raftlock::v1::MSG_VOTE && t != raftlock::v1::MSG_PRE_VOTE &&
      t != raftlock::v1::MSG_VOTE_RESP && t != raftlock::v1::MSG_PRE_VOTE_RESP) {
    m.set_term(term_);
  }
  msgs_.push_back(std::move(m));
}

void Node::Impl::ResetRandomizedElectionTimeout() {
  const uint64_t span = static_cast<uint64_t>(cfg_.election_tick);
  randomized_election_timeout_ = cfg_.election_tick + static_cast<int>(rng_() % span);
}

bool Node::Impl::IsVoter(uint64_t id) const {
  return std::binary_search(voters_.begin(), voters_.end(), id);
}

bool Node::Impl::IsMember(uint64_t id) const {
  return IsVoter(id) || std::binary_search(learners_.begin(), learners_.end(), id);
}

bool Node::Impl::Promotable() const { return IsVoter(id_); }

HardState Node::Impl::CurrentHardState() const {
  HardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(raft_log_.committed());
  return hs;
}

SoftState Node::Impl::CurrentSoftState() const { return SoftState{lead_, role_}; }

bool Node::Impl::HasUnappliedConfChanges() const {
  const uint64_t from = std::max(raft_log_.applied(), config_index_);
  if (raft_log_.committed() <= from) return false;
  absl::StatusOr<std::vector<Entry>> ents =
      raft_log_.Slice(from + 1, raft_log_.committed() + 1, std::numeric_limits<uint64_t>::max());
  if (!ents.ok()) return true;  // be conservative
  return std::any_of(ents->begin(), ents->end(),
                     [](const Entry& e) { return e.type() == raftlock::v1::ENTRY_CONF_CHANGE; });
}

// ---------------------------------------------------------------- ticks

void Node::Impl::Tick() {
  if (role_ != Role::kLeader) {
    ++election_elapsed_;
    // Thesis 9.6 with 4.2.3: a peer already timed out (its pre-vote reached us
    // inside our lease) and now we too heard no leader for election_tick: the
    // leader is most likely gone, so campaign without further randomized wait.
    const bool peer_timed_out_too =
        pre_vote_seen_in_lease_ && election_elapsed_ >= cfg_.election_tick;
    if (Promotable() && (PastElectionTimeout() || peer_timed_out_too)) {
      pre_vote_seen_in_lease_ = false;
      election_elapsed_ = 0;
      Hup(/*transfer=*/false);
    }
    return;
  }
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_tick) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      Message m;
      m.set_type(raftlock::v1::MSG_CHECK_QUORUM);
      Step(m);
    }
  }
  if (role_ == Role::kLeader && lead_transferee_ != kNone &&
      ++transfer_elapsed_ >= cfg_.election_tick) {
    log_->info("raft node {} term {}: leadership transfer to {} timed out, aborted", id_, term_,
               lead_transferee_);
    AbortLeaderTransfer();
  }
  if (role_ != Role::kLeader) return;
  if (heartbeat_elapsed_ >= cfg_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    BcastHeartbeat();
  }
}

// ---------------------------------------------------------------- proposals

absl::StatusOr<uint64_t> Node::Impl::ProposeEntries(std::vector<Entry> entries) {
  if (role_ != Role::kLeader) {
    return absl::FailedPreconditionError(
        absl::StrCat("not the leader; leader is ", lead_));  // caller redirects
  }
  if (lead_transferee_ != kNone) {
    return absl::UnavailableError("leadership transfer in progress");
  }
  if (entries.empty()) return absl::InvalidArgumentError("no entries to propose");
  const uint64_t first = raft_log_.LastIndex() + 1;
  for (size_t i = 0; i < entries.size(); ++i) {
    entries[i].set_term(term_);
    entries[i].set_index(first + i);
  }
  raft_log_.Append(entries);
  BcastAppend();
  return first;
}

// ---------------------------------------------------------------- Ready

bool Node::Impl::HasReady() const {
  if (!(CurrentSoftState() == prev_soft_)) return true;
  if (!SameHardState(CurrentHardState(), prev_hard_)) return true;
  if (raft_log_.unstable().NextSnapshot() != nullptr) return true;
  if (raft_log_.unstable().HasNextEntries()) return true;
  if (!msgs_.empty() || !read_states_.empty()) return true;
  return raft_log_.HasNextCommittedEntries();
}

Ready Node::Impl::GetReady() {
  Ready rd;
  const SoftState ss = CurrentSoftState();
  if (!(ss == prev_soft_)) {
    rd.soft_state = ss;
    prev_soft_ = ss;
  }
  const HardState hs = CurrentHardState();
  bool term_or_vote_changed = false;
  if (!SameHardState(hs, prev_hard_)) {
    term_or_vote_changed = hs.term() != prev_hard_.term() || hs.vote() != prev_hard_.vote();
    rd.hard_state = hs;
    prev_hard_ = hs;
  }
  rd.entries = raft_log_.unstable().NextEntries();
  if (const Snapshot* s = raft_log_.unstable().NextSnapshot()) rd.snapshot = *s;
  rd.committed_entries = raft_log_.NextCommittedEntries(cfg_.max_committed_size_per_ready);
  for (Message& m : msgs_) {
    if (IsReplicationMessage(m.type())) {
      rd.replication_messages.push_back(std::move(m));
    } else {
      rd.messages.push_back(std::move(m));
    }
  }
  msgs_.clear();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  rd.must_sync = !rd.entries.empty() || rd.snapshot.has_value() || term_or_vote_changed;
  rd.term_or_vote_changed = term_or_vote_changed;

  raft_log_.unstable().AcceptInProgress();
  if (!rd.committed_entries.empty()) {
    raft_log_.AcceptApplying(rd.committed_entries.back().index());
  }
  return rd;
}

void Node::Impl::Advance(const Ready& rd, bool durable) {
  if (rd.snapshot.has_value()) {
    const uint64_t idx = rd.snapshot->metadata().index();
    raft_log_.unstable().StableSnapTo(idx);
    raft_log_.AppliedTo(idx);
  }
  if (!rd.entries.empty()) {
    const Entry& last = rd.entries.back();
    raft_log_.unstable().StableTo(last.index(), last.term());
    if (durable) CountOwnDurableEntries(last.index(), last.term());
  }
  if (!rd.committed_entries.empty()) {
    for (const Entry& e : rd.committed_entries) {
      if (e.type() != raftlock::v1::ENTRY_CONF_CHANGE || e.index() <= config_index_) continue;
      ConfChange cc;
      if (!cc.ParseFromString(e.data())) {
        log_->error("raft node {}: unparsable conf change at index {} ignored", id_, e.index());
        continue;
      }
      ApplyConfChange(cc);
      config_index_ = e.index();
    }
    raft_log_.AppliedTo(rd.committed_entries.back().index());
  }
  if (role_ == Role::kLeader) AdvanceCommit();
}

void Node::Impl::CountOwnDurableEntries(uint64_t index, uint64_t term) {
  // The leader's own entries count toward commitment only once durable
  // (Raft thesis 10.2.1): this is its self-acknowledgement. A term mismatch
  // means the report is about entries this log no longer holds.
  if (role_ != Role::kLeader || !raft_log_.MatchTerm(index, term)) return;
  auto it = prs_.find(id_);
  if (it != prs_.end()) it->second.MaybeUpdate(index);
}

void Node::Impl::MarkDurable(uint64_t index, uint64_t term) {
  CountOwnDurableEntries(index, term);
  if (role_ == Role::kLeader) AdvanceCommit();
}

NodeStatus Node::Impl::Status() const {
  NodeStatus st;
  st.id = id_;
  st.term = term_;
  st.vote = vote_;
  st.commit = raft_log_.committed();
  st.applied = raft_log_.applied();
  st.last_index = raft_log_.LastIndex();
  st.leader = lead_;
  st.role = role_;
  st.lead_transferee = lead_transferee_;
  if (role_ == Role::kLeader) {
    for (const auto& [id, pr] : prs_) st.progress[id] = pr.ToPublic();
  }
  return st;
}

ConfState Node::Impl::GetConfState() const {
  ConfState cs;
  for (uint64_t v : voters_) cs.add_voters(v);
  for (uint64_t l : learners_) cs.add_learners(l);
  return cs;
}

// ---------------------------------------------------------------- Node facade

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() = default;

absl::StatusOr<std::unique_ptr<Node>> Node::Create(const Config& config) {
  if (config.id == kNone) return absl::InvalidArgumentError("config.id must be > 0");
  if (config.storage == nullptr) return absl::InvalidArgumentError("config.storage is null");
  if (config.heartbeat_tick <= 0) {
    return absl::InvalidArgumentError("config.heartbeat_tick must be > 0");
  }
  if (config.election_tick <= config.heartbeat_tick) {
    return absl::InvalidArgumentError("config.election_tick must be > heartbeat_tick");
  }
  if (config.max_inflight_msgs == 0) {
    return absl::InvalidArgumentError("config.max_inflight_msgs must be > 0");
  }
  auto logger = config.logger ? config.logger : SilentLogger();
  auto impl = std::make_unique<Impl>(config, std::move(logger));
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

absl::Status Node::Bootstrap(LogStorage& storage, const std::vector<uint64_t>& voters) {
  if (voters.empty()) return absl::InvalidArgumentError("bootstrap needs at least one voter");
  std::set<uint64_t> uniq(voters.begin(), voters.end());
  if (uniq.size() != voters.size() || uniq.count(kNone) != 0) {
    return absl::InvalidArgumentError("bootstrap voters must be distinct and > 0");
  }
  absl::StatusOr<InitialState> is = storage.GetInitialState();
  if (!is.ok()) return is.status();
  const HardState& hs = is->hard_state;
  if (storage.LastIndex() != 0 || storage.FirstIndex() != 1 || hs.term() != 0 ||
      hs.vote() != kNone || hs.commit() != 0) {
    return absl::FailedPreconditionError("bootstrap needs an empty store");
  }
  PersistRequest req;
  uint64_t index = 0;
  for (uint64_t v : voters) {
    ConfChange cc;
    cc.set_type(raftlock::v1::CONF_CHANGE_ADD_NODE);
    cc.set_node_id(v);
    Entry e;
    e.set_term(1);
    e.set_index(++index);
    e.set_type(raftlock::v1::ENTRY_CONF_CHANGE);
    e.set_data(cc.SerializeAsString());
    req.entries.push_back(std::move(e));
  }
  HardState nhs;
  nhs.set_term(1);
  nhs.set_commit(index);
  req.hard_state = nhs;
  req.sync = true;
  return storage.Persist(req);
}

void Node::Tick() { impl_->Tick(); }

void Node::Campaign() { impl_->Hup(/*transfer=*/false); }

absl::Status Node::Step(const Message& message) {
  if (IsLocalOnly(message.type())) {
    impl_->log_->warn("raft node {}: dropped local-only message type {} from {}", impl_->id_,
                      static_cast<int>(message.type()), message.from());
    return absl::InvalidArgumentError("local-only message type from the network");
  }
  if (message.from() == kNone || message.term() == 0 ||
      (message.to() != kNone && message.to() != impl_->id_)) {
    impl_->log_->warn("raft node {}: dropped malformed message type {} from {}", impl_->id_,
                      static_cast<int>(message.type()), message.from());
    return absl::InvalidArgumentError("malformed message (from, to or term)");
  }
  impl_->Step(message);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Node::Propose(std::string data) {
  std::vector<Entry> ents(1);
  ents[0].set_type(raftlock::v1::ENTRY_NORMAL);
  ents[0].set_data(std::move(data));
  return impl_->ProposeEntries(std::move(ents));
}

absl::StatusOr<uint64_t> Node::ProposeBatch(std::vector<std::string> data) {
  std::vector<Entry> ents(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    ents[i].set_type(raftlock::v1::ENTRY_NORMAL);
    ents[i].set_data(std::move(data[i]));
  }
  return impl_->ProposeEntries(std::move(ents));
}

absl::StatusOr<uint64_t> Node::ProposeConfChange(const ConfChange& change) {
  Impl& r = *impl_;
  if (r.role_ != Role::kLeader) return absl::FailedPreconditionError("not the leader");
  if (change.node_id() == kNone) return absl::InvalidArgumentError("conf change node_id is 0");
  if (r.pending_conf_index_ > r.raft_log_.applied()) {
    return absl::FailedPreconditionError("another configuration change is pending");
  }
  if (change.type() == raftlock::v1::CONF_CHANGE_REMOVE_NODE && r.voters_.size() == 1 &&
      r.voters_[0] == change.node_id()) {
    return absl::InvalidArgumentError("cannot remove the last voter");
  }
  if (change.type() == raftlock::v1::CONF_CHANGE_ADD_LEARNER && r.IsVoter(change.node_id())) {
    return absl::InvalidArgumentError("demoting a voter to learner is not supported");
  }
  std::vector<Entry> ents(1);
  ents[0].set_type(raftlock::v1::ENTRY_CONF_CHANGE);
  ents[0].set_data(change.SerializeAsString());
  absl::StatusOr<uint64_t> idx = r.ProposeEntries(std::move(ents));
  if (idx.ok()) r.pending_conf_index_ = *idx;
  return idx;
}

absl::Status Node::ReadIndex(std::string request_ctx) {
  return impl_->ReadIndex(std::move(request_ctx));
}

absl::Status Node::TransferLeader(uint64_t target) { return impl_->TransferLeader(target); }

void Node::ReportUnreachable(uint64_t peer) { impl_->ReportUnreachable(peer); }

void Node::ReportSnapshot(uint64_t peer, bool success) { impl_->ReportSnapshot(peer, success); }
void Node::AbortTransfer() {
  if (impl_->lead_transferee_ == kNone) return;
  impl_->log_->info("raft node {} term {}: leadership transfer to {} abandoned", impl_->id_,
                    impl_->term_, impl_->lead_transferee_);
  impl_->AbortLeaderTransfer();
}

bool Node::HasReady() const { return impl_->HasReady(); }
Ready Node::GetReady() { return impl_->GetReady(); }
void Node::Advance(const Ready& ready) { impl_->Advance(ready, /*durable=*/true); }
void Node::AdvanceWritten(const Ready& ready) {
  impl_->Advance(ready, /*durable=*/impl_->cfg_.testing_count_unsynced_entries);
}
void Node::MarkDurable(uint64_t index, uint64_t term) { impl_->MarkDurable(index, term); }
NodeStatus Node::Status() const { return impl_->Status(); }
uint64_t Node::id() const { return impl_->id_; }
uint64_t Node::term() const { return impl_->term_; }
uint64_t Node::leader() const { return impl_->lead_; }
Role Node::role() const { return impl_->role_; }
ConfState Node::conf_state() const { return impl_->GetConfState(); }

}  // namespace raftlock::raft
