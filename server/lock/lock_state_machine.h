// LockStateMachine: the replicated lock, lease and election state of
// raftlock (docs/semantics.md is the user contract). Deterministic: no clock,
// no I/O, no randomness. Time arrives only as the leader-stamped
// Command.cluster_time_ms of applied entries; the state keeps the maximum seen.
//
// Applying an entry, in this order:
//   1. cluster time := max(cluster time, command.cluster_time_ms);
//   2. leases whose deadline <= cluster time expire (earliest first), releasing
//      what they hold and granting to next waiters;
//   3. waits whose deadline <= cluster time end (TIMED_OUT), granting after them;
//   4. exactly-once results past their retention are forgotten;
//   5. a retried command (client_id, sequence already applied) gets its first
//      result back and changes nothing more; otherwise the command executes
//      and, if it carries a client id, its result is remembered.
// Every effect of steps 2-5 is reported in the entry's events, in order.
//
// Not thread-safe: one owner applies and queries (the server's apply thread).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "proto/lock.pb.h"
#include "server/lock/dedup.h"
#include "server/lock/elections.h"
#include "server/lock/leases.h"
#include "server/lock/limits.h"
#include "server/lock/locks.h"

namespace raftlock::lock {

// The snapshot format written by Snapshot() and accepted by Restore().
inline constexpr uint32_t kSnapshotFormatVersion = 1;

// One page of a listing: entries in key order, and whether more follow.
template <typename Info>
struct ListPage {
  std::vector<Info> entries;
  bool more = false;
};

struct ApplyResult {
  // The command's answer. For a retried command: its first answer, unchanged.
  v1::CommandResult result;
  // Side effects of the entry, in order: lease expiries, releases, grants to
  // queued waiters, wait timeouts, election changes.
  std::vector<v1::LockEvent> events;
  bool duplicate = false;  // result is a remembered one
};

// A lock or election name: 1..limits.max_name_bytes bytes (NAME_EMPTY,
// NAME_TOO_LONG otherwise). Reads use it too, so bad input fails the same way.
Error CheckName(const std::string& name, const Limits& limits);

// The checks of `command` that need no state: an operation is set, names,
// values, modes, permits, TTLs and waits are within `limits`. (A client id
// without a sequence is checked by Apply and by the API's WriteId check.) Apply runs them
// first, so a command refused here changes nothing but the index; the API runs
// them before proposing, so such a command never reaches the log.
Error CheckCommand(const v1::Command& command, const Limits& limits);

class LockStateMachine {
 public:
  explicit LockStateMachine(const Limits& limits = Limits{});

  const Limits& limits() const { return limits_; }
  // Log index of the last applied entry (0 before any).
  uint64_t applied_index() const { return applied_index_; }
  // Cluster time after the last applied entry (max of stamped times).
  int64_t cluster_time_ms() const { return now_ms_; }

  // Applies the command of log entry `index`. Indexes must increase (gaps are
  // fine: entries that are not commands are simply not applied here); an
  // index <= applied_index() changes nothing and answers STALE_INDEX.
  ApplyResult Apply(uint64_t index, const v1::Command& command);
  // Same, from the entry's bytes. Empty data (a new leader's no-op) only
  // advances applied_index(); unparsable data answers MALFORMED_COMMAND.
  ApplyResult ApplyEntry(uint64_t index, std::string_view data);

  // ---- queries (state as of applied_index(); TTLs relative to cluster_time_ms())
  // The lease, or nullopt if it does not exist (never granted, revoked, expired).
  std::optional<v1::LeaseInfo> TimeToLive(uint64_t lease_id) const;
  // Every live lease, by id.
  std::vector<v1::LeaseInfo> ListLeases() const;
  // Live leases with id > after_id, by id: at most `limit`, and stopping
  // before the encoded entries pass `max_bytes` (the first is always taken).
  ListPage<v1::LeaseInfo> ListLeasesPage(uint64_t after_id, size_t limit, size_t max_bytes) const;
  // The lock's holders and waiters (at most `max_listed` of each; the counts
  // are of all), or nullopt if it has neither.
  std::optional<v1::LockInfo> Describe(const std::string& name, size_t max_listed = SIZE_MAX) const;
  // The token of the lease's hold of `name`, or nullopt if it holds none.
  std::optional<uint64_t> HoldToken(const std::string& name, uint64_t lease) const;
  // Whether the lease waits for `name`.
  bool Waits(const std::string& name, uint64_t lease) const;
  // Every lock whose name starts with `prefix`, by name.
  std::vector<v1::LockInfo> ListLocks(std::string_view prefix = "") const;
  // Locks named `prefix`... that sort after `after`, by name; bounded as in
  // ListLeasesPage.
  ListPage<v1::LockInfo> ListLocksPage(std::string_view prefix, std::string_view after,
                                       size_t limit, size_t max_bytes) const;
  // Whether `token` is the token of a current holder of `name`.
  v1::TokenCheck ValidateToken(const std::string& name, uint64_t token) const;
  // Who leads the election (has_leader false if nobody), with its epoch.
  v1::ElectionInfo Leader(const std::string& name) const;
  // Every known election whose name starts with `prefix`, by name.
  std::vector<v1::ElectionInfo> ListElections(std::string_view prefix = "") const;
  // Election events after `after_epoch`, or skipped + current state.
  v1::ObserveResult Observe(const std::string& name, uint64_t after_epoch) const;
  // The epoch at which `lease` was elected to the leadership with `token`, if
  // the election's kept history still has that event; else 0.
  uint64_t ElectedEpoch(const std::string& name, uint64_t lease, uint64_t token) const {
    return elections_.ElectedEpoch(name, lease, token);
  }

  // ---- snapshots and checks
  // The whole state as versioned bytes; equal states give equal bytes.
  std::string Snapshot() const;
  // Replaces the state with a Snapshot() image. On error the state is unchanged.
  absl::Status Restore(std::string_view image);
  // A 64-bit fingerprint of the whole state (FNV-1a of Snapshot()).
  uint64_t Digest() const;
  // Internal invariants (never two exclusive holders, holders <= permits, no
  // grantable head waiter, indexes consistent, nothing past its deadline, and
  // the count limits). "" if all hold.
  std::string CheckInvariants() const;

  // Direct read access for checkers.
  const LeaseTable& leases() const { return leases_; }
  const LockTable& locks() const { return locks_; }
  const Elections& elections() const { return elections_; }
  const DedupTable& dedup() const { return dedup_; }

 private:
  // CheckInvariants; `bounds` false leaves out the count limits (max_leases,
  // max_dedup_clients, max_idle_elections), which a snapshot written under
  // higher limits may exceed: Restore accepts it, and new work is refused or
  // evicts until the state is back under the limits.
  std::string CheckInvariantsImpl(bool bounds) const;
  // Ends what is due at now_ms_ before the command at `index` runs; grants
  // nothing to `ending_lease` (see ApplyCtx::ending_lease).
  void ExpireDue(uint64_t index, uint64_t ending_lease, std::vector<v1::LockEvent>* events);
  // Apply's part after expiry: exactly-once lookup, then Execute and Record.
  void ApplyCommand(uint64_t index, const v1::Command& cmd, ApplyResult* out);
  // Ends `lease` (its holds and waits) and hands what it held on, to anyone
  // but `ending_lease`.
  void EndLease(uint64_t lease, v1::EndReason reason, uint64_t index,
                std::vector<v1::LockEvent>* events, v1::LeaseRevokeResult* counts,
                uint64_t ending_lease = 0);
  // Executes a new command; sets *bound_lease to the lease it named or granted.
  void Execute(uint64_t index, const v1::Command& cmd, v1::CommandResult* result,
               std::vector<v1::LockEvent>* events, uint64_t* bound_lease);
  Error CheckLease(uint64_t lease) const;
  ApplyCtx Ctx(uint64_t index, Changes* changes, uint64_t ending_lease = 0) const;
  v1::LeaseInfo LeaseView(const Lease& lease) const;
  v1::LockInfo LockView(const std::string& name, const LockEntry& lock,
                        size_t max_listed = SIZE_MAX) const;
  int64_t TtlLeft(uint64_t lease) const;

  Limits limits_;
  uint64_t applied_index_ = 0;
  int64_t now_ms_ = 0;
  LeaseTable leases_;
  LockTable locks_;
  Elections elections_;
  DedupTable dedup_;
};

}  // namespace raftlock::lock
