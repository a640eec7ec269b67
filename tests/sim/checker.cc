#include "tests/sim/checker.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "tests/sim/state_machine.h"

namespace raftlock::sim {

SafetyChecker::SafetyChecker(int num_nodes)
    : num_nodes_(num_nodes),
      shadow_(static_cast<size_t>(num_nodes) + 1),
      applied_(static_cast<size_t>(num_nodes) + 1, 0) {
  committed_.resize(1);
}

void SafetyChecker::Report(std::string property, std::string detail) {
  if (violation_.has_value()) return;  // keep the first: it is the cause
  violation_ = Violation{std::move(property), std::move(detail), now_};
}

std::optional<uint64_t> SafetyChecker::CommittedTerm(uint64_t index) const {
  if (index >= committed_.size() || !committed_[index].known) return std::nullopt;
  return committed_[index].term;
}

void SafetyChecker::InitFromStorage(uint64_t id, const raft::Storage& storage) {
  ShadowLog& log = shadow_[id];
  log = ShadowLog{};
  log.base = storage.FirstIndex() - 1;
  auto base_term = storage.Term(log.base);
  log.entries[0].term = base_term.ok() ? *base_term : 0;
  log.entries[0].chain = MixHash(log.base, log.entries[0].term);
  if (storage.LastIndex() < storage.FirstIndex()) return;
  auto entries = storage.Entries(storage.FirstIndex(), storage.LastIndex() + 1, UINT64_MAX);
  if (!entries.ok()) {
    Report("Storage",
           absl::StrCat("node ", id, ": cannot read its log: ", entries.status().ToString()));
    return;
  }
  for (const raft::Entry& e : *entries) AppendToShadow(id, e);
}

void SafetyChecker::AppendToShadow(uint64_t id, const raft::Entry& entry) {
  ShadowLog& log = shadow_[id];
  if (entry.index() <= log.base) return;  // compacted away: the store skips it too
  if (entry.index() > log.last() + 1) {
    Report("Log Matching", absl::StrCat("node ", id, " persisted index ", entry.index(),
                                        " after its last index ", log.last(), " (a gap)"));
    return;
  }
  log.entries.resize(entry.index() - log.base);  // drop the overwritten suffix
  const uint64_t chain = MixHash(log.entries.back().chain, EntryHash(entry));
  log.entries.push_back(ShadowEntry{entry.term(), chain});
  auto [it, inserted] = chain_of_.try_emplace({entry.index(), entry.term()}, chain);
  if (!inserted && it->second != chain) {
    Report("Log Matching",
           absl::StrCat("node ", id, " persisted entry (index ", entry.index(), ", term ",
                        entry.term(),
                        ") whose log prefix differs from another log holding an entry with the "
                        "same index and term"));
  }
}

void SafetyChecker::ObservePersist(uint64_t id, const raft::PersistRequest& request) {
  if (request.snapshot.has_value()) {
    const raft::SnapshotMetadata& md = request.snapshot->metadata();
    ShadowLog& log = shadow_[id];
    auto it = chain_of_.find({md.index(), md.term()});
    if (it == chain_of_.end()) {
      Report("Log Matching",
             absl::StrCat("node ", id, " persisted a snapshot at (index ", md.index(), ", term ",
                          md.term(), ") that no node ever had in its log"));
      return;
    }
    log = ShadowLog{};
    log.base = md.index();
    log.entries[0] = ShadowEntry{md.term(), it->second};
  }
  for (const raft::Entry& e : request.entries) AppendToShadow(id, e);
}

void SafetyChecker::ObserveCompact(uint64_t id, uint64_t index) {
  ShadowLog& log = shadow_[id];
  if (index <= log.base || index > log.last()) return;
  log.entries.erase(log.entries.begin(),
                    log.entries.begin() + static_cast<std::ptrdiff_t>(index - log.base));
  log.base = index;
}

void SafetyChecker::ObserveLostSuffix(uint64_t id, uint64_t index) {
  ShadowLog& log = shadow_[id];
  if (index < log.base || index >= log.last()) return;
  log.entries.resize(index - log.base + 1);
}

void SafetyChecker::ObserveRole(uint64_t id, uint64_t term, raft::Role role) {
  if (role != raft::Role::kLeader) return;
  auto [it, inserted] = leader_of_term_.try_emplace(term, id);
  if (!inserted) {
    if (it->second != id) {
      Report("Election Safety",
             absl::StrCat("nodes ", it->second, " and ", id, " were both leader of term ", term));
    }
    return;
  }
  CheckLeaderCompleteness(id, term);
}

void SafetyChecker::CheckLeaderCompleteness(uint64_t id, uint64_t term) {
  const ShadowLog& log = shadow_[id];
  for (uint64_t i = std::max<uint64_t>(log.base, 1); i < committed_.size(); ++i) {
    const CommittedEntry& c = committed_[i];
    if (!c.known) continue;
    if (i > log.last()) {
      Report("Leader Completeness",
             absl::StrCat("node ", id, " became leader of term ", term, " with last index ",
                          log.last(), " but index ", i, " (term ", c.term,
                          ") was already committed (applied by node ", c.first_node, ")"));
      return;
    }
    const uint64_t have = log.entries[i - log.base].term;
    if (have != c.term) {
      Report("Leader Completeness",
             absl::StrCat("node ", id, " became leader of term ", term, " holding term ", have,
                          " at index ", i, ", but the committed entry there has term ", c.term,
                          " (applied by node ", c.first_node, ")"));
      return;
    }
  }
}

void SafetyChecker::ObserveStateMachineReset(uint64_t id, uint64_t applied,
                                             const std::string& digest) {
  applied_[id] = applied;
  if (applied == 0) return;
  const uint64_t h = StableHash(digest);
  if (applied < committed_.size() && committed_[applied].known &&
      committed_[applied].digest_hash != h) {
    Report("State Machine Safety",
           absl::StrCat("node ", id, " restored its state machine at index ", applied,
                        " with a digest that differs from node ", committed_[applied].first_node,
                        "'s after applying that index"));
  }
  auto [it, inserted] = snapshot_digest_.try_emplace(applied, h);
  if (!inserted && it->second != h) {
    Report("State Machine Safety",
           absl::StrCat("two snapshots at index ", applied, " hold different states"));
  }
}

void SafetyChecker::ObserveInstallSnapshot(uint64_t id, const raft::SnapshotMetadata& metadata,
                                           const std::string& digest) {
  if (metadata.index() < applied_[id]) {
    Report("State Machine Safety",
           absl::StrCat("node ", id, " installed a snapshot at index ", metadata.index(),
                        " below its applied index ", applied_[id], " (rolling back)"));
    return;
  }
  if (auto term = CommittedTerm(metadata.index()); term.has_value() && *term != metadata.term()) {
    Report(
        "State Machine Safety",
        absl::StrCat("node ", id, " installed a snapshot at (index ", metadata.index(), ", term ",
                     metadata.term(), ") but the committed entry there has term ", *term));
    return;
  }
  ObserveStateMachineReset(id, metadata.index(), digest);
}

void SafetyChecker::ObserveApply(uint64_t id, const raft::Entry& entry, const std::string& digest) {
  const uint64_t index = entry.index();
  if (index != applied_[id] + 1) {
    Report("State Machine Safety",
           absl::StrCat("node ", id, " applied index ", index, " right after index ", applied_[id],
                        " (entries must be applied once, in order)"));
    return;
  }
  applied_[id] = index;
  if (index >= committed_.size()) committed_.resize(index + 1);
  CommittedEntry& c = committed_[index];
  const uint64_t entry_hash = EntryHash(entry);
  const uint64_t digest_hash = StableHash(digest);
  if (!c.known) {
    c = CommittedEntry{true, entry.term(), entry_hash, digest_hash, id};
    return;
  }
  if (c.term != entry.term() || c.entry_hash != entry_hash) {
    Report("State Machine Safety",
           absl::StrCat("node ", id, " applied (index ", index, ", term ", entry.term(),
                        ") but node ", c.first_node, " applied (index ", index, ", term ", c.term,
                        ")", c.term == entry.term() ? " with different data" : ""));
  } else if (c.digest_hash != digest_hash) {
    Report("State Machine Safety", absl::StrCat("node ", id, "'s state machine digest after index ",
                                                index, " differs from node ", c.first_node, "'s"));
  }
}

void SafetyChecker::VerifyStorage(uint64_t id, const raft::Storage& storage) {
  const ShadowLog& log = shadow_[id];
  const uint64_t first = storage.FirstIndex();
  const uint64_t last = storage.LastIndex();
  if (last != log.last() || first - 1 < log.base) {
    Report("Storage", absl::StrCat("node ", id, "'s store holds (", first, "..", last,
                                   "] but it persisted (", log.base, "..", log.last(), "]"));
    return;
  }
  for (uint64_t i = first - 1; i <= last; ++i) {
    auto term = storage.Term(i);
    if (!term.ok() || *term != log.entries[i - log.base].term) {
      Report("Storage", absl::StrCat("node ", id, "'s store has term ",
                                     term.ok() ? std::to_string(*term) : term.status().ToString(),
                                     " at index ", i, " but it persisted term ",
                                     log.entries[i - log.base].term));
      return;
    }
  }
}

}  // namespace raftlock::sim
