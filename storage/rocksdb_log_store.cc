#include "storage/rocksdb_log_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"
#include "storage/fail_stop.h"
#include "storage/file_util.h"
#include "storage/wal_order_fs.h"

namespace raftlock::storage {
namespace {

constexpr char kLogFamily[] = "log";
constexpr char kMetaFamily[] = "meta";
constexpr char kHardStateKey[] = "hard_state";
constexpr char kSnapshotKey[] = "snapshot";
constexpr char kCompactedKey[] = "compacted";
// Suffix truncations shorter than this use point deletes; longer ones a range
// delete (range tombstones are cheap to write but cost every later read a
// little until compaction drops them).
constexpr uint64_t kPointDeleteLimit = 64;

void PutBigEndian(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint64_t GetBigEndian(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
std::string Key(uint64_t index) {
  std::string k;
  PutBigEndian(&k, index);
  return k;
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsInvalidArgument()) return absl::FailedPreconditionError(msg);
  return absl::InternalError(msg);
}

// RocksDB options for a Raft log. The workload is: small appends, each
// acknowledged only once durable; reads mostly of the newest entries (served
// by our cache); whole prefixes deleted after a snapshot.
//  - WAL on: it is the durability mechanism. A write with WriteOptions::sync
//    is one append and one fdatasync; unsynced appends are made durable
//    together by one Sync() (SyncWAL), which is how the replica groups many
//    Readys into one fdatasync. use_fsync=false: fdatasync is enough for WAL
//    appends; RocksDB fsyncs directories when it creates files.
//  - wal_recovery_mode = kTolerateCorruptedTailRecords: an incomplete record
//    at the very end of the WAL can only be a write that was never
//    acknowledged (torn by a power loss), so it is dropped; corruption
//    anywhere else fails the open. (kPointInTimeRecovery would instead stop
//    replay silently at a mid-log corruption and drop later, acknowledged,
//    writes.) Older WAL files are synced before a newer one is opened
//    (wal_order_fs.h), so only the newest can have lost an unsynced tail.
//    Assuming the file system keeps a prefix of each file's unsynced appends
//    (RocksDB cannot tell a WAL cut exactly at a record boundary), what
//    survives a power loss is a prefix of the writes.
//  - track_and_verify_wals_in_manifest and paranoid_checks: a missing or
//    damaged WAL/SST is an open error, not an empty log.
//  - Small memtables (4 MiB, 3 of them) and max_total_wal_size 64 MiB: the log
//    is written once and deleted soon after, hot reads come from the entry
//    cache, so big memtables buy nothing and only lengthen WAL replay on
//    restart and the memory footprint.
//  - No compression: entries are small and mostly already compact protobufs;
//    latency matters more than disk here.
//  - 2 background jobs: replicas run on small machines next to the server.
//  - bytes_per_sync 1 MiB: a memtable flush writes its SST back in 1 MiB
//    steps instead of one large fsync at the end, which would queue ahead of
//    (and stall) the foreground WAL fdatasync.
//  - XXH3 block checksums: SST checksums cost less CPU than the software
//    CRC32C this RocksDB build uses (the WAL keeps CRC32C).
//  - memtable_insert_hint_per_batch (per write): a batch's keys are
//    sequential, so the skip list insert starts from the previous position.
void FillOptions(rocksdb::Env* env, bool create, rocksdb::DBOptions* db,
                 rocksdb::ColumnFamilyOptions* cf) {
  db->create_if_missing = create;
  db->create_missing_column_families = create;
  db->paranoid_checks = true;
  db->wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db->track_and_verify_wals_in_manifest = true;
  db->use_fsync = false;
  db->manual_wal_flush = false;
  db->max_total_wal_size = 64 << 20;
  db->max_background_jobs = 2;
  db->keep_log_file_num = 4;
  db->max_log_file_size = 8 << 20;
  db->recycle_log_file_num = 0;
  db->bytes_per_sync = 1 << 20;
  db->env = env;
  cf->write_buffer_size = 4 << 20;
  cf->max_write_buffer_number = 3;
  cf->compression = rocksdb::kNoCompression;
  rocksdb::BlockBasedTableOptions table;
  table.checksum = rocksdb::kXXH3;
  cf->table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
}

}  // namespace

RocksDbLogStore::RocksDbLogStore(std::string dir, RocksDbLogStoreOptions options)
    : dir_(std::move(dir)), options_(std::move(options)) {}

RocksDbLogStore::~RocksDbLogStore() {
  if (db_ == nullptr) return;
  for (auto* cf : {log_cf_, meta_cf_, default_cf_}) {
    if (cf != nullptr) db_->DestroyColumnFamilyHandle(cf);
  }
  rocksdb::Status s = db_->Close();
  if (!s.ok()) spdlog::warn("closing log store {}: {}", dir_, s.ToString());
  delete db_;
}

absl::StatusOr<std::unique_ptr<RocksDbLogStore>> RocksDbLogStore::Open(
    const std::string& dir, const RocksDbLogStoreOptions& options, bool create) {
  std::unique_ptr<RocksDbLogStore> store(new RocksDbLogStore(dir, options));
  if (auto s = store->Load(create); !s.ok()) return s;
  return store;
}

absl::Status RocksDbLogStore::Load(bool create) {
  const std::string log_dir = dir_ + "/log";
  const std::string snap_dir = dir_ + "/snap";
  if (create) {
    if (auto s = EnsureDir(dir_); !s.ok()) return s;
  } else if (!PathExists(log_dir + "/CURRENT")) {
    return absl::NotFoundError(absl::StrCat("log store ", log_dir, " is missing"));
  } else if (!PathExists(snap_dir)) {
    return absl::NotFoundError(absl::StrCat("snapshot directory ", snap_dir, " is missing"));
  }
  auto snaps = SnapshotStore::Open(snap_dir, {.retain = options_.snapshots_retained}, create);
  if (!snaps.ok()) return snaps.status();
  snapshots_ = std::move(*snaps);

  rocksdb::DBOptions db_opts;
  rocksdb::ColumnFamilyOptions cf_opts;
  // WAL switches keep the log a prefix of its writes (wal_order_fs.h).
  std::shared_ptr<rocksdb::FileSystem> base_fs =
      options_.env != nullptr ? options_.env->GetFileSystem() : rocksdb::FileSystem::Default();
  env_ = rocksdb::NewCompositeEnv(NewWalOrderFileSystem(std::move(base_fs)));
  FillOptions(env_.get(), create, &db_opts, &cf_opts);
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_opts}, {kLogFamily, cf_opts}, {kMetaFamily, cf_opts}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status rs = rocksdb::DB::Open(db_opts, log_dir, families, &handles, &db_);
  if (!rs.ok()) return FromRocks(rs, absl::StrCat("opening log store ", log_dir));
  default_cf_ = handles[0];
  log_cf_ = handles[1];
  meta_cf_ = handles[2];

  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("log store ", log_dir, " is corrupt: ", why));
  };
  std::string value;
  rs = db_->Get(rocksdb::ReadOptions(), meta_cf_, kHardStateKey, &value);
  if (rs.ok()) {
    if (!hard_state_.ParseFromString(value)) return corrupt("unparseable hard state");
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs, "reading hard state");
  }
  rs = db_->Get(rocksdb::ReadOptions(), meta_cf_, kSnapshotKey, &value);
  if (rs.ok()) {
    if (!snapshot_md_.ParseFromString(value)) return corrupt("unparseable snapshot metadata");
    has_snapshot_ = true;
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs, "reading snapshot metadata");
  }
  rs = db_->Get(rocksdb::ReadOptions(), meta_cf_, kCompactedKey, &value);
  if (rs.ok()) {
    if (value.size() != 16) return corrupt("bad compaction point record");
    compacted_index_ = GetBigEndian(value.data());
    compacted_term_ = GetBigEndian(value.data() + 8);
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs, "reading compaction point");
  }
  if (snapshot_md_.index() < compacted_index_) {
    return corrupt("compaction point is above the snapshot index");
  }

  // The log must hold exactly compacted+1..last, contiguous. Scanning it is
  // O(entries), bounded by the snapshot interval.
  last_index_ = compacted_index_;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const uint64_t expect = last_index_ + 1;
      if (it->key().size() != 8) return corrupt("bad entry key");
      const uint64_t got = GetBigEndian(it->key().data());
      if (got != expect) {
        return corrupt(absl::StrCat("log has entry ", got, " where ", expect, " was expected"));
      }
      last_index_ = got;
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scanning the log");
  }
  if (has_snapshot_) {
    auto reader = snapshots_->OpenReader(snapshot_md_.index());
    if (!reader.ok()) {
      return absl::DataLossError(absl::StrCat("current snapshot (index ", snapshot_md_.index(),
                                              ") is unusable: ", reader.status().message()));
    }
    if ((*reader)->metadata().term() != snapshot_md_.term()) {
      return corrupt("snapshot file term does not match the recorded snapshot");
    }
  }
  if (auto s = snapshots_->Prune(snapshot_md_.index()); !s.ok()) return s;
  return absl::OkStatus();
}

void RocksDbLogStore::IoFailed(absl::string_view what, const std::string& detail) const {
  FailStop(absl::StrCat(what, " in ", dir_), detail);
}

bool RocksDbLogStore::IsEmpty() const {
  return last_index_ == 0 && compacted_index_ == 0 && !has_snapshot_ && hard_state_.term() == 0 &&
         hard_state_.vote() == 0 && hard_state_.commit() == 0;
}

absl::StatusOr<raft::InitialState> RocksDbLogStore::GetInitialState() const {
  raft::InitialState st;
  st.hard_state = hard_state_;
  st.conf_state = snapshot_md_.conf_state();
  return st;
}

Entry RocksDbLogStore::ReadEntry(uint64_t index) const {
  ++cache_misses_;
  std::string value;
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), log_cf_, Key(index), &value);
  if (!rs.ok()) IoFailed(absl::StrCat("reading entry ", index), rs.ToString());
  Entry e;
  if (!e.ParseFromString(value) || e.index() != index) {
    IoFailed(absl::StrCat("reading entry ", index), "the record is corrupt");
  }
  return e;
}

absl::StatusOr<std::vector<Entry>> RocksDbLogStore::Entries(uint64_t lo, uint64_t hi,
                                                            uint64_t max_bytes) const {
  if (lo <= compacted_index_) return raft::CompactedError();
  if (hi > last_index_ + 1) return raft::UnavailableError();
  if (lo > hi) return absl::InvalidArgumentError("Entries: lo > hi");
  std::vector<Entry> out;
  uint64_t size = 0;
  auto add = [&](Entry e) {
    size += e.ByteSizeLong();
    if (!out.empty() && size > max_bytes) return false;
    out.push_back(std::move(e));
    return true;
  };
  const uint64_t cache_first = cache_.empty() ? last_index_ + 1 : cache_.front().index();
  uint64_t i = lo;
  if (i < std::min(hi, cache_first)) {
    ++cache_misses_;
    const uint64_t end = std::min(hi, cache_first);
    const std::string upper = Key(end);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, log_cf_));
    for (it->Seek(Key(i)); i < end; it->Next(), ++i) {
      if (!it->Valid()) break;
      Entry e;
      if (it->key().size() != 8 || GetBigEndian(it->key().data()) != i ||
          !e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) ||
          e.index() != i) {
        IoFailed(absl::StrCat("reading entry ", i), "the record is corrupt or out of place");
      }
      if (!add(std::move(e))) return out;
    }
    if (!it->status().ok()) {
      IoFailed(absl::StrCat("reading entries ", lo, "..", end - 1), it->status().ToString());
    }
    if (i < end) IoFailed(absl::StrCat("reading entry ", i), "the record is missing");
  }
  for (; i < hi; ++i) {
    if (!add(cache_[i - cache_first])) break;
  }
  return out;
}

absl::StatusOr<uint64_t> RocksDbLogStore::Term(uint64_t i) const {
  if (i < compacted_index_) return raft::CompactedError();
  if (i > last_index_) return raft::UnavailableError();
  if (i == compacted_index_) return compacted_term_;
  if (!cache_.empty() && i >= cache_.front().index()) {
    return cache_[i - cache_.front().index()].term();
  }
  return ReadEntry(i).term();
}

absl::StatusOr<raft::Snapshot> RocksDbLogStore::GetSnapshot() const {
  if (!has_snapshot_) return raft::Snapshot();
  auto snap = snapshots_->Load(snapshot_md_.index());
  if (!snap.ok()) return snap.status();
  if (snap->metadata().term() != snapshot_md_.term()) {
    return absl::DataLossError("snapshot file term does not match the recorded snapshot");
  }
  return snap;
}

void RocksDbLogStore::CacheAppend(const std::vector<Entry>& entries, size_t skip) {
  const uint64_t start = entries[skip].index();
  while (!cache_.empty() && cache_.back().index() >= start) {
    cache_bytes_ -= cache_.back().ByteSizeLong();
    cache_.pop_back();
  }
  if (!cache_.empty() && cache_.back().index() + 1 != start) {
    cache_.clear();
    cache_bytes_ = 0;
  }
  for (size_t k = skip; k < entries.size(); ++k) {
    cache_bytes_ += entries[k].ByteSizeLong();
    cache_.push_back(entries[k]);
  }
  CacheTrimFront();
}

void RocksDbLogStore::CacheTrimFront() {
  while (!cache_.empty() &&
         (cache_.size() > options_.cache_max_entries || cache_bytes_ > options_.cache_max_bytes ||
          cache_.front().index() <= compacted_index_)) {
    cache_bytes_ -= cache_.front().ByteSizeLong();
    cache_.pop_front();
  }
}

absl::Status RocksDbLogStore::Sync() {
  rocksdb::Status rs = db_->SyncWAL();
  if (!rs.ok()) IoFailed("syncing the log", rs.ToString());
  return absl::OkStatus();
}

absl::Status RocksDbLogStore::Persist(const raft::PersistRequest& request) {
  // Validate everything first so that a rejected request writes nothing.
  uint64_t first = FirstIndex();
  uint64_t last = last_index_;
  if (request.snapshot.has_value()) {
    const raft::SnapshotMetadata& md = request.snapshot->metadata();
    if (md.index() < snapshot_md_.index()) {
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
  const bool has_entries = !ents.empty() && ents.back().index() >= first;
  size_t skip = 0;
  if (has_entries) {
    if (ents.front().index() < first) skip = first - ents.front().index();
    if (ents[skip].index() > last + 1) {
      return absl::InvalidArgumentError("entries leave a gap after the last index");
    }
  }

  rocksdb::WriteBatch batch;
  auto check = [&](const rocksdb::Status& s) {
    if (!s.ok()) IoFailed("building a write batch", s.ToString());
  };
  if (request.snapshot.has_value()) {
    const raft::SnapshotMetadata& md = request.snapshot->metadata();
    if (auto s = snapshots_->Save(*request.snapshot); !s.ok()) {
      IoFailed("writing a snapshot file", std::string(s.message()));
    }
    if (last_index_ > compacted_index_) {
      check(batch.DeleteRange(log_cf_, Key(compacted_index_ + 1), Key(last_index_ + 1)));
    }
    check(batch.Put(meta_cf_, kSnapshotKey, md.SerializeAsString()));
    std::string compacted;
    PutBigEndian(&compacted, md.index());
    PutBigEndian(&compacted, md.term());
    check(batch.Put(meta_cf_, kCompactedKey, compacted));
  }
  uint64_t new_last = last;
  if (has_entries) {
    new_last = ents.back().index();
    if (new_last < last) {
      if (last - new_last <= kPointDeleteLimit) {
        for (uint64_t i = new_last + 1; i <= last; ++i) check(batch.Delete(log_cf_, Key(i)));
      } else {
        check(batch.DeleteRange(log_cf_, Key(new_last + 1), Key(last + 1)));
      }
    }
    std::string value;
    for (size_t k = skip; k < ents.size(); ++k) {
      ents[k].SerializeToString(&value);
      check(batch.Put(log_cf_, Key(ents[k].index()), value));
    }
  }
  if (request.hard_state.has_value()) {
    check(batch.Put(meta_cf_, kHardStateKey, request.hard_state->SerializeAsString()));
  }
  if (batch.Count() > 0) {
    rocksdb::WriteOptions wo;
    wo.sync = request.sync;
    wo.memtable_insert_hint_per_batch = true;  // keys of a batch are sequential
    rocksdb::Status rs = db_->Write(wo, &batch);
    if (!rs.ok()) IoFailed(request.sync ? "synced log write" : "log write", rs.ToString());
  }

  // The batch is durable (when requested): update the in-memory view.
  if (request.snapshot.has_value()) {
    snapshot_md_ = request.snapshot->metadata();
    has_snapshot_ = true;
    compacted_index_ = snapshot_md_.index();
    compacted_term_ = snapshot_md_.term();
    last_index_ = compacted_index_;
    cache_.clear();
    cache_bytes_ = 0;
  }
  if (has_entries) {
    last_index_ = new_last;
    CacheAppend(ents, skip);
  }
  if (request.hard_state.has_value()) hard_state_ = *request.hard_state;
  if (request.snapshot.has_value()) {
    if (auto s = snapshots_->Prune(snapshot_md_.index()); !s.ok()) {
      spdlog::warn("pruning old snapshots in {}: {}", dir_, std::string(s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status RocksDbLogStore::CheckSnapshotIndex(uint64_t index) const {
  const uint64_t snap_index = snapshot_md_.index();
  if (index < snap_index) {
    return absl::FailedPreconditionError("snapshot index is below the current snapshot");
  }
  if (index > std::max(hard_state_.commit(), snap_index)) {
    return absl::FailedPreconditionError("snapshot index is above the committed index");
  }
  if (index > last_index_) {
    return absl::FailedPreconditionError("snapshot index is above the last index");
  }
  return absl::OkStatus();
}

absl::Status RocksDbLogStore::CreateSnapshot(uint64_t index, const ConfState& conf_state,
                                             std::string data) {
  if (auto s = CheckSnapshotIndex(index); !s.ok()) return s;
  auto term = Term(index);
  if (!term.ok()) return term.status();
  raft::Snapshot snap;
  snap.set_data(std::move(data));
  snap.mutable_metadata()->set_index(index);
  snap.mutable_metadata()->set_term(*term);
  *snap.mutable_metadata()->mutable_conf_state() = conf_state;
  (void)WriteSnapshot(snap);  // fail-stops on error
  MakeCurrent(snap.metadata());
  return absl::OkStatus();
}

absl::Status RocksDbLogStore::WriteSnapshot(const raft::Snapshot& snapshot) {
  if (auto s = snapshots_->Save(snapshot); !s.ok()) {
    IoFailed("writing a snapshot file", std::string(s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> RocksDbLogStore::RecordSnapshot(raft::Snapshot snapshot) {
  const SnapshotMetadata& md = snapshot.metadata();
  const uint64_t index = md.index();
  if (index <= snapshot_md_.index()) return false;
  if (auto s = CheckSnapshotIndex(index); !s.ok()) return s;
  auto term = Term(index);
  if (!term.ok()) return term.status();
  if (*term != md.term()) {
    return absl::FailedPreconditionError(absl::StrCat("snapshot term ", md.term(),
                                                      " does not match the log's term ", *term,
                                                      " at index ", index));
  }
  if (!snapshots_->Contains(index, md.term())) return false;  // pruned meanwhile
  MakeCurrent(md);
  return true;
}

void RocksDbLogStore::MakeCurrent(const SnapshotMetadata& md) {
  rocksdb::WriteOptions wo;
  wo.sync = true;  // Prune below may delete the file the old metadata names.
  rocksdb::Status rs = db_->Put(wo, meta_cf_, kSnapshotKey, md.SerializeAsString());
  if (!rs.ok()) IoFailed("recording snapshot metadata", rs.ToString());
  snapshot_md_ = md;
  has_snapshot_ = true;
  if (auto s = snapshots_->Prune(md.index()); !s.ok()) {
    spdlog::warn("pruning old snapshots in {}: {}", dir_, std::string(s.message()));
  }
}

absl::Status RocksDbLogStore::Compact(uint64_t index) {
  if (index <= compacted_index_) return raft::CompactedError();
  if (index > snapshot_md_.index()) {
    return absl::FailedPreconditionError("compaction beyond the latest snapshot");
  }
  if (index > last_index_) {
    return absl::FailedPreconditionError("compaction beyond the last index");
  }
  auto term = Term(index);
  if (!term.ok()) return term.status();
  rocksdb::WriteBatch batch;
  rocksdb::Status rs = batch.DeleteRange(log_cf_, Key(compacted_index_ + 1), Key(index + 1));
  std::string compacted;
  PutBigEndian(&compacted, index);
  PutBigEndian(&compacted, *term);
  if (rs.ok()) rs = batch.Put(meta_cf_, kCompactedKey, compacted);
  if (rs.ok()) rs = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!rs.ok()) IoFailed("log compaction", rs.ToString());
  compacted_index_ = index;
  compacted_term_ = *term;
  CacheTrimFront();
  return absl::OkStatus();
}

}  // namespace raftlock::storage
