// The data directory of one replica, and the check that it belongs here.
//
// On-disk format:
//   <dir>/IDENTITY   a text file, written once (atomically, fsynced) when the
//                    directory is initialized and never rewritten:
//                      raftlock-data-dir
//                      format_version: <n>
//                      cluster_id: <string without whitespace>
//                      node_id: <decimal, > 0>
//                      crc32c: <8 hex digits, CRC-32C of the lines above,
//                               newlines included>
//   <dir>/log/       the RocksDB log store      (see rocksdb_log_store.h)
//   <dir>/snap/      the snapshot files         (see snapshot_store.h)
//
// Open-or-init. OpenDataDir:
//  - directory missing or empty: initializes it (log/ and snap/ first, IDENTITY
//    last, so an IDENTITY file always means a complete store);
//  - IDENTITY present: refuses (status, never a reset) a corrupt or truncated
//    IDENTITY (DataLoss), an unknown format version (FailedPrecondition), or a
//    directory of another cluster or node (FailedPrecondition); then opens
//    the log store without creating anything (a missing or corrupt log is
//    DataLoss / NotFound);
//  - no IDENTITY but other contents: resumes an interrupted initialization
//    only when the contents are exactly what one leaves (log/, snap/,
//    IDENTITY.tmp) and the log holds no state at all; otherwise refuses.
// Every refusal's message names the directory and what is wrong; the server
// prints it and exits non-zero.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/rocksdb_log_store.h"

namespace raftlock::storage {

// The on-disk format this build reads and writes.
inline constexpr uint32_t kDataDirFormatVersion = 1;

struct DataDirIdentity {
  std::string cluster_id;
  uint64_t node_id = 0;
  uint32_t format_version = kDataDirFormatVersion;
};

// Serializes / parses the IDENTITY file (exposed for tests and tools).
std::string EncodeIdentity(const DataDirIdentity& identity);
absl::StatusOr<DataDirIdentity> DecodeIdentity(const std::string& contents);

struct DataDirOptions {
  RocksDbLogStoreOptions log;
};

class DataDir {
 public:
  const std::string& path() const { return path_; }
  const DataDirIdentity& identity() const { return identity_; }
  // True when this open initialized the directory.
  bool created() const { return created_; }
  // The log store (it owns the snapshot store: log_store().snapshots()).
  RocksDbLogStore& log_store() { return *log_; }
  // Hands over the log store (e.g. to a driver that owns it); the DataDir is
  // then only a record of the identity.
  std::unique_ptr<RocksDbLogStore> ReleaseLogStore() { return std::move(log_); }

 private:
  friend absl::StatusOr<std::unique_ptr<DataDir>> OpenDataDir(const std::string&,
                                                              const std::string&, uint64_t,
                                                              const DataDirOptions&);
  DataDir() = default;
  std::string path_;
  DataDirIdentity identity_;
  bool created_ = false;
  std::unique_ptr<RocksDbLogStore> log_;
};

// Opens (or initializes) the data directory `path` for node `node_id` of
// cluster `cluster_id`, checks its identity, and opens its log store. See the
// rules above. `cluster_id` must be non-empty without whitespace; `node_id`
// > 0 (InvalidArgument otherwise).
absl::StatusOr<std::unique_ptr<DataDir>> OpenDataDir(const std::string& path,
                                                     const std::string& cluster_id,
                                                     uint64_t node_id,
                                                     const DataDirOptions& options = {});

}  // namespace raftlock::storage
