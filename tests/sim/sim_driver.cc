// The simulator's driver: how each simulated node runs node.h's Ready rules
// (persist, hold or lose unsynced writes, send only after durability) and how
// messages travel the simulated network. Split from simulator.cc.
#include <utility>

#include "absl/strings/str_cat.h"
#include "raft/memory_storage.h"
#include "tests/sim/simulator.h"

namespace raftlock::sim {
namespace {

using raftlock::v1::MessageType_Name;

std::string Describe(const raft::Message& m) {
  std::string s =
      absl::StrCat(m.from(), "->", m.to(), " ", MessageType_Name(m.type()), " term=", m.term());
  switch (m.type()) {
    case raftlock::v1::MSG_APP:
      absl::StrAppend(&s, " prev=", m.index(), "/", m.log_term(), " n=", m.entries_size(),
                      " commit=", m.commit());
      break;
    case raftlock::v1::MSG_APP_RESP:
      absl::StrAppend(&s, " index=", m.index(), m.reject() ? " reject" : "",
                      m.reject() ? absl::StrCat(" hint=", m.reject_hint()) : "");
      break;
    case raftlock::v1::MSG_VOTE:
    case raftlock::v1::MSG_PRE_VOTE:
      absl::StrAppend(&s, " last=", m.index(), "/", m.log_term());
      break;
    case raftlock::v1::MSG_VOTE_RESP:
    case raftlock::v1::MSG_PRE_VOTE_RESP:
      absl::StrAppend(&s, m.reject() ? " reject" : " grant");
      break;
    case raftlock::v1::MSG_SNAP:
      absl::StrAppend(&s, " snap=", m.snapshot().metadata().index(), "/",
                      m.snapshot().metadata().term());
      break;
    default:
      break;
  }
  return s;
}

}  // namespace

void Simulation::AfterInput(SimNode& n) {
  if (!n.node) return;
  ObserveRole(n);
  DriveReady(n);
  if (n.node) ObserveRole(n);
}

void Simulation::ObserveRole(const SimNode& n) {
  const size_t before = checker_.leaders_seen();
  checker_.ObserveRole(n.id, n.node->term(), n.node->role());
  if (checker_.leaders_seen() != before) newest_leader_ = n.id;
}

void Simulation::DriveReady(SimNode& n) {
  while (n.node && n.node->HasReady()) {
    raft::Ready rd = n.node->GetReady();
    if (rd.soft_state.has_value()) {
      Trace(absl::StrCat("n", n.id, " is ", raft::RoleName(rd.soft_state->role), " (leader ",
                         rd.soft_state->leader, ", term ", n.node->term(), ")"));
    }
    // Thesis 10.2.1: a leader's appends may leave before its own write.
    const bool replicate_early = rng_.Chance(0.5);
    if (replicate_early) SendAll(n, rd.replication_messages);

    // node.h: a new term or vote, or a snapshot, is synced together with
    // every earlier write; anything else may be synced later.
    const bool deferred = !rd.snapshot.has_value() && !rd.term_or_vote_changed &&
                          rng_.Chance(options_.deferred_sync_rate);
    // The synced write below makes every earlier one durable; as with
    // LogSyncer::WaitIdle, their messages leave first and the node hears of
    // it after this Ready.
    const std::optional<std::pair<uint64_t, uint64_t>> synced_before =
        deferred ? std::nullopt : CompleteSyncs(n);
    const uint64_t last_before = n.storage->LastIndex();
    // What an unsynced write replaces, so that a crash can undo it.
    SimNode::UnsyncedWrite pending;
    if (deferred) {
      if (auto initial = n.storage->GetInitialState(); initial.ok()) {
        pending.hard_state_before = initial->hard_state;
      }
      if (!rd.entries.empty() && rd.entries.front().index() <= last_before) {
        auto replaced = n.storage->Entries(rd.entries.front().index(), last_before + 1, UINT64_MAX);
        if (replaced.ok()) {
          pending.replaced = std::move(*replaced);
        } else {
          pending.undoable = false;
        }
      }
    }

    raft::PersistRequest write;
    write.snapshot = rd.snapshot;
    write.entries = rd.entries;
    write.hard_state = rd.hard_state;
    write.sync = rd.must_sync && !deferred;
    const bool has_write = write.snapshot || !write.entries.empty() || write.hard_state;
    if (has_write) {
      if (n.pending_crash == CrashPoint::kBeforePersist) {
        Trace(absl::StrCat("n", n.id, " crashes before persisting ", write.entries.size(),
                           " entries"));
        CrashNow(n, n.pending_down_ticks);
        return;
      }
      if (absl::Status s = n.storage->Persist(write); !s.ok()) {
        // Fail-stop; with the reference store this means the core asked for an
        // impossible write.
        checker_.Report("Storage", absl::StrCat("node ", n.id, ": Persist failed: ", s.ToString()));
        CrashNow(n, -1);
        return;
      }
      checker_.ObservePersist(n.id, write);
      if (n.pending_crash == CrashPoint::kAfterPersist) {
        Trace(absl::StrCat("n", n.id, " crashes after persisting, before sending"));
        if (deferred && !rd.entries.empty()) {
          // Written, never synced: the crash may lose it like any other.
          pending.first_index = rd.entries.front().index();
          pending.last_index = rd.entries.back().index();
          pending.last_term = rd.entries.back().term();
          n.unsynced.push_back(std::move(pending));
        }
        CrashNow(n, n.pending_down_ticks);
        return;
      }
    }
    if (!replicate_early) SendAll(n, rd.replication_messages);
    // As with LogSyncer: messages wait when this write has entries or an
    // earlier sync job (entries or waiting messages) is pending.
    const bool sync_job_pending = std::any_of(
        n.unsynced.begin(), n.unsynced.end(),
        [](const SimNode::UnsyncedWrite& w) { return w.first_index != 0 || !w.messages.empty(); });
    if (deferred && (!rd.entries.empty() || sync_job_pending)) {
      if (!rd.entries.empty()) {
        pending.first_index = rd.entries.front().index();
        pending.last_index = rd.entries.back().index();
        pending.last_term = rd.entries.back().term();
      }
      pending.messages = std::move(rd.messages);
      n.unsynced.push_back(std::move(pending));
    } else {
      SendAll(n, rd.messages);
      // A commit-only write with nothing before it to wait for: its messages
      // leave now (as with LogSyncer), but a crash may still lose the write.
      if (deferred && rd.hard_state.has_value()) n.unsynced.push_back(std::move(pending));
    }

    if (rd.snapshot.has_value()) {
      const raft::SnapshotMetadata& md = rd.snapshot->metadata();
      if (absl::Status s = n.state_machine->Restore(rd.snapshot->data()); !s.ok()) {
        checker_.Report("State Machine Safety",
                        absl::StrCat("node ", n.id, " cannot restore snapshot: ", s.ToString()));
      }
      n.applied = md.index();
      checker_.ObserveInstallSnapshot(n.id, md, n.state_machine->Digest());
      ++stats_.snapshots_installed;
      Trace(absl::StrCat("n", n.id, " installed snapshot ", md.index(), "/", md.term()));
    }
    for (const raft::Entry& e : rd.committed_entries) {
      n.state_machine->Apply(e);
      n.applied = e.index();
      checker_.ObserveApply(n.id, e, n.state_machine->Digest());
      if (liveness_index_ == 0 && e.data().starts_with(liveness_prefix_)) {
        liveness_index_ = e.index();
      }
      if (options_.on_apply) options_.on_apply(n.id, e, *n.state_machine);
    }
    for (const raft::ReadState& rs : rd.read_states) {
      auto it = pending_reads_.find(rs.request_ctx);
      if (it == pending_reads_.end()) continue;  // duplicate answer or another incarnation's
      if (rs.index < it->second) {
        checker_.Report(
            "Linearizable Read",
            absl::StrCat("node ", n.id, " answered read '", rs.request_ctx, "' at index ", rs.index,
                         " but index ", it->second, " was already applied when the read began"));
      }
      pending_reads_.erase(it);
      ++stats_.reads_checked;
    }
    if (deferred) {
      n.node->AdvanceWritten(rd);
    } else {
      n.node->Advance(rd);
      if (synced_before) n.node->MarkDurable(synced_before->first, synced_before->second);
    }
  }
}

void Simulation::FinishSyncs(SimNode& n) {
  if (auto durable = CompleteSyncs(n)) n.node->MarkDurable(durable->first, durable->second);
}

std::optional<std::pair<uint64_t, uint64_t>> Simulation::CompleteSyncs(SimNode& n) {
  if (n.unsynced.empty() || !n.node) return std::nullopt;
  if (absl::Status s = n.storage->Sync(); !s.ok()) {
    checker_.Report("Storage", absl::StrCat("node ", n.id, ": Sync failed: ", s.ToString()));
  }
  std::vector<SimNode::UnsyncedWrite> done = std::move(n.unsynced);
  n.unsynced.clear();
  uint64_t last_index = 0;
  uint64_t last_term = 0;
  for (SimNode::UnsyncedWrite& w : done) {
    SendAll(n, w.messages);
    if (w.last_index != 0) {
      last_index = w.last_index;
      last_term = w.last_term;
    }
  }
  if (last_index == 0) return std::nullopt;
  Trace(absl::StrCat("n", n.id, " synced through ", last_index, "/", last_term));
  return std::make_pair(last_index, last_term);
}

void Simulation::LoseUnsyncedWrites(SimNode& n) {
  std::vector<SimNode::UnsyncedWrite> lost = std::move(n.unsynced);
  n.unsynced.clear();
  auto* memory = dynamic_cast<raft::MemoryStorage*>(n.storage.get());
  if (memory == nullptr || lost.empty()) return;
  // What survives a power loss is a prefix of the writes (storage/
  // wal_order_fs.h): the first `kept` unsynced writes stay, the others are
  // undone, newest first -- an overwrite brings back the suffix it replaced.
  const size_t kept = options_.crash_loses_all_unsynced ? 0 : rng_.Below(lost.size() + 1);
  uint64_t undone = 0;
  for (size_t i = lost.size(); i-- > kept;) {
    const SimNode::UnsyncedWrite& w = lost[i];
    if (!w.undoable || (w.first_index != 0 && w.first_index <= memory->FirstIndex())) break;
    if (w.first_index != 0) {
      if (!memory->TruncateAfter(w.first_index - 1).ok()) break;
      checker_.ObserveLostSuffix(n.id, w.first_index - 1);
      if (!w.replaced.empty()) {
        raft::PersistRequest restore;
        restore.entries = w.replaced;
        if (!memory->Persist(restore).ok()) break;
        checker_.ObservePersist(n.id, restore);
      }
    }
    memory->SetHardState(w.hard_state_before);
    ++undone;
    ++stats_.unsynced_writes_lost;
    if (!w.replaced.empty()) ++stats_.overwrites_lost;
  }
  if (undone > 0) {
    Trace(absl::StrCat("n", n.id, " lost its last ", undone, " of ", lost.size(),
                       " unsynced writes"));
  }
}

void Simulation::SendAll(SimNode& n, const std::vector<raft::Message>& messages) {
  for (const raft::Message& m : messages) {
    ++stats_.messages_sent;
    if (m.from() != n.id || m.to() == n.id) {
      checker_.Report("Driver",
                      absl::StrCat("node ", n.id, " emitted a misaddressed message ", Describe(m)));
      continue;
    }
    const int copies = network_.Send(m, now_, n.incarnation);
    if (copies == 0) ++stats_.messages_dropped;
    if (options_.verbose) {
      Trace(absl::StrCat("send ", Describe(m), copies == 0 ? " [lost]" : "",
                         copies == 2 ? " [duplicated]" : ""));
    }
  }
}

void Simulation::Deliver(const InFlight& f) {
  const raft::Message& m = f.message;
  SimNode& target = at(m.to());
  SimNode& sender = at(m.from());
  const bool sender_same = sender.node && sender.incarnation == f.sender_incarnation;
  if (f.lost || network_.Blocked(m.from(), m.to()) || !target.node) {
    if (!f.lost) ++stats_.messages_dropped;  // a lost one was counted at send
    if (options_.verbose) {
      Trace("drop " + Describe(m) +
            (f.lost        ? " [lost]"
             : target.node ? " [partition]"
                           : " [down]"));
    }
    if (sender_same) {
      // What a real transport would learn from a failed connection.
      sender.node->ReportUnreachable(m.to());
      if (f.reports_snapshot) sender.node->ReportSnapshot(m.to(), false);
      AfterInput(sender);
    }
    return;
  }
  ++stats_.messages_delivered;
  if (options_.verbose) Trace("recv " + Describe(m));
  (void)target.node->Step(m);  // rejected messages are the core's business
  AfterInput(target);
  if (m.type() == raftlock::v1::MSG_SNAP) ++stats_.snapshots_sent;
  if (f.reports_snapshot && sender_same && sender.node) {
    sender.node->ReportSnapshot(m.to(), true);
    AfterInput(sender);
  }
}

}  // namespace raftlock::sim
