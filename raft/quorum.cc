#include "raft/quorum.h"

#include <algorithm>
#include <functional>

namespace raftlock::raft {

uint64_t MajorityCommitIndex(const std::vector<uint64_t>& voters,
                             const std::map<uint64_t, uint64_t>& match) {
  if (voters.empty()) return 0;
  std::vector<uint64_t> idx;
  idx.reserve(voters.size());
  for (uint64_t v : voters) {
    auto it = match.find(v);
    idx.push_back(it == match.end() ? 0 : it->second);
  }
  std::sort(idx.begin(), idx.end(), std::greater<>());
  return idx[MajoritySize(idx.size()) - 1];
}

VoteResult TallyVotes(const std::vector<uint64_t>& voters, const std::map<uint64_t, bool>& votes) {
  size_t granted = 0;
  size_t missing = 0;
  for (uint64_t v : voters) {
    auto it = votes.find(v);
    if (it == votes.end()) {
      ++missing;
    } else if (it->second) {
      ++granted;
    }
  }
  const size_t q = MajoritySize(voters.size());
  if (granted >= q) return VoteResult::kWon;
  if (granted + missing >= q) return VoteResult::kPending;
  return VoteResult::kLost;
}

bool HasQuorum(const std::vector<uint64_t>& voters, const std::set<uint64_t>& acks) {
  size_t n = 0;
  for (uint64_t v : voters) n += acks.count(v);
  return !voters.empty() && n >= MajoritySize(voters.size());
}

bool ReadOnly::Add(uint64_t index, const std::string& ctx) {
  if (pending_.count(ctx) != 0) return false;
  pending_[ctx] = Pending{index, {}};
  queue_.push_back(ctx);
  return true;
}

const std::set<uint64_t>* ReadOnly::RecvAck(uint64_t from, const std::string& ctx) {
  auto it = pending_.find(ctx);
  if (it == pending_.end()) return nullptr;
  it->second.acks.insert(from);
  return &it->second.acks;
}

std::vector<ReadState> ReadOnly::Advance(const std::string& ctx) {
  std::vector<ReadState> out;
  if (pending_.count(ctx) == 0) return out;
  while (!queue_.empty()) {
    std::string c = std::move(queue_.front());
    queue_.pop_front();
    auto it = pending_.find(c);
    out.push_back(ReadState{it->second.index, c});
    pending_.erase(it);
    if (c == ctx) break;
  }
  return out;
}

std::string ReadOnly::LastPendingCtx() const { return queue_.empty() ? "" : queue_.back(); }

void ReadOnly::Reset() {
  pending_.clear();
  queue_.clear();
}

}  // namespace raftlock::raft
