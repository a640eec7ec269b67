// ReadIndex (thesis 6.4), leadership transfer (thesis 3.10), snapshots
// (section 7) and membership from the log (thesis 4.1).
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <memory>
#include <sstream>

#include "tests/raft/harness.h"

namespace raftlock::raft::test {
namespace {

using namespace raftlock::v1;

// A store whose snapshot can be made temporarily unavailable, or unreadable.
class FlakySnapshotStorage : public MemoryStorage {
 public:
  absl::StatusOr<Snapshot> GetSnapshot() const override {
    if (busy) return SnapshotTemporarilyUnavailableError();
    if (corrupt) return absl::DataLossError("snapshot file checksum mismatch");
    return MemoryStorage::GetSnapshot();
  }
  bool busy = false;
  bool corrupt = false;
};

Message HeartbeatResp(uint64_t from, uint64_t term, const std::string& ctx = "") {
  Message m = Msg(MSG_HEARTBEAT_RESP, from, 1, term);
  m.set_context(ctx);
  return m;
}

ConfChange CC(ConfChangeType type, uint64_t id) {
  ConfChange cc;
  cc.set_type(type);
  cc.set_node_id(id);
  return cc;
}

std::vector<uint64_t> Voters(const Node& n) {
  ConfState cs = n.conf_state();
  return std::vector<uint64_t>(cs.voters().begin(), cs.voters().end());
}

// ------------------------------------------------------------------ ReadIndex

TEST_CASE("thesis 6.4 ReadIndex with a single voter is answered at once", "[readindex]") {
  Solo s(NewStorage({1}));
  s.node->Campaign();
  s.Drain();  // the no-op commits after it is durable
  REQUIRE(s.node->ReadIndex("ctx").ok());
  Ready rd = s.Cycle();
  REQUIRE(rd.read_states.size() == 1);
  CHECK(rd.read_states[0].request_ctx == "ctx");
  CHECK(rd.read_states[0].index == 2);
}

TEST_CASE("thesis 6.4 ReadIndex waits for a quorum to confirm leadership via heartbeats",
          "[readindex]") {
  Solo s = Leader();
  s.Step(AppResp(2, 2, 4));  // commits the no-op
  s.Drain();
  REQUIRE(s.node->ReadIndex("r1").ok());
  Ready rd = s.Cycle();
  CHECK(rd.read_states.empty());
  auto hbs = OfType(rd.replication_messages, MSG_HEARTBEAT);
  REQUIRE(hbs.size() == 2);
  CHECK(hbs[0].context() == "r1");
  s.Step(HeartbeatResp(3, 2, "other"));  // an unrelated context confirms nothing
  CHECK(s.Cycle().read_states.empty());
  s.Step(HeartbeatResp(2, 2, "r1"));
  rd = s.Cycle();
  REQUIRE(rd.read_states.size() == 1);
  CHECK(rd.read_states[0].index == 4);
  CHECK(rd.read_states[0].request_ctx == "r1");
}

TEST_CASE("thesis 6.4 ReadIndex is deferred until the leader commits an entry of its term",
          "[readindex]") {
  Solo s = Leader();
  REQUIRE(s.node->Status().commit == 3);  // only term-1 entries committed
  REQUIRE(s.node->ReadIndex("r").ok());
  for (const Message& m : OfType(s.Drain(), MSG_HEARTBEAT)) CHECK(m.context().empty());
  s.Step(AppResp(2, 2, 4));
  auto hbs = OfType(s.Drain(), MSG_HEARTBEAT);
  REQUIRE(!hbs.empty());
  CHECK(hbs[0].context() == "r");
  s.Step(HeartbeatResp(2, 2, "r"));
  Ready rd = s.Cycle();
  REQUIRE(rd.read_states.size() == 1);
  CHECK(rd.read_states[0].index == 4);
}

TEST_CASE("thesis 6.4 ReadIndex on a follower fails with FailedPrecondition", "[readindex]") {
  Solo s = Follower();
  CHECK(absl::IsFailedPrecondition(s.node->ReadIndex("x")));
}

TEST_CASE("thesis 6.4 ReadIndex in a cluster returns the leader's commit index", "[readindex]") {
  Cluster c(3);
  c.Elect(1);
  REQUIRE(c.node(1).Propose("w").ok());
  c.Stabilize();
  REQUIRE(c.node(1).ReadIndex("q").ok());
  c.Stabilize();
  REQUIRE(c.reads_[1].size() == 1);
  CHECK(c.reads_[1][0].index == c.node(1).Status().commit);
}

// ------------------------------------------------------------------ transfer

TEST_CASE("thesis 3.10 leadership transfer to an up-to-date voter", "[transfer]") {
  Cluster c(3, [](Config& cfg) {
    cfg.pre_vote = true;
    cfg.check_quorum = true;
  });
  c.Elect(1);
  REQUIRE(c.Leader() == 1);
  const uint64_t term = c.node(1).term();
  REQUIRE(c.node(1).TransferLeader(2).ok());
  c.Stabilize();
  CHECK(c.Leader() == 2);
  CHECK(c.node(2).term() == term + 1);
  bool timeout_now = false;
  bool transfer_votes = false;
  for (const Message& m : c.sent_) {
    timeout_now |= m.type() == MSG_TIMEOUT_NOW && m.from() == 1 && m.to() == 2;
    transfer_votes |= m.type() == MSG_VOTE && m.from() == 2 && m.leader_transfer();
  }
  CHECK(timeout_now);
  CHECK(transfer_votes);  // bypassed pre-vote and leader stickiness
}

TEST_CASE("thesis 3.10 a lagging transfer target is caught up before MSG_TIMEOUT_NOW",
          "[transfer]") {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 3; ++i) REQUIRE(c.node(1).Propose("p").ok());
  c.Stabilize();
  c.Heal();
  const uint64_t last = c.node(1).Status().last_index;
  c.sent_.clear();
  REQUIRE(c.node(1).TransferLeader(3).ok());
  c.Stabilize();
  CHECK(c.Leader() == 3);
  bool caught_up = false;
  for (const Message& m : c.sent_) {
    if (m.type() == MSG_APP_RESP && m.from() == 3 && !m.reject() && m.index() == last) {
      caught_up = true;
    }
    if (m.type() == MSG_TIMEOUT_NOW) CHECK(caught_up);
  }
  CHECK(caught_up);
}

TEST_CASE("thesis 3.10 proposals are refused with Unavailable during a transfer", "[transfer]") {
  Solo s = Leader();
  REQUIRE(s.node->TransferLeader(3).ok());  // 3 is behind: catching up
  CHECK(s.node->Status().lead_transferee == 3);
  auto r = s.node->Propose("x");
  CHECK(absl::IsUnavailable(r.status()));
}

TEST_CASE("thesis 3.10 a transfer that does not finish within an election timeout is aborted",
          "[transfer]") {
  Solo s = Leader();
  REQUIRE(s.node->TransferLeader(3).ok());
  s.Ticks(9);
  CHECK(s.node->Status().lead_transferee == 3);
  s.Ticks(1);
  CHECK(s.node->Status().lead_transferee == kNone);
  CHECK(s.node->role() == Role::kLeader);
  CHECK(s.node->Propose("x").ok());
}

// The transfer's own timer must not restart the check-quorum timer: a leader
// cut off from every peer, asked again and again to transfer, still steps down.
TEST_CASE("thesis 3.10 and 6.2 repeated transfers do not postpone the leader's quorum check",
          "[transfer][checkquorum]") {
  Solo s = Leader({}, [](Config& c) { c.check_quorum = true; });
  REQUIRE(s.node->role() == Role::kLeader);
  uint64_t target = 2;
  for (int tick = 1; tick <= 30 && s.node->role() == Role::kLeader; ++tick) {
    if (tick % 9 == 0) {
      REQUIRE(s.node->TransferLeader(target).ok());  // aborts the previous one
      target = target == 2 ? 3 : 2;
    }
    s.Ticks(1);
    s.Drain();  // nothing ever reaches the peers, nothing comes back
  }
  CHECK(s.node->role() == Role::kFollower);
}

TEST_CASE("thesis 3.10 MSG_TIMEOUT_NOW starts a real election at once, skipping pre-vote",
          "[transfer]") {
  Solo s = Follower({}, [](Config& c) {
    c.pre_vote = true;
    c.check_quorum = true;
  });
  s.Drain();
  s.Step(Msg(MSG_TIMEOUT_NOW, 2, 1, 1));
  CHECK(s.node->role() == Role::kCandidate);
  CHECK(s.node->term() == 2);
  auto votes = OfType(s.Drain(), MSG_VOTE);
  REQUIRE(votes.size() == 2);
  CHECK(votes[0].leader_transfer());
}

TEST_CASE("thesis 3.10 TransferLeader is refused on followers and to non-voters", "[transfer]") {
  Solo f = Follower();
  CHECK(absl::IsFailedPrecondition(f.node->TransferLeader(2)));
  Solo l = Leader();
  CHECK(absl::IsInvalidArgument(l.node->TransferLeader(9)));
}

// ------------------------------------------------------------------ snapshots

TEST_CASE("§7 a follower behind the leader's first index is sent the snapshot", "[snapshot]") {
  Solo s = Leader();
  s.Step(AppResp(2, 2, 4));
  s.Drain();
  REQUIRE(s.storage->CreateSnapshot(4, s.node->conf_state(), "image").ok());
  REQUIRE(s.storage->Compact(4).ok());
  s.Step(HeartbeatResp(3, 2));  // 3 is alive but needs index 4, now compacted
  Ready rd = s.Cycle();
  auto snaps = OfType(rd.replication_messages, MSG_SNAP);
  REQUIRE(snaps.size() == 1);
  CHECK(snaps[0].to() == 3);
  CHECK(snaps[0].snapshot().metadata().index() == 4);
  CHECK(snaps[0].snapshot().data() == "image");
  CHECK(s.node->Status().progress.at(3).state == ProgressState::kSnapshot);
  SECTION("ReportSnapshot success resumes probing past the snapshot") {
    s.node->ReportSnapshot(3, true);
    CHECK(s.node->Status().progress.at(3).state == ProgressState::kProbe);
    CHECK(s.node->Status().progress.at(3).next == 5);
  }
  SECTION("ReportSnapshot failure resumes probing from match") {
    s.node->ReportSnapshot(3, false);
    CHECK(s.node->Status().progress.at(3).state == ProgressState::kProbe);
    CHECK(s.node->Status().progress.at(3).next == 1);
  }
}

// Node 1 of {1, 2, 3}, leader of term 2, whose log up to index 4 is
// compacted into a snapshot: node 3, never heard from, needs that snapshot.
// *raw is the store, to make its snapshot unavailable or unreadable.
Solo LeaderWithCompactedLog(FlakySnapshotStorage** raw,
                            std::shared_ptr<spdlog::logger> logger = nullptr) {
  auto st = std::make_unique<FlakySnapshotStorage>();
  *raw = st.get();
  REQUIRE(Node::Bootstrap(*st, {1, 2, 3}).ok());
  Solo s(std::move(st), 1, [&](Config& c) {
    if (logger) c.logger = logger;
  });
  s.Drain();
  s.node->Campaign();
  s.Drain();
  s.Step(Msg(MSG_VOTE_RESP, 2, 1, 2));
  s.Drain();
  s.Step(AppResp(2, 2, 4));
  s.Drain();
  REQUIRE((*raw)->CreateSnapshot(4, s.node->conf_state(), "img").ok());
  REQUIRE((*raw)->Compact(4).ok());
  return s;
}

TEST_CASE("§7 a temporarily unavailable snapshot is retried later", "[snapshot]") {
  FlakySnapshotStorage* raw = nullptr;
  Solo s = LeaderWithCompactedLog(&raw);
  raw->busy = true;
  s.Step(HeartbeatResp(3, 2));
  CHECK(OfType(s.Drain(), MSG_SNAP).empty());
  CHECK(s.node->Status().progress.at(3).state == ProgressState::kProbe);
  raw->busy = false;
  s.Step(HeartbeatResp(3, 2));
  CHECK(OfType(s.Drain(), MSG_SNAP).size() == 1);
}

TEST_CASE("§7 a snapshot that cannot be loaded is logged once, not at every heartbeat",
          "[snapshot]") {
  std::ostringstream log_text;
  auto logger = std::make_shared<spdlog::logger>(
      "raft-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text));
  FlakySnapshotStorage* raw = nullptr;
  Solo s = LeaderWithCompactedLog(&raw, logger);
  raw->corrupt = true;
  for (int i = 0; i < 5; ++i) {
    s.Step(HeartbeatResp(3, 2));
    CHECK(OfType(s.Drain(), MSG_SNAP).empty());
  }
  auto count = [&](const std::string& needle) {
    const std::string text = log_text.str();
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      ++n;
    }
    return n;
  };
  CHECK(count("cannot load the snapshot that node 3 needs") == 1);
  CHECK(count("checksum mismatch") == 1);
  raw->corrupt = false;
  s.Step(HeartbeatResp(3, 2));
  CHECK(OfType(s.Drain(), MSG_SNAP).size() == 1);
}

TEST_CASE("§7 a follower installs a snapshot: Ready.snapshot, conf state, acknowledgement",
          "[snapshot]") {
  Solo s = Follower();
  s.Drain();
  Message m = Msg(MSG_SNAP, 2, 1, 2);
  auto* md = m.mutable_snapshot()->mutable_metadata();
  md->set_index(10);
  md->set_term(2);
  for (uint64_t v : {1, 2, 3, 4}) md->mutable_conf_state()->add_voters(v);
  m.mutable_snapshot()->set_data("sm");
  s.Step(m);
  Ready rd = s.node->GetReady();
  REQUIRE(rd.snapshot.has_value());
  CHECK(rd.snapshot->data() == "sm");
  CHECK(rd.must_sync);
  CHECK(rd.hard_state->commit() == 10);
  CHECK(rd.committed_entries.empty());
  auto resps = OfType(rd.messages, MSG_APP_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].index() == 10);
  CHECK(Voters(*s.node).size() == 4);
  Persist(*s.storage, rd);
  s.node->Advance(rd);
  CHECK(s.storage->FirstIndex() == 11);
  CHECK(s.node->Status().applied == 10);
}

TEST_CASE("§7 a snapshot at or below the commit index is ignored", "[snapshot]") {
  Solo s = Follower();
  s.Drain();
  Message m = Msg(MSG_SNAP, 2, 1, 2);
  m.mutable_snapshot()->mutable_metadata()->set_index(2);
  m.mutable_snapshot()->mutable_metadata()->set_term(1);
  s.Step(m);
  Ready rd = s.Cycle();
  CHECK(!rd.snapshot.has_value());
  auto resps = OfType(rd.messages, MSG_APP_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].index() == 3);
}

TEST_CASE("§7 a lagging follower catches up through a snapshot in a cluster", "[snapshot]") {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) REQUIRE(c.node(1).Propose("p" + std::to_string(i)).ok());
  c.Stabilize();
  const uint64_t commit = c.node(1).Status().commit;
  REQUIRE(c.storage(1).CreateSnapshot(commit, c.node(1).conf_state(), "snap").ok());
  REQUIRE(c.storage(1).Compact(commit).ok());
  c.Heal();
  for (int i = 0; i < 3; ++i) {
    c.Tick(1);
    c.Stabilize();
  }
  CHECK(c.storage(3).GetSnapshot()->metadata().index() == commit);
  REQUIRE(c.node(1).Propose("after").ok());
  c.Stabilize();
  c.Heartbeat(1);
  auto data = c.AppliedData(3);
  REQUIRE(!data.empty());
  CHECK(data.back() == "after");
  CHECK(c.node(3).Status().commit == c.node(1).Status().commit);
}

// ------------------------------------------------------------------ membership

TEST_CASE("thesis 4.1 Bootstrap writes one ADD_NODE per voter at term 1, committed", "[conf]") {
  MemoryStorage st;
  REQUIRE(Node::Bootstrap(st, {5, 6, 7}).ok());
  CHECK(st.LastIndex() == 3);
  auto ents = st.Entries(1, 4, UINT64_MAX);
  REQUIRE(ents.ok());
  for (size_t i = 0; i < 3; ++i) {
    CHECK((*ents)[i].term() == 1);
    CHECK((*ents)[i].type() == ENTRY_CONF_CHANGE);
    ConfChange cc;
    REQUIRE(cc.ParseFromString((*ents)[i].data()));
    CHECK(cc.type() == CONF_CHANGE_ADD_NODE);
    CHECK(cc.node_id() == 5 + i);
  }
  CHECK(st.hard_state().commit() == 3);
  CHECK(st.hard_state().term() == 1);
  CHECK(!Node::Bootstrap(st, {5, 6, 7}).ok());  // not empty any more
  MemoryStorage dup;
  CHECK(!Node::Bootstrap(dup, {1, 1}).ok());
}

TEST_CASE("thesis 4.1 the configuration is replayed from committed log entries on Create",
          "[conf]") {
  Solo s(NewStorage({1, 2, 3}));
  CHECK(Voters(*s.node) == std::vector<uint64_t>{1, 2, 3});
}

TEST_CASE("thesis 4.1 restart: snapshot conf state plus later committed conf changes only",
          "[conf]") {
  auto st = std::make_unique<MemoryStorage>();
  Snapshot snap;
  snap.mutable_metadata()->set_index(3);
  snap.mutable_metadata()->set_term(1);
  for (uint64_t v : {1, 2, 3}) snap.mutable_metadata()->mutable_conf_state()->add_voters(v);
  REQUIRE(st->ApplySnapshot(snap).ok());
  Entry add4 = MakeEntry(4, 1, CC(CONF_CHANGE_ADD_NODE, 4).SerializeAsString());
  add4.set_type(ENTRY_CONF_CHANGE);
  Entry rm2 = MakeEntry(5, 1, CC(CONF_CHANGE_REMOVE_NODE, 2).SerializeAsString());
  rm2.set_type(ENTRY_CONF_CHANGE);
  REQUIRE(st->Append({add4, rm2}).ok());
  HardState hs;
  hs.set_term(1);
  hs.set_commit(4);  // the removal is not committed
  st->SetHardState(hs);
  Solo s(std::move(st));
  REQUIRE(s.node != nullptr);
  CHECK(Voters(*s.node) == std::vector<uint64_t>{1, 2, 3, 4});
}

TEST_CASE("thesis 4.1 only one configuration change may be pending at a time", "[conf]") {
  Solo s(NewStorage({1}));
  s.node->Campaign();
  s.Drain();
  auto first = s.node->ProposeConfChange(CC(CONF_CHANGE_ADD_NODE, 2));
  REQUIRE(first.ok());
  CHECK(
      absl::IsFailedPrecondition(s.node->ProposeConfChange(CC(CONF_CHANGE_ADD_NODE, 3)).status()));
  s.Drain();  // committed and applied at Advance
  CHECK(Voters(*s.node) == std::vector<uint64_t>{1, 2});
  CHECK(s.node->ProposeConfChange(CC(CONF_CHANGE_ADD_NODE, 3)).ok());
}

TEST_CASE("thesis 4.1 a committed conf change is applied at Advance, not before", "[conf]") {
  Solo s(NewStorage({1}));
  s.node->Campaign();
  s.Drain();
  REQUIRE(s.node->ProposeConfChange(CC(CONF_CHANGE_ADD_NODE, 2)).ok());
  s.Cycle();  // persists the entry
  Ready rd = s.node->GetReady();
  REQUIRE(rd.committed_entries.size() == 1);
  CHECK(Voters(*s.node) == std::vector<uint64_t>{1});
  s.node->Advance(rd);
  CHECK(Voters(*s.node) == std::vector<uint64_t>{1, 2});
}

TEST_CASE("thesis 4.1 an added node receives the log and joins the quorum", "[conf]") {
  Cluster c(3);
  c.Elect(1);
  c.AddEmpty(4);
  REQUIRE(c.node(1).ProposeConfChange(CC(CONF_CHANGE_ADD_NODE, 4)).ok());
  c.Stabilize();
  for (uint64_t id : {1, 2, 3, 4}) {
    CHECK(Voters(c.node(id)) == std::vector<uint64_t>{1, 2, 3, 4});
  }
  CHECK(c.storage(4).LastIndex() == c.storage(1).LastIndex());
  // With 4 voters the quorum is 3: 1 and 4 alone cannot commit.
  c.Isolate(2);
  c.Isolate(3);
  auto idx = c.node(1).Propose("q");
  c.Stabilize();
  CHECK(c.node(1).Status().commit < *idx);
}

TEST_CASE("thesis 4.1 removing a node shrinks the quorum", "[conf]") {
  Cluster c(4);
  c.Elect(1);
  REQUIRE(c.node(1).ProposeConfChange(CC(CONF_CHANGE_REMOVE_NODE, 4)).ok());
  c.Stabilize();
  CHECK(Voters(c.node(1)) == std::vector<uint64_t>{1, 2, 3});
  c.Isolate(3);
  c.Isolate(4);
  auto idx = c.node(1).Propose("two of three");
  c.Stabilize();
  CHECK(c.node(1).Status().commit == *idx);
}

TEST_CASE("thesis 4.1 a leader removed from the configuration steps down", "[conf]") {
  Cluster c(3);
  c.Elect(1);
  REQUIRE(c.node(1).ProposeConfChange(CC(CONF_CHANGE_REMOVE_NODE, 1)).ok());
  c.Stabilize();
  CHECK(c.node(1).role() == Role::kFollower);
  // The followers heard of the commit at once: the old leader sends no
  // heartbeat after stepping down.
  CHECK(Voters(c.node(2)) == std::vector<uint64_t>{2, 3});
  c.node(2).Campaign();
  c.Stabilize();
  CHECK(c.Leader() == 2);
}

}  // namespace
}  // namespace raftlock::raft::test
