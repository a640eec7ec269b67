// LockWorkload: simulated clients of the lock service, driven once per
// simulator step. Each client holds a lease and acquires (try-once and
// waiting), releases (owner-checked with its token, sometimes a stale one),
// cancels waits, keeps its lease alive -- or stops, so the lease lapses --
// and revokes it, on a few exclusive, shared and semaphore locks.
//
// Commands are built like the real server builds them (server/node/replica.cc
// and server/api): every write carries the client id and a sequence number
// that a retry reuses; a leader stamps each batch with its cluster time =
// (cluster time it had applied when it became leader) + (simulated ticks it
// has led) x kMsPerTick; and a leader with live leases proposes a TimeAdvance
// when it proposed nothing for kTimeAdvanceTicks. No real clock is read.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "proto/lock.pb.h"
#include "raft/storage.h"
#include "tests/lock_sim/lock_sim_state_machine.h"
#include "tests/lock_sim/proposal_log.h"
#include "tests/sim/simulator.h"

namespace raftlock::lock_sim {

// The replica's time_advance_interval (100 ms) in ticks.
inline constexpr int64_t kTimeAdvanceTicks = 100 / kMsPerTick;

struct WorkloadStats {
  uint64_t commands_sent = 0;  // proposals accepted by a leader (first tries and retries)
  uint64_t retries = 0;
  uint64_t time_advances = 0;
  uint64_t answers = 0;
};

class LockWorkload {
 public:
  LockWorkload(int num_clients, ProposalLog* log);

  // One step of every client (the simulator's Workload).
  void Step(sim::Simulation& sim);
  // An entry applied for the first time anywhere: the clients learn its
  // answer and events (what the real server would send back).
  void OnCommitted(const raft::Entry& entry, const LockSimStateMachine& sm);

  const WorkloadStats& stats() const { return stats_; }

 private:
  struct Pending {
    uint64_t sequence = 0;
    v1::Command command;
    int64_t sent_tick = -1;  // -1: not yet accepted by a leader
    uint64_t sent_to = 0;
    uint64_t sent_term = 0;
  };
  struct Client {
    uint64_t id = 0;
    uint64_t next_sequence = 1;
    uint64_t lease = 0;
    int64_t ttl_ms = 0;
    bool keep_alive = true;
    int64_t next_keepalive_tick = 0;
    int64_t idle_until = 0;
    std::map<std::string, uint64_t> holds;  // lock -> fencing token
    std::set<std::string> waits;
    std::optional<Pending> op;         // one request at a time...
    std::optional<Pending> keepalive;  // ...plus its keepalive
  };
  struct LeaderClock {
    uint64_t term = 0;
    int64_t since_tick = 0;
    int64_t base_ms = 0;
    int64_t last_proposal_tick = -1000;
  };

  void UpdateLeaderClocks(sim::Simulation& sim);
  void ChooseAction(sim::Simulation& sim, Client& c);
  Pending NewRequest(Client& c, v1::Command command);
  bool NeedsSending(const sim::Simulation& sim, const Pending& p) const;
  void LoseLease(Client& c, int64_t now);
  void Answer(Client& c, const Pending& p, const v1::CommandResult& result, int64_t now);
  void Event(const v1::LockEvent& event, int64_t now);

  std::vector<Client> clients_;
  std::map<uint64_t, LeaderClock> clocks_;  // by node id
  ProposalLog* log_;
  int64_t now_ = 0;
  WorkloadStats stats_;
};

}  // namespace raftlock::lock_sim
