// Configurable bounds of the lock state machine. Every replica of a cluster
// must run with the same Limits: they decide results, so differing values
// would make replicas diverge.
#pragma once

#include <cstddef>
#include <cstdint>

namespace raftlock::lock {

struct Limits {
  // Names of locks and elections: 1..max_name_bytes bytes.
  size_t max_name_bytes = 256;
  // Election values (Campaign / Proclaim).
  size_t max_value_bytes = 4096;
  // Lease TTL bounds, inclusive.
  int64_t min_ttl_ms = 1000;
  int64_t max_ttl_ms = 24LL * 3600 * 1000;
  // Longest wait of a queued Acquire or Campaign.
  int64_t max_wait_timeout_ms = 24LL * 3600 * 1000;
  // Largest semaphore.
  uint32_t max_permits = 65536;
  // Live leases.
  size_t max_leases = 100000;
  // Locks that have a holder or a waiter (a lock with neither does not exist).
  size_t max_locks = 100000;
  // Elections that have a leader or a candidate.
  size_t max_elections = 100000;
  // Queued waiters of one lock (or candidates of one election).
  size_t max_waiters_per_lock = 10000;
  // Exactly-once table: clients remembered, and results kept per client.
  size_t max_dedup_clients = 100000;
  size_t dedup_window = 16;
  // How long (cluster time) a client's results outlive the lease it last used.
  int64_t dedup_retention_ms = 60000;
  // Events kept per election for Observe, and leaderless elections kept.
  size_t election_history = 64;
  size_t max_idle_elections = 1024;
};

}  // namespace raftlock::lock
