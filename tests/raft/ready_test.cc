// The Ready/Advance contract of node.h: what is durable before what is sent,
// the leader's self-acknowledgement, must_sync, and restart behaviour.
#include <catch2/catch.hpp>

#include "tests/raft/harness.h"

namespace raftlock::raft::test {
namespace {

using namespace raftlock::v1;

TEST_CASE("Ready: the leader's appends are replication messages, acks and votes are not",
          "[ready]") {
  Solo l = Leader();
  l.Step(AppResp(2, 2, 4));  // follower 2 replicating
  l.Drain();
  REQUIRE(l.node->Propose("x").ok());
  Ready rd = l.node->GetReady();
  CHECK(!OfType(rd.replication_messages, MSG_APP).empty());
  CHECK(OfType(rd.messages, MSG_APP).empty());
  CHECK(rd.entries.size() == 1);

  Solo f = Follower();
  f.Drain();
  Message app = Msg(MSG_APP, 2, 1, 2);
  app.set_index(3);
  app.set_log_term(1);
  *app.add_entries() = MakeEntry(4, 2);
  f.Step(app);
  rd = f.node->GetReady();
  CHECK(rd.replication_messages.empty());
  CHECK(OfType(rd.messages, MSG_APP_RESP).size() == 1);
  CHECK(rd.entries.size() == 1);  // persisted before the ack is sent
}

TEST_CASE("Ready: a vote is sent only with the hard state that records it", "[ready]") {
  Solo f = Follower();
  f.Drain();
  Message v = Msg(MSG_VOTE, 2, 1, 2);
  v.set_index(3);
  v.set_log_term(1);
  f.Step(v);
  Ready rd = f.node->GetReady();
  REQUIRE(OfType(rd.messages, MSG_VOTE_RESP).size() == 1);
  REQUIRE(rd.hard_state.has_value());
  CHECK(rd.hard_state->vote() == 2);
  CHECK(rd.hard_state->term() == 2);
  CHECK(rd.must_sync);
}

TEST_CASE("Ready: a single voter commits its entry only after the Ready carrying it is durable",
          "[ready]") {
  Solo s(NewStorage({1}));
  s.node->Campaign();
  s.Drain();
  auto idx = s.node->Propose("x");
  REQUIRE(idx.ok());
  Ready rd1 = s.node->GetReady();
  REQUIRE(rd1.entries.size() == 1);
  CHECK(rd1.committed_entries.empty());
  CHECK(s.node->Status().commit < *idx);
  Persist(*s.storage, rd1);
  s.node->Advance(rd1);
  CHECK(s.node->Status().commit == *idx);
  Ready rd2 = s.node->GetReady();
  REQUIRE(rd2.committed_entries.size() == 1);
  CHECK(rd2.committed_entries[0].data() == "x");
  CHECK(rd2.committed_entries[0].index() == *idx);
}

TEST_CASE("Ready: a leader counts its own entry toward a quorum only after Advance", "[ready]") {
  Solo s = Leader();
  s.Step(AppResp(2, 2, 4));
  s.Drain();
  REQUIRE(s.node->Status().commit == 4);
  auto idx = s.node->Propose("y");
  REQUIRE(idx.ok());
  s.Step(AppResp(2, 2, *idx));  // follower 2 has it durably; the leader not yet
  CHECK(s.node->Status().commit == 4);
  s.Cycle();  // the leader's write is now durable
  CHECK(s.node->Status().commit == *idx);
}

// A leader whose write is only written, not synced (AdvanceWritten), with
// follower 2 caught up through the no-op at index 4; returns the new index.
static uint64_t ProposeWrittenNotDurable(Solo& s) {
  s.Step(AppResp(2, 2, 4));
  s.Drain();
  auto idx = s.node->Propose("y");
  Ready rd = s.node->GetReady();
  Persist(*s.storage, rd);
  s.node->AdvanceWritten(rd);
  return idx.ok() ? *idx : 0;
}

TEST_CASE("Thesis 10.2.1: a leader does not count an entry it has written but not synced",
          "[ready]") {
  Solo s = Leader();
  const uint64_t idx = ProposeWrittenNotDurable(s);
  REQUIRE(idx == 5);
  s.Step(AppResp(2, 2, idx));  // one follower of three: no quorum without the leader
  CHECK(s.node->Status().commit == 4);
  s.node->MarkDurable(idx, s.node->term());
  CHECK(s.node->Status().commit == idx);
  Ready rd = s.node->GetReady();
  REQUIRE(rd.committed_entries.size() == 1);
  CHECK(rd.committed_entries[0].data() == "y");
}

TEST_CASE("Thesis 10.2.1: two followers commit an entry the leader has not yet synced", "[ready]") {
  Solo s = Leader();
  const uint64_t idx = ProposeWrittenNotDurable(s);
  s.Step(AppResp(2, 2, idx));
  s.Step(AppResp(3, 2, idx));
  CHECK(s.node->Status().commit == idx);
}

TEST_CASE("MarkDurable for an entry of another term, or already counted, changes nothing",
          "[ready]") {
  Solo s = Leader();
  const uint64_t idx = ProposeWrittenNotDurable(s);
  s.Step(AppResp(2, 2, idx));
  s.node->MarkDurable(idx, s.node->term() - 1);
  CHECK(s.node->Status().commit == 4);
  s.node->MarkDurable(4, s.node->term());
  CHECK(s.node->Status().commit == 4);
  CHECK(s.node->Status().progress.at(1).match == 4);
}

TEST_CASE("Ready: term_or_vote_changed is set only with a new term or vote", "[ready]") {
  Solo f = Follower();
  f.Drain();
  f.node->Campaign();
  Ready rd = f.node->GetReady();
  CHECK(rd.term_or_vote_changed);
  Persist(*f.storage, rd);
  f.node->Advance(rd);
  Solo s = Leader();
  s.Step(AppResp(2, 2, 4));
  rd = s.node->GetReady();
  REQUIRE(rd.hard_state.has_value());  // the commit moved
  CHECK_FALSE(rd.term_or_vote_changed);
}

TEST_CASE("Ready: committed entries never run ahead of what this node has persisted", "[ready]") {
  Solo f = Follower();
  f.Drain();
  Message app = Msg(MSG_APP, 2, 1, 2);
  app.set_index(3);
  app.set_log_term(1);
  app.set_commit(5);
  *app.add_entries() = MakeEntry(4, 2, "a");
  *app.add_entries() = MakeEntry(5, 2, "b");
  f.Step(app);
  Ready rd = f.node->GetReady();
  CHECK(rd.entries.size() == 2);
  CHECK(rd.hard_state->commit() == 5);
  CHECK(rd.committed_entries.empty());
  Persist(*f.storage, rd);
  f.node->Advance(rd);
  rd = f.node->GetReady();
  REQUIRE(rd.committed_entries.size() == 2);
  CHECK(rd.committed_entries[1].data() == "b");
}

TEST_CASE("Ready: must_sync is false when only the commit index changed", "[ready]") {
  Solo f = Follower({2, 2});
  f.Drain();
  Message hb = Msg(MSG_HEARTBEAT, 2, 1, 2);
  hb.set_commit(5);
  f.Step(hb);
  Ready rd = f.node->GetReady();
  REQUIRE(rd.hard_state.has_value());
  CHECK(rd.hard_state->commit() == 5);
  CHECK(rd.entries.empty());
  CHECK(!rd.must_sync);
}

TEST_CASE("Ready: soft and hard state appear only when they change", "[ready]") {
  Solo f = Follower();
  Ready first = f.Cycle();
  CHECK(first.committed_entries.size() == 3);  // the bootstrap entries
  CHECK(!first.hard_state.has_value());        // unchanged since start
  CHECK(!f.node->HasReady());
  f.node->Tick();
  CHECK(!f.node->HasReady());
  f.node->Campaign();
  Ready rd = f.node->GetReady();
  REQUIRE(rd.soft_state.has_value());
  CHECK(rd.soft_state->role == Role::kCandidate);
  REQUIRE(rd.hard_state.has_value());
  f.node->Advance(rd);
  Message rej = Msg(MSG_VOTE_RESP, 2, 1, 2);
  rej.set_reject(true);
  f.Step(rej);  // still pending: nothing changed
  rd = f.node->GetReady();
  CHECK(!rd.soft_state.has_value());
  CHECK(!rd.hard_state.has_value());
}

TEST_CASE("Ready: committed entries are bounded by max_committed_size_per_ready", "[ready]") {
  Solo f(NewStorage({1, 2, 3}, {1, 1, 1}), 1,
         [](Config& c) { c.max_committed_size_per_ready = 1; });
  // The bootstrap commit is 3; learn commit 6 from a heartbeat.
  Message hb = Msg(MSG_HEARTBEAT, 2, 1, 1);
  hb.set_commit(6);
  f.Step(hb);
  size_t readies = 0;
  uint64_t next = 1;
  while (f.node->HasReady() && readies < 20) {
    Ready rd = f.Cycle();
    CHECK(rd.committed_entries.size() <= 1);
    for (const Entry& e : rd.committed_entries) CHECK(e.index() == next++);
    ++readies;
  }
  CHECK(next == 7);
  CHECK(readies >= 6);
}

TEST_CASE("Step refuses local-only and malformed messages from the network", "[ready]") {
  Solo f = Follower();
  for (MessageType t : {MSG_HUP, MSG_BEAT, MSG_PROP, MSG_CHECK_QUORUM, MSG_READ_INDEX,
                        MSG_TRANSFER_LEADER, MSG_UNREACHABLE, MSG_SNAP_STATUS}) {
    CHECK(absl::IsInvalidArgument(f.node->Step(Msg(t, 2, 1, 1))));
  }
  CHECK(absl::IsInvalidArgument(f.node->Step(Msg(MSG_APP, 0, 1, 1))));  // no sender
  CHECK(absl::IsInvalidArgument(f.node->Step(Msg(MSG_APP, 2, 9, 1))));  // not for us
  CHECK(f.node->role() == Role::kFollower);
  CHECK(f.node->term() == 1);
}

TEST_CASE("restart: term, vote and commit come back from storage", "[ready][restart]") {
  auto st = NewStorage({1, 2, 3}, {2, 2});
  HardState hs;
  hs.set_term(5);
  hs.set_vote(2);
  hs.set_commit(4);
  st->SetHardState(hs);
  Solo s(std::move(st));
  NodeStatus status = s.node->Status();
  CHECK(status.term == 5);
  CHECK(status.vote == 2);
  CHECK(status.commit == 4);
  CHECK(status.last_index == 5);
  Ready rd = s.node->GetReady();
  CHECK(!rd.hard_state.has_value());  // nothing changed yet
  // A vote for another candidate in term 5 is still refused.
  s.node->Advance(rd);
  Message v = Msg(MSG_VOTE, 3, 1, 5);
  v.set_index(10);
  v.set_log_term(5);
  s.Step(v);
  auto resps = OfType(s.Drain(), MSG_VOTE_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].reject());
}

TEST_CASE("restart: entries at or below Config.applied are not emitted again", "[ready][restart]") {
  auto st = NewStorage({1, 2, 3}, {1, 1});
  HardState hs = st->hard_state();
  hs.set_commit(5);
  st->SetHardState(hs);
  Solo s(std::move(st), 1, [](Config& c) { c.applied = 4; });
  Ready rd = s.node->GetReady();
  REQUIRE(rd.committed_entries.size() == 1);
  CHECK(rd.committed_entries[0].index() == 5);
}

TEST_CASE("restart: a node that crashed before persisting loses only undurable state",
          "[ready][restart]") {
  Cluster c(3);
  c.Elect(1);
  REQUIRE(c.node(1).Propose("kept").ok());
  c.Stabilize();
  c.Heartbeat(1);
  c.Start(2);  // crash-restart node 2 from what it persisted
  CHECK(c.node(2).Status().commit == c.node(1).Status().commit);
  CHECK(c.node(2).term() == c.node(1).term());
  REQUIRE(c.node(1).Propose("next").ok());
  c.Stabilize();
  c.Heartbeat(1);
  CHECK(c.node(2).Status().commit == c.node(1).Status().commit);
}

TEST_CASE("Create rejects an invalid configuration", "[ready]") {
  MemoryStorage st;
  Config c = TestConfig(0, &st);
  CHECK(!Node::Create(c).ok());
  c = TestConfig(1, nullptr);
  CHECK(!Node::Create(c).ok());
  c = TestConfig(1, &st);
  c.election_tick = c.heartbeat_tick;
  CHECK(!Node::Create(c).ok());
}

}  // namespace
}  // namespace raftlock::raft::test
