// Test harness for the lock state machine: builds commands, applies them at
// increasing log indexes with a controllable cluster time, and checks the
// machine's invariants after every entry.
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "proto/lock.pb.h"
#include "server/lock/lock_state_machine.h"

namespace raftlock::lock::testing {

namespace v1 = ::raftlock::v1;

// Small limits so tests can reach them.
inline Limits TestLimits() {
  Limits l;
  l.min_ttl_ms = 100;
  l.max_ttl_ms = 100000;
  l.max_wait_timeout_ms = 100000;
  l.max_name_bytes = 16;
  l.max_value_bytes = 8;
  l.max_permits = 10;
  l.max_leases = 8;
  l.max_locks = 8;
  l.max_elections = 4;
  l.max_waiters_per_lock = 4;
  l.max_dedup_clients = 4;
  l.dedup_window = 3;
  l.dedup_retention_ms = 1000;
  l.election_history = 4;
  l.max_idle_elections = 2;
  return l;
}

inline v1::Command Grant(int64_t ttl) {
  v1::Command c;
  c.mutable_lease_grant()->set_ttl_ms(ttl);
  return c;
}
inline v1::Command KeepAlive(uint64_t lease) {
  v1::Command c;
  c.mutable_lease_keep_alive()->set_lease_id(lease);
  return c;
}
inline v1::Command Revoke(uint64_t lease) {
  v1::Command c;
  c.mutable_lease_revoke()->set_lease_id(lease);
  return c;
}
inline v1::Command Acquire(const std::string& name, uint64_t lease,
                           v1::LockMode mode = v1::LOCK_MODE_EXCLUSIVE, int64_t wait_ms = 0,
                           uint32_t permits = 0) {
  v1::Command c;
  auto* a = c.mutable_lock_acquire();
  a->set_name(name);
  a->set_lease_id(lease);
  a->set_mode(mode);
  a->set_wait_timeout_ms(wait_ms);
  a->set_permits(permits);
  return c;
}
inline v1::Command Release(const std::string& name, uint64_t lease, uint64_t token) {
  v1::Command c;
  auto* r = c.mutable_lock_release();
  r->set_name(name);
  r->set_lease_id(lease);
  r->set_token(token);
  return c;
}
inline v1::Command CancelWait(const std::string& name, uint64_t lease) {
  v1::Command c;
  c.mutable_lock_cancel_wait()->set_name(name);
  c.mutable_lock_cancel_wait()->set_lease_id(lease);
  return c;
}
inline v1::Command Campaign(const std::string& name, uint64_t lease, const std::string& value,
                            int64_t wait_ms = 0) {
  v1::Command c;
  auto* e = c.mutable_election_campaign();
  e->set_name(name);
  e->set_lease_id(lease);
  e->set_value(value);
  e->set_wait_timeout_ms(wait_ms);
  return c;
}
inline v1::Command Proclaim(const std::string& name, uint64_t lease, uint64_t token,
                            const std::string& value) {
  v1::Command c;
  auto* e = c.mutable_election_proclaim();
  e->set_name(name);
  e->set_lease_id(lease);
  e->set_token(token);
  e->set_value(value);
  return c;
}
inline v1::Command Resign(const std::string& name, uint64_t lease, uint64_t token) {
  v1::Command c;
  auto* e = c.mutable_election_resign();
  e->set_name(name);
  e->set_lease_id(lease);
  e->set_token(token);
  return c;
}
inline v1::Command Tick() {
  v1::Command c;
  c.mutable_time_advance();
  return c;
}
inline v1::Command WithClient(v1::Command c, uint64_t client, uint64_t seq) {
  c.set_client_id(client);
  c.set_sequence(seq);
  return c;
}

struct Harness {
  explicit Harness(const Limits& limits = TestLimits()) : sm(limits) {}

  // Applies `c` at the next index, stamped with the current time.
  ApplyResult Do(v1::Command c) {
    c.set_cluster_time_ms(now);
    ApplyResult r = sm.Apply(++index, c);
    INFO("invariants after index " << index);
    REQUIRE(sm.CheckInvariants() == "");
    return r;
  }
  // Moves time forward by `ms` through a TimeAdvance entry.
  ApplyResult Advance(int64_t ms) {
    now += ms;
    return Do(Tick());
  }
  uint64_t NewLease(int64_t ttl = 10000) {
    ApplyResult r = Do(Grant(ttl));
    REQUIRE(r.result.code() == 0);
    return r.result.lease_grant().lease_id();
  }
  // Acquires (must be granted) and returns the token.
  uint64_t Hold(const std::string& name, uint64_t lease,
                v1::LockMode mode = v1::LOCK_MODE_EXCLUSIVE, uint32_t permits = 0) {
    ApplyResult r = Do(Acquire(name, lease, mode, 0, permits));
    REQUIRE(r.result.code() == 0);
    REQUIRE(r.result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_GRANTED);
    return r.result.lock_acquire().token();
  }
  size_t Holders(const std::string& name) const {
    auto d = sm.Describe(name);
    return d ? static_cast<size_t>(d->holders_size()) : 0;
  }
  size_t Waiters(const std::string& name) const {
    auto d = sm.Describe(name);
    return d ? static_cast<size_t>(d->waiters_size()) : 0;
  }

  LockStateMachine sm;
  uint64_t index = 0;
  int64_t now = 0;
};

// The state without applied index and cluster time: for "changes nothing".
inline std::string StateOf(const LockStateMachine& sm) {
  v1::LockSnapshot snap;
  REQUIRE(snap.ParseFromString(sm.Snapshot()));
  snap.clear_applied_index();
  snap.clear_cluster_time_ms();
  return snap.SerializeAsString();
}

inline std::vector<v1::LockGranted> Grants(const ApplyResult& r) {
  std::vector<v1::LockGranted> out;
  for (const auto& e : r.events)
    if (e.has_lock_granted()) out.push_back(e.lock_granted());
  return out;
}
inline std::vector<v1::LockReleased> Releases(const ApplyResult& r) {
  std::vector<v1::LockReleased> out;
  for (const auto& e : r.events)
    if (e.has_lock_released()) out.push_back(e.lock_released());
  return out;
}
inline std::vector<v1::WaitEnded> WaitEnds(const ApplyResult& r) {
  std::vector<v1::WaitEnded> out;
  for (const auto& e : r.events)
    if (e.has_wait_ended()) out.push_back(e.wait_ended());
  return out;
}
inline std::vector<v1::LeaseEnded> LeaseEnds(const ApplyResult& r) {
  std::vector<v1::LeaseEnded> out;
  for (const auto& e : r.events)
    if (e.has_lease_ended()) out.push_back(e.lease_ended());
  return out;
}
inline std::vector<v1::ElectionEvent> ElectionEvents(const ApplyResult& r) {
  std::vector<v1::ElectionEvent> out;
  for (const auto& e : r.events)
    if (e.has_election()) out.push_back(e.election());
  return out;
}

}  // namespace raftlock::lock::testing
