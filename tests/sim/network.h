// A seeded, in-process network for the simulator.
//
// Messages are queued with a delivery tick chosen from the fault profile; the
// network may drop, duplicate and delay them (random delays reorder them).
// Links can be blocked one way (asymmetric partition) or both ways
// (symmetric). A blocked link is checked when a message is sent and again
// when it would be delivered, so a partition also swallows messages already in
// flight. The network knows nothing of nodes being up or down; the simulator
// decides that at delivery.
#pragma once

#include <cstdint>
#include <queue>
#include <string>
#include <vector>

#include "raft/node.h"
#include "tests/sim/sim_rng.h"

namespace raftlock::sim {

struct LinkFaults {
  double drop_rate = 0;       // each message independently lost
  double duplicate_rate = 0;  // each message independently delivered twice
  int min_delay = 1;          // ticks; 0 delivers within the current step
  int max_delay = 1;
};

struct InFlight {
  int64_t deliver_at = 0;
  uint64_t seq = 0;  // tie-break: FIFO among messages due at the same tick
  raft::Message message;
  // Incarnation of the sender when it sent this (for ReportSnapshot).
  uint64_t sender_incarnation = 0;
  // Only the original of a duplicated MSG_SNAP reports the snapshot status.
  bool reports_snapshot = false;
  // A lost MSG_SNAP still travels, so that its failure reaches the sender
  // (ReportSnapshot) when the transfer would have ended, as a real transport
  // learns it. It is never handed to the receiver.
  bool lost = false;
};

class SimNetwork {
 public:
  SimNetwork(int num_nodes, SimRng* rng);

  void set_faults(const LinkFaults& faults) { faults_ = faults; }
  const LinkFaults& faults() const { return faults_; }

  // Queues `message` (sent at tick `now`) unless the link is blocked or the
  // message is lost; returns how many copies will arrive (0, 1 or 2).
  int Send(raft::Message message, int64_t now, uint64_t sender_incarnation);

  // Removes and returns the next message due at or before `now`, if any.
  bool PopDue(int64_t now, InFlight* out);

  // --- Partitions ---
  bool Blocked(uint64_t from, uint64_t to) const;
  void Block(uint64_t from, uint64_t to);
  void Unblock(uint64_t from, uint64_t to);
  void BlockBothWays(uint64_t a, uint64_t b);
  // Cuts every link into and out of `id`.
  void Isolate(uint64_t id);
  // Nodes in different groups cannot talk; nodes in no group are isolated.
  void Partition(const std::vector<std::vector<uint64_t>>& groups);
  void Heal();
  bool healed() const;
  // e.g. "1->2 1->3 3->1", for traces.
  std::string DescribeBlocked() const;

  size_t in_flight() const { return queue_.size(); }

 private:
  struct Later {
    bool operator()(const InFlight& a, const InFlight& b) const {
      return a.deliver_at != b.deliver_at ? a.deliver_at > b.deliver_at : a.seq > b.seq;
    }
  };
  void Enqueue(const raft::Message& message, int64_t now, uint64_t incarnation, bool original,
               bool lost);

  int num_nodes_;
  SimRng* rng_;
  LinkFaults faults_;
  uint64_t next_seq_ = 0;
  std::priority_queue<InFlight, std::vector<InFlight>, Later> queue_;
  std::vector<bool> blocked_;  // (from-1) * num_nodes + (to-1)
};

}  // namespace raftlock::sim
