// RocksDB-specific rules: the entry cache, snapshot file handling, refusal
// of a damaged store, and step-by-step agreement with MemoryStorage under a
// random workload with restarts.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <random>
#include <thread>

#include "storage/file_util.h"
#include "tests/storage/test_util.h"

namespace raftlock::storage::testing {
namespace {

using raft::PersistRequest;

absl::Status Append(raft::LogStorage& s, std::vector<raft::Entry> ents) {
  PersistRequest req;
  req.entries = std::move(ents);
  return s.Persist(req);
}

void FlipByte(const std::string& path, off_t offset) {
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  char c;
  REQUIRE(::pread(fd, &c, 1, offset) == 1);
  c ^= 0x5A;
  REQUIRE(::pwrite(fd, &c, 1, offset) == 1);
  ::close(fd);
}

}  // namespace

TEST_CASE("recent entries are served from the cache without reading RocksDB", "[rocksdb]") {
  RocksFixture f;
  REQUIRE(Append(f.store(), MakeEntries(1, 100, 1)).ok());
  REQUIRE(f.store().Entries(50, 101, UINT64_MAX)->size() == 51);
  REQUIRE(*f.store().Term(99) == 1);
  CHECK(f.rocks().cache_misses() == 0);
}

TEST_CASE("Sync from another thread while the driver writes unsynced batches loses nothing",
          "[rocksdb]") {
  RocksFixture f;
  std::atomic<bool> writing{true};
  std::atomic<int> syncs{0};
  std::thread syncer([&] {
    while (writing.load()) {
      if (f.store().Sync().ok()) syncs.fetch_add(1);
    }
  });
  // Write until the syncer has run several times meanwhile (bounded).
  uint64_t last = 0;
  while (last < 400 || (syncs.load() < 3 && last < 200000)) {
    ++last;
    PersistRequest req;
    req.entries = MakeEntries(last, last, 1);
    req.sync = false;
    REQUIRE(f.store().Persist(req).ok());
    // The driver keeps reading while the syncer runs.
    REQUIRE(*f.store().Term(last) == 1);
  }
  writing.store(false);
  syncer.join();
  REQUIRE(f.store().Sync().ok());
  CHECK(syncs.load() >= 3);
  f.Reopen();
  CHECK(f.store().LastIndex() == last);
  CHECK(f.store().Entries(1, last + 1, UINT64_MAX)->size() == last);
}

TEST_CASE("entries evicted from the cache are read back from RocksDB intact", "[rocksdb]") {
  RocksFixture f(CacheOptions(10));
  REQUIRE(Append(f.store(), MakeEntries(1, 30, 1)).ok());
  REQUIRE(Append(f.store(), MakeEntries(31, 40, 2)).ok());
  auto ents = f.store().Entries(1, 41, UINT64_MAX);
  REQUIRE(ents.ok());
  REQUIRE(ents->size() == 40);
  for (uint64_t i = 1; i <= 40; ++i) {
    CHECK((*ents)[i - 1].SerializeAsString() == MakeEntry(i, i <= 30 ? 1 : 2).SerializeAsString());
  }
  CHECK(f.rocks().cache_misses() > 0);
  // A read spanning RocksDB and the cache honours max_bytes.
  const uint64_t one = MakeEntry(25, 1).ByteSizeLong();
  CHECK(f.store().Entries(25, 41, 8 * one)->size() == 8);
}

TEST_CASE("only the newest snapshot files are kept", "[rocksdb]") {
  RocksFixture f(CacheOptions(8192, 2));
  REQUIRE(Append(f.store(), MakeEntries(1, 10, 1)).ok());
  REQUIRE(f.store().Persist(HardStateOnly(MakeHardState(1, 1, 10))).ok());
  for (uint64_t i = 2; i <= 8; i += 2) REQUIRE(f.store().CreateSnapshot(i, {}, "s").ok());
  auto files = f.rocks().snapshots().List();
  REQUIRE(files.ok());
  REQUIRE(files->size() == 2);
  CHECK((*files)[0].index == 8);
  CHECK((*files)[1].index == 6);
}

TEST_CASE("a snapshot file written but never recorded is discarded on open", "[rocksdb]") {
  RocksFixture f;
  REQUIRE(Append(f.store(), MakeEntries(1, 10, 1)).ok());
  REQUIRE(f.store().Persist(HardStateOnly(MakeHardState(1, 1, 10))).ok());
  REQUIRE(f.store().CreateSnapshot(5, {}, "recorded").ok());
  // Simulate a crash between SnapshotStore::Save and the metadata write.
  auto orphan_store = SnapshotStore::Open(f.dir() + "/snap", {}, false);
  REQUIRE(orphan_store.ok());
  raft::Snapshot orphan;
  orphan.set_data("orphan");
  orphan.mutable_metadata()->set_index(9);
  orphan.mutable_metadata()->set_term(1);
  REQUIRE((*orphan_store)->Save(orphan).ok());
  f.Reopen();
  CHECK(f.store().GetSnapshot()->data() == "recorded");
  auto files = f.rocks().snapshots().List();
  REQUIRE(files->size() == 1);
  CHECK((*files)[0].index == 5);
}

namespace {

raft::Snapshot SnapshotAt(uint64_t index, uint64_t term, std::string data) {
  raft::Snapshot snap;
  snap.set_data(std::move(data));
  snap.mutable_metadata()->set_index(index);
  snap.mutable_metadata()->set_term(term);
  return snap;
}

}  // namespace

// The replica writes a snapshot's file on another thread, then records it on
// its loop; meanwhile a leader's snapshot may have been installed.
TEST_CASE("a snapshot written off the driver thread is recorded unless superseded", "[rocksdb]") {
  RocksFixture f;
  REQUIRE(Append(f.store(), MakeEntries(1, 20, 1)).ok());
  REQUIRE(f.store().Persist(HardStateOnly(MakeHardState(1, 1, 20))).ok());
  SECTION("recorded, and current after a restart") {
    absl::Status written;
    std::thread writer([&] { written = f.store().WriteSnapshot(SnapshotAt(8, 1, "local")); });
    writer.join();
    REQUIRE(written.ok());
    CHECK(f.store().GetSnapshot()->metadata().index() == 0);  // written, not current
    auto recorded = f.store().RecordSnapshot(SnapshotAt(8, 1, "local"));
    REQUIRE(recorded.ok());
    CHECK(*recorded);
    f.Reopen();
    CHECK(f.store().GetSnapshot()->data() == "local");
    CHECK(f.store().GetSnapshot()->metadata().index() == 8);
  }
  SECTION("a newer snapshot was installed meanwhile") {
    REQUIRE(f.store().WriteSnapshot(SnapshotAt(8, 1, "local")).ok());
    PersistRequest install;
    install.snapshot = SnapshotAt(12, 1, "leader");
    install.hard_state = MakeHardState(1, 1, 20);
    REQUIRE(f.store().Persist(install).ok());
    auto recorded = f.store().RecordSnapshot(SnapshotAt(8, 1, "local"));
    REQUIRE(recorded.ok());
    CHECK_FALSE(*recorded);
    CHECK(f.store().GetSnapshot()->data() == "leader");
  }
  SECTION("its file was pruned meanwhile") {
    REQUIRE(f.store().WriteSnapshot(SnapshotAt(15, 1, "local")).ok());
    REQUIRE(f.store().CreateSnapshot(10, {}, "older").ok());  // prunes files above 10
    auto recorded = f.store().RecordSnapshot(SnapshotAt(15, 1, "local"));
    REQUIRE(recorded.ok());
    CHECK_FALSE(*recorded);
    CHECK(f.store().GetSnapshot()->data() == "older");
  }
  SECTION("a term that does not match the log is refused") {
    REQUIRE(f.store().WriteSnapshot(SnapshotAt(8, 7, "wrong")).ok());
    CHECK(f.store().RecordSnapshot(SnapshotAt(8, 7, "wrong")).status().code() ==
          absl::StatusCode::kFailedPrecondition);
    CHECK(f.store().GetSnapshot()->metadata().index() == 0);
  }
}

TEST_CASE("a store whose current snapshot file is corrupt or missing is refused", "[rocksdb]") {
  TempDir dir;
  {
    auto s = RocksDbLogStore::Open(dir.path(), {}, true);
    REQUIRE(s.ok());
    REQUIRE(Append(**s, MakeEntries(1, 5, 1)).ok());
    REQUIRE((*s)->Persist(HardStateOnly(MakeHardState(1, 1, 5))).ok());
    REQUIRE((*s)->CreateSnapshot(5, {}, std::string(1000, 'x')).ok());
  }
  auto files = ListDir(dir.path() + "/snap");
  REQUIRE(files.ok());
  REQUIRE(files->size() == 1);
  const std::string snap = dir.path() + "/snap/" + (*files)[0];
  SECTION("corrupt") {
    FlipByte(snap, 500);
    auto s = RocksDbLogStore::Open(dir.path(), {}, false);
    REQUIRE(!s.ok());
    CHECK(s.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(s.status().message()), Catch::Contains("checksum mismatch"));
  }
  SECTION("missing") {
    REQUIRE(::unlink(snap.c_str()) == 0);
    auto s = RocksDbLogStore::Open(dir.path(), {}, false);
    REQUIRE(!s.ok());
    CHECK(s.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(s.status().message()), Catch::Contains("current snapshot"));
  }
}

TEST_CASE("a missing log is refused rather than recreated empty", "[rocksdb]") {
  TempDir dir;
  {
    auto s = RocksDbLogStore::Open(dir.path(), {}, true);
    REQUIRE(s.ok());
    REQUIRE(Append(**s, MakeEntries(1, 5, 1)).ok());
  }
  REQUIRE(RemovePath(dir.path() + "/log").ok());
  auto s = RocksDbLogStore::Open(dir.path(), {}, false);
  REQUIRE(!s.ok());
  CHECK_THAT(std::string(s.status().message()), Catch::Contains("is missing"));
}

TEST_CASE("under a random workload with restarts the RocksDB store matches MemoryStorage",
          "[rocksdb][model]") {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    auto pick = [&](uint64_t lo, uint64_t hi) {
      return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
    };
    MemoryFixture model;
    RocksFixture real(CacheOptions(16, 2));
    uint64_t term = 1;
    for (int step = 0; step < 300; ++step) {
      CAPTURE(step);
      raft::LogStorage* stores[] = {&model.store(), &real.store()};
      const uint64_t op = pick(0, 99);
      std::vector<absl::Status> results;
      if (op < 55) {  // append or overwrite
        const uint64_t first = model.store().FirstIndex();
        const uint64_t from = pick(first > 3 ? first - 3 : 1, model.store().LastIndex() + 1);
        if (pick(0, 4) == 0) ++term;
        PersistRequest req;
        req.entries = MakeEntries(from, from + pick(0, 20), term);
        if (pick(0, 1)) {
          req.hard_state = MakeHardState(term, pick(0, 3), 0);
          req.hard_state->set_commit(pick(0, std::max<uint64_t>(req.entries.back().index(), 1)));
        }
        for (auto* s : stores) results.push_back(s->Persist(req));
      } else if (op < 70) {  // snapshot
        const uint64_t last = model.store().LastIndex();
        const uint64_t idx = pick(model.store().FirstIndex() - 1, last);
        for (auto* s : stores)
          results.push_back(s->CreateSnapshot(idx, {}, "img" + std::to_string(idx)));
      } else if (op < 80) {  // compact
        const uint64_t idx = pick(model.store().FirstIndex() - 1, model.store().LastIndex());
        for (auto* s : stores) results.push_back(s->Compact(idx));
      } else if (op < 88) {  // install a leader's snapshot ahead of or inside our log
        PersistRequest req;
        const uint64_t idx = pick(model.store().FirstIndex(), model.store().LastIndex() + 10);
        req.snapshot.emplace();
        req.snapshot->set_data("leader" + std::to_string(idx));
        req.snapshot->mutable_metadata()->set_index(idx);
        req.snapshot->mutable_metadata()->set_term(++term);
        req.hard_state = MakeHardState(term, 0, idx);
        for (auto* s : stores) results.push_back(s->Persist(req));
      } else {
        model.Reopen();
        real.Reopen();
        continue;
      }
      REQUIRE(results[0].code() == results[1].code());
      REQUIRE(real.store().FirstIndex() == model.store().FirstIndex());
      REQUIRE(real.store().LastIndex() == model.store().LastIndex());
      REQUIRE(*real.store().Term(real.store().FirstIndex() - 1) ==
              *model.store().Term(model.store().FirstIndex() - 1));
      auto a = model.store().Entries(model.store().FirstIndex(), model.store().LastIndex() + 1,
                                     UINT64_MAX);
      auto b =
          real.store().Entries(real.store().FirstIndex(), real.store().LastIndex() + 1, UINT64_MAX);
      REQUIRE(a.ok());
      REQUIRE(b.ok());
      REQUIRE(a->size() == b->size());
      for (size_t k = 0; k < a->size(); ++k) {
        REQUIRE((*a)[k].SerializeAsString() == (*b)[k].SerializeAsString());
      }
      REQUIRE(real.store().GetInitialState()->hard_state.SerializeAsString() ==
              model.store().GetInitialState()->hard_state.SerializeAsString());
      REQUIRE(real.store().GetSnapshot()->SerializeAsString() ==
              model.store().GetSnapshot()->SerializeAsString());
    }
  }
}

}  // namespace raftlock::storage::testing

namespace raftlock::storage::testing {

TEST_CASE("a log with a damaged WAL or MANIFEST is refused, not silently shortened", "[rocksdb]") {
  TempDir dir;
  {
    auto s = RocksDbLogStore::Open(dir.path(), {}, true);
    REQUIRE(s.ok());
    for (uint64_t i = 1; i <= 200; i += 10) {
      PersistRequest req;
      req.entries = MakeEntries(i, i + 9, 1);
      req.hard_state = MakeHardState(1, 1, i);
      REQUIRE((*s)->Persist(req).ok());
    }
  }
  auto names = ListDir(dir.path() + "/log");
  REQUIRE(names.ok());
  std::string wal, manifest;
  for (const auto& n : *names) {
    if (n.ends_with(".log")) wal = dir.path() + "/log/" + n;
    if (n.rfind("MANIFEST-", 0) == 0) manifest = dir.path() + "/log/" + n;
  }
  SECTION("WAL record corrupted in the middle") {
    REQUIRE(!wal.empty());
    struct stat st;
    REQUIRE(::stat(wal.c_str(), &st) == 0);
    FlipByte(wal, st.st_size / 3);
    auto s = RocksDbLogStore::Open(dir.path(), {}, false);
    REQUIRE(!s.ok());
    CHECK(s.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(s.status().message()), Catch::Contains("opening log store"));
  }
  SECTION("MANIFEST truncated") {
    REQUIRE(!manifest.empty());
    REQUIRE(::truncate(manifest.c_str(), 10) == 0);
    auto s = RocksDbLogStore::Open(dir.path(), {}, false);
    REQUIRE(!s.ok());
    CHECK_THAT(std::string(s.status().message()), Catch::Contains("opening log store"));
  }
}

}  // namespace raftlock::storage::testing
