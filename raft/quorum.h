// Majority arithmetic over the voter set (etcd's quorum/majority.go), and the
// bookkeeping of pending ReadIndex requests (etcd's read_only.go).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "raft/types.h"

namespace raftlock::raft {

// Votes needed for a majority of n voters.
inline size_t MajoritySize(size_t n) { return n / 2 + 1; }

// The largest index stored by a majority of `voters`, given each voter's
// match index (missing voters count as 0). 0 when there are no voters.
uint64_t MajorityCommitIndex(const std::vector<uint64_t>& voters,
                             const std::map<uint64_t, uint64_t>& match);

enum class VoteResult { kPending, kWon, kLost };

// Tallies `votes` (id -> granted) over `voters`: won when a majority granted,
// lost when a majority can no longer be reached.
VoteResult TallyVotes(const std::vector<uint64_t>& voters, const std::map<uint64_t, bool>& votes);

// True when the ids in `acks` include a majority of `voters`.
bool HasQuorum(const std::vector<uint64_t>& voters, const std::set<uint64_t>& acks);

// Pending linearizable reads on a leader, in arrival order (thesis 6.4).
class ReadOnly {
 public:
  // Registers a read of `ctx` at commit index `index` (a duplicate ctx is
  // ignored). Returns false if it was a duplicate.
  bool Add(uint64_t index, const std::string& ctx);
  // Records that `from` confirmed leadership for `ctx`; returns the ack set,
  // or null for an unknown ctx.
  const std::set<uint64_t>* RecvAck(uint64_t from, const std::string& ctx);
  // Removes and returns every read up to and including `ctx`, in order.
  std::vector<ReadState> Advance(const std::string& ctx);
  // Context of the newest pending read ("" when none).
  std::string LastPendingCtx() const;
  size_t size() const { return queue_.size(); }
  void Reset();

 private:
  struct Pending {
    uint64_t index = 0;
    std::set<uint64_t> acks;
  };
  std::map<std::string, Pending> pending_;
  std::deque<std::string> queue_;
};

}  // namespace raftlock::raft
