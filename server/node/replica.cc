#include "server/node/replica.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <system_error>

#include "storage/fail_stop.h"

namespace raftlock::server {

namespace {

using Clock = std::chrono::steady_clock;

absl::Status NotLeaderError(const LeaderInfo& leader) {
  if (leader.leader_id == raft::kNone) {
    return absl::UnavailableError("no leader is known right now; retry shortly");
  }
  return absl::UnavailableError("not the leader; the leader is node " +
                                std::to_string(leader.leader_id) + " at " + leader.client_address);
}

v1::Role ToProtoRole(raft::Role role) {
  switch (role) {
    case raft::Role::kFollower:
      return v1::ROLE_FOLLOWER;
    case raft::Role::kPreCandidate:
      return v1::ROLE_PRE_CANDIDATE;
    case raft::Role::kCandidate:
      return v1::ROLE_CANDIDATE;
    case raft::Role::kLeader:
      return v1::ROLE_LEADER;
  }
  return v1::ROLE_UNSPECIFIED;
}

}  // namespace

Replica::Replica(ReplicaOptions options, std::unique_ptr<raft::LogStorage> storage,
                 std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      storage_(std::move(storage)),
      logger_(std::move(logger)),
      state_(options_.limits) {
  TransportOptions transport_options;
  transport_options.cluster_id = options_.cluster_id;
  transport_options.self_id = options_.node_id;
  for (const auto& [id, address] : options_.members) {
    if (id != options_.node_id) transport_options.peers[id] = address.peer;
  }
  if (options_.testing_peer_sender) {
    peers_ = options_.testing_peer_sender(this);
  } else {
    auto transport = std::make_unique<Transport>(transport_options, this, logger_);
    transport_ = transport.get();
    peers_ = std::move(transport);
  }
}

Replica::~Replica() { Stop(false); }

absl::Status Replica::Start() {
  if (storage_->LastIndex() == 0 && storage_->FirstIndex() == 1) {
    auto initial = storage_->GetInitialState();
    if (!initial.ok()) return initial.status();
    if (initial->hard_state.term() == 0) {
      std::vector<uint64_t> voters;
      for (const auto& [id, address] : options_.members) voters.push_back(id);
      absl::Status boot = raft::Node::Bootstrap(*storage_, voters);
      if (!boot.ok()) return boot;
      logger_->info("bootstrapped a new cluster '{}' with {} voters", options_.cluster_id,
                    voters.size());
    }
  }
  auto snapshot = storage_->GetSnapshot();
  if (!snapshot.ok() && !raft::IsSnapshotTemporarilyUnavailable(snapshot.status())) {
    return snapshot.status();
  }
  if (snapshot.ok() && snapshot->metadata().index() > 0) {
    absl::Status restored = state_.Restore(snapshot->data());
    if (!restored.ok()) {
      return absl::DataLossError("cannot restore the state machine from the snapshot at index " +
                                 std::to_string(snapshot->metadata().index()) + ": " +
                                 std::string(restored.message()));
    }
    applied_ = snapshot->metadata().index();
    snapshot_index_ = applied_;
    logger_->info("restored state machine from snapshot at index {}", applied_);
  }

  // Entries written but never synced before a process crash are still
  // readable now; make them durable before any acknowledgement can cover them.
  if (absl::Status synced = storage_->Sync(); !synced.ok()) return synced;

  raft::Config config;
  config.id = options_.node_id;
  config.election_tick = options_.election_ticks;
  config.heartbeat_tick = options_.heartbeat_ticks;
  config.storage = storage_.get();
  config.applied = applied_;
  config.check_quorum = true;
  config.pre_vote = true;
  config.random_seed = options_.random_seed * 1000003 + options_.node_id +
                       static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  config.logger = logger_;
  auto node = raft::Node::Create(config);
  if (!node.ok()) return node.status();
  node_ = std::move(*node);
  soft_ = raft::SoftState{node_->leader(), node_->role()};
  syncer_ = std::make_unique<LogSyncer>(
      [this] { return storage_->Sync(); },
      [this](std::vector<raft::Message> messages) { peers_->Send(std::move(messages)); },
      [this](uint64_t index, uint64_t term) {
        (void)Post([this, index, term] { node_->MarkDurable(index, term); });
      });
  next_tick_ = Clock::now() + options_.tick;
  last_time_advance_ = Clock::now();
  // Read before the loop runs: from then on only the loop touches them.
  const uint64_t term = node_->term();
  const uint64_t last_index = storage_->LastIndex();
  const uint64_t applied = applied_;
  {
    // The thread is set under mu_, where Stop() looks for it: a Stop racing
    // this either comes first (then Start refuses) or finds the thread to join.
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("the replica was stopped before it started");
    running_ = true;
    loop_ = std::thread([this] { Loop(); });
    pthread_setname_np(loop_.native_handle(), "raft-loop");  // as `top -H` shows it
  }
  logger_->info("term {}: replica started (applied index {}, last index {})", term, applied,
                last_index);
  return absl::OkStatus();
}

void Replica::Stop(bool transfer_leadership, std::chrono::milliseconds wait) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || !loop_.joinable()) {
      stopping_ = true;
      return;
    }
  }
  if (transfer_leadership && leader().leader_id == options_.node_id) {
    (void)Post([this] {
      if (node_->role() != raft::Role::kLeader) return;
      // The most caught-up follower among those that answered lately (a
      // crashed one keeps its last match and would lose the TimeoutNow),
      // among all if none did.
      raft::NodeStatus status = node_->Status();
      uint64_t best = raft::kNone;
      std::pair<bool, uint64_t> best_rank{false, 0};  // {recently active, match}
      for (const auto& [id, progress] : status.progress) {
        if (id == options_.node_id) continue;
        const std::pair<bool, uint64_t> rank{progress.active_lately, progress.match};
        if (best == raft::kNone || rank > best_rank) {
          best = id;
          best_rank = rank;
        }
      }
      if (best != raft::kNone) {
        logger_->info("term {}: shutting down; transferring leadership to node {}", node_->term(),
                      best);
        (void)node_->TransferLeader(best);
      }
    });
    auto deadline = Clock::now() + wait;
    while (Clock::now() < deadline && leader().leader_id == options_.node_id) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  loop_.join();
  if (snapshot_writer_.joinable()) snapshot_writer_.join();
  std::optional<raft::Snapshot> unrecorded;
  {
    std::lock_guard<std::mutex> lock(mu_);
    unrecorded.swap(unrecorded_snapshot_);
  }
  if (unrecorded) RecordSnapshot(std::move(*unrecorded));  // this thread owns the loop state
  // Work posted before stopping_ was set but not yet run: run it here (the
  // loop is gone, so this thread owns the loop state), so that the proposals,
  // reads and transfers it queues are answered below instead of dropped.
  std::vector<std::function<void()>> leftover;
  {
    std::lock_guard<std::mutex> lock(mu_);
    leftover.swap(inbox_);
  }
  for (auto& fn : leftover) fn();
  syncer_->Stop();  // sends the acknowledgements whose writes it syncs
  peers_->Shutdown();
  const absl::Status stopped = absl::UnavailableError("the replica is shutting down");
  FailPending(stopped);
  for (auto& [command, done] : proposals_) {
    if (done) done(stopped);
  }
  proposals_.clear();
  for (auto& read : reads_to_start_) read(stopped, nullptr);
  reads_to_start_.clear();
  for (auto& [index, read] : reads_awaiting_apply_) read(stopped, nullptr);
  reads_awaiting_apply_.clear();
  for (auto& transfer : transfers_) transfer.done(stopped, LeaderInfoFor(node_->leader()));
  transfers_.clear();
  logger_->info("replica stopped");
}

absl::Status Replica::AcceptingLocked() const {
  if (stopping_) return absl::UnavailableError("the replica is shutting down");
  if (!running_) return absl::UnavailableError("the replica is starting");
  return absl::OkStatus();
}

absl::Status Replica::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Status accepting = AcceptingLocked();
    if (!accepting.ok()) return accepting;
    inbox_.push_back(std::move(fn));
  }
  wake_.notify_one();
  return absl::OkStatus();
}

void Replica::Propose(v1::Command command, ApplyCallback done) {
  absl::Status accepting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting = AcceptingLocked();
    if (accepting.ok()) {
      inbox_.push_back([this, command = std::move(command), done = std::move(done)]() mutable {
        proposals_.emplace_back(std::move(command), std::move(done));
      });
      wake_.notify_one();
      return;
    }
  }
  done(accepting);
}

void Replica::LinearizableRead(ReadCallback read) {
  absl::Status accepting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting = AcceptingLocked();
    if (accepting.ok()) {
      inbox_.push_back(
          [this, read = std::move(read)]() mutable { reads_to_start_.push_back(std::move(read)); });
      wake_.notify_one();
      return;
    }
  }
  read(accepting, nullptr);
}

void Replica::RunOnLoop(std::function<void()> fn) { (void)Post(std::move(fn)); }

void Replica::OnMessages(std::vector<raft::Message> messages) {
  (void)Post([this, messages = std::move(messages)] {
    for (const auto& m : messages) {
      absl::Status status = node_->Step(m);
      if (!status.ok()) {
        logger_->debug("term {}: ignored message {} from node {}: {}", node_->term(),
                       static_cast<int>(m.type()), m.from(), std::string(status.message()));
      }
    }
  });
}

void Replica::OnUnreachable(uint64_t peer) {
  (void)Post([this, peer] { node_->ReportUnreachable(peer); });
}

void Replica::OnSnapshotStatus(uint64_t peer, bool success) {
  (void)Post([this, peer, success] { node_->ReportSnapshot(peer, success); });
}

LeaderInfo Replica::leader() const {
  std::lock_guard<std::mutex> lock(leader_mu_);
  return leader_;
}

LeaderInfo Replica::LeaderInfoFor(uint64_t leader_id) const {
  LeaderInfo info;
  info.leader_id = leader_id;
  info.term = node_->term();
  auto it = options_.members.find(leader_id);
  if (it != options_.members.end()) info.client_address = it->second.client;
  return info;
}

void Replica::Loop() {
  std::vector<std::function<void()>> work;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_until(lock, next_tick_, [this] { return stopping_ || !inbox_.empty(); });
      if (stopping_) break;
      work.swap(inbox_);
    }
    for (auto& fn : work) fn();
    work.clear();
    auto now = Clock::now();
    if (now >= next_tick_) {
      OnTick();
      next_tick_ += options_.tick;
      if (next_tick_ < now) next_tick_ = now + options_.tick;
    }
    FlushProposals();
    FlushReads();
    HandleReady();
    CheckTransfers();
  }
}

void Replica::OnTick() {
  node_->Tick();
  peers_->Tick();
  if (node_->role() == raft::Role::kLeader && state_.leases().size() > 0 &&
      Clock::now() - last_time_advance_ >= options_.time_advance_interval) {
    v1::Command advance;
    advance.mutable_time_advance();
    proposals_.emplace_back(std::move(advance), nullptr);
  }
}

int64_t Replica::ClusterNowMs() {
  // Keyed by term, not started in OnRoleChange: a node can become leader while
  // Stepping the loop's inbox and propose (a client command, a TimeAdvance)
  // before the Ready that reports the role change is handled.
  return leader_clock_.StampMs(node_->term(), state_.cluster_time_ms(), Clock::now());
}

void Replica::FlushProposals() {
  if (proposals_.empty()) return;
  std::vector<std::pair<v1::Command, ApplyCallback>> batch;
  if (proposals_.size() > options_.max_proposals_per_ready) {
    batch.assign(std::make_move_iterator(proposals_.begin()),
                 std::make_move_iterator(proposals_.begin() + options_.max_proposals_per_ready));
    proposals_.erase(proposals_.begin(), proposals_.begin() + options_.max_proposals_per_ready);
    wake_.notify_one();  // come back for the rest without waiting for a tick
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.push_back([] {});
  } else {
    batch.swap(proposals_);
  }
  if (node_->role() != raft::Role::kLeader) {
    absl::Status error = NotLeaderError(LeaderInfoFor(node_->leader()));
    for (auto& [command, done] : batch) {
      if (done) done(error);
    }
    return;
  }
  const int64_t now_ms = ClusterNowMs();
  std::vector<std::string> data;
  data.reserve(batch.size());
  for (auto& [command, done] : batch) {
    command.set_cluster_time_ms(now_ms);
    data.push_back(command.SerializeAsString());
  }
  last_time_advance_ = Clock::now();
  absl::StatusOr<uint64_t> first = node_->ProposeBatch(std::move(data));
  if (!first.ok()) {
    absl::Status error = absl::UnavailableError(std::string(first.status().message()));
    for (auto& [command, done] : batch) {
      if (done) done(error);
    }
    return;
  }
  const uint64_t term = node_->term();
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].second) pending_[*first + i] = PendingProposal{term, std::move(batch[i].second)};
  }
}

void Replica::FlushReads() {
  if (reads_to_start_.empty()) return;
  std::vector<ReadCallback> reads;
  reads.swap(reads_to_start_);
  if (node_->role() != raft::Role::kLeader) {
    absl::Status error = NotLeaderError(LeaderInfoFor(node_->leader()));
    for (auto& read : reads) read(error, nullptr);
    return;
  }
  std::string ctx = std::to_string(options_.node_id) + "/" + std::to_string(next_read_id_++);
  absl::Status status = node_->ReadIndex(ctx);
  if (!status.ok()) {
    absl::Status error = absl::UnavailableError(std::string(status.message()));
    for (auto& read : reads) read(error, nullptr);
    return;
  }
  auto& waiting = reads_awaiting_quorum_[ctx];
  for (auto& read : reads) waiting.push_back(std::move(read));
}

void Replica::HandleReady() {
  while (node_->HasReady()) {
    raft::Ready rd = node_->GetReady();
    // Thesis 10.2.1: the leader's AppendEntries go out while it writes. A
    // Ready with no new entries answers its clients first instead: its
    // appends carry nothing a commit waits for, and sending them (a socket
    // write per peer) would delay every answer by that much.
    const bool answer_first = rd.entries.empty() && !rd.committed_entries.empty();
    if (!answer_first) SendReplication(rd);
    // A new term or vote, or a snapshot, is written synchronously after every
    // earlier write is durable. So is a follower's append while the syncer is
    // idle: the follower's acknowledgement then waits for one sync and no
    // thread hand-off (two wake-ups less per write), and the leader, which
    // needs it to commit, gets it sooner. Anything else is written now and
    // synced by the syncer, which then sends the acknowledgements that waited
    // for it, so a busy leader keeps batching while its disk works.
    const bool follower_syncs_now =
        rd.must_sync && node_->role() != raft::Role::kLeader && syncer_->Idle();
    const bool sync_on_loop =
        rd.snapshot.has_value() || rd.term_or_vote_changed || follower_syncs_now;
    if (sync_on_loop) syncer_->WaitIdle();
    if (rd.snapshot) {
      // Restored before it is written: a snapshot this build cannot read
      // stops the node while its log is still on disk, so a restart (or an
      // upgrade) finds the node as it was rather than a log the unreadable
      // snapshot has replaced. Restore leaves the state unchanged on error.
      absl::Status restored = state_.Restore(rd.snapshot->data());
      if (!restored.ok()) {
        storage::FailStop("installing the snapshot at index " +
                              std::to_string(rd.snapshot->metadata().index()) + " from the leader",
                          restored.ToString());
      }
    }
    if (rd.snapshot || !rd.entries.empty() || rd.hard_state) {
      raft::PersistRequest request;
      request.snapshot = rd.snapshot;
      request.entries = rd.entries;
      request.hard_state = rd.hard_state;
      request.sync = sync_on_loop && rd.must_sync;
      absl::Status status = storage_->Persist(request);
      if (!status.ok()) storage::FailStop("persisting a Raft Ready", status.ToString());
    }
    SendAfterDurable(rd, sync_on_loop);
    if (rd.snapshot) {
      applied_ = rd.snapshot->metadata().index();
      snapshot_index_ = applied_;
      logger_->info("term {}: installed snapshot at index {}", node_->term(), applied_);
    }
    ApplyCommitted(rd.committed_entries);
    SendReplication(rd);
    for (const auto& read_state : rd.read_states) {
      auto it = reads_awaiting_quorum_.find(read_state.request_ctx);
      if (it == reads_awaiting_quorum_.end()) continue;
      for (auto& read : it->second)
        reads_awaiting_apply_.emplace(read_state.index, std::move(read));
      reads_awaiting_quorum_.erase(it);
    }
    AnswerReads();
    if (rd.soft_state) OnRoleChange(*rd.soft_state);
    if (sync_on_loop) {
      node_->Advance(rd);
    } else {
      node_->AdvanceWritten(rd);  // MarkDurable follows from the syncer
    }
    MaybeSnapshot();
  }
}

void Replica::SendReplication(raft::Ready& rd) {
  if (rd.replication_messages.empty()) return;
  peers_->Send(std::move(rd.replication_messages));
  rd.replication_messages.clear();
}

void Replica::SendAfterDurable(raft::Ready& rd, bool synced) {
  std::vector<raft::Message> send_now;
  LogSyncer::Job job;
  // Unless this Ready was synced here, its entries and any write still in the
  // syncer must be durable before an acknowledgement or vote leaves.
  const bool wait = !synced && (rd.must_sync || !syncer_->Idle());
  for (raft::Message& m : rd.messages) {
    (wait && !LogSyncer::MayPrecedeSync(m) ? job.messages : send_now).push_back(std::move(m));
  }
  rd.messages.clear();
  if (!synced && rd.must_sync) {
    job.needs_sync = true;
    job.last_index = rd.entries.back().index();
    job.last_term = rd.entries.back().term();
  }
  if (job.needs_sync || !job.messages.empty()) syncer_->Submit(std::move(job));
  if (!send_now.empty()) peers_->Send(std::move(send_now));
}

void Replica::ApplyCommitted(const std::vector<raft::Entry>& entries) {
  for (const auto& entry : entries) {
    if (entry.index() <= applied_) continue;
    absl::StatusOr<lock::ApplyResult> result;
    if (entry.type() == raftlock::v1::ENTRY_NORMAL) {
      result = state_.ApplyEntry(entry.index(), entry.data());
    } else {
      result = absl::InternalError("configuration change entry");
    }
    applied_ = entry.index();
    if (result.ok() && !result->events.empty() && event_listener_) {
      event_listener_(entry.index(), result->events);
    }
    auto it = pending_.find(entry.index());
    if (it == pending_.end()) continue;
    PendingProposal pending = std::move(it->second);
    pending_.erase(pending_.begin(), std::next(it));
    if (pending.term != entry.term()) {
      pending.done(absl::UnavailableError(
          "the command was replaced by a new leader's log before it committed; retry it with "
          "the same client_id and sequence"));
    } else {
      pending.done(std::move(result));
    }
  }
}

void Replica::AnswerReads() {
  while (!reads_awaiting_apply_.empty() && reads_awaiting_apply_.begin()->first <= applied_) {
    auto read = std::move(reads_awaiting_apply_.begin()->second);
    reads_awaiting_apply_.erase(reads_awaiting_apply_.begin());
    read(absl::OkStatus(), &state_);
  }
}

void Replica::OnRoleChange(const raft::SoftState& soft) {
  const bool was_leader = soft_.role == raft::Role::kLeader;
  const bool is_leader = soft.role == raft::Role::kLeader;
  soft_ = soft;
  {
    std::lock_guard<std::mutex> lock(leader_mu_);
    leader_ = LeaderInfoFor(soft.leader);
  }
  if (is_leader && !was_leader) {
    const int64_t cluster_ms = ClusterNowMs();
    logger_->info("term {}: became leader (cluster time {} ms)", node_->term(), cluster_ms);
  } else {
    logger_->info("term {}: {} (leader {})", node_->term(), raft::RoleName(soft.role), soft.leader);
  }
  if (was_leader && !is_leader) {
    FailPending(absl::UnavailableError(
        "leadership changed before the command committed; retry it with the same client_id and "
        "sequence"));
    if (leadership_lost_listener_) leadership_lost_listener_();
  }
}

void Replica::FailPending(const absl::Status& status) {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [index, proposal] : pending) proposal.done(status);
  auto reads = std::move(reads_awaiting_quorum_);
  reads_awaiting_quorum_.clear();
  for (auto& [ctx, callbacks] : reads) {
    for (auto& read : callbacks) read(status, nullptr);
  }
}

void Replica::MaybeSnapshot() {
  if (snapshot_writing_ || applied_ < snapshot_index_ + options_.snapshot_interval) return;
  absl::StatusOr<uint64_t> term = storage_->Term(applied_);
  if (!term.ok()) storage::FailStop("reading the term of a snapshot", term.status().ToString());
  raft::Snapshot snapshot;
  snapshot.set_data(state_.Snapshot());
  snapshot.mutable_metadata()->set_index(applied_);
  snapshot.mutable_metadata()->set_term(*term);
  *snapshot.mutable_metadata()->mutable_conf_state() = node_->conf_state();
  if (snapshot_writer_.joinable()) snapshot_writer_.join();  // done: it posted its result
  snapshot_writing_ = true;
  auto shared = std::make_shared<raft::Snapshot>(std::move(snapshot));
  auto write = [this, shared] {
    absl::Status written = storage_->WriteSnapshot(*shared);
    if (!written.ok()) storage::FailStop("writing a snapshot", written.ToString());
    absl::Status posted = Post([this, shared] { RecordSnapshot(std::move(*shared)); });
    if (!posted.ok()) {  // stopping: Stop() records it after joining this thread
      std::lock_guard<std::mutex> lock(mu_);
      unrecorded_snapshot_ = std::move(*shared);
    }
  };
  try {
    snapshot_writer_ = std::thread(write);
    pthread_setname_np(snapshot_writer_.native_handle(), "raft-snapshot");
  } catch (const std::system_error& e) {
    logger_->warn("cannot start a thread for the snapshot at index {} ({}); writing it on the loop",
                  shared->metadata().index(), e.what());
    write();
  }
}

void Replica::RecordSnapshot(raft::Snapshot snapshot) {
  snapshot_writing_ = false;
  const uint64_t index = snapshot.metadata().index();
  absl::StatusOr<bool> recorded = storage_->RecordSnapshot(std::move(snapshot));
  if (!recorded.ok()) storage::FailStop("recording a snapshot", recorded.status().ToString());
  if (!*recorded) {
    logger_->info(
        "term {}: snapshot at index {} not recorded: a leader's newer snapshot was installed "
        "while it was written",
        node_->term(), index);
    return;
  }
  snapshot_index_ = std::max(snapshot_index_, index);
  if (index > options_.snapshot_catchup_entries) {
    const uint64_t compact_to = index - options_.snapshot_catchup_entries;
    if (compact_to >= storage_->FirstIndex()) {
      absl::Status status = storage_->Compact(compact_to);
      if (!status.ok()) storage::FailStop("compacting the log", status.ToString());
    }
  }
  logger_->info("term {}: snapshot at index {}; log compacted to first index {}", node_->term(),
                index, storage_->FirstIndex());
}

void Replica::TransferLeadership(uint64_t target, Clock::time_point deadline,
                                 std::function<void(absl::Status, LeaderInfo)> done) {
  // Shared so that `done` is still here to answer if the loop refuses the work.
  auto answer = std::make_shared<std::function<void(absl::Status, LeaderInfo)>>(std::move(done));
  const absl::Status posted = Post([this, target, deadline, answer] {
    auto& done = *answer;
    LeaderInfo current = LeaderInfoFor(node_->leader());
    if (options_.members.find(target) == options_.members.end()) {
      done(absl::InvalidArgumentError("target_id " + std::to_string(target) +
                                      " is not a member of the cluster"),
           current);
      return;
    }
    if (node_->role() != raft::Role::kLeader) {
      if (current.leader_id == target) {
        done(absl::OkStatus(), current);
        return;
      }
      done(NotLeaderError(current), current);
      return;
    }
    if (target == options_.node_id) {
      done(absl::OkStatus(), current);
      return;
    }
    absl::Status status = node_->TransferLeader(target);
    if (!status.ok()) {
      done(status, current);
      return;
    }
    logger_->info("term {}: transferring leadership to node {}", node_->term(), target);
    transfers_.push_back(PendingTransfer{target, deadline, std::move(done)});
  });
  if (!posted.ok()) (*answer)(posted, leader());
}

void Replica::CheckTransfers() {
  if (transfers_.empty()) return;
  auto now = Clock::now();
  const uint64_t leader_id = node_->leader();
  const bool transfer_active =
      node_->role() == raft::Role::kLeader && node_->Status().lead_transferee != raft::kNone;
  std::vector<PendingTransfer> still;
  bool timed_out = false;
  for (auto& transfer : transfers_) {
    LeaderInfo info = LeaderInfoFor(leader_id);
    if (leader_id == transfer.target) {
      transfer.done(absl::OkStatus(), info);
    } else if (now >= transfer.deadline) {
      timed_out = true;
      transfer.done(
          absl::DeadlineExceededError("leadership did not move to node " +
                                      std::to_string(transfer.target) + " before the deadline"),
          info);
    } else if ((node_->role() == raft::Role::kLeader && !transfer_active) ||
               (leader_id != raft::kNone && leader_id != options_.node_id)) {
      transfer.done(absl::AbortedError("the transfer to node " + std::to_string(transfer.target) +
                                       " was abandoned (target did not win in time)"),
                    info);
    } else {
      still.push_back(std::move(transfer));
    }
  }
  transfers_.swap(still);
  // The caller was told the transfer failed: stop refusing proposals for it
  // (the core would, an election timeout after it began), unless another
  // call still waits for a transfer to the same node.
  if (timed_out && transfer_active) {
    const uint64_t transferee = node_->Status().lead_transferee;
    const bool still_wanted = std::any_of(transfers_.begin(), transfers_.end(),
                                          [&](const auto& t) { return t.target == transferee; });
    if (!still_wanted) node_->AbortTransfer();
  }
}

void Replica::Status(std::function<void(absl::StatusOr<v1::StatusResponse>)> done) {
  // Shared so that `done` is still here to answer if the loop refuses the work.
  auto answer =
      std::make_shared<std::function<void(absl::StatusOr<v1::StatusResponse>)>>(std::move(done));
  const absl::Status posted = Post([this, answer] {
    raft::NodeStatus status = node_->Status();
    v1::StatusResponse response;
    response.set_cluster_id(options_.cluster_id);
    response.set_node_id(options_.node_id);
    response.set_role(ToProtoRole(status.role));
    response.set_term(status.term);
    response.set_leader_id(status.leader);
    response.set_leader_address(LeaderInfoFor(status.leader).client_address);
    response.set_commit_index(status.commit);
    response.set_applied_index(applied_);
    response.set_last_index(status.last_index);
    response.set_snapshot_index(snapshot_index_);
    raft::ConfState conf = node_->conf_state();
    for (uint64_t voter : conf.voters()) {
      auto* member = response.add_members();
      member->set_id(voter);
      member->set_voter(true);
      auto it = options_.members.find(voter);
      if (it != options_.members.end()) {
        member->set_peer_address(it->second.peer);
        member->set_client_address(it->second.client);
      }
    }
    for (const auto& [id, progress] : status.progress) {
      auto* p = response.add_progress();
      p->set_id(id);
      p->set_match_index(progress.match);
      p->set_next_index(progress.next);
      p->set_state(raft::ProgressStateName(progress.state));
      p->set_recent_active(progress.recent_active);
    }
    response.set_version("0.1.0");
    (*answer)(std::move(response));
  });
  if (!posted.ok()) (*answer)(posted);
}

}  // namespace raftlock::server
