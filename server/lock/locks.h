// A table of named locks with FIFO wait queues. Used twice by the state
// machine: once for user locks, once (exclusive only) for elections.
//
// Rules it enforces:
//  - A lock exists while it has a holder or a waiter; it is deleted when it has
//    neither (its permits declaration goes with it).
//  - Compatibility: EXCLUSIVE needs no other holder; SHARED needs no exclusive
//    holder and, for a semaphore of N permits, fewer than N holders.
//  - FIFO without barging: a new acquire is granted at once only if nobody is
//    queued; a queued waiter is granted only when it reaches the head.
//  - Every grant gets the log index of the granting entry as fencing token.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "proto/lock.pb.h"
#include "server/lock/common.h"
#include "server/lock/leases.h"

namespace raftlock::lock {

struct LockEntry {
  uint32_t permits = 0;         // 0: ordinary lock; N: semaphore with N permits
  std::vector<Holder> holders;  // grant order
  std::deque<Waiter> waiters;   // FIFO
};

// The context of one applied entry, passed to every mutation.
struct ApplyCtx {
  uint64_t index = 0;                  // log index of the entry (the fencing token)
  int64_t now_ms = 0;                  // cluster time after the entry
  const LeaseTable* leases = nullptr;  // waiters whose lease is not alive are skipped
  Changes* changes = nullptr;          // appended to, in order
  // A lease this entry's command is about to revoke, 0 if none: a queue stops
  // before its waits (a grant to it would be ended by the same entry, and the
  // next grant would reuse the entry's index as fencing token).
  uint64_t ending_lease = 0;
};

struct AcquireRequest {
  std::string name;
  uint64_t lease = 0;
  v1::LockMode mode = v1::LOCK_MODE_EXCLUSIVE;
  uint32_t permits = 0;
  int64_t wait_timeout_ms = 0;  // 0: try once
  std::string value;
  uint64_t client_id = 0;
  uint64_t sequence = 0;
};

struct AcquireReply {
  Error error;
  v1::AcquireOutcome outcome = v1::ACQUIRE_OUTCOME_UNSPECIFIED;
  uint64_t token = 0;
  uint32_t position = 0;
  int64_t deadline_ms = 0;
  bool already = false;
  uint32_t permits = 0;
};

class LockTable {
 public:
  // max_entries: limit on existing locks; too_many: the reason reported at it.
  LockTable(size_t max_entries, size_t max_waiters, v1::ErrorReason too_many);

  // The lock, or nullptr if it has no holder and no waiter.
  const LockEntry* Find(const std::string& name) const;
  const std::map<std::string, LockEntry>& all() const { return locks_; }
  size_t size() const { return locks_.size(); }
  // Names the lease holds / waits for, sorted.
  std::vector<std::string> HeldBy(uint64_t lease) const;
  std::vector<std::string> WaitedBy(uint64_t lease) const;
  // The lease's hold of `name`, or nullptr.
  const Holder* HoldOf(const std::string& name, uint64_t lease) const;
  // Whether the lease waits for `name` (O(log n)).
  bool Waits(const std::string& name, uint64_t lease) const;

  // Grants, queues, or answers BUSY / an error (then nothing changed). A lease
  // that already holds (or waits) in the same mode gets that hold (or wait)
  // back with already = true; in the other mode MODE_CONFLICT.
  AcquireReply Acquire(const AcquireRequest& req, const ApplyCtx& ctx);
  // Owner-checked release; then grants to the next waiters.
  Error Release(const std::string& name, uint64_t lease, uint64_t token, v1::EndReason reason,
                const ApplyCtx& ctx);
  // Removes the lease's wait on `name` (reason CANCELLED); then grants.
  Error CancelWait(const std::string& name, uint64_t lease, const ApplyCtx& ctx);
  // Removes every wait, then every hold, of the lease (locks in name order),
  // granting to next waiters. Returns {holds released, waits removed}.
  std::pair<uint32_t, uint32_t> EndLease(uint64_t lease, v1::EndReason reason, const ApplyCtx& ctx);
  // Removes waiters whose deadline is <= now (TIMED_OUT) and grants after them.
  void ExpireWaits(const ApplyCtx& ctx);
  // Grants what can be granted in every queue `lease` waits in (after a queue
  // stopped before that lease as ctx.ending_lease, which then did not end).
  void PumpWaitsOf(uint64_t lease, const ApplyCtx& ctx);
  // Replaces the value of the lease's hold (elections' Proclaim). Hold must exist.
  void SetValue(const std::string& name, uint64_t lease, const std::string& value);

  // Snapshot image, in name order; and rebuild from it (table must be empty).
  void ToSnapshot(google::protobuf::RepeatedPtrField<v1::SnapshotLock>* out) const;
  void FromSnapshot(const google::protobuf::RepeatedPtrField<v1::SnapshotLock>& in);
  // Internal consistency (indexes, compatibility, no grantable head). "" if fine.
  std::string CheckInvariants(const LeaseTable& leases, int64_t now_ms) const;

 private:
  static bool Compatible(const LockEntry& lock, v1::LockMode mode);
  // Grants waiters from the head while compatible; drops dead/timed-out heads.
  void Pump(const std::string& name, const ApplyCtx& ctx);
  void RemoveWaiterAt(const std::string& name, LockEntry& lock, size_t pos, v1::EndReason reason,
                      const ApplyCtx& ctx);
  void GrantHolder(const std::string& name, LockEntry& lock, Holder holder, bool from_queue,
                   const ApplyCtx& ctx);
  // Deletes the lock if it has no holder and no waiter.
  void MaybeErase(const std::string& name);

  size_t max_entries_;
  size_t max_waiters_;
  v1::ErrorReason too_many_;
  std::map<std::string, LockEntry> locks_;
  std::map<uint64_t, std::set<std::string>> holds_by_lease_;
  std::map<uint64_t, std::set<std::string>> waits_by_lease_;
  std::set<std::tuple<int64_t, std::string, uint64_t>> waits_by_deadline_;
};

}  // namespace raftlock::lock
