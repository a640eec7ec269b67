// Elections: sections 5.1, 5.2, 5.4.1 of the Raft paper, PreVote (thesis
// 9.6), CheckQuorum (thesis 6.2) and leader stickiness (thesis 4.2.3).
#include <catch2/catch.hpp>

#include "tests/raft/harness.h"

namespace raftlock::raft::test {
namespace {

using namespace raftlock::v1;  // message types

int TicksUntilCampaign(uint64_t seed) {
  Solo s = Follower({}, [&](Config& c) { c.random_seed = seed; });
  for (int i = 1; i <= 100; ++i) {
    s.node->Tick();
    if (s.node->role() == Role::kCandidate) return i;
  }
  return -1;
}

TEST_CASE("§5.2 a follower that hears nothing campaigns: term+1, votes for itself, asks all",
          "[election]") {
  Solo s = Follower();
  s.Drain();
  s.Ticks(9);
  CHECK(s.node->role() == Role::kFollower);  // never before election_tick
  s.Ticks(11);                               // always by 2*election_tick
  REQUIRE(s.node->role() == Role::kCandidate);
  CHECK(s.node->term() == 2);
  Ready rd = s.node->GetReady();
  REQUIRE(rd.hard_state);
  CHECK(rd.hard_state->vote() == 1);
  CHECK(rd.hard_state->term() == 2);
  CHECK(rd.must_sync);
  auto votes = OfType(rd.messages, MSG_VOTE);
  REQUIRE(votes.size() == 2);
  for (const Message& v : votes) {
    CHECK(v.term() == 2);
    CHECK(v.index() == 3);
    CHECK(v.log_term() == 1);
  }
  CHECK(rd.replication_messages.empty());
}

TEST_CASE("§5.2 election timeouts are randomized in election_tick..2*election_tick-1 by seed",
          "[election]") {
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    const int t = TicksUntilCampaign(seed);
    CHECK(t >= 10);
    CHECK(t < 20);
    seen.insert(t);
    CHECK(TicksUntilCampaign(seed) == t);  // deterministic per seed
  }
  CHECK(seen.size() > 3);
}

TEST_CASE("§5.2 a candidate that receives votes from a majority becomes leader", "[election]") {
  Solo s = Follower();
  s.node->Campaign();
  s.Drain();
  s.Step(Msg(MSG_VOTE_RESP, 2, 1, 2));
  CHECK(s.node->role() == Role::kLeader);
  CHECK(s.node->leader() == 1);
}

TEST_CASE("§5.2 a candidate rejected by a majority returns to follower", "[election]") {
  Solo s = Follower();
  s.node->Campaign();
  s.Drain();
  Message rej = Msg(MSG_VOTE_RESP, 2, 1, 2);
  rej.set_reject(true);
  s.Step(rej);
  CHECK(s.node->role() == Role::kCandidate);  // still pending
  rej.set_from(3);
  s.Step(rej);
  CHECK(s.node->role() == Role::kFollower);
  CHECK(s.node->term() == 2);
}

TEST_CASE("§5.2 a candidate that hears from a leader of its term becomes its follower",
          "[election]") {
  Solo s = Follower();
  s.node->Campaign();
  s.Drain();
  Message app = Msg(MSG_APP, 3, 1, 2);
  app.set_index(3);
  app.set_log_term(1);
  s.Step(app);
  CHECK(s.node->role() == Role::kFollower);
  CHECK(s.node->leader() == 3);
}

TEST_CASE("Figure 2 a node grants at most one vote per term", "[election]") {
  Solo s = Follower();
  s.Drain();
  Message v2 = Msg(MSG_VOTE, 2, 1, 2);
  v2.set_index(3);
  v2.set_log_term(1);
  s.Step(v2);
  Message v3 = v2;
  v3.set_from(3);
  s.Step(v3);
  s.Step(v2);  // a retransmission from the candidate we voted for
  Ready rd = s.node->GetReady();
  auto resps = OfType(rd.messages, MSG_VOTE_RESP);
  REQUIRE(resps.size() == 3);
  CHECK(!resps[0].reject());
  CHECK(resps[1].reject());
  CHECK(!resps[2].reject());
  CHECK(rd.hard_state->vote() == 2);
}

TEST_CASE("§5.4.1 voter rejects a candidate whose last term is lower", "[election]") {
  Solo s = Follower({2, 2});  // last entry (5, 2)
  s.Drain();
  Message v = Msg(MSG_VOTE, 2, 1, 3);
  v.set_index(9);
  v.set_log_term(1);
  s.Step(v);
  auto resps = OfType(s.Drain(), MSG_VOTE_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].reject());
  CHECK(s.node->Status().vote == kNone);
}

TEST_CASE("§5.4.1 voter rejects a candidate with the same last term but a shorter log",
          "[election]") {
  Solo s = Follower({2, 2});
  s.Drain();
  Message v = Msg(MSG_VOTE, 2, 1, 3);
  v.set_index(4);
  v.set_log_term(2);
  s.Step(v);
  auto resps = OfType(s.Drain(), MSG_VOTE_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].reject());
}

TEST_CASE("§5.4.1 voter grants a candidate with a higher last term even if its log is shorter",
          "[election]") {
  Solo s = Follower({2, 2});
  s.Drain();
  Message v = Msg(MSG_VOTE, 2, 1, 4);
  v.set_index(3);
  v.set_log_term(3);
  s.Step(v);
  auto resps = OfType(s.Drain(), MSG_VOTE_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(!resps[0].reject());
  CHECK(resps[0].term() == 4);
  CHECK(s.node->Status().vote == 2);
}

TEST_CASE("§5.1 a leader that sees a higher term steps down to follower", "[election]") {
  Solo s = Leader();
  REQUIRE(s.node->role() == Role::kLeader);
  Message resp = Msg(MSG_APP_RESP, 2, 1, 5);
  s.Step(resp);
  CHECK(s.node->role() == Role::kFollower);
  CHECK(s.node->term() == 5);
  CHECK(s.node->leader() == kNone);
  Solo t = Leader();
  t.Step(Msg(MSG_HEARTBEAT, 3, 1, 7));
  CHECK(t.node->role() == Role::kFollower);
  CHECK(t.node->leader() == 3);  // a leader's message names the new leader
}

TEST_CASE("§5.1 requests with a stale term are not granted", "[election]") {
  Solo s = Follower({3});  // term 3
  s.Drain();
  Message v = Msg(MSG_VOTE, 2, 1, 2);
  v.set_index(10);
  v.set_log_term(3);
  s.Step(v);
  for (const Message& m : s.Drain()) CHECK(!(m.type() == MSG_VOTE_RESP && !m.reject()));
  CHECK(s.node->term() == 3);
  CHECK(s.node->Status().vote == kNone);
}

TEST_CASE("§5.1 a stale leader's append is answered with the newer term (it steps down)",
          "[election]") {
  Solo s = Follower({3}, [](Config& c) { c.check_quorum = true; });
  s.Drain();
  Message app = Msg(MSG_APP, 2, 1, 2);
  app.set_index(3);
  app.set_log_term(1);
  s.Step(app);
  auto resps = OfType(s.Drain(), MSG_APP_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].term() == 3);
  CHECK(s.node->leader() == kNone);  // not accepted as leader
}

TEST_CASE("§5.2 a single-voter cluster elects itself at once", "[election]") {
  Solo s(NewStorage({1}));
  s.node->Campaign();
  CHECK(s.node->role() == Role::kLeader);
  CHECK(s.node->term() == 2);
}

TEST_CASE("§5.2 a three-node cluster elects exactly one leader by ticking", "[election]") {
  Cluster c(3);
  for (int i = 0; i < 40 && c.Leader() == kNone; ++i) {
    for (uint64_t id : c.ids()) c.Tick(id);
    c.Stabilize();
  }
  const uint64_t lead = c.Leader();
  REQUIRE(lead != kNone);
  int leaders = 0;
  for (uint64_t id : c.ids()) {
    leaders += c.node(id).role() == Role::kLeader;
    CHECK(c.node(id).leader() == lead);
    CHECK(c.node(id).term() == c.node(lead).term());
  }
  CHECK(leaders == 1);
}

TEST_CASE("thesis 9.6 a pre-candidate keeps its term and vote and asks for term+1", "[prevote]") {
  Solo s = Follower({}, [](Config& c) { c.pre_vote = true; });
  s.Drain();
  s.node->Campaign();
  CHECK(s.node->role() == Role::kPreCandidate);
  CHECK(s.node->term() == 1);
  Ready rd = s.node->GetReady();
  CHECK(!rd.hard_state.has_value());
  auto pv = OfType(rd.messages, MSG_PRE_VOTE);
  REQUIRE(pv.size() == 2);
  CHECK(pv[0].term() == 2);
  CHECK(OfType(rd.messages, MSG_VOTE).empty());
}

TEST_CASE("thesis 9.6 granting a pre-vote changes neither term nor vote", "[prevote]") {
  Solo s = Follower({}, [](Config& c) { c.pre_vote = true; });
  s.Drain();
  Message pv = Msg(MSG_PRE_VOTE, 2, 1, 2);
  pv.set_index(3);
  pv.set_log_term(1);
  s.Step(pv);
  auto resps = OfType(s.Drain(), MSG_PRE_VOTE_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(!resps[0].reject());
  CHECK(resps[0].term() == 2);
  CHECK(s.node->term() == 1);
  CHECK(s.node->Status().vote == kNone);
}

TEST_CASE("thesis 9.6 a pre-vote is refused to a candidate with a less up-to-date log",
          "[prevote]") {
  Solo s = Follower({2}, [](Config& c) { c.pre_vote = true; });
  s.Drain();
  Message pv = Msg(MSG_PRE_VOTE, 2, 1, 3);
  pv.set_index(3);
  pv.set_log_term(1);
  s.Step(pv);
  auto resps = OfType(s.Drain(), MSG_PRE_VOTE_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].reject());
}

TEST_CASE("thesis 9.6 refusing a lagging pre-candidate after an election timeout campaigns at once",
          "[prevote]") {
  Solo s = Follower({2}, [](Config& c) { c.pre_vote = true; });
  s.Drain();
  s.Ticks(10);  // election_tick: no leader heard for the minimum timeout
  REQUIRE(s.node->role() == Role::kFollower);
  const uint64_t term = s.node->term();
  Message pv = Msg(MSG_PRE_VOTE, 2, 1, 3);
  pv.set_index(3);
  pv.set_log_term(1);
  s.Step(pv);
  auto out = s.Drain();
  auto resps = OfType(out, MSG_PRE_VOTE_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].reject());
  CHECK(s.node->role() == Role::kPreCandidate);
  CHECK(OfType(out, MSG_PRE_VOTE).size() == 2);
  CHECK(s.node->term() == term);  // pre-vote: the term moves only on winning
}

TEST_CASE(
    "thesis 9.6 refusing a lagging pre-candidate before an election timeout does not campaign",
    "[prevote]") {
  Solo s = Follower({2}, [](Config& c) { c.pre_vote = true; });
  s.Drain();
  s.Ticks(5);
  Message pv = Msg(MSG_PRE_VOTE, 2, 1, 3);
  pv.set_index(3);
  pv.set_log_term(1);
  s.Step(pv);
  auto out = s.Drain();
  REQUIRE(OfType(out, MSG_PRE_VOTE_RESP).size() == 1);
  CHECK(s.node->role() == Role::kFollower);
  CHECK(OfType(out, MSG_PRE_VOTE).empty());
}

TEST_CASE("thesis 9.6 winning the pre-vote starts a real election at term+1", "[prevote]") {
  Solo s = Follower({}, [](Config& c) { c.pre_vote = true; });
  s.node->Campaign();
  s.Drain();
  s.Step(Msg(MSG_PRE_VOTE_RESP, 2, 1, 2));
  CHECK(s.node->role() == Role::kCandidate);
  CHECK(s.node->term() == 2);
  CHECK(OfType(s.Drain(), MSG_VOTE).size() == 2);
}

TEST_CASE("thesis 9.6 a partitioned node rejoining does not disrupt a healthy leader",
          "[prevote]") {
  Cluster c(3, [](Config& cfg) {
    cfg.pre_vote = true;
    cfg.check_quorum = true;
  });
  c.Elect(1);
  REQUIRE(c.Leader() == 1);
  const uint64_t term = c.node(1).term();
  c.Isolate(3);
  for (int i = 0; i < 100; ++i) {
    c.Tick(3);
    c.Stabilize();
  }
  CHECK(c.node(3).term() == term);  // pre-votes never raised its term
  c.Heal();
  for (int i = 0; i < 5; ++i) {
    for (uint64_t id : c.ids()) c.Tick(id);
    c.Stabilize();
  }
  CHECK(c.Leader() == 1);
  CHECK(c.node(1).term() == term);
  CHECK(c.node(3).leader() == 1);
}

TEST_CASE("without pre-vote a rejoining partitioned node does disrupt the leader (contrast)",
          "[prevote]") {
  Cluster c(3);
  c.Elect(1);
  const uint64_t term = c.node(1).term();
  c.Isolate(3);
  for (int i = 0; i < 100; ++i) {
    c.Tick(3);
    c.Stabilize();
  }
  CHECK(c.node(3).term() > term);
  c.Heal();
  for (int i = 0; i < 30; ++i) {
    for (uint64_t id : c.ids()) c.Tick(id);
    c.Stabilize();
  }
  CHECK(c.node(1).term() > term);  // its higher-term campaign forced a new term
}

TEST_CASE("thesis 6.2 check quorum: a leader cut off from a quorum steps down", "[checkquorum]") {
  Cluster c(3, [](Config& cfg) { cfg.check_quorum = true; });
  c.Elect(1);
  REQUIRE(c.Leader() == 1);
  c.Isolate(1);
  for (int i = 0; i < 20; ++i) {
    c.Tick(1);
    c.Stabilize();
  }
  CHECK(c.node(1).role() == Role::kFollower);
}

TEST_CASE("thesis 6.2 check quorum: a leader hearing from a quorum stays leader", "[checkquorum]") {
  Cluster c(3, [](Config& cfg) { cfg.check_quorum = true; });
  c.Elect(1);
  c.Isolate(3);  // one follower down still leaves a quorum
  for (int i = 0; i < 50; ++i) {
    c.Tick(1);
    c.Stabilize();
  }
  CHECK(c.node(1).role() == Role::kLeader);
}

TEST_CASE("thesis 4.2.3 leader stickiness: a follower that heard from a leader ignores votes",
          "[checkquorum]") {
  Solo s = Follower({}, [](Config& c) { c.check_quorum = true; });
  s.Step(Msg(MSG_HEARTBEAT, 2, 1, 2));
  s.Drain();
  Message v = Msg(MSG_VOTE, 3, 1, 3);
  v.set_index(10);
  v.set_log_term(2);
  s.Step(v);
  CHECK(s.node->term() == 2);
  CHECK(OfType(s.Drain(), MSG_VOTE_RESP).empty());
  // After an election timeout without the leader, the vote is considered.
  s.Ticks(10);
  s.Drain();
  if (s.node->role() == Role::kFollower) {
    s.Step(v);
    CHECK(s.node->term() == 3);
  } else {
    CHECK(s.node->term() >= 3);
  }
}

// The follower's randomized timeout (seeded by TestConfig) is above
// election_tick here, so campaigning at exactly election_tick ticks is the
// rule under test, not its own timeout.
Solo StickyFollowerWithIgnoredPreVote() {
  Solo s = Follower({}, [](Config& c) {
    c.check_quorum = true;
    c.pre_vote = true;
  });
  s.Step(Msg(MSG_HEARTBEAT, 2, 1, 2));
  s.Drain();
  s.Ticks(3);
  Message pv = Msg(MSG_PRE_VOTE, 3, 1, 3);
  pv.set_index(10);
  pv.set_log_term(2);
  s.Step(pv);
  return s;
}

TEST_CASE("thesis 9.6 a pre-vote ignored inside the lease makes the follower campaign when it ends",
          "[checkquorum][prevote]") {
  Solo s = StickyFollowerWithIgnoredPreVote();
  CHECK(OfType(s.Drain(), MSG_PRE_VOTE_RESP).empty());  // stickiness: ignored
  s.Ticks(6);                                           // 9 ticks without the leader
  s.Drain();
  CHECK(s.node->role() == Role::kFollower);
  s.Ticks(1);  // election_tick without the leader, and a peer timed out too
  auto out = s.Drain();
  CHECK(s.node->role() == Role::kPreCandidate);
  CHECK(OfType(out, MSG_PRE_VOTE).size() == 2);
}

TEST_CASE("thesis 9.6 a leader heard after an ignored pre-vote cancels the early campaign",
          "[checkquorum][prevote]") {
  Solo s = StickyFollowerWithIgnoredPreVote();
  s.Drain();
  s.Ticks(2);
  s.Step(Msg(MSG_HEARTBEAT, 2, 1, 2));  // the leader is alive after all
  s.Drain();
  s.Ticks(10);
  s.Drain();
  CHECK(s.node->role() == Role::kFollower);
}

TEST_CASE("thesis 4.2.3 a leader-transfer vote overrides leader stickiness", "[checkquorum]") {
  Solo s = Follower({}, [](Config& c) { c.check_quorum = true; });
  s.Step(Msg(MSG_HEARTBEAT, 2, 1, 2));
  s.Drain();
  Message v = Msg(MSG_VOTE, 3, 1, 3);
  v.set_index(10);
  v.set_log_term(2);
  v.set_leader_transfer(true);
  s.Step(v);
  CHECK(s.node->term() == 3);
  auto resps = OfType(s.Drain(), MSG_VOTE_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(!resps[0].reject());
}

TEST_CASE("without check quorum a follower grants a higher-term vote despite a leader",
          "[checkquorum]") {
  Solo s = Follower();
  s.Step(Msg(MSG_HEARTBEAT, 2, 1, 2));
  s.Drain();
  Message v = Msg(MSG_VOTE, 3, 1, 3);
  v.set_index(10);
  v.set_log_term(2);
  s.Step(v);
  CHECK(s.node->term() == 3);
  auto resps = OfType(s.Drain(), MSG_VOTE_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(!resps[0].reject());
}

}  // namespace
}  // namespace raftlock::raft::test
