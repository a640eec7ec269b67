// Durable files holding state-machine snapshots, one file per snapshot.
//
// On-disk format. The store owns one directory. Each snapshot is one file
// named `snap-<index:020>-<term:020>.snap` (zero-padded decimal, so names sort
// by index), laid out as (integers little-endian):
//
//   magic           8 bytes  "RLSNAP\0\1"
//   metadata_len    u32
//   metadata        metadata_len bytes, a serialized raftlock.v1.SnapshotMetadata
//                   (index, term, configuration)
//   data_len        u64
//   data            data_len bytes, the state machine image
//   crc32c          u32, CRC-32C of every byte above
//
// A file is written as `<name>.<n>.tmp`, fsynced, renamed to `<name>`, and the
// directory fsynced, so a visible `.snap` file is always complete. `.tmp`
// files are leftovers of a crash and are deleted by Open.
//
// The store does not decide which snapshot is current: the log store records
// the current snapshot's metadata in RocksDB after Save returns, then calls
// Prune. Files newer than the current snapshot (written before a crash that
// came before the RocksDB write) are deleted by Prune.
//
// Threading: Save may run on two threads at once (the driver installing a
// leader's snapshot while a background thread writes a local one); each
// writes its own temporary file. Readers (Load, OpenReader, Contains) may run
// concurrently with Save; Prune (driver thread) may delete a file a reader
// has open, which stays readable until the reader is closed (POSIX), or one
// Save has just written.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raft.pb.h"

namespace raftlock::storage {

using Snapshot = raftlock::v1::Snapshot;
using SnapshotMetadata = raftlock::v1::SnapshotMetadata;

struct SnapshotFileInfo {
  uint64_t index = 0;
  uint64_t term = 0;
  std::string path;
};

// Reads one snapshot file's data in chunks, for streaming it to a peer. The
// whole file's checksum is verified when the reader is opened.
class SnapshotReader {
 public:
  ~SnapshotReader();
  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;

  const SnapshotMetadata& metadata() const { return metadata_; }
  uint64_t data_size() const { return data_size_; }

  // Up to `max_bytes` of the data starting at `offset` (fewer only at the
  // end; empty at or past the end).
  absl::StatusOr<std::string> ReadChunk(uint64_t offset, uint64_t max_bytes) const;

 private:
  friend class SnapshotStore;
  SnapshotReader(int fd, std::string path, SnapshotMetadata md, uint64_t data_offset,
                 uint64_t data_size);
  int fd_;
  std::string path_;
  SnapshotMetadata metadata_;
  uint64_t data_offset_;
  uint64_t data_size_;
};

class SnapshotStore {
 public:
  struct Options {
    // How many snapshot files Prune keeps (the current one included). >= 1.
    size_t retain = 3;
  };

  // Opens the store in `dir`, creating the directory if `create` is true
  // (otherwise a missing directory is NotFound). Deletes leftover `.tmp`
  // files.
  static absl::StatusOr<std::unique_ptr<SnapshotStore>> Open(const std::string& dir,
                                                             const Options& options, bool create);

  // Writes `snapshot` durably and atomically (see the format above). On
  // return OK the file is complete and fsynced and its name is durable in the
  // directory. A non-OK status is a failed write or fsync: the caller must
  // fail-stop. Overwrites an existing file of the same index and term.
  absl::Status Save(const Snapshot& snapshot);

  // The whole snapshot at `index`, checksum verified. NotFound when no file
  // holds it; DataLoss when its file is corrupt or truncated.
  absl::StatusOr<Snapshot> Load(uint64_t index) const;

  // A chunked reader over the snapshot at `index` (errors as for Load).
  absl::StatusOr<std::unique_ptr<SnapshotReader>> OpenReader(uint64_t index) const;

  // Whether the file of the snapshot at `index` and `term` exists.
  bool Contains(uint64_t index, uint64_t term) const;

  // Snapshot files present, newest (highest index) first.
  absl::StatusOr<std::vector<SnapshotFileInfo>> List() const;

  // Deletes files with an index above `current_index` and all but the newest
  // `retain` files at or below it. Deletions need no fsync: a deleted file
  // that reappears after a crash is pruned again.
  absl::Status Prune(uint64_t current_index);

  const std::string& dir() const { return dir_; }

 private:
  SnapshotStore(std::string dir, Options options);
  absl::StatusOr<SnapshotFileInfo> Find(uint64_t index) const;

  std::string dir_;
  Options options_;
};

}  // namespace raftlock::storage
