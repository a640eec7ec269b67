#include "raft/raft_log.h"

#include <algorithm>

namespace raftlock::raft {

RaftLog::RaftLog(const Storage* storage) : storage_(storage), unstable_(storage->LastIndex() + 1) {
  committed_ = storage->FirstIndex() - 1;
  applied_ = applying_ = committed_;
}

uint64_t RaftLog::FirstIndex() const {
  if (std::optional<uint64_t> i = unstable_.MaybeFirstIndex()) return *i;
  return storage_->FirstIndex();
}

uint64_t RaftLog::LastIndex() const {
  if (std::optional<uint64_t> i = unstable_.MaybeLastIndex()) return *i;
  return storage_->LastIndex();
}

uint64_t RaftLog::LastTerm() const { return TermOrZero(LastIndex()); }

absl::StatusOr<uint64_t> RaftLog::Term(uint64_t i) const {
  if (i + 1 < FirstIndex()) return CompactedError();
  if (i > LastIndex()) return UnavailableError();
  if (std::optional<uint64_t> t = unstable_.MaybeTerm(i)) return *t;
  return storage_->Term(i);
}

uint64_t RaftLog::TermOrZero(uint64_t i) const {
  absl::StatusOr<uint64_t> t = Term(i);
  return t.ok() ? *t : 0;
}

bool RaftLog::MatchTerm(uint64_t i, uint64_t t) const {
  absl::StatusOr<uint64_t> got = Term(i);
  return got.ok() && *got == t;
}

std::optional<uint64_t> RaftLog::MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                             const std::vector<Entry>& ents) {
  if (!MatchTerm(index, log_term)) return std::nullopt;
  const uint64_t last_new = index + ents.size();
  const uint64_t ci = FindConflict(ents);
  if (ci != 0 && ci > committed_) {
    const size_t skip = ci - (index + 1);
    Append(std::vector<Entry>(ents.begin() + static_cast<std::ptrdiff_t>(skip), ents.end()));
  }
  // A conflict at or below commit cannot happen with a correct leader
  // (Leader Completeness); such entries are simply not applied.
  CommitTo(std::min(committed, last_new));
  return last_new;
}

uint64_t RaftLog::Append(const std::vector<Entry>& ents) {
  if (ents.empty()) return LastIndex();
  // Never overwrite committed entries.
  if (ents.front().index() <= committed_) return LastIndex();
  unstable_.TruncateAndAppend(ents);
  return LastIndex();
}

uint64_t RaftLog::FindConflict(const std::vector<Entry>& ents) const {
  for (const Entry& e : ents) {
    if (!MatchTerm(e.index(), e.term())) return e.index();
  }
  return 0;
}

std::pair<uint64_t, uint64_t> RaftLog::FindConflictByTerm(uint64_t index, uint64_t term) const {
  for (; index > 0; --index) {
    absl::StatusOr<uint64_t> ours = Term(index);
    if (!ours.ok()) return {index, 0};
    if (*ours <= term) return {index, *ours};
  }
  return {0, 0};
}

absl::StatusOr<std::vector<Entry>> RaftLog::Slice(uint64_t lo, uint64_t hi,
                                                  uint64_t max_bytes) const {
  if (lo < FirstIndex()) return CompactedError();
  if (hi > LastIndex() + 1 || lo > hi) return UnavailableError();
  std::vector<Entry> out;
  if (lo == hi) return out;
  const uint64_t uoff = unstable_.offset();
  if (lo < uoff) {
    absl::StatusOr<std::vector<Entry>> stored =
        storage_->Entries(lo, std::min(hi, uoff), max_bytes);
    if (!stored.ok()) return stored.status();
    out = std::move(*stored);
    if (out.size() < std::min(hi, uoff) - lo) return out;  // hit the byte limit
  }
  if (hi > uoff) {
    uint64_t size = 0;
    for (const Entry& e : out) size += e.ByteSizeLong();
    for (const Entry& e : unstable_.Slice(std::max(lo, uoff), hi)) {
      size += e.ByteSizeLong();
      if (!out.empty() && size > max_bytes) break;
      out.push_back(e);
    }
  }
  return out;
}

absl::StatusOr<std::vector<Entry>> RaftLog::EntriesFrom(uint64_t lo, uint64_t max_bytes) const {
  if (lo > LastIndex()) return std::vector<Entry>{};
  return Slice(lo, LastIndex() + 1, max_bytes);
}

bool RaftLog::IsUpToDate(uint64_t lasti, uint64_t term) const {
  const uint64_t our_term = LastTerm();
  return term > our_term || (term == our_term && lasti >= LastIndex());
}

bool RaftLog::MaybeCommit(uint64_t max_index, uint64_t term) {
  if (max_index <= committed_) return false;
  if (term != 0 && TermOrZero(max_index) != term) return false;
  CommitTo(max_index);
  return true;
}

void RaftLog::CommitTo(uint64_t to) {
  to = std::min(to, LastIndex());
  if (to > committed_) committed_ = to;
}

absl::StatusOr<Snapshot> RaftLog::GetSnapshot() const {
  if (const Snapshot* s = unstable_.snapshot()) return *s;
  return storage_->GetSnapshot();
}

void RaftLog::Restore(const Snapshot& s) {
  committed_ = s.metadata().index();
  unstable_.Restore(s);
}

uint64_t RaftLog::PersistedLastIndex() const {
  return std::min(storage_->LastIndex(), unstable_.offset() - 1);
}

uint64_t RaftLog::NextCommittedBound() const { return std::min(committed_, PersistedLastIndex()); }

bool RaftLog::HasNextCommittedEntries() const {
  if (unstable_.HasSnapshot()) return false;
  return applying_ < NextCommittedBound();
}

std::vector<Entry> RaftLog::NextCommittedEntries(uint64_t max_bytes) const {
  if (!HasNextCommittedEntries()) return {};
  const uint64_t lo = std::max(applying_ + 1, FirstIndex());
  const uint64_t hi = NextCommittedBound() + 1;
  if (lo >= hi) return {};
  absl::StatusOr<std::vector<Entry>> ents = Slice(lo, hi, max_bytes);
  if (!ents.ok()) return {};
  return std::move(*ents);
}

void RaftLog::AppliedTo(uint64_t i) {
  applied_ = std::max(applied_, i);
  applying_ = std::max(applying_, applied_);
}

}  // namespace raftlock::raft
