#include "raft/unstable_log.h"

#include <algorithm>

namespace raftlock::raft {

std::optional<uint64_t> UnstableLog::MaybeFirstIndex() const {
  if (snapshot_) return snapshot_->metadata().index() + 1;
  return std::nullopt;
}

std::optional<uint64_t> UnstableLog::MaybeLastIndex() const {
  if (!entries_.empty()) return offset_ + entries_.size() - 1;
  if (snapshot_) return snapshot_->metadata().index();
  return std::nullopt;
}

std::optional<uint64_t> UnstableLog::MaybeTerm(uint64_t i) const {
  if (i < offset_) {
    if (snapshot_ && snapshot_->metadata().index() == i) return snapshot_->metadata().term();
    return std::nullopt;
  }
  std::optional<uint64_t> last = MaybeLastIndex();
  if (!last || i > *last) return std::nullopt;
  return entries_[i - offset_].term();
}

std::vector<Entry> UnstableLog::NextEntries() const {
  const uint64_t start = std::max(offset_in_progress_, offset_);
  if (start >= offset_ + entries_.size()) return {};
  return std::vector<Entry>(entries_.begin() + static_cast<std::ptrdiff_t>(start - offset_),
                            entries_.end());
}

const Snapshot* UnstableLog::NextSnapshot() const {
  if (!snapshot_ || snapshot_in_progress_) return nullptr;
  return &*snapshot_;
}

void UnstableLog::AcceptInProgress() {
  if (!entries_.empty()) offset_in_progress_ = offset_ + entries_.size();
  if (snapshot_) snapshot_in_progress_ = true;
}

void UnstableLog::StableTo(uint64_t i, uint64_t t) {
  std::optional<uint64_t> gt = MaybeTerm(i);
  // An entry that was overwritten (different term) or is not held here is
  // not stabilised; a later Ready persists the replacement.
  if (!gt || *gt != t || i < offset_) return;
  const size_t n = i + 1 - offset_;
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(n));
  offset_ = i + 1;
  offset_in_progress_ = std::max(offset_in_progress_, offset_);
}

void UnstableLog::StableSnapTo(uint64_t i) {
  if (snapshot_ && snapshot_->metadata().index() == i) {
    snapshot_.reset();
    snapshot_in_progress_ = false;
  }
}

void UnstableLog::Restore(const Snapshot& s) {
  offset_ = s.metadata().index() + 1;
  offset_in_progress_ = offset_;
  entries_.clear();
  snapshot_ = s;
  snapshot_in_progress_ = false;
}

void UnstableLog::TruncateAndAppend(const std::vector<Entry>& ents) {
  if (ents.empty()) return;
  const uint64_t from = ents.front().index();
  if (from == offset_ + entries_.size()) {
    entries_.insert(entries_.end(), ents.begin(), ents.end());
  } else if (from <= offset_) {
    // Replaces everything unstable, and overrides the stored suffix too.
    entries_ = ents;
    offset_ = from;
    offset_in_progress_ = offset_;
  } else {
    entries_.resize(from - offset_);
    entries_.insert(entries_.end(), ents.begin(), ents.end());
    offset_in_progress_ = std::min(offset_in_progress_, from);
  }
}

std::vector<Entry> UnstableLog::Slice(uint64_t lo, uint64_t hi) const {
  return std::vector<Entry>(entries_.begin() + static_cast<std::ptrdiff_t>(lo - offset_),
                            entries_.begin() + static_cast<std::ptrdiff_t>(hi - offset_));
}

}  // namespace raftlock::raft
