// A small deterministic harness for the Raft core tests: storage builders, a
// one-node driver, and a cluster with an in-order message pump whose links can
// be cut. Nothing here reads a clock or spawns a thread.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/node.h"

namespace raftlock::raft::test {

using raftlock::v1::MessageType;

// A config for node `id` with small timeouts; pre-vote and check-quorum off
// unless a test turns them on.
inline Config TestConfig(uint64_t id, const Storage* storage) {
  Config c;
  c.id = id;
  c.storage = storage;
  c.election_tick = 10;
  c.heartbeat_tick = 1;
  c.random_seed = id * 7919 + 1;
  c.pre_vote = false;
  c.check_quorum = false;
  return c;
}

inline Entry MakeEntry(uint64_t index, uint64_t term, std::string data = "") {
  Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

// A bootstrapped store for `voters` followed by entries with `terms` (one per
// entry, from index voters.size()+1). The hard state term is the last term
// (at least 1); commit is the bootstrap commit.
inline std::unique_ptr<MemoryStorage> NewStorage(const std::vector<uint64_t>& voters,
                                                 const std::vector<uint64_t>& terms = {}) {
  auto st = std::make_unique<MemoryStorage>();
  if (!Node::Bootstrap(*st, voters).ok()) return nullptr;
  std::vector<Entry> ents;
  uint64_t idx = voters.size();
  uint64_t term = 1;
  for (uint64_t t : terms) {
    ++idx;
    ents.push_back(MakeEntry(idx, t, "e" + std::to_string(idx)));
    term = std::max(term, t);
  }
  (void)st->Append(ents);
  HardState hs = st->hard_state();
  hs.set_term(term);
  st->SetHardState(hs);
  return st;
}

inline Message Msg(MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

inline void Persist(MemoryStorage& st, const Ready& rd) {
  PersistRequest req;
  req.snapshot = rd.snapshot;
  req.entries = rd.entries;
  req.hard_state = rd.hard_state;
  req.sync = rd.must_sync;
  (void)st.Persist(req);
}

// All messages of a Ready, replication first.
inline std::vector<Message> AllMessages(const Ready& rd) {
  std::vector<Message> out = rd.replication_messages;
  out.insert(out.end(), rd.messages.begin(), rd.messages.end());
  return out;
}

inline std::vector<Message> OfType(const std::vector<Message>& msgs, MessageType t) {
  std::vector<Message> out;
  for (const Message& m : msgs) {
    if (m.type() == t) out.push_back(m);
  }
  return out;
}

// One node driven by hand.
struct Solo {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<Node> node;

  explicit Solo(std::unique_ptr<MemoryStorage> st, uint64_t id = 1,
                const std::function<void(Config&)>& tweak = {})
      : storage(std::move(st)) {
    Config c = TestConfig(id, storage.get());
    if (tweak) tweak(c);
    auto n = Node::Create(c);
    if (n.ok()) node = std::move(*n);
  }

  // GetReady, persist it, Advance; returns the Ready.
  Ready Cycle() {
    Ready rd = node->GetReady();
    Persist(*storage, rd);
    node->Advance(rd);
    return rd;
  }
  // Cycles until there is nothing ready; returns every message sent.
  std::vector<Message> Drain() {
    std::vector<Message> out;
    for (int i = 0; i < 100 && node->HasReady(); ++i) {
      Ready rd = Cycle();
      for (Message& m : AllMessages(rd)) out.push_back(std::move(m));
    }
    return out;
  }
  void Step(const Message& m) { (void)node->Step(m); }
  void Ticks(int n) {
    for (int i = 0; i < n; ++i) node->Tick();
  }
};

// A follower (id 1) of {1,2,3} whose log is the bootstrap entries (1..3 at
// term 1) followed by `terms`.
inline Solo Follower(const std::vector<uint64_t>& terms = {},
                     const std::function<void(Config&)>& tweak = {}) {
  return Solo(NewStorage({1, 2, 3}, terms), 1, tweak);
}

// Node 1 of {1,2,3} (log as in Follower) elected with node 2's vote, every
// Ready drained (node 1 stores its no-op; peers have acknowledged nothing).
inline Solo Leader(const std::vector<uint64_t>& terms = {},
                   const std::function<void(Config&)>& tweak = {}) {
  Solo s = Follower(terms, tweak);
  s.Drain();
  s.node->Campaign();
  s.Drain();
  if (s.node->role() == Role::kPreCandidate) {
    s.Step(Msg(raftlock::v1::MSG_PRE_VOTE_RESP, 2, 1, s.node->term() + 1));
    s.Drain();
  }
  s.Step(Msg(raftlock::v1::MSG_VOTE_RESP, 2, 1, s.node->term()));
  s.Drain();
  return s;
}

inline Message AppResp(uint64_t from, uint64_t term, uint64_t index) {
  Message m = Msg(raftlock::v1::MSG_APP_RESP, from, 1, term);
  m.set_index(index);
  return m;
}

// n nodes (ids 1..n) with a FIFO network.
class Cluster {
 public:
  explicit Cluster(size_t n, std::function<void(Config&)> tweak = {}) : tweak_(std::move(tweak)) {
    std::vector<uint64_t> voters;
    for (uint64_t id = 1; id <= n; ++id) voters.push_back(id);
    for (uint64_t id : voters) {
      storages_[id] = NewStorage(voters);
      Start(id);
    }
  }

  // Nodes 1..n over the given stores.
  Cluster(std::vector<std::unique_ptr<MemoryStorage>> stores, std::function<void(Config&)> tweak)
      : tweak_(std::move(tweak)) {
    uint64_t id = 0;
    for (auto& st : stores) {
      storages_[++id] = std::move(st);
      Start(id);
    }
  }

  Node& node(uint64_t id) { return *nodes_.at(id); }
  MemoryStorage& storage(uint64_t id) { return *storages_.at(id); }
  std::vector<uint64_t> ids() const {
    std::vector<uint64_t> out;
    for (const auto& [id, n] : nodes_) out.push_back(id);
    return out;
  }

  // (Re)creates node `id` from its storage, as after a crash.
  void Start(uint64_t id) {
    Config c = TestConfig(id, storages_.at(id).get());
    c.applied = applied_index_[id];
    if (tweak_) tweak_(c);
    auto n = Node::Create(c);
    nodes_[id] = n.ok() ? std::move(*n) : nullptr;
  }

  // Adds a node with an empty store (to be added by a conf change).
  void AddEmpty(uint64_t id) {
    storages_[id] = std::make_unique<MemoryStorage>();
    Start(id);
  }

  // Cuts every link to and from `id`.
  void Isolate(uint64_t id) { isolated_.insert(id); }
  void Heal() {
    isolated_.clear();
    drop_ = nullptr;
  }
  void SetDrop(std::function<bool(const Message&)> drop) { drop_ = std::move(drop); }

  void Tick(uint64_t id, int n = 1) {
    for (int i = 0; i < n; ++i) nodes_.at(id)->Tick();
  }

  // Runs Readies and delivers messages until nothing is left.
  void Stabilize(int max_rounds = 10000) {
    for (int round = 0; round < max_rounds; ++round) {
      bool progress = false;
      for (auto& [id, node] : nodes_) {
        while (node->HasReady()) {
          progress = true;
          Ready rd = node->GetReady();
          Persist(*storages_[id], rd);
          if (rd.snapshot) applied_index_[id] = rd.snapshot->metadata().index();
          for (const Entry& e : rd.committed_entries) {
            applied_[id].push_back(e);
            applied_index_[id] = e.index();
          }
          for (const ReadState& rs : rd.read_states) reads_[id].push_back(rs);
          for (Message& m : AllMessages(rd)) queue_.push_back(std::move(m));
          node->Advance(rd);
        }
      }
      while (!queue_.empty()) {
        progress = true;
        Message m = std::move(queue_.front());
        queue_.pop_front();
        sent_.push_back(m);
        if (isolated_.count(m.from()) || isolated_.count(m.to())) continue;
        if (drop_ && drop_(m)) continue;
        auto it = nodes_.find(m.to());
        if (it == nodes_.end()) continue;
        (void)it->second->Step(m);
        if (m.type() == raftlock::v1::MSG_SNAP) nodes_.at(m.from())->ReportSnapshot(m.to(), true);
      }
      if (!progress) return;
    }
  }

  // One heartbeat round from `leader`, to quiescence: followers learn the
  // leader's commit index from it (a commit is not announced on its own).
  void Heartbeat(uint64_t leader) {
    Tick(leader);
    Stabilize();
  }

  // Campaigns `id` and runs to quiescence.
  void Elect(uint64_t id) {
    node(id).Campaign();
    Stabilize();
  }

  uint64_t Leader() {
    for (auto& [id, n] : nodes_) {
      if (n->role() == Role::kLeader) return id;
    }
    return kNone;
  }

  // Data of applied normal entries with non-empty data.
  std::vector<std::string> AppliedData(uint64_t id) {
    std::vector<std::string> out;
    for (const Entry& e : applied_[id]) {
      if (e.type() == raftlock::v1::ENTRY_NORMAL && !e.data().empty()) out.push_back(e.data());
    }
    return out;
  }

  std::map<uint64_t, std::vector<Entry>> applied_;
  std::map<uint64_t, uint64_t> applied_index_;
  std::map<uint64_t, std::vector<ReadState>> reads_;
  std::vector<Message> sent_;

 private:
  std::function<void(Config&)> tweak_;
  std::map<uint64_t, std::unique_ptr<MemoryStorage>> storages_;
  std::map<uint64_t, std::unique_ptr<Node>> nodes_;
  std::set<uint64_t> isolated_;
  std::function<bool(const Message&)> drop_;
  std::deque<Message> queue_;
};

}  // namespace raftlock::raft::test
