// Rule 3: elections for users' own services.
#include "tests/lock/harness.h"

namespace raftlock::lock::testing {
namespace {

TEST_CASE("election: a campaign on an empty election is elected at once", "[election]") {
  Harness h;
  const uint64_t a = h.NewLease();
  ApplyResult r = h.Do(Campaign("svc", a, "host-a"));
  REQUIRE(r.result.code() == 0);
  CHECK(r.result.election_campaign().outcome() == v1::ACQUIRE_OUTCOME_GRANTED);
  CHECK(r.result.election_campaign().token() == h.index);
  auto evs = ElectionEvents(r);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].type() == v1::ELECTION_EVENT_ELECTED);
  CHECK(evs[0].value() == "host-a");
  CHECK(evs[0].epoch() == r.result.election_campaign().epoch());
  CHECK(h.sm.Leader("svc").value() == "host-a");
}

TEST_CASE("election: a second candidate queues, or is told BUSY when not waiting", "[election]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  h.Do(Campaign("svc", a, "a"));
  CHECK(h.Do(Campaign("svc", b, "b")).result.election_campaign().outcome() ==
        v1::ACQUIRE_OUTCOME_BUSY);
  ApplyResult r = h.Do(Campaign("svc", b, "b", 1000));
  CHECK(r.result.election_campaign().outcome() == v1::ACQUIRE_OUTCOME_QUEUED);
  CHECK(r.result.election_campaign().queue_position() == 1);
  CHECK(h.sm.Leader("svc").candidates_size() == 1);
}

TEST_CASE("election: proclaim by the leader sets a new value under a new epoch", "[election]") {
  Harness h;
  const uint64_t a = h.NewLease();
  ApplyResult c = h.Do(Campaign("svc", a, "v1"));
  const uint64_t token = c.result.election_campaign().token();
  ApplyResult r = h.Do(Proclaim("svc", a, token, "v2"));
  REQUIRE(r.result.code() == 0);
  CHECK(r.result.election_proclaim().epoch() > c.result.election_campaign().epoch());
  REQUIRE(ElectionEvents(r).size() == 1);
  CHECK(ElectionEvents(r)[0].type() == v1::ELECTION_EVENT_PROCLAIMED);
  CHECK(h.sm.Leader("svc").value() == "v2");
  CHECK(h.sm.Leader("svc").epoch() == r.result.election_proclaim().epoch());
}

TEST_CASE("election: only the current leader may proclaim", "[election]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  const uint64_t token = h.Do(Campaign("svc", a, "v1")).result.election_campaign().token();
  const std::string before = StateOf(h.sm);
  ApplyResult r = h.Do(Proclaim("svc", b, token, "evil"));
  CHECK(r.result.reason() == v1::ERROR_REASON_NOT_HELD);
  r = h.Do(Proclaim("svc", a, token + 100, "v2"));
  CHECK(r.result.reason() == v1::ERROR_REASON_WRONG_TOKEN);
  CHECK(StateOf(h.sm) == before);
}

TEST_CASE("election: resign emits NO_LEADER, then the next candidate is elected", "[election]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  const uint64_t token = h.Do(Campaign("svc", a, "a")).result.election_campaign().token();
  h.Do(Campaign("svc", b, "b", 5000));
  ApplyResult r = h.Do(Resign("svc", a, token));
  REQUIRE(r.result.code() == 0);
  CHECK(r.result.election_resign().was_leader());
  auto evs = ElectionEvents(r);
  REQUIRE(evs.size() == 2);
  CHECK(evs[0].type() == v1::ELECTION_EVENT_NO_LEADER);
  CHECK(evs[0].reason() == v1::END_REASON_RELEASED);
  CHECK(evs[0].epoch() == r.result.election_resign().epoch());
  CHECK(evs[1].type() == v1::ELECTION_EVENT_ELECTED);
  CHECK(evs[1].leader_lease_id() == b);
  CHECK(evs[1].value() == "b");
  CHECK(evs[1].epoch() > evs[0].epoch());
  CHECK(evs[1].token() == h.index);
}

// As for locks: a candidate whose lease this entry's revoke ends must not be
// elected by the expiry that runs first, or two leaders share one token.
TEST_CASE("election: a candidate whose lease the same entry revokes is never elected",
          "[election]") {
  Harness h;
  const uint64_t a = h.NewLease(1000), b = h.NewLease(), c = h.NewLease();
  h.Do(Campaign("svc", a, "a"));
  h.Do(Campaign("svc", b, "b", 5000));
  h.Do(Campaign("svc", c, "c", 5000));
  h.now += 1000;  // a is due when the next entry applies
  ApplyResult r = h.Do(Revoke(b));
  auto evs = ElectionEvents(r);
  REQUIRE(evs.size() == 2);
  CHECK(evs[0].type() == v1::ELECTION_EVENT_NO_LEADER);
  CHECK(evs[1].type() == v1::ELECTION_EVENT_ELECTED);
  CHECK(evs[1].leader_lease_id() == c);
  for (const auto& ev : evs) CHECK(ev.leader_lease_id() != b);
}

// A retried campaign answers the epoch of its ELECTED event: found in the
// kept history even after older events were trimmed, 0 once it is gone.
TEST_CASE("election: ElectedEpoch finds the ELECTED event while the history keeps it",
          "[election][observe]") {
  Harness h;  // election_history 4
  const uint64_t a = h.NewLease(), b = h.NewLease();
  const uint64_t ta = h.Do(Campaign("svc", a, "a")).result.election_campaign().token();
  for (int i = 0; i < 3; ++i) h.Do(Proclaim("svc", a, ta, "a" + std::to_string(i)));
  h.Do(Campaign("svc", b, "b", 5000));
  ApplyResult handover = h.Do(Resign("svc", a, ta));
  auto evs = ElectionEvents(handover);
  REQUIRE(evs.size() == 2);
  const uint64_t tb = evs[1].token();
  REQUIRE(h.sm.Observe("svc", 0).skipped());  // older events were trimmed
  CHECK(h.sm.ElectedEpoch("svc", b, tb) == evs[1].epoch());
  CHECK(h.sm.ElectedEpoch("svc", a, ta) == 0);  // trimmed
  CHECK(h.sm.ElectedEpoch("svc", b, tb + 1) == 0);
  for (int i = 0; i < 4; ++i) h.Do(Proclaim("svc", b, tb, "b" + std::to_string(i)));
  CHECK(h.sm.ElectedEpoch("svc", b, tb) == 0);
  CHECK(h.sm.ElectedEpoch("nothing", b, tb) == 0);
}

TEST_CASE("election: \"no leader\" is an event of its own when the leader's lease ends",
          "[election]") {
  Harness h;
  const uint64_t a = h.NewLease(300);
  h.Do(Campaign("svc", a, "a"));
  ApplyResult r = h.Advance(300);
  auto evs = ElectionEvents(r);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].type() == v1::ELECTION_EVENT_NO_LEADER);
  CHECK(evs[0].reason() == v1::END_REASON_LEASE_EXPIRED);
  CHECK_FALSE(h.sm.Leader("svc").has_leader());
  CHECK(h.sm.Leader("svc").epoch() == evs[0].epoch());
}

TEST_CASE("election: Leader reports leader, value, token, epoch and candidates", "[election]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  CHECK_FALSE(h.sm.Leader("svc").has_leader());
  CHECK(h.sm.Leader("svc").epoch() == 0);
  const auto c = h.Do(Campaign("svc", a, "a")).result.election_campaign();
  h.Do(Campaign("svc", b, "b", 1000));
  v1::ElectionInfo info = h.sm.Leader("svc");
  CHECK(info.has_leader());
  CHECK(info.leader_lease_id() == a);
  CHECK(info.token() == c.token());
  CHECK(info.epoch() == c.epoch());
  REQUIRE(info.candidates_size() == 1);
  CHECK(info.candidates(0) == b);
  CHECK(h.sm.ListElections().size() == 1);
}

TEST_CASE("election: epochs strictly increase over every change", "[election]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  uint64_t last = 0;
  for (int round = 0; round < 4; ++round) {
    const uint64_t lease = round % 2 ? a : b;
    ApplyResult c = h.Do(Campaign("svc", lease, "x"));
    const uint64_t token = c.result.election_campaign().token();
    ApplyResult p = h.Do(Proclaim("svc", lease, token, "y"));
    ApplyResult r = h.Do(Resign("svc", lease, token));
    for (const ApplyResult* res : {&c, &p, &r}) {
      for (const auto& ev : ElectionEvents(*res)) {
        CHECK(ev.epoch() > last);
        last = ev.epoch();
      }
    }
  }
}

TEST_CASE("election: Observe returns the events after the given epoch", "[election][observe]") {
  Harness h;
  const uint64_t a = h.NewLease();
  const uint64_t e1 = h.Do(Campaign("svc", a, "1")).result.election_campaign().epoch();
  const uint64_t token = h.sm.Leader("svc").token();
  h.Do(Proclaim("svc", a, token, "2"));
  h.Do(Proclaim("svc", a, token, "3"));
  v1::ObserveResult o = h.sm.Observe("svc", e1);
  CHECK_FALSE(o.skipped());
  REQUIRE(o.events_size() == 2);
  CHECK(o.events(0).value() == "2");
  CHECK(o.events(1).value() == "3");
  CHECK(h.sm.Observe("svc", o.events(1).epoch()).events_size() == 0);
  CHECK(h.sm.Observe("svc", 0).events_size() == 3);
}

TEST_CASE("election: an observer behind the kept history is told it skipped",
          "[election][observe]") {
  Harness h;  // election_history = 4
  const uint64_t a = h.NewLease();
  const uint64_t e1 = h.Do(Campaign("svc", a, "0")).result.election_campaign().epoch();
  const uint64_t token = h.sm.Leader("svc").token();
  for (int i = 1; i <= 5; ++i) h.Do(Proclaim("svc", a, token, std::to_string(i)));
  v1::ObserveResult o = h.sm.Observe("svc", e1);
  CHECK(o.skipped());
  CHECK(o.events_size() == 0);
  CHECK(o.current().value() == "5");
  CHECK(o.current().has_leader());
  // An observer that is only slightly behind is not told it skipped.
  v1::ObserveResult recent = h.sm.Observe("svc", o.current().epoch() - 2);
  CHECK_FALSE(recent.skipped());
  CHECK(recent.events_size() == 2);
}

TEST_CASE("election: a queued candidate withdraws with Resign and token 0", "[election]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  h.Do(Campaign("svc", a, "a"));
  h.Do(Campaign("svc", b, "b", 1000));
  ApplyResult r = h.Do(Resign("svc", b, 0));
  CHECK(r.result.code() == 0);
  CHECK_FALSE(r.result.election_resign().was_leader());
  REQUIRE(WaitEnds(r).size() == 1);
  CHECK(WaitEnds(r)[0].election());
  CHECK(WaitEnds(r)[0].reason() == v1::END_REASON_CANCELLED);
  CHECK(h.sm.Leader("svc").candidates_size() == 0);
}

TEST_CASE("election: a campaign that waits past its deadline ends TIMED_OUT", "[election]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  h.Do(Campaign("svc", a, "a"));
  h.Do(Campaign("svc", b, "b", 200));
  ApplyResult r = h.Advance(200);
  REQUIRE(WaitEnds(r).size() == 1);
  CHECK(WaitEnds(r)[0].election());
  CHECK(WaitEnds(r)[0].reason() == v1::END_REASON_TIMED_OUT);
  CHECK(h.sm.Leader("svc").leader_lease_id() == a);
}

TEST_CASE("election: resign by a non-leader, or by the leader without its token, is refused",
          "[election]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  const uint64_t token = h.Do(Campaign("svc", a, "a")).result.election_campaign().token();
  CHECK(h.Do(Resign("svc", b, token)).result.reason() == v1::ERROR_REASON_NOT_HELD);
  CHECK(h.Do(Resign("svc", a, 0)).result.reason() == v1::ERROR_REASON_WRONG_TOKEN);
  CHECK(h.Do(Resign("svc", b, 0)).result.reason() == v1::ERROR_REASON_NOT_WAITING);
  CHECK(h.sm.Leader("svc").leader_lease_id() == a);
}

TEST_CASE("election: election names do not collide with lock names", "[election]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  h.Hold("same", a);
  ApplyResult r = h.Do(Campaign("same", b, "b"));
  CHECK(r.result.election_campaign().outcome() == v1::ACQUIRE_OUTCOME_GRANTED);
  CHECK(h.sm.Describe("same")->holders(0).lease_id() == a);
}

TEST_CASE("election: too many elections is RESOURCE_EXHAUSTED", "[election][limits]") {
  Harness h;  // max_elections = 4
  const uint64_t a = h.NewLease();
  for (int i = 0; i < 4; ++i) h.Do(Campaign("e" + std::to_string(i), a, "v"));
  ApplyResult r = h.Do(Campaign("e4", a, "v"));
  CHECK(r.result.code() == kResourceExhausted);
  CHECK(r.result.reason() == v1::ERROR_REASON_TOO_MANY_ELECTIONS);
}

TEST_CASE("election: re-campaign by the leader returns its leadership unchanged", "[election]") {
  Harness h;
  const uint64_t a = h.NewLease();
  const auto first = h.Do(Campaign("svc", a, "a")).result.election_campaign();
  ApplyResult r = h.Do(Campaign("svc", a, "other"));
  CHECK(r.result.election_campaign().already());
  CHECK(r.result.election_campaign().token() == first.token());
  CHECK(ElectionEvents(r).empty());
  CHECK(h.sm.Leader("svc").value() == "a");
}

TEST_CASE("election: idle elections beyond the bound are forgotten, observers are told skipped",
          "[election][observe][limits]") {
  Harness h;  // max_idle_elections = 2
  const uint64_t a = h.NewLease();
  uint64_t first_epoch = 0;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "e" + std::to_string(i);
    auto c = h.Do(Campaign(name, a, "v")).result.election_campaign();
    if (i == 0) first_epoch = c.epoch();
    h.Do(Resign(name, a, c.token()));
  }
  CHECK(h.sm.ListElections().size() == 2);
  v1::ObserveResult o = h.sm.Observe("e0", first_epoch);
  CHECK(o.skipped());
  CHECK_FALSE(o.current().has_leader());
  CHECK_FALSE(h.sm.Observe("e2", 0).skipped());
}

TEST_CASE("election: an observer resuming on a forgotten election used again is told skipped",
          "[election][observe][limits]") {
  Harness h;  // max_idle_elections = 2
  const uint64_t a = h.NewLease();
  auto c0 = h.Do(Campaign("e0", a, "v")).result.election_campaign();
  const uint64_t seen = c0.epoch();  // the observer saw ELECTED, then lost its stream
  h.Do(Resign("e0", a, c0.token()));
  for (const char* name : {"e1", "e2"}) {  // e0 is forgotten: three idle elections
    auto c = h.Do(Campaign(name, a, "v")).result.election_campaign();
    h.Do(Resign(name, a, c.token()));
  }
  h.Do(Campaign("e0", a, "w"));  // used again: a new history starts
  v1::ObserveResult o = h.sm.Observe("e0", seen);
  CHECK(o.skipped());  // the NO_LEADER after `seen` is gone
  CHECK(o.current().value() == "w");
  // From its own history an observer resumes without a gap.
  const uint64_t now = o.current().epoch();
  CHECK_FALSE(h.sm.Observe("e0", now).skipped());
  CHECK_FALSE(h.sm.Observe("e0", 0).skipped());
}

TEST_CASE("election: a value over the limit is rejected", "[election][validation]") {
  Harness h;  // max_value_bytes = 8
  const uint64_t a = h.NewLease();
  ApplyResult r = h.Do(Campaign("svc", a, "123456789"));
  CHECK(r.result.code() == kInvalidArgument);
  CHECK(r.result.reason() == v1::ERROR_REASON_VALUE_TOO_LONG);
  CHECK_FALSE(h.sm.Leader("svc").has_leader());
}

}  // namespace
}  // namespace raftlock::lock::testing
