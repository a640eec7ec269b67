// The durable Raft log of one replica: entries, hard state and snapshot
// metadata in RocksDB, snapshot images in a SnapshotStore.
//
// On-disk format. The store owns a root directory holding
//   log/   a RocksDB database with column families
//            "log"  key: entry index, 8 bytes big-endian (so keys sort by
//                   index); value: a serialized raftlock.v1.Entry
//            "meta" key "hard_state": a serialized raftlock.v1.HardState
//                   key "snapshot":   a serialized raftlock.v1.SnapshotMetadata
//                                     of the current snapshot (absent: none)
//                   key "compacted":  16 bytes, big-endian index then term of
//                                     the compaction point (the "dummy"
//                                     position FirstIndex()-1; absent: 0/0)
//          ("default" is unused.)
//   snap/  the SnapshotStore files (see snapshot_store.h).
// Invariants kept by every write: the "log" family holds exactly the indexes
// FirstIndex()..LastIndex(), contiguous; the current snapshot's index is at
// or above the compaction point and its file exists in snap/.
//
// Durability. Each Persist is one RocksDB WriteBatch (snapshot metadata,
// range deletes, entries, hard state), written with WriteOptions::sync ==
// request.sync: one WAL append and one fdatasync (or none, and a later Sync()
// covers every unsynced append before it). A snapshot image is written
// to snap/ (fsynced, renamed) before that batch records it, so the metadata
// never points at a missing file. Any failed write or fsync calls FailStop()
// (the process exits); the store never returns from a write it could not
// persist. Likewise a failed read of an entry the store holds (an I/O
// error, a corrupt or missing record): Entries() and Term() return only the
// raft::Storage range errors. Precondition violations (caller bugs) return a
// status and write nothing.
//
// Cache. The newest entries (bounded by count and bytes) are kept in memory,
// so a leader replicating recent entries rarely reads RocksDB.
//
// Threading: as raft::LogStorage -- one thread calls everything but Sync(),
// which touches only the RocksDB handle (itself thread-safe), and
// WriteSnapshot(), which touches only snapshot files.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "raft/storage.h"
#include "storage/snapshot_store.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Env;
}  // namespace rocksdb

namespace raftlock::storage {

using raft::ConfState;
using raft::Entry;
using raft::HardState;

struct RocksDbLogStoreOptions {
  // Snapshot files kept (see SnapshotStore::Options::retain).
  size_t snapshots_retained = 3;
  // Bounds of the in-memory cache of the newest entries.
  size_t cache_max_entries = 8192;
  uint64_t cache_max_bytes = 16 << 20;
  // TESTING: an Env whose file system RocksDB runs on (for example one that
  // injects I/O errors); its clock and threads are not used. Null uses the
  // default file system.
  std::shared_ptr<rocksdb::Env> env;
};

class RocksDbLogStore : public raft::LogStorage {
 public:
  // Opens the store rooted at `dir` (log/ and snap/ inside it). With `create`
  // true, missing parts are created (an empty store); with `create` false a
  // missing or corrupt part is an error (NotFound / DataLoss), never a reset.
  // Verifies the current snapshot's file and the log's contiguity.
  // A convenient way to get a fresh store in tests: Open(mkdtemp(...), {}, true).
  static absl::StatusOr<std::unique_ptr<RocksDbLogStore>> Open(
      const std::string& dir, const RocksDbLogStoreOptions& options, bool create);

  ~RocksDbLogStore() override;
  RocksDbLogStore(const RocksDbLogStore&) = delete;
  RocksDbLogStore& operator=(const RocksDbLogStore&) = delete;

  // --- raft::Storage (semantics as raft::MemoryStorage) ---
  absl::StatusOr<raft::InitialState> GetInitialState() const override;
  // Served from the cache when possible, else read from RocksDB. A failed
  // read is Internal; an undecodable entry is DataLoss.
  absl::StatusOr<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi,
                                             uint64_t max_bytes) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  uint64_t FirstIndex() const override { return compacted_index_ + 1; }
  uint64_t LastIndex() const override { return last_index_; }
  // Reads the current snapshot image from snap/ (an empty Snapshot when none
  // was ever recorded). DataLoss if its file is damaged.
  absl::StatusOr<raft::Snapshot> GetSnapshot() const override;

  // --- raft::LogStorage ---
  // Validates first (FailedPrecondition: snapshot older than the current one;
  // InvalidArgument: entries not contiguous or leaving a gap), then: writes
  // the snapshot file (if any), then one WriteBatch with the snapshot
  // metadata and the discarded log, the entries (entries at or below the
  // compaction point are skipped; the old suffix from the first new index is
  // deleted) and the hard state, synced when request.sync. Returns OK only
  // when all of it is written (and durable if sync). Write errors fail-stop.
  absl::Status Persist(const raft::PersistRequest& request) override;
  // fdatasyncs the WAL (RocksDB's SyncWAL), which holds every earlier write.
  // Safe to call from another thread (as is WriteSnapshot). Errors fail-stop.
  absl::Status Sync() override;
  // Preconditions as MemoryStorage: snapshot index <= index <=
  // max(commit, snapshot index), index <= LastIndex(), index >= compaction
  // point. Writes the file, then records its metadata with a synced write,
  // then prunes old snapshot files. Write errors fail-stop.
  absl::Status CreateSnapshot(uint64_t index, const ConfState& conf_state,
                              std::string data) override;
  // CreateSnapshot's two steps (raft::LogStorage): WriteSnapshot writes the
  // file (any thread; touches only snap/; errors fail-stop); RecordSnapshot
  // checks the preconditions and that the file is still there, then records
  // the metadata with a synced write and prunes old files.
  absl::Status WriteSnapshot(const raft::Snapshot& snapshot) override;
  absl::StatusOr<bool> RecordSnapshot(raft::Snapshot snapshot) override;
  // Range-deletes entries up to `index` (CompactedError when index is at or
  // below the compaction point; FailedPrecondition above the snapshot index
  // or LastIndex()) and records the new compaction point, in one batch. Not
  // synced: losing it in a crash only leaves entries to compact again.
  absl::Status Compact(uint64_t index) override;

  // --- Extras ---
  // The persisted hard state.
  const HardState& hard_state() const { return hard_state_; }
  // Metadata of the current snapshot (index 0 when none).
  const raft::SnapshotMetadata& snapshot_metadata() const { return snapshot_md_; }
  // True when nothing was ever persisted (no entry, no snapshot, zero hard
  // state, nothing compacted).
  bool IsEmpty() const;
  // The snapshot files, e.g. to stream the current one to a peer in chunks:
  // snapshots().OpenReader(snapshot_metadata().index()).
  const SnapshotStore& snapshots() const { return *snapshots_; }
  // Number of Entries()/Term() lookups served by RocksDB (cache misses).
  uint64_t cache_misses() const { return cache_misses_; }

 private:
  RocksDbLogStore(std::string dir, RocksDbLogStoreOptions options);
  absl::Status Load(bool create);
  // Reads entry `index` (FirstIndex() <= index <= LastIndex()) from RocksDB.
  Entry ReadEntry(uint64_t index) const;
  // CreateSnapshot's preconditions on `index`.
  absl::Status CheckSnapshotIndex(uint64_t index) const;
  // Records `md` (its file written) as the current snapshot with a synced
  // write, then prunes old files. Errors fail-stop.
  void MakeCurrent(const SnapshotMetadata& md);
  // Fail-stops: a write or fsync that may not be durable, or an entry the
  // store should have and cannot read (an I/O error, a corrupt or missing
  // record). Continuing would act on a log the node does not have.
  [[noreturn]] void IoFailed(absl::string_view what, const std::string& detail) const;
  void CacheAppend(const std::vector<Entry>& entries, size_t skip);
  void CacheTrimFront();

  std::string dir_;
  RocksDbLogStoreOptions options_;
  // RocksDB's Env: options_.env's file system (or the default one) under
  // NewWalOrderFileSystem. Outlives db_.
  std::shared_ptr<rocksdb::Env> env_;
  std::unique_ptr<SnapshotStore> snapshots_;
  rocksdb::DB* db_ = nullptr;
  rocksdb::ColumnFamilyHandle* log_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;

  HardState hard_state_;
  raft::SnapshotMetadata snapshot_md_;
  bool has_snapshot_ = false;  // the "snapshot" key exists (its index may be 0)
  uint64_t compacted_index_ = 0;
  uint64_t compacted_term_ = 0;
  uint64_t last_index_ = 0;

  // A contiguous suffix of the log ending at last_index_ (or empty).
  std::deque<Entry> cache_;
  uint64_t cache_bytes_ = 0;
  mutable uint64_t cache_misses_ = 0;
};

}  // namespace raftlock::storage
