// The SDK's Election and ElectionObserver against a real 3-node cluster
// (docs/semantics.md §4: campaign, proclaim, resign, leader, observe with
// strictly increasing epochs and "no leader" as an event of its own).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <future>
#include <mutex>
#include <thread>

#include "raftlock/election.h"
#include "tests/client/client_fixture.h"

using namespace raftlock;
using namespace raftlock::testing;

namespace {

struct Updates {
  std::mutex mu;
  std::vector<ElectionUpdate> list;

  std::function<void(const ElectionUpdate&)> Callback() {
    return [this](const ElectionUpdate& update) {
      std::lock_guard<std::mutex> lock(mu);
      list.push_back(update);
    };
  }
  std::vector<ElectionUpdate> Get() {
    std::lock_guard<std::mutex> lock(mu);
    return list;
  }
  bool WaitFor(size_t n) {
    return Eventually(5s, [&] { return Get().size() >= n; });
  }
};

std::string Describe(const std::vector<ElectionUpdate>& updates) {
  std::string out;
  for (const auto& u : updates) {
    out += std::string(ElectionUpdateKindName(u.kind)) + "@" + std::to_string(u.epoch) + "(" +
           u.value + ") ";
  }
  return out;
}

}  // namespace

TEST_CASE(
    "Election Campaign, Proclaim, Leader, Resign and Observe with epochs and no-leader events",
    "[client][sdk][election]") {
  TestCluster t;
  auto client = t.NewClient();
  auto session_a = t.NewSession(client);
  auto session_b = t.NewSession(t.NewClient());
  Election a(*session_a, "svc/primary");
  Election b(*session_b, "svc/primary");

  Updates seen;
  auto observer = a.Observe(seen.Callback());
  REQUIRE(seen.WaitFor(1));
  {
    auto first = seen.Get()[0];  // the current state: nobody leads
    CHECK(first.kind == ElectionUpdate::Kind::kCurrent);
    CHECK_FALSE(first.has_leader);
  }

  // Rule: Campaign elects at once when nobody leads; the leadership has a token.
  REQUIRE(a.Campaign("alpha", After(5s)).ok());
  CHECK(a.leading());
  CHECK(a.token() > 0);
  const uint64_t elected_epoch = a.epoch();
  CHECK(elected_epoch > 0);
  auto leader = a.Leader(After(5s));
  REQUIRE(leader.ok());
  CHECK(leader->has_leader());
  CHECK(leader->leader_lease_id() == session_a->lease_id());
  CHECK(leader->value() == "alpha");
  CHECK(leader->token() == a.token());

  // Rule: try-once campaign while someone leads: not elected (BUSY).
  absl::Status busy = b.Campaign("beta", After(200ms));
  INFO(busy.ToString());
  CHECK(busy.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(ErrorReason(busy) == "NOT_ACQUIRED_REASON_BUSY");
  CHECK_FALSE(b.leading());
  // Rule: a campaign that waits and runs out is DEADLINE_EXCEEDED by its
  // deadline (a timeout, not BUSY), leaving no candidacy behind.
  auto start = Clock::now();
  absl::Status timed_out = b.Campaign("beta", After(1200ms));
  const double took = MillisSince(start);
  INFO(timed_out.ToString() << " after " << took << " ms");
  CHECK(timed_out.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(ErrorReason(timed_out).empty());
  // It keeps back a tenth of its time (here 120 ms) to withdraw an unanswered
  // wait, and polls until a last try-once fits before that: it returns within
  // about the last quarter second, never after the deadline.
  CHECK(took >= 900);
  CHECK(took < 1300);
  auto no_candidates = a.Leader(After(5s));
  REQUIRE(no_candidates.ok());
  CHECK(no_candidates->candidates_size() == 0);

  // Rule: only the leader proclaims; a new value gets a new epoch.
  REQUIRE(a.Proclaim("alpha-2", After(5s)).ok());
  CHECK(a.epoch() > elected_epoch);
  const uint64_t proclaimed_epoch = a.epoch();
  CHECK(b.Proclaim("nope", After(5s)).code() == absl::StatusCode::kFailedPrecondition);

  // B waits in FIFO order and is elected when A resigns.
  auto campaign_b = std::async(std::launch::async, [&] { return b.Campaign("beta", After(10s)); });
  REQUIRE(Eventually(5s, [&] {
    auto info = a.Leader(After(2s));
    return info.ok() && info->candidates_size() == 1;
  }));
  REQUIRE(a.Resign(After(5s)).ok());
  CHECK_FALSE(a.leading());
  CHECK(a.token() == 0);
  REQUIRE(campaign_b.get().ok());
  CHECK(b.leading());
  CHECK(b.epoch() > proclaimed_epoch);
  // Rule: a resigned leader cannot proclaim.
  absl::Status stale = a.Proclaim("stale", After(5s));
  CHECK(stale.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ErrorReason(stale) == "ERROR_REASON_NOT_HELD");

  // Rule: the leader's lease ending is a "no leader" event with its reason.
  REQUIRE(session_b->Close(After(5s)).ok());
  CHECK_FALSE(b.leading());
  auto nobody = a.Leader(After(5s));
  REQUIRE(nobody.ok());
  CHECK_FALSE(nobody->has_leader());

  // The observer saw: CURRENT, ELECTED(alpha), PROCLAIMED(alpha-2),
  // NO_LEADER, ELECTED(beta), NO_LEADER, in strictly increasing epochs.
  REQUIRE(seen.WaitFor(6));
  auto updates = seen.Get();
  INFO(Describe(updates));
  REQUIRE(updates.size() == 6);
  CHECK(updates[1].kind == ElectionUpdate::Kind::kElected);
  CHECK(updates[1].value == "alpha");
  CHECK(updates[1].epoch == elected_epoch);
  CHECK(updates[1].leader_lease_id == session_a->lease_id());
  CHECK(updates[2].kind == ElectionUpdate::Kind::kProclaimed);
  CHECK(updates[2].value == "alpha-2");
  CHECK(updates[2].epoch == proclaimed_epoch);
  CHECK(updates[3].kind == ElectionUpdate::Kind::kNoLeader);
  CHECK_FALSE(updates[3].has_leader);
  CHECK(updates[3].reason == v1::END_REASON_RELEASED);
  CHECK(updates[4].kind == ElectionUpdate::Kind::kElected);
  CHECK(updates[4].value == "beta");
  CHECK(updates[4].epoch == updates[3].epoch + 1);  // resign + elect: one entry
  CHECK(updates[5].kind == ElectionUpdate::Kind::kNoLeader);
  CHECK(updates[5].reason == v1::END_REASON_LEASE_REVOKED);
  for (size_t i = 2; i < updates.size(); ++i) CHECK(updates[i].epoch > updates[i - 1].epoch);
  CHECK(observer->last_epoch() == updates.back().epoch);

  // Rule: an observer resuming after an epoch gets the later events only.
  Updates resumed;
  auto late = ElectionObserver::Start(client, "svc/primary", resumed.Callback(), elected_epoch);
  REQUIRE(resumed.WaitFor(4));
  auto replay = resumed.Get();
  INFO("resumed: " << Describe(replay));
  CHECK(replay[0].kind == ElectionUpdate::Kind::kProclaimed);
  CHECK(replay[0].epoch == proclaimed_epoch);
  CHECK(replay[3].epoch == updates[5].epoch);

  // Rule: the observer follows a Raft leader crash and resumes after its last
  // epoch: the next change arrives once, in order, with no gap.
  t.cluster.Kill(t.leader);
  auto session_c = t.NewSession(t.NewClient(), 10s);
  Election c(*session_c, "svc/primary");
  REQUIRE(c.Campaign("gamma", After(10s)).ok());
  REQUIRE(seen.WaitFor(7));
  std::this_thread::sleep_for(500ms);  // a duplicate, if any, would arrive by now
  auto after_crash = seen.Get();
  INFO(Describe(after_crash));
  REQUIRE(after_crash.size() == 7);
  CHECK(after_crash[6].kind == ElectionUpdate::Kind::kElected);
  CHECK(after_crash[6].value == "gamma");
  CHECK(after_crash[6].epoch == c.epoch());
  CHECK(after_crash[6].epoch > after_crash[5].epoch);
}

TEST_CASE("an observer of a quiet election keeps the Client's leader across stream lifetimes",
          "[client][sdk][election]") {
  TestCluster t;
  auto client = t.NewClient();
  auto session = t.NewSession(client);
  Election a(*session, "svc/quiet");
  REQUIRE(a.Campaign("alpha", After(5s)).ok());
  const uint64_t epoch = a.epoch();
  const std::string leader = client->leader_address();
  REQUIRE_FALSE(leader.empty());

  // Rule: a stream that ends at its lifetime with nothing to deliver, on a
  // replica that still answers, is normal: the shared Client keeps its
  // leader (its other calls are not redirected) and the observer resumes.
  Updates quiet;
  auto observer = ElectionObserver::Start(client, "svc/quiet", quiet.Callback(), epoch);
  // Rule: the current state is delivered once, not again on each new stream,
  // also for an election that was never used (epoch 0, no leader).
  Updates unused;
  auto unused_observer = ElectionObserver::Start(client, "svc/never-used", unused.Callback());
  std::this_thread::sleep_for(6500ms);  // past one stream lifetime (5 s)
  CHECK(client->leader_address() == leader);
  CHECK(quiet.Get().empty());
  REQUIRE(unused.Get().size() == 1);
  CHECK(unused.Get()[0].kind == ElectionUpdate::Kind::kCurrent);
  CHECK_FALSE(unused.Get()[0].has_leader);
  // And it still delivers the next change.
  REQUIRE(a.Proclaim("beta", After(5s)).ok());
  REQUIRE(quiet.WaitFor(1));
  CHECK(quiet.Get()[0].kind == ElectionUpdate::Kind::kProclaimed);
}

TEST_CASE("an observer of a forgotten election is told skipped once, not on every stream",
          "[client][sdk][election]") {
  // A configuration that keeps one idle election for Observe (semantics §4).
  ConfigFile config("limits:\n  max_idle_elections: 1\n");
  TestCluster t({"--config", config.path()});
  auto client = t.NewClient();
  auto session = t.NewSession(client);
  Election forgotten(*session, "svc/forgotten");
  REQUIRE(forgotten.Campaign("a", After(5s)).ok());
  REQUIRE(forgotten.Resign(After(5s)).ok());
  const uint64_t last_epoch = forgotten.epoch();
  for (const char* name : {"svc/idle-1", "svc/idle-2"}) {  // pushes svc/forgotten out
    Election other(*session, name);
    REQUIRE(other.Campaign("b", After(5s)).ok());
    REQUIRE(other.Resign(After(5s)).ok());
  }

  // Rule: resuming after an epoch of a forgotten election is reported as
  // skipped with the state "no leader" -- once, not again with every new
  // stream while nothing changes.
  Updates updates;
  auto observer = ElectionObserver::Start(client, "svc/forgotten", updates.Callback(), last_epoch);
  std::this_thread::sleep_for(6500ms);  // past one stream lifetime (5 s)
  REQUIRE(updates.Get().size() == 1);
  CHECK(updates.Get()[0].kind == ElectionUpdate::Kind::kCurrent);
  CHECK(updates.Get()[0].skipped);
  CHECK_FALSE(updates.Get()[0].has_leader);
  // A later use of the name is delivered as events again.
  Election again(*session, "svc/forgotten");
  REQUIRE(again.Campaign("c", After(5s)).ok());
  REQUIRE(updates.WaitFor(2));
  CHECK(updates.Get()[1].kind == ElectionUpdate::Kind::kElected);
  CHECK(updates.Get()[1].value == "c");
}

TEST_CASE("election objects sharing a session take turns on a name instead of sharing a leadership",
          "[client][sdk][election]") {
  TestCluster t;
  auto client = t.NewClient();
  auto session = t.NewSession(client);
  Election first(*session, "turns/election");
  Election second(*session, "turns/election");
  REQUIRE(first.Campaign("first", After(5s)).ok());
  const uint64_t first_token = first.token();

  // Rule: a second object of the same session is not elected alongside the first.
  const auto start = Clock::now();
  absl::Status timed_out = second.Campaign("second", After(800ms));
  CHECK(timed_out.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(MillisSince(start) < 1000);
  CHECK_FALSE(second.leading());

  // Rule: it is elected once the first resigns, as a new leadership.
  auto waiting =
      std::async(std::launch::async, [&] { return second.Campaign("second", After(10s)); });
  std::this_thread::sleep_for(300ms);
  CHECK(waiting.wait_for(0ms) == std::future_status::timeout);
  REQUIRE(first.Resign(After(5s)).ok());
  REQUIRE(waiting.wait_for(5s) == std::future_status::ready);
  REQUIRE(waiting.get().ok());
  CHECK(second.leading());
  CHECK(second.token() > first_token);
  auto leader = second.Leader(After(5s));
  REQUIRE(leader.ok());
  CHECK(leader->value() == "second");
}
