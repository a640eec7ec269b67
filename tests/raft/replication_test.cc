// Log replication: the consistency check and conflict resolution (section
// 5.3), fast backtracking, the commit rule (section 5.4.2), flow control and
// heartbeats.
#include <catch2/catch.hpp>

#include "tests/raft/harness.h"

namespace raftlock::raft::test {
namespace {

using namespace raftlock::v1;

Message App(uint64_t from, uint64_t term, uint64_t index, uint64_t log_term,
            const std::vector<Entry>& ents, uint64_t commit) {
  Message m = Msg(MSG_APP, from, 1, term);
  m.set_index(index);
  m.set_log_term(log_term);
  m.set_commit(commit);
  for (const Entry& e : ents) *m.add_entries() = e;
  return m;
}

std::vector<uint64_t> Terms(const MemoryStorage& st) {
  std::vector<uint64_t> out;
  for (uint64_t i = st.FirstIndex(); i <= st.LastIndex(); ++i) out.push_back(*st.Term(i));
  return out;
}

TEST_CASE("§5.3 a follower rejects an append whose previous entry it lacks", "[replication]") {
  Solo s = Follower();
  s.Drain();
  s.Step(App(2, 2, 5, 2, {MakeEntry(6, 2)}, 0));
  auto resps = OfType(s.Drain(), MSG_APP_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].reject());
  CHECK(resps[0].index() == 5);
  CHECK(resps[0].reject_hint() == 3);  // our last index
  CHECK(resps[0].log_term() == 1);
  CHECK(s.storage->LastIndex() == 3);
}

TEST_CASE("§5.3 a follower rejects an append whose previous entry has another term",
          "[replication]") {
  Solo s = Follower({2, 2});
  s.Drain();
  s.Step(App(2, 3, 5, 3, {MakeEntry(6, 3)}, 0));
  auto resps = OfType(s.Drain(), MSG_APP_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].reject());
  CHECK(s.storage->LastIndex() == 5);
}

TEST_CASE("§5.3 a matching append is stored and acknowledged with the last new index",
          "[replication]") {
  Solo s = Follower();
  s.Drain();
  s.Step(App(2, 2, 3, 1, {MakeEntry(4, 2, "a"), MakeEntry(5, 2, "b")}, 4));
  Ready rd = s.node->GetReady();
  REQUIRE(rd.entries.size() == 2);
  auto resps = OfType(rd.messages, MSG_APP_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(!resps[0].reject());
  CHECK(resps[0].index() == 5);
  CHECK(OfType(rd.replication_messages, MSG_APP_RESP).empty());
  // Figure 2: commitIndex = min(leaderCommit, index of last new entry).
  CHECK(rd.hard_state->commit() == 4);
}

TEST_CASE("§5.3 a conflicting suffix is deleted and replaced by the leader's entries",
          "[replication]") {
  Solo s = Follower({2, 2, 2});  // 4..6 at term 2
  s.Drain();
  s.Step(App(3, 3, 4, 2, {MakeEntry(5, 3, "new")}, 0));
  s.Drain();
  CHECK(Terms(*s.storage) == std::vector<uint64_t>{1, 1, 1, 2, 3});
  CHECK(s.storage->Entries(5, 6, UINT64_MAX)->at(0).data() == "new");
}

TEST_CASE("§5.3 a stale duplicate append does not truncate later matching entries",
          "[replication]") {
  Solo s = Follower({2, 2, 2});
  s.Drain();
  s.Step(App(2, 2, 3, 1, {MakeEntry(4, 2, "e4")}, 0));
  auto resps = OfType(s.Drain(), MSG_APP_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].index() == 4);
  CHECK(s.storage->LastIndex() == 6);
}

TEST_CASE("§5.3 an append below the commit index is answered with the commit index",
          "[replication]") {
  Solo s = Follower();
  s.Drain();
  s.Step(App(2, 2, 1, 1, {MakeEntry(2, 1)}, 0));
  auto resps = OfType(s.Drain(), MSG_APP_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(!resps[0].reject());
  CHECK(resps[0].index() == 3);
}

TEST_CASE("fast backtracking: the reject hint is the largest index <= probe with term <= probe's",
          "[replication][backtrack]") {
  Solo s = Follower({3, 3, 3, 3});  // 4..7 at stale term 3
  s.Drain();
  s.Step(App(2, 4, 7, 2, {}, 0));  // leader's entry 7 has term 2
  auto resps = OfType(s.Drain(), MSG_APP_RESP);
  REQUIRE(resps.size() == 1);
  CHECK(resps[0].reject());
  CHECK(resps[0].reject_hint() == 3);  // skips every term-3 entry at once
  CHECK(resps[0].log_term() == 1);
}

TEST_CASE("fast backtracking: the leader maps the hint into its own log and skips a term",
          "[replication][backtrack]") {
  Solo s = Leader({2, 2, 2});  // leader log 1..3 t1, 4..6 t2, no-op 7 t3
  REQUIRE(s.node->term() == 3);
  // Follower 2 has only the bootstrap entries: it hints (3, term 1).
  Message rej = AppResp(2, 3, 6);
  rej.set_reject(true);
  rej.set_reject_hint(3);
  rej.set_log_term(1);
  s.Step(rej);
  auto apps = OfType(s.Drain(), MSG_APP);
  REQUIRE(apps.size() == 1);
  CHECK(apps[0].to() == 2);
  CHECK(apps[0].index() == 3);  // next probe right after the hinted entry
  CHECK(apps[0].entries_size() == 4);
}

TEST_CASE("§5.3 divergent follower logs converge to the leader's (Log Matching)",
          "[replication][backtrack]") {
  std::vector<std::unique_ptr<MemoryStorage>> stores;
  stores.push_back(NewStorage({1, 2, 3}, {2, 2, 2, 4}));        // future leader
  stores.push_back(NewStorage({1, 2, 3}, {2, 3, 3, 3, 3, 3}));  // stale term-3 suffix
  stores.push_back(NewStorage({1, 2, 3}));                      // short
  Cluster c(std::move(stores), {});
  // Node 2's stale suffix is at a lower last term (3 < 4): 1 can win with 3's vote.
  c.Elect(1);
  REQUIRE(c.Leader() == 1);
  const uint64_t p = *c.node(1).Propose("after");
  c.Stabilize();
  c.Heartbeat(1);
  const std::vector<uint64_t> want = Terms(c.storage(1));
  CHECK(Terms(c.storage(2)) == want);
  CHECK(Terms(c.storage(3)) == want);
  CHECK(c.node(2).Status().commit == p);
  int rejects = 0;
  for (const Message& m : c.sent_) rejects += m.type() == MSG_APP_RESP && m.reject();
  CHECK(rejects <= 4);  // far fewer than one per divergent entry
}

TEST_CASE("§5.4.2 a new leader appends a no-op entry of its term", "[commit]") {
  Solo s = Leader();
  CHECK(s.storage->LastIndex() == 4);
  auto e = s.storage->Entries(4, 5, UINT64_MAX)->at(0);
  CHECK(e.term() == 2);
  CHECK(e.type() == ENTRY_NORMAL);
  CHECK(e.data().empty());
}

TEST_CASE("§5.4.2 a leader never commits a prior-term entry by counting replicas", "[commit]") {
  Solo s = Leader({2});  // entry 4 at term 2; leader at term 3, no-op at 5
  REQUIRE(s.node->term() == 3);
  s.Step(AppResp(2, 3, 4));  // a majority (1 and 2) stores entry 4 of term 2
  s.Drain();
  CHECK(s.node->Status().commit == 3);
  s.Step(AppResp(2, 3, 5));  // a current-term entry commits it indirectly
  s.Drain();
  CHECK(s.node->Status().commit == 5);
}

TEST_CASE("§5.4.2 testing_unsafe_commit_prior_term does commit a prior-term entry (the bug)",
          "[commit]") {
  Solo s = Leader({2}, [](Config& c) { c.testing_unsafe_commit_prior_term = true; });
  REQUIRE(s.node->term() == 3);
  s.Step(AppResp(2, 3, 4));
  s.Drain();
  CHECK(s.node->Status().commit == 4);
}

TEST_CASE("§5.4.2 an entry replicated on a majority is committed and applied everywhere",
          "[commit]") {
  Cluster c(3);
  c.Elect(1);
  auto idx = c.node(1).Propose("x");
  REQUIRE(idx.ok());
  c.Stabilize();
  CHECK(c.node(1).Status().commit == *idx);
  c.Heartbeat(1);  // followers learn the commit index from the next heartbeat
  for (uint64_t id : c.ids()) {
    CHECK(c.AppliedData(id) == std::vector<std::string>{"x"});
    CHECK(c.node(id).Status().commit == *idx);
  }
}

TEST_CASE("a commit is announced by the next append or heartbeat, not by an append of its own",
          "[commit][heartbeat]") {
  Solo s = Leader();
  s.Step(AppResp(2, 2, 4));  // commits the no-op
  s.Drain();
  REQUIRE(s.node->Propose("x").ok());  // index 5
  s.Drain();
  s.Step(AppResp(2, 2, 5));
  REQUIRE(s.node->Status().commit == 5);
  CHECK(OfType(s.Drain(), MSG_APP).empty());
  REQUIRE(s.node->Propose("y").ok());
  auto apps = OfType(s.Drain(), MSG_APP);
  REQUIRE(apps.size() == 1);
  CHECK(apps[0].to() == 2);
  CHECK(apps[0].commit() == 5);
  s.Ticks(1);  // heartbeat_tick
  auto hbs = OfType(s.Drain(), MSG_HEARTBEAT);
  REQUIRE(hbs.size() == 2);
  for (const Message& hb : hbs) CHECK(hb.commit() == (hb.to() == 2 ? 5u : 0u));
}

TEST_CASE("a new leader announces at once the commit that settles the log it inherited",
          "[commit]") {
  Solo s = Leader();
  s.Step(AppResp(2, 2, 4));  // commits the no-op and every entry before it
  REQUIRE(s.node->Status().commit == 4);
  auto apps = OfType(s.Drain(), MSG_APP);
  REQUIRE(apps.size() == 1);  // node 3 is still being probed
  CHECK(apps[0].to() == 2);
  CHECK(apps[0].commit() == 4);
}

TEST_CASE("§5.4.2 an entry on a minority is not committed", "[commit]") {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(2);
  c.Isolate(3);
  auto idx = c.node(1).Propose("x");
  REQUIRE(idx.ok());
  c.Stabilize();
  CHECK(c.node(1).Status().commit < *idx);
  CHECK(c.AppliedData(1).empty());
}

TEST_CASE("Propose on a non-leader fails with FailedPrecondition", "[replication]") {
  Solo s = Follower();
  auto r = s.node->Propose("x");
  CHECK(absl::IsFailedPrecondition(r.status()));
}

TEST_CASE("flow control: an append carries at most max_size_per_msg bytes but at least one entry",
          "[flow]") {
  const std::string data(100, 'd');
  const uint64_t esize = MakeEntry(10, 2, data).ByteSizeLong();
  Solo s = Leader({}, [&](Config& c) { c.max_size_per_msg = 2 * esize + 2; });
  s.Step(AppResp(2, 2, 4));  // follower 2 now replicating
  s.Drain();
  REQUIRE(s.node->ProposeBatch({data, data, data, data, data}).ok());
  for (const Message& m : OfType(s.Drain(), MSG_APP)) {
    if (m.to() != 2) continue;
    CHECK(m.entries_size() >= 1);
    CHECK(m.entries_size() <= 2);
  }
  Solo t = Leader({}, [&](Config& c) { c.max_size_per_msg = 1; });
  t.Step(AppResp(2, 2, 4));
  t.Drain();
  REQUIRE(t.node->ProposeBatch({data, data}).ok());
  auto apps = OfType(t.Drain(), MSG_APP);
  REQUIRE(!apps.empty());
  for (const Message& m : apps) CHECK(m.entries_size() == 1);
}

TEST_CASE("flow control: replicate state pipelines up to max_inflight_msgs appends", "[flow]") {
  Solo s = Leader({}, [](Config& c) { c.max_inflight_msgs = 2; });
  s.Step(AppResp(2, 2, 4));
  s.Drain();
  REQUIRE(s.node->Status().progress.at(2).state == ProgressState::kReplicate);
  for (int i = 0; i < 5; ++i) REQUIRE(s.node->Propose("p").ok());
  auto to2 = [](const std::vector<Message>& ms) {
    std::vector<Message> out;
    for (const Message& m : ms) {
      if (m.to() == 2 && m.type() == MSG_APP) out.push_back(m);
    }
    return out;
  };
  auto first = to2(s.Drain());
  REQUIRE(first.size() == 2);  // window full
  CHECK(s.node->Status().progress.at(2).inflight == 2);
  s.Step(AppResp(2, 2, first[0].entries(0).index()));
  auto more = to2(s.Drain());
  CHECK(more.size() >= 1);  // a freed slot lets the next append go
}

TEST_CASE("flow control: probe state sends one append per heartbeat until acknowledged", "[flow]") {
  Solo s = Leader();
  // Follower 3 never answered the first append: it is a paused probe.
  REQUIRE(s.node->Status().progress.at(3).state == ProgressState::kProbe);
  REQUIRE(s.node->Propose("a").ok());
  REQUIRE(s.node->Propose("b").ok());
  for (const Message& m : OfType(s.Drain(), MSG_APP)) CHECK(m.to() != 3);
  s.Step(Msg(MSG_HEARTBEAT_RESP, 3, 1, 2));
  auto apps = OfType(s.Drain(), MSG_APP);
  REQUIRE(apps.size() == 1);
  CHECK(apps[0].to() == 3);
  s.Step(Msg(MSG_HEARTBEAT_RESP, 3, 1, 2));
  CHECK(OfType(s.Drain(), MSG_APP).size() == 1);  // again, one per heartbeat
}

TEST_CASE("flow control: an acknowledged probe switches the follower to replicate", "[flow]") {
  Solo s = Leader();
  s.Step(AppResp(3, 2, 4));
  CHECK(s.node->Status().progress.at(3).state == ProgressState::kReplicate);
  CHECK(s.node->Status().progress.at(3).match == 4);
}

TEST_CASE("flow control: ReportUnreachable sends a replicating follower back to probe", "[flow]") {
  Solo s = Leader();
  s.Step(AppResp(2, 2, 4));
  REQUIRE(s.node->Status().progress.at(2).state == ProgressState::kReplicate);
  s.node->ReportUnreachable(2);
  CHECK(s.node->Status().progress.at(2).state == ProgressState::kProbe);
}

TEST_CASE("heartbeats go out every heartbeat_tick and carry min(match, commit)", "[heartbeat]") {
  Solo s = Leader({}, [](Config& c) { c.heartbeat_tick = 2; });
  s.Step(AppResp(2, 2, 4));  // commits the no-op: match(2)=4, match(3)=0
  s.Drain();
  REQUIRE(s.node->Status().commit == 4);
  s.Ticks(1);
  CHECK(OfType(AllMessages(s.node->GetReady()), MSG_HEARTBEAT).empty());
  s.Ticks(1);
  Ready rd = s.node->GetReady();
  auto hbs = OfType(rd.replication_messages, MSG_HEARTBEAT);
  REQUIRE(hbs.size() == 2);
  for (const Message& hb : hbs) CHECK(hb.commit() == (hb.to() == 2 ? 4u : 0u));
}

TEST_CASE("a follower learns the commit index from a heartbeat", "[heartbeat]") {
  Solo s = Follower({2, 2});
  s.Drain();
  Message hb = Msg(MSG_HEARTBEAT, 2, 1, 2);
  hb.set_commit(5);
  s.Step(hb);
  Ready rd = s.Cycle();
  CHECK(rd.hard_state->commit() == 5);
  CHECK(OfType(rd.messages, MSG_HEARTBEAT_RESP).size() == 1);
}

}  // namespace
}  // namespace raftlock::raft::test
