#include "tests/sim/network.h"

#include <algorithm>
#include <utility>

namespace raftlock::sim {

SimNetwork::SimNetwork(int num_nodes, SimRng* rng)
    : num_nodes_(num_nodes), rng_(rng), blocked_(static_cast<size_t>(num_nodes * num_nodes)) {}

int SimNetwork::Send(raft::Message message, int64_t now, uint64_t sender_incarnation) {
  if (Blocked(message.from(), message.to()) || rng_->Chance(faults_.drop_rate)) {
    if (message.type() == raftlock::v1::MSG_SNAP) {
      Enqueue(message, now, sender_incarnation, /*original=*/true, /*lost=*/true);
    }
    return 0;
  }
  int copies = 1;
  Enqueue(message, now, sender_incarnation, /*original=*/true, /*lost=*/false);
  if (rng_->Chance(faults_.duplicate_rate)) {
    Enqueue(message, now, sender_incarnation, /*original=*/false, /*lost=*/false);
    ++copies;
  }
  return copies;
}

void SimNetwork::Enqueue(const raft::Message& message, int64_t now, uint64_t incarnation,
                         bool original, bool lost) {
  InFlight f;
  f.deliver_at = now + rng_->Range(faults_.min_delay, faults_.max_delay);
  f.seq = next_seq_++;
  f.message = message;
  f.sender_incarnation = incarnation;
  f.reports_snapshot = original && message.type() == raftlock::v1::MSG_SNAP;
  f.lost = lost;
  queue_.push(std::move(f));
}

bool SimNetwork::PopDue(int64_t now, InFlight* out) {
  if (queue_.empty() || queue_.top().deliver_at > now) return false;
  // Moving out of top() is safe: the ordering keys (ints) are left intact
  // for the pop that follows at once.
  *out = std::move(const_cast<InFlight&>(queue_.top()));
  queue_.pop();
  return true;
}

bool SimNetwork::Blocked(uint64_t from, uint64_t to) const {
  if (from < 1 || to < 1 || from > static_cast<uint64_t>(num_nodes_) ||
      to > static_cast<uint64_t>(num_nodes_)) {
    return true;  // unknown node ids never get through
  }
  return blocked_[(from - 1) * num_nodes_ + (to - 1)];
}

void SimNetwork::Block(uint64_t from, uint64_t to) {
  if (from != to) blocked_[(from - 1) * num_nodes_ + (to - 1)] = true;
}

void SimNetwork::Unblock(uint64_t from, uint64_t to) {
  blocked_[(from - 1) * num_nodes_ + (to - 1)] = false;
}

void SimNetwork::BlockBothWays(uint64_t a, uint64_t b) {
  Block(a, b);
  Block(b, a);
}

void SimNetwork::Isolate(uint64_t id) {
  for (uint64_t other = 1; other <= static_cast<uint64_t>(num_nodes_); ++other) {
    BlockBothWays(id, other);
  }
}

void SimNetwork::Partition(const std::vector<std::vector<uint64_t>>& groups) {
  std::vector<int> group_of(static_cast<size_t>(num_nodes_) + 1, -1);
  for (size_t g = 0; g < groups.size(); ++g) {
    for (uint64_t id : groups[g]) group_of[id] = static_cast<int>(g);
  }
  for (uint64_t a = 1; a <= static_cast<uint64_t>(num_nodes_); ++a) {
    for (uint64_t b = 1; b <= static_cast<uint64_t>(num_nodes_); ++b) {
      const bool apart = group_of[a] < 0 || group_of[a] != group_of[b];
      if (apart) {
        Block(a, b);
      } else {
        Unblock(a, b);
      }
    }
  }
}

void SimNetwork::Heal() { std::fill(blocked_.begin(), blocked_.end(), false); }

bool SimNetwork::healed() const {
  return std::none_of(blocked_.begin(), blocked_.end(), [](bool b) { return b; });
}

std::string SimNetwork::DescribeBlocked() const {
  std::string out;
  for (int a = 1; a <= num_nodes_; ++a) {
    for (int b = 1; b <= num_nodes_; ++b) {
      if (blocked_[(a - 1) * num_nodes_ + (b - 1)]) {
        if (!out.empty()) out += ' ';
        out += std::to_string(a) + "->" + std::to_string(b);
      }
    }
  }
  return out.empty() ? "none" : out;
}

}  // namespace raftlock::sim
