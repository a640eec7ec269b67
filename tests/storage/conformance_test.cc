// The LogStorage contract (raft/storage.h), checked against every store: the
// in-memory reference (raft::MemoryStorage) and the RocksDB store. Each test
// also "restarts" the store (Reopen) and checks the durable state is intact.
#include <catch2/catch.hpp>

#include "tests/storage/test_util.h"

namespace raftlock::storage::testing {
namespace {

using raft::Entry;
using raft::LogStorage;
using raft::PersistRequest;

absl::Status Append(LogStorage& s, std::vector<Entry> ents) {
  PersistRequest req;
  req.entries = std::move(ents);
  return s.Persist(req);
}

std::vector<uint64_t> Terms(LogStorage& s, uint64_t lo, uint64_t hi) {
  auto ents = s.Entries(lo, hi, UINT64_MAX);
  REQUIRE(ents.ok());
  std::vector<uint64_t> out;
  for (const Entry& e : *ents) out.push_back(e.term());
  return out;
}

raft::Snapshot MakeSnapshot(uint64_t index, uint64_t term, std::string data) {
  raft::Snapshot snap;
  snap.set_data(std::move(data));
  snap.mutable_metadata()->set_index(index);
  snap.mutable_metadata()->set_term(term);
  snap.mutable_metadata()->mutable_conf_state()->add_voters(1);
  snap.mutable_metadata()->mutable_conf_state()->add_voters(2);
  return snap;
}

// Checks the whole observable state of `s` for a log [first, last] of terms.
void ExpectLog(LogStorage& s, uint64_t first, uint64_t last, const std::vector<uint64_t>& terms) {
  CHECK(s.FirstIndex() == first);
  CHECK(s.LastIndex() == last);
  if (last >= first) CHECK(Terms(s, first, last + 1) == terms);
}

}  // namespace

TEMPLATE_TEST_CASE("a new store is empty with a known term at index 0", "[conformance]",
                   MemoryFixture, RocksFixture) {
  TestType f;
  for (int round = 0; round < 2; ++round) {
    CHECK(f.store().FirstIndex() == 1);
    CHECK(f.store().LastIndex() == 0);
    CHECK(*f.store().Term(0) == 0);
    CHECK(raft::IsUnavailable(f.store().Term(1).status()));
    auto st = f.store().GetInitialState();
    REQUIRE(st.ok());
    CHECK(st->hard_state.term() == 0);
    CHECK(st->conf_state.voters_size() == 0);
    auto snap = f.store().GetSnapshot();
    REQUIRE(snap.ok());
    CHECK(snap->metadata().index() == 0);
    f.Reopen();
  }
}

TEMPLATE_TEST_CASE("appended entries are returned in order and survive a restart", "[conformance]",
                   MemoryFixture, RocksFixture) {
  TestType f;
  REQUIRE(Append(f.store(), MakeEntries(1, 3, 1)).ok());
  REQUIRE(Append(f.store(), MakeEntries(4, 5, 2)).ok());
  for (int round = 0; round < 2; ++round) {
    ExpectLog(f.store(), 1, 5, {1, 1, 1, 2, 2});
    auto ents = f.store().Entries(2, 4, UINT64_MAX);
    REQUIRE(ents.ok());
    REQUIRE(ents->size() == 2);
    CHECK((*ents)[0].SerializeAsString() == MakeEntry(2, 1).SerializeAsString());
    CHECK((*ents)[1].SerializeAsString() == MakeEntry(3, 1).SerializeAsString());
    CHECK(f.store().Entries(3, 3, UINT64_MAX)->empty());
    CHECK(*f.store().Term(5) == 2);
    f.Reopen();
  }
}

TEMPLATE_TEST_CASE("Entries stops at max_bytes but returns at least one entry", "[conformance]",
                   MemoryFixture, RocksFixture) {
  TestType f;
  REQUIRE(Append(f.store(), MakeEntries(1, 10, 1)).ok());
  const uint64_t one = MakeEntry(1, 1).ByteSizeLong();
  CHECK(f.store().Entries(1, 11, 0)->size() == 1);
  CHECK(f.store().Entries(1, 11, one)->size() == 1);
  CHECK(f.store().Entries(1, 11, 3 * one + 1)->size() == 3);
  CHECK(f.store().Entries(1, 11, UINT64_MAX)->size() == 10);
}

TEMPLATE_TEST_CASE("out-of-range reads are CompactedError below and UnavailableError above",
                   "[conformance]", MemoryFixture, RocksFixture) {
  TestType f;
  REQUIRE(Append(f.store(), MakeEntries(1, 5, 1)).ok());
  REQUIRE(f.store().Persist(HardStateOnly(MakeHardState(1, 1, 5))).ok());
  REQUIRE(f.store().CreateSnapshot(3, {}, "s3").ok());
  REQUIRE(f.store().Compact(3).ok());
  CHECK(raft::IsCompacted(f.store().Entries(3, 5, UINT64_MAX).status()));
  CHECK(raft::IsUnavailable(f.store().Entries(4, 7, UINT64_MAX).status()));
  CHECK(raft::IsCompacted(f.store().Term(2).status()));
  CHECK(raft::IsUnavailable(f.store().Term(6).status()));
  CHECK(*f.store().Term(3) == 1);
  CHECK(!f.store().Entries(5, 4, UINT64_MAX).ok());
}

TEMPLATE_TEST_CASE("a conflicting append replaces the log suffix from its first index",
                   "[conformance]", MemoryFixture, RocksFixture) {
  TestType f;
  REQUIRE(Append(f.store(), MakeEntries(1, 200, 1)).ok());
  // Short truncation (point deletes) ...
  REQUIRE(Append(f.store(), MakeEntries(198, 199, 2)).ok());
  CHECK(f.store().LastIndex() == 199);
  CHECK(*f.store().Term(197) == 1);
  CHECK(*f.store().Term(199) == 2);
  // ... long truncation (range delete), then re-growth past the old end.
  REQUIRE(Append(f.store(), MakeEntries(3, 4, 3)).ok());
  CHECK(f.store().LastIndex() == 4);
  REQUIRE(Append(f.store(), MakeEntries(5, 7, 3)).ok());
  for (int round = 0; round < 2; ++round) {
    ExpectLog(f.store(), 1, 7, {1, 1, 3, 3, 3, 3, 3});
    CHECK(raft::IsUnavailable(f.store().Term(8).status()));
    f.Reopen();
  }
}

TEMPLATE_TEST_CASE("a rejected Persist (gap, non-contiguous) changes nothing", "[conformance]",
                   MemoryFixture, RocksFixture) {
  TestType f;
  REQUIRE(Append(f.store(), MakeEntries(1, 3, 1)).ok());
  PersistRequest gap;
  gap.entries = MakeEntries(5, 6, 1);
  gap.hard_state = MakeHardState(9, 9, 0);
  CHECK(!f.store().Persist(gap).ok());
  std::vector<Entry> holes = {MakeEntry(4, 1), MakeEntry(6, 1)};
  CHECK(!Append(f.store(), holes).ok());
  f.Reopen();
  ExpectLog(f.store(), 1, 3, {1, 1, 1});
  CHECK(f.store().GetInitialState()->hard_state.term() == 0);
}

TEMPLATE_TEST_CASE("hard state is persisted with the entries of the same request", "[conformance]",
                   MemoryFixture, RocksFixture) {
  TestType f;
  PersistRequest req;
  req.entries = MakeEntries(1, 2, 4);
  req.hard_state = MakeHardState(4, 2, 1);
  REQUIRE(f.store().Persist(req).ok());
  REQUIRE(f.store().Persist(HardStateOnly(MakeHardState(4, 2, 2), /*sync=*/false)).ok());
  f.Reopen();
  auto st = f.store().GetInitialState();
  REQUIRE(st.ok());
  CHECK(st->hard_state.term() == 4);
  CHECK(st->hard_state.vote() == 2);
  CHECK(st->hard_state.commit() == 2);
  CHECK(f.store().LastIndex() == 2);
}

TEMPLATE_TEST_CASE("CreateSnapshot accepts only committed indexes and keeps the log",
                   "[conformance]", MemoryFixture, RocksFixture) {
  TestType f;
  REQUIRE(Append(f.store(), MakeEntries(1, 6, 2)).ok());
  REQUIRE(f.store().Persist(HardStateOnly(MakeHardState(2, 1, 4))).ok());
  CHECK(!f.store().CreateSnapshot(5, {}, "too far").ok());
  raft::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(3);
  REQUIRE(f.store().CreateSnapshot(4, cs, "image@4").ok());
  CHECK(!f.store().CreateSnapshot(3, cs, "older").ok());
  for (int round = 0; round < 2; ++round) {
    auto snap = f.store().GetSnapshot();
    REQUIRE(snap.ok());
    CHECK(snap->data() == "image@4");
    CHECK(snap->metadata().index() == 4);
    CHECK(snap->metadata().term() == 2);
    CHECK(snap->metadata().conf_state().voters_size() == 2);
    CHECK(f.store().GetInitialState()->conf_state.voters(1) == 3);
    ExpectLog(f.store(), 1, 6, {2, 2, 2, 2, 2, 2});
    f.Reopen();
  }
}

TEMPLATE_TEST_CASE("Compact discards the prefix up to the snapshot and keeps its term",
                   "[conformance]", MemoryFixture, RocksFixture) {
  TestType f;
  REQUIRE(Append(f.store(), MakeEntries(1, 4, 1)).ok());
  REQUIRE(Append(f.store(), MakeEntries(5, 8, 2)).ok());
  REQUIRE(f.store().Persist(HardStateOnly(MakeHardState(2, 1, 8))).ok());
  REQUIRE(f.store().CreateSnapshot(5, {}, "image@5").ok());
  CHECK(!f.store().Compact(6).ok());  // beyond the snapshot
  REQUIRE(f.store().Compact(4).ok());
  CHECK(raft::IsCompacted(f.store().Compact(4)));
  REQUIRE(f.store().Compact(5).ok());
  for (int round = 0; round < 2; ++round) {
    ExpectLog(f.store(), 6, 8, {2, 2, 2});
    CHECK(*f.store().Term(5) == 2);
    CHECK(raft::IsCompacted(f.store().Term(4).status()));
    f.Reopen();
  }
  // The log keeps growing after compaction.
  REQUIRE(Append(f.store(), MakeEntries(9, 9, 3)).ok());
  f.Reopen();
  ExpectLog(f.store(), 6, 9, {2, 2, 2, 3});
}

TEMPLATE_TEST_CASE("a persisted snapshot replaces the log, an older one is refused",
                   "[conformance]", MemoryFixture, RocksFixture) {
  TestType f;
  REQUIRE(Append(f.store(), MakeEntries(1, 5, 1)).ok());
  PersistRequest req;
  req.snapshot = MakeSnapshot(10, 3, "leader-image@10");
  req.entries = MakeEntries(9, 12, 3);  // 9 and 10 are below the new first index
  req.hard_state = MakeHardState(3, 0, 10);
  REQUIRE(f.store().Persist(req).ok());
  for (int round = 0; round < 2; ++round) {
    ExpectLog(f.store(), 11, 12, {3, 3});
    CHECK(*f.store().Term(10) == 3);
    auto snap = f.store().GetSnapshot();
    REQUIRE(snap.ok());
    CHECK(snap->data() == "leader-image@10");
    CHECK(f.store().GetInitialState()->hard_state.commit() == 10);
    CHECK(f.store().GetInitialState()->conf_state.voters_size() == 2);
    f.Reopen();
  }
  PersistRequest older;
  older.snapshot = MakeSnapshot(7, 3, "old");
  CHECK(!f.store().Persist(older).ok());
  CHECK(f.store().GetSnapshot()->metadata().index() == 10);
}

TEMPLATE_TEST_CASE("entries at or below the compaction point are skipped by Persist",
                   "[conformance]", MemoryFixture, RocksFixture) {
  TestType f;
  REQUIRE(Append(f.store(), MakeEntries(1, 6, 1)).ok());
  REQUIRE(f.store().Persist(HardStateOnly(MakeHardState(1, 1, 6))).ok());
  REQUIRE(f.store().CreateSnapshot(4, {}, "s").ok());
  REQUIRE(f.store().Compact(4).ok());
  REQUIRE(Append(f.store(), MakeEntries(1, 3, 1)).ok());  // entirely compacted
  ExpectLog(f.store(), 5, 6, {1, 1});
  REQUIRE(Append(f.store(), MakeEntries(3, 7, 1)).ok());  // straddles it
  f.Reopen();
  ExpectLog(f.store(), 5, 7, {1, 1, 1});
}

}  // namespace raftlock::storage::testing
