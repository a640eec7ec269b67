// MemoryStorage and the small building blocks of the core.
#include <catch2/catch.hpp>

#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/raft_log.h"
#include "raft/unstable_log.h"
#include "tests/raft/harness.h"

namespace raftlock::raft::test {
namespace {

std::unique_ptr<MemoryStorage> StoreWithTerms(const std::vector<uint64_t>& terms) {
  auto st = std::make_unique<MemoryStorage>();
  std::vector<Entry> ents;
  for (size_t i = 0; i < terms.size(); ++i) ents.push_back(MakeEntry(i + 1, terms[i], "x"));
  REQUIRE(st->Append(ents).ok());
  return st;
}

TEST_CASE("MemoryStorage starts with a dummy entry at index 0 of term 0", "[storage]") {
  MemoryStorage st;
  CHECK(st.FirstIndex() == 1);
  CHECK(st.LastIndex() == 0);
  CHECK(*st.Term(0) == 0);
  CHECK(raft::IsUnavailable(st.Term(1).status()));
  auto snap = st.GetSnapshot();
  REQUIRE(snap.ok());
  CHECK(snap->metadata().index() == 0);
}

TEST_CASE("MemoryStorage Entries and Term report compacted and unavailable ranges", "[storage]") {
  auto st = StoreWithTerms({1, 1, 2, 3, 3});
  HardState hs;
  hs.set_commit(5);
  st->SetHardState(hs);
  REQUIRE(st->CreateSnapshot(3, ConfState(), "img").ok());
  REQUIRE(st->Compact(3).ok());
  CHECK(st->FirstIndex() == 4);
  CHECK(*st->Term(3) == 2);  // the dummy keeps the compaction point's term
  CHECK(raft::IsCompacted(st->Term(2).status()));
  CHECK(raft::IsCompacted(st->Entries(3, 5, UINT64_MAX).status()));
  CHECK(raft::IsUnavailable(st->Entries(4, 7, UINT64_MAX).status()));
  auto ents = st->Entries(4, 6, UINT64_MAX);
  REQUIRE(ents.ok());
  CHECK(ents->size() == 2);
  CHECK(raft::IsCompacted(st->Compact(3)));
}

TEST_CASE("MemoryStorage Entries honours max_bytes but returns at least one entry", "[storage]") {
  auto st = StoreWithTerms({1, 1, 1, 1});
  const uint64_t one = MakeEntry(1, 1, "x").ByteSizeLong();
  CHECK(st->Entries(1, 5, 0)->size() == 1);
  CHECK(st->Entries(1, 5, 2 * one)->size() == 2);
  CHECK(st->Entries(1, 5, UINT64_MAX)->size() == 4);
}

TEST_CASE("MemoryStorage Persist replaces the suffix from the first new entry", "[storage]") {
  auto st = StoreWithTerms({1, 1, 1, 1});
  PersistRequest req;
  req.entries = {MakeEntry(3, 2), MakeEntry(4, 2), MakeEntry(5, 2)};
  HardState hs;
  hs.set_term(2);
  hs.set_vote(3);
  hs.set_commit(2);
  req.hard_state = hs;
  REQUIRE(st->Persist(req).ok());
  CHECK(st->LastIndex() == 5);
  CHECK(*st->Term(2) == 1);
  CHECK(*st->Term(3) == 2);
  CHECK(st->GetInitialState()->hard_state.vote() == 3);
  // Shorter overwrite also truncates.
  req = PersistRequest();
  req.entries = {MakeEntry(2, 3)};
  REQUIRE(st->Persist(req).ok());
  CHECK(st->LastIndex() == 2);
  // A gap is refused and changes nothing.
  req.entries = {MakeEntry(9, 3)};
  CHECK(!st->Persist(req).ok());
  CHECK(st->LastIndex() == 2);
}

TEST_CASE("MemoryStorage Persist with a snapshot resets the log to it", "[storage]") {
  auto st = StoreWithTerms({1, 1, 1});
  Snapshot snap;
  snap.set_data("image");
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(4);
  snap.mutable_metadata()->mutable_conf_state()->add_voters(1);
  PersistRequest req;
  req.snapshot = snap;
  req.entries = {MakeEntry(11, 4)};
  REQUIRE(st->Persist(req).ok());
  CHECK(st->FirstIndex() == 11);
  CHECK(st->LastIndex() == 11);
  CHECK(*st->Term(10) == 4);
  CHECK(st->GetSnapshot()->data() == "image");
  CHECK(st->GetInitialState()->conf_state.voters_size() == 1);
  // An older snapshot is refused.
  snap.mutable_metadata()->set_index(5);
  req = PersistRequest();
  req.snapshot = snap;
  CHECK(!st->Persist(req).ok());
}

TEST_CASE("MemoryStorage CreateSnapshot requires a committed index", "[storage]") {
  auto st = StoreWithTerms({1, 1, 2});
  HardState hs;
  hs.set_commit(2);
  st->SetHardState(hs);
  CHECK(!st->CreateSnapshot(3, ConfState(), "x").ok());
  REQUIRE(st->CreateSnapshot(2, ConfState(), "x").ok());
  CHECK(st->GetSnapshot()->metadata().term() == 1);
  CHECK(!st->Compact(3).ok());  // beyond the snapshot
}

TEST_CASE("MemoryStorage Clone is a deep, independent copy", "[storage]") {
  auto st = StoreWithTerms({1, 1});
  auto copy = st->Clone();
  REQUIRE(st->Append({MakeEntry(3, 1)}).ok());
  CHECK(st->LastIndex() == 3);
  CHECK(copy->LastIndex() == 2);
}

TEST_CASE("UnstableLog stable_to ignores an entry that was overwritten meanwhile", "[log]") {
  UnstableLog u(5);
  u.TruncateAndAppend({MakeEntry(5, 1), MakeEntry(6, 1), MakeEntry(7, 1)});
  u.AcceptInProgress();
  CHECK(!u.HasNextEntries());
  u.TruncateAndAppend({MakeEntry(6, 2)});  // conflict while persisting
  CHECK(u.HasNextEntries());
  u.StableTo(7, 1);  // no longer in the log: nothing is stabilised
  CHECK(u.offset() == 5);
  u.StableTo(6, 2);
  CHECK(u.offset() == 7);
  CHECK(u.entries().empty());
}

TEST_CASE("RaftLog FindConflictByTerm returns the largest index with term <= the given term",
          "[log]") {
  auto st = StoreWithTerms({1, 1, 2, 2, 4, 4, 5});
  RaftLog log(st.get());
  CHECK(log.FindConflictByTerm(7, 3) == std::pair<uint64_t, uint64_t>{4, 2});
  CHECK(log.FindConflictByTerm(7, 5) == std::pair<uint64_t, uint64_t>{7, 5});
  CHECK(log.FindConflictByTerm(6, 1) == std::pair<uint64_t, uint64_t>{2, 1});
  CHECK(log.FindConflictByTerm(3, 0) == std::pair<uint64_t, uint64_t>{0, 0});
}

TEST_CASE("RaftLog MaybeAppend truncates only from the first conflicting entry", "[log]") {
  auto st = StoreWithTerms({1, 1, 1, 1});
  RaftLog log(st.get());
  // Matching entries do not truncate the log.
  REQUIRE(log.MaybeAppend(1, 1, 0, {MakeEntry(2, 1)}).value() == 2);
  CHECK(log.LastIndex() == 4);
  // A conflict at 3 replaces the suffix.
  REQUIRE(log.MaybeAppend(2, 1, 0, {MakeEntry(3, 2)}).value() == 3);
  CHECK(log.LastIndex() == 3);
  CHECK(log.TermOrZero(3) == 2);
  // A mismatching prev entry is refused.
  CHECK(!log.MaybeAppend(3, 1, 0, {}).has_value());
}

TEST_CASE("quorum: majority commit index and vote tally", "[quorum]") {
  CHECK(MajorityCommitIndex({1, 2, 3}, {{1, 5}, {2, 3}, {3, 9}}) == 5);
  CHECK(MajorityCommitIndex({1, 2, 3, 4}, {{1, 5}, {2, 3}, {3, 9}, {4, 1}}) == 3);
  CHECK(MajorityCommitIndex({1, 2, 3}, {{1, 7}}) == 0);
  CHECK(TallyVotes({1, 2, 3}, {{1, true}, {2, true}}) == VoteResult::kWon);
  CHECK(TallyVotes({1, 2, 3}, {{1, true}, {2, false}}) == VoteResult::kPending);
  CHECK(TallyVotes({1, 2, 3}, {{1, true}, {2, false}, {3, false}}) == VoteResult::kLost);
}

TEST_CASE("Progress: in-flight window, probe pause and stale rejections", "[progress]") {
  Progress pr(10, 2, false);
  pr.BecomeReplicate();
  pr.SentEntries(1, 10);
  CHECK(!pr.IsPaused());
  pr.SentEntries(1, 11);
  CHECK(pr.IsPaused());  // window of 2 is full
  CHECK(pr.MaybeUpdate(10));
  pr.inflights.FreeLE(10);
  CHECK(!pr.IsPaused());
  CHECK(!pr.MaybeDecrTo(9, 0));  // a rejection at or below match is stale
  pr.BecomeProbe();
  pr.SentEntries(0, 10);
  CHECK(pr.IsPaused());  // one probe at a time
  CHECK(pr.MaybeDecrTo(10, 10));
  CHECK(!pr.IsPaused());
}

}  // namespace
}  // namespace raftlock::raft::test
