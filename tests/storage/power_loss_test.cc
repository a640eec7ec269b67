// Power loss on the RocksDB log store: what a store recovers when the OS wrote
// back some of its unsynced writes and not others. Raft needs the local log to
// come back as the state after some prefix of its writes (else Log Matching
// breaks: a later entry could survive where an earlier overwrite did not), and
// that prefix must hold every synced write.
#include <algorithm>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "tests/storage/test_util.h"

namespace raftlock::storage::testing {
namespace {

namespace fs = std::filesystem;

// What the file system saw of each WAL file: bytes handed to the OS, and how
// many of them the last sync made durable.
struct WalRecord {
  int order = 0;  // creation order
  uint64_t written = 0;
  uint64_t synced = 0;
};

struct FsLedger {
  std::mutex mu;
  std::condition_variable released;
  std::map<std::string, WalRecord> wals;  // by path
  bool hold_table_files = false;          // keeps memtable flushes from finishing
  // Once armed: WALs created from then on are "new". The first write to a new
  // WAL is the moment of the power loss: `cut` records, per WAL, what survives
  // it -- an older WAL's synced bytes, and the new WAL's first record (the OS
  // wrote it back while the older WAL's unsynced tail was lost).
  int armed_after_order = -1;
  std::map<std::string, uint64_t> cut;
};

class LedgerWal : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  LedgerWal(std::unique_ptr<rocksdb::FSWritableFile> file, FsLedger* ledger, std::string path)
      : FSWritableFileOwnerWrapper(std::move(file)), ledger_(ledger), path_(std::move(path)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* d) override {
    Written(data.size());
    return FSWritableFileOwnerWrapper::Append(data, o, d);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& v,
                           rocksdb::IODebugContext* d) override {
    Written(data.size());
    return FSWritableFileOwnerWrapper::Append(data, o, v, d);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    const uint64_t covered = Covered();
    rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Sync(o, d);
    if (s.ok()) Synced(covered);
    return s;
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    const uint64_t covered = Covered();
    rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Fsync(o, d);
    if (s.ok()) Synced(covered);
    return s;
  }

 private:
  void Written(uint64_t n) {
    std::lock_guard<std::mutex> lock(ledger_->mu);
    WalRecord& self = ledger_->wals[path_];
    self.written += n;
    if (ledger_->armed_after_order < 0 || self.order <= ledger_->armed_after_order) return;
    for (const auto& [path, r] : ledger_->wals) ledger_->cut[path] = r.synced;
    ledger_->cut[path_] = self.written;
    ledger_->armed_after_order = -1;
  }
  uint64_t Covered() {
    std::lock_guard<std::mutex> lock(ledger_->mu);
    return ledger_->wals[path_].written;
  }
  void Synced(uint64_t covered) {
    std::lock_guard<std::mutex> lock(ledger_->mu);
    WalRecord& r = ledger_->wals[path_];
    r.synced = std::max(r.synced, covered);
  }

  FsLedger* const ledger_;
  const std::string path_;
};

class LedgerFs : public rocksdb::FileSystemWrapper {
 public:
  LedgerFs(std::shared_ptr<rocksdb::FileSystem> base, FsLedger* ledger)
      : FileSystemWrapper(std::move(base)), ledger_(ledger) {}
  const char* Name() const override { return "LedgerFs"; }

  rocksdb::IOStatus NewWritableFile(const std::string& path, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* d) override {
    const bool wal = path.size() > 4 && path.substr(path.size() - 4) == ".log";
    const bool table = path.size() > 4 && path.substr(path.size() - 4) == ".sst";
    if (table) {
      std::unique_lock<std::mutex> lock(ledger_->mu);
      ledger_->released.wait(lock, [this] { return !ledger_->hold_table_files; });
    }
    std::unique_ptr<rocksdb::FSWritableFile> inner;
    rocksdb::IOStatus s = target()->NewWritableFile(path, o, &inner, d);
    if (!s.ok() || !wal) {
      *result = std::move(inner);
      return s;
    }
    {
      std::lock_guard<std::mutex> lock(ledger_->mu);
      WalRecord& r = ledger_->wals[path];
      r.order = static_cast<int>(ledger_->wals.size());
    }
    result->reset(new LedgerWal(std::move(inner), ledger_, path));
    return s;
  }

 private:
  FsLedger* const ledger_;
};

std::string Payload(uint64_t index) {
  std::string p = "entry-" + std::to_string(index) + ":";
  p.resize(1024, '.');
  return p;
}

// A RocksDB log store on a LedgerFs, in a fresh directory. Members are
// destroyed store first, then the ledger it writes to, then the directory.
struct LedgerStore {
  TempDir dir;
  FsLedger ledger;
  std::unique_ptr<RocksDbLogStore> store;

  LedgerStore() {
    auto ledger_fs = std::make_shared<LedgerFs>(rocksdb::FileSystem::Default(), &ledger);
    RocksDbLogStoreOptions options;
    options.env.reset(rocksdb::NewCompositeEnv(ledger_fs).release());
    auto opened = RocksDbLogStore::Open(dir.path() + "/store", options, true);
    REQUIRE(opened.ok());
    store = std::move(*opened);
  }
};

}  // namespace

TEST_CASE(
    "power loss after a WAL switch: the store recovers a prefix of its writes holding every "
    "synced one",
    "[rocksdb][durability]") {
  LedgerStore fixture;
  TempDir& dir = fixture.dir;
  FsLedger& ledger = fixture.ledger;
  std::unique_ptr<RocksDbLogStore>& store = fixture.store;
  auto wal_count = [&] {
    std::lock_guard<std::mutex> lock(ledger.mu);
    return ledger.wals.size();
  };
  const size_t wals_at_start = wal_count();
  {
    std::lock_guard<std::mutex> lock(ledger.mu);
    ledger.hold_table_files = true;  // the switched-out WAL stays live
  }
  // Lets the held memtable flush finish on every way out, before the store
  // (declared earlier, destroyed later) waits for it.
  struct Release {
    FsLedger& ledger;
    void Now() {
      {
        std::lock_guard<std::mutex> lock(ledger.mu);
        ledger.hold_table_files = false;
      }
      ledger.released.notify_all();
    }
    ~Release() { Now(); }
  } release{ledger};

  uint64_t last = 0;
  auto append_batch = [&] {
    std::vector<raft::Entry> batch;
    for (int i = 0; i < 16; ++i) {
      ++last;
      batch.push_back(MakeEntry(last, 1, Payload(last)));
    }
    raft::PersistRequest req;
    req.entries = std::move(batch);
    req.hard_state = MakeHardState(1, 1, last);
    req.sync = false;  // as the replica loop writes; LogSyncer syncs later
    REQUIRE(store->Persist(req).ok());
  };
  for (int i = 0; i < 20; ++i) append_batch();
  REQUIRE(store->Sync().ok());
  const uint64_t synced_last = last;
  {
    std::lock_guard<std::mutex> lock(ledger.mu);
    ledger.armed_after_order = static_cast<int>(ledger.wals.size());
  }
  // Unsynced appends until the memtable fills and RocksDB writes to a new WAL.
  while (wal_count() == wals_at_start && last < 100000) append_batch();
  REQUIRE(wal_count() > wals_at_start);
  for (int i = 0; i < 4; ++i) append_batch();

  // The crash image: each WAL cut where the power loss left it. The store
  // syncs a WAL before RocksDB opens the next one (wal_order_fs.h), so the
  // older WAL loses nothing; without that, its unsynced tail is lost while
  // the new WAL's first record survives: a gap.
  TempDir image;
  fs::copy(dir.path(), image.path(), fs::copy_options::recursive);
  {
    std::lock_guard<std::mutex> lock(ledger.mu);
    REQUIRE(ledger.cut.size() == ledger.wals.size());
    for (const auto& [path, size] : ledger.cut) {
      const WalRecord& r = ledger.wals[path];
      INFO("WAL " << path << ": " << r.written << " bytes written, " << r.synced
                  << " synced, cut at " << size);
      const fs::path copy = fs::path(image.path()) / fs::relative(path, dir.path());
      REQUIRE(fs::exists(copy));
      fs::resize_file(copy, size);
    }
  }
  release.Now();
  store.reset();

  auto recovered = RocksDbLogStore::Open(image.path() + "/store", {}, false);
  INFO(recovered.status().ToString());
  REQUIRE(recovered.ok());
  RocksDbLogStore& r = **recovered;
  CHECK(r.LastIndex() >= synced_last);
  CHECK(r.LastIndex() <= last);
  auto entries = r.Entries(1, r.LastIndex() + 1, UINT64_MAX);
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == r.LastIndex());
  for (const raft::Entry& e : *entries) REQUIRE(e.data() == Payload(e.index()));
  auto initial = r.GetInitialState();
  REQUIRE(initial.ok());
  CHECK(initial->hard_state.commit() <= r.LastIndex());
}

TEST_CASE(
    "power loss after an unsynced compaction: the store reopens uncompacted, with its snapshot "
    "and every synced entry",
    "[rocksdb][durability]") {
  // Compact is written without a sync (the deleted entries are covered by a
  // synced snapshot), so a power loss may undo it and every write after it.
  LedgerStore fixture;
  TempDir& dir = fixture.dir;
  FsLedger& ledger = fixture.ledger;
  std::unique_ptr<RocksDbLogStore>& store = fixture.store;

  raft::PersistRequest synced;
  for (uint64_t i = 1; i <= 200; ++i) synced.entries.push_back(MakeEntry(i, 1, Payload(i)));
  synced.hard_state = MakeHardState(1, 1, 200);
  synced.sync = true;
  REQUIRE(store->Persist(synced).ok());
  raft::ConfState conf;
  conf.add_voters(1);
  REQUIRE(store->CreateSnapshot(150, conf, "state-at-150").ok());  // synced
  REQUIRE(store->Compact(140).ok());
  REQUIRE(store->FirstIndex() == 141);
  raft::PersistRequest after;
  after.entries.push_back(MakeEntry(201, 1, Payload(201)));
  after.hard_state = MakeHardState(1, 1, 201);
  after.sync = false;
  REQUIRE(store->Persist(after).ok());  // unsynced, like the compaction

  // The crash image: every WAL cut at its last sync.
  TempDir image;
  fs::copy(dir.path(), image.path(), fs::copy_options::recursive);
  {
    std::lock_guard<std::mutex> lock(ledger.mu);
    REQUIRE_FALSE(ledger.wals.empty());
    for (const auto& [path, r] : ledger.wals) {
      INFO("WAL " << path << ": " << r.written << " bytes written, " << r.synced << " synced");
      CHECK(r.synced < r.written);  // the compaction's record is in the lost tail
      fs::resize_file(fs::path(image.path()) / fs::relative(path, dir.path()), r.synced);
    }
  }
  store.reset();

  auto recovered = RocksDbLogStore::Open(image.path() + "/store", {}, false);
  INFO(recovered.status().ToString());
  REQUIRE(recovered.ok());
  RocksDbLogStore& r = **recovered;
  CHECK(r.FirstIndex() == 1);  // the compaction was lost
  CHECK(r.LastIndex() == 200);
  auto snapshot = r.GetSnapshot();
  REQUIRE(snapshot.ok());
  CHECK(snapshot->metadata().index() == 150);
  CHECK(snapshot->data() == "state-at-150");
  auto entries = r.Entries(1, 201, UINT64_MAX);
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 200);
  for (const raft::Entry& e : *entries) REQUIRE(e.data() == Payload(e.index()));
  // The store carries on from there: compacting again, then appending.
  REQUIRE(r.Compact(140).ok());
  CHECK(r.FirstIndex() == 141);
  CHECK(r.Term(140).value() == 1);
  REQUIRE(r.Persist(after).ok());
  CHECK(r.LastIndex() == 201);
}

}  // namespace raftlock::storage::testing
