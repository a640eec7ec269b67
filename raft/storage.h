// The Raft core's view of durable state, and the write side that drivers use.
//
// The core only reads through `Storage`; it never writes. The driver persists
// each Ready through `LogStorage` and then calls Node::Advance(). Both the
// in-memory store (raft/memory_storage.h) and the RocksDB store (storage/)
// implement LogStorage and pass the same conformance suite.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raft.pb.h"

namespace raftlock::raft {

using Entry = raftlock::v1::Entry;
using HardState = raftlock::v1::HardState;
using ConfState = raftlock::v1::ConfState;
using Snapshot = raftlock::v1::Snapshot;
using SnapshotMetadata = raftlock::v1::SnapshotMetadata;

// Error statuses with a fixed meaning across stores.
// The requested index is at or below the compaction point (use the snapshot).
absl::Status CompactedError();
// The requested index is above the last index.
absl::Status UnavailableError();
// The snapshot is being produced; the leader retries later.
absl::Status SnapshotTemporarilyUnavailableError();
bool IsCompacted(const absl::Status& status);
bool IsUnavailable(const absl::Status& status);
bool IsSnapshotTemporarilyUnavailable(const absl::Status& status);

struct InitialState {
  HardState hard_state;
  // The configuration recorded in the latest snapshot (empty when there is
  // none). The core replays committed ENTRY_CONF_CHANGE entries after it.
  ConfState conf_state;
};

// Read-only access for the core. Index 0 never holds a real entry.
// Entries() and Term() fail only with the range errors above: a store that
// cannot read an entry it holds (an I/O error, a corrupt record) must stop
// the process instead, since the core treats any error as "no such entry". Every store
// keeps a "dummy" position at FirstIndex()-1 whose term is known (the
// snapshot's term, or 0 initially), so Term(FirstIndex()-1) always succeeds.
class Storage {
 public:
  virtual ~Storage() = default;

  virtual absl::StatusOr<InitialState> GetInitialState() const = 0;

  // Entries in [lo, hi), stopping early once their total ByteSizeLong() would
  // exceed max_bytes (at least one entry is returned when lo < hi).
  // Precondition: FirstIndex() <= lo <= hi <= LastIndex()+1, else
  // CompactedError() (lo too low) or UnavailableError() (hi too high).
  virtual absl::StatusOr<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi,
                                                     uint64_t max_bytes) const = 0;

  // Term of entry i, for FirstIndex()-1 <= i <= LastIndex().
  virtual absl::StatusOr<uint64_t> Term(uint64_t i) const = 0;

  // Index of the first entry still available (one past the compaction point).
  virtual uint64_t FirstIndex() const = 0;
  // Index of the last entry (FirstIndex()-1 when the log is empty).
  virtual uint64_t LastIndex() const = 0;

  // The most recent snapshot, data included.
  virtual absl::StatusOr<Snapshot> GetSnapshot() const = 0;
};

// What one Ready asks to make durable, in this order: snapshot, then entries
// (replacing any existing suffix from entries.front().index()), then hard
// state. A store writes it as one atomic unit.
struct PersistRequest {
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;
  std::optional<HardState> hard_state;
  // When true, the call returns only after everything above is durable.
  bool sync = true;
};

// The write side. Calls come from one thread (the driver); reads may come from
// the same thread only. The one exception is Sync(), which another thread may
// call while the driver writes and reads.
class LogStorage : public Storage {
 public:
  // Makes every Persist that returned before this call durable, including
  // those written with sync == false. Thread-safe against the driver's calls.
  // A non-OK status means the caller must stop, as for Persist.
  virtual absl::Status Sync() = 0;

  // Applies `request` atomically. Preconditions: entries are contiguous; the
  // first entry's index is in [FirstIndex(), LastIndex()+1] (after applying the
  // snapshot, if any). A non-OK status means nothing may be assumed durable:
  // the caller must stop (fail-stop), never retry as if it had succeeded.
  virtual absl::Status Persist(const PersistRequest& request) = 0;

  // Records a snapshot of the state machine at `index` (which must be <= the
  // committed index and >= the current snapshot index) with the given
  // configuration and data. Does not discard log entries; see Compact.
  virtual absl::Status CreateSnapshot(uint64_t index, const ConfState& conf_state,
                                      std::string data) = 0;

  // CreateSnapshot in two steps, so that writing the image can run off the
  // driver thread. WriteSnapshot may run on another thread, one call at a
  // time, concurrently with any other call: it makes `snapshot` (metadata
  // complete) durable but not current; a non-OK status means the caller must
  // stop. RecordSnapshot, on the driver thread after it, makes it current as
  // CreateSnapshot would (same preconditions) and returns true -- or returns
  // false and changes nothing if it can no longer be current: a snapshot at
  // or above its index became current meanwhile, or its image is gone.
  virtual absl::Status WriteSnapshot(const Snapshot& snapshot) = 0;
  virtual absl::StatusOr<bool> RecordSnapshot(Snapshot snapshot) = 0;

  // Discards entries up to and including `index`, which must be <= the latest
  // snapshot index. Term(index) stays available afterwards.
  virtual absl::Status Compact(uint64_t index) = 0;
};

}  // namespace raftlock::raft
