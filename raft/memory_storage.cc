#include "raft/memory_storage.h"

#include <algorithm>
#include <utility>

namespace raftlock::raft {

MemoryStorage::MemoryStorage() { ents_.emplace_back(); }

std::unique_ptr<MemoryStorage> MemoryStorage::Clone() const {
  return std::make_unique<MemoryStorage>(*this);
}

absl::StatusOr<InitialState> MemoryStorage::GetInitialState() const {
  InitialState st;
  st.hard_state = hard_state_;
  st.conf_state = snapshot_.metadata().conf_state();
  return st;
}

absl::StatusOr<std::vector<Entry>> MemoryStorage::Entries(uint64_t lo, uint64_t hi,
                                                          uint64_t max_bytes) const {
  if (lo <= offset()) return CompactedError();
  if (hi > LastIndex() + 1) return UnavailableError();
  if (lo > hi) return absl::InvalidArgumentError("Entries: lo > hi");
  std::vector<Entry> out;
  uint64_t size = 0;
  for (uint64_t i = lo; i < hi; ++i) {
    const Entry& e = ents_[i - offset()];
    size += e.ByteSizeLong();
    if (!out.empty() && size > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<uint64_t> MemoryStorage::Term(uint64_t i) const {
  if (i < offset()) return CompactedError();
  if (i > LastIndex()) return UnavailableError();
  return ents_[i - offset()].term();
}

uint64_t MemoryStorage::FirstIndex() const { return offset() + 1; }

uint64_t MemoryStorage::LastIndex() const { return offset() + ents_.size() - 1; }

absl::StatusOr<Snapshot> MemoryStorage::GetSnapshot() const { return snapshot_; }

absl::Status MemoryStorage::ApplySnapshot(const Snapshot& snapshot) {
  if (snapshot.metadata().index() < snapshot_.metadata().index()) {
    return absl::FailedPreconditionError("snapshot is older than the current one");
  }
  snapshot_ = snapshot;
  ents_.clear();
  Entry dummy;
  dummy.set_index(snapshot.metadata().index());
  dummy.set_term(snapshot.metadata().term());
  ents_.push_back(std::move(dummy));
  return absl::OkStatus();
}

absl::Status MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return absl::OkStatus();
  for (size_t k = 1; k < entries.size(); ++k) {
    if (entries[k].index() != entries[k - 1].index() + 1) {
      return absl::InvalidArgumentError("entries are not contiguous");
    }
  }
  const uint64_t first = FirstIndex();
  const uint64_t last_new = entries.back().index();
  if (last_new < first) return absl::OkStatus();  // all already compacted
  size_t skip = 0;
  if (entries.front().index() < first) skip = first - entries.front().index();
  const uint64_t start = entries[skip].index();
  if (start > LastIndex() + 1) {
    return absl::InvalidArgumentError("entries leave a gap after the last index");
  }
  ents_.resize(start - offset());  // truncate the conflicting suffix
  ents_.insert(ents_.end(), entries.begin() + static_cast<std::ptrdiff_t>(skip), entries.end());
  return absl::OkStatus();
}

void MemoryStorage::SetHardState(const HardState& hs) { hard_state_ = hs; }

absl::Status MemoryStorage::TruncateAfter(uint64_t index) {
  if (index < offset()) return CompactedError();
  if (index < LastIndex()) ents_.resize(index - offset() + 1);
  return absl::OkStatus();
}

absl::Status MemoryStorage::Persist(const PersistRequest& request) {
  // Validate everything first so that a failure changes nothing.
  uint64_t first = FirstIndex();
  uint64_t last = LastIndex();
  if (request.snapshot.has_value()) {
    const SnapshotMetadata& md = request.snapshot->metadata();
    if (md.index() < snapshot_.metadata().index()) {
      return absl::FailedPreconditionError("snapshot is older than the current one");
    }
    first = md.index() + 1;
    last = md.index();
  }
  const std::vector<Entry>& ents = request.entries;
  for (size_t k = 1; k < ents.size(); ++k) {
    if (ents[k].index() != ents[k - 1].index() + 1) {
      return absl::InvalidArgumentError("entries are not contiguous");
    }
  }
  if (!ents.empty() && ents.back().index() >= first &&
      std::max(ents.front().index(), first) > last + 1) {
    return absl::InvalidArgumentError("entries leave a gap after the last index");
  }
  if (request.snapshot.has_value()) {
    if (absl::Status s = ApplySnapshot(*request.snapshot); !s.ok()) return s;
  }
  if (absl::Status s = Append(ents); !s.ok()) return s;
  if (request.hard_state.has_value()) hard_state_ = *request.hard_state;
  return absl::OkStatus();
}

absl::Status MemoryStorage::CreateSnapshot(uint64_t index, const ConfState& conf_state,
                                           std::string data) {
  const uint64_t snap_index = snapshot_.metadata().index();
  if (index < snap_index) {
    return absl::FailedPreconditionError("snapshot index is below the current snapshot");
  }
  if (index > std::max(hard_state_.commit(), snap_index)) {
    return absl::FailedPreconditionError("snapshot index is above the committed index");
  }
  if (index > LastIndex()) {
    return absl::FailedPreconditionError("snapshot index is above the last index");
  }
  if (index < offset()) return CompactedError();
  Snapshot snap;
  snap.set_data(std::move(data));
  snap.mutable_metadata()->set_index(index);
  snap.mutable_metadata()->set_term(ents_[index - offset()].term());
  *snap.mutable_metadata()->mutable_conf_state() = conf_state;
  snapshot_ = std::move(snap);
  return absl::OkStatus();
}

absl::Status MemoryStorage::WriteSnapshot(const Snapshot&) { return absl::OkStatus(); }

absl::StatusOr<bool> MemoryStorage::RecordSnapshot(Snapshot snapshot) {
  const uint64_t index = snapshot.metadata().index();
  if (index <= snapshot_.metadata().index()) return false;
  absl::Status created =
      CreateSnapshot(index, snapshot.metadata().conf_state(), std::move(*snapshot.mutable_data()));
  if (!created.ok()) return created;
  return true;
}

absl::Status MemoryStorage::Compact(uint64_t index) {
  if (index <= offset()) return CompactedError();
  if (index > snapshot_.metadata().index()) {
    return absl::FailedPreconditionError("compaction beyond the latest snapshot");
  }
  if (index > LastIndex()) {
    return absl::FailedPreconditionError("compaction beyond the last index");
  }
  const size_t keep_from = index - offset();
  std::vector<Entry> ents;
  ents.reserve(ents_.size() - keep_from);
  Entry dummy;
  dummy.set_index(index);
  dummy.set_term(ents_[keep_from].term());
  ents.push_back(std::move(dummy));
  ents.insert(ents.end(), ents_.begin() + static_cast<std::ptrdiff_t>(keep_from) + 1, ents_.end());
  ents_ = std::move(ents);
  return absl::OkStatus();
}

}  // namespace raftlock::raft
