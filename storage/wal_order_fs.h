// A RocksDB FileSystem that keeps the write-ahead log a prefix of its writes
// across a WAL switch.
//
// When a memtable fills, RocksDB opens a new WAL file and writes the next
// records there, without syncing the old one (seen with Debian's RocksDB 7.8).
// The store writes most batches unsynced and syncs them later, so a power
// loss in that window could keep records of the new WAL while losing older,
// unsynced ones of the old WAL: a gap in the log, or, after an overwrite,
// later entries without the truncation before them (a log that breaks Log
// Matching). This file system syncs every WAL file still open before it
// creates a new one, so no record of a newer WAL can outlive an older record.
// The cost is one extra fdatasync per WAL switch (every few MiB of log).
#pragma once

#include <memory>

namespace rocksdb {
class FileSystem;
}

namespace raftlock::storage {

// Wraps `base`. WAL files are those whose name ends in ".log" (RocksDB's own
// LOG info file does not). Preconditions, all set by RocksDbLogStore:
//  - recycle_log_file_num = 0 (a recycled WAL is opened another way);
//  - manual_wal_flush = false, so RocksDB's WAL buffer is empty when it opens
//    a new WAL (it writes that buffer to the old WAL after the switch);
//  - one write queue (no two_write_queues / unordered_write), so the thread
//    that opens the new WAL is the only one writing to the WAL meanwhile.
// The old WAL's directory entry is not synced again: RocksDB synced the
// directory when it created the file.
std::shared_ptr<rocksdb::FileSystem> NewWalOrderFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base);

}  // namespace raftlock::storage
