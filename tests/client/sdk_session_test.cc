// The SDK's Session against a real 3-node cluster: the lease is kept alive in
// the background; when keepalives fail it reports jeopardy, then loss, through
// its callback and its cancellation token, before the server could give its
// locks to another session (include/raftlock/session.h; DESIGN.md "Leases").
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "raftlock/mutex.h"
#include "tests/client/client_fixture.h"

using namespace raftlock;
using namespace raftlock::testing;

namespace {

// State changes with the time each was reported.
struct Recorder {
  std::mutex mu;
  std::vector<std::pair<SessionState, Clock::time_point>> changes;

  std::function<void(SessionState)> Callback() {
    return [this](SessionState state) {
      std::lock_guard<std::mutex> lock(mu);
      changes.emplace_back(state, Clock::now());
    };
  }
  std::vector<std::pair<SessionState, Clock::time_point>> Get() {
    std::lock_guard<std::mutex> lock(mu);
    return changes;
  }
};

}  // namespace

TEST_CASE("Session keeps its lease alive in the background and Close revokes it",
          "[client][sdk][session]") {
  TestCluster t;
  auto client = t.NewClient();
  Recorder recorder;
  auto session = t.NewSession(client, 1000ms, recorder.Callback());
  const uint64_t lease = session->lease_id();
  CHECK(session->ttl() == 1000ms);
  const Deadline first_lost_at = session->lost_at();

  // Rule: no keepalive from the caller, yet the lease outlives three TTLs.
  std::this_thread::sleep_for(3000ms);
  CHECK(session->state() == SessionState::kHealthy);
  CHECK_FALSE(session->token().cancelled());
  CHECK(session->lost_at() > first_lost_at + 1500ms);  // acknowledged keepalives moved it
  CHECK(session->local_deadline() > Clock::now());
  auto ttl = client->LeaseTimeToLive(lease, After(5s));
  REQUIRE(ttl.ok());
  REQUIRE(ttl->found());
  CHECK(ttl->lease().ttl_ms() == 1000);
  CHECK(ttl->lease().ttl_remaining_ms() > 0);
  CHECK(recorder.Get().empty());  // healthy throughout: no state change reported

  // Rule: Close revokes the lease (its locks are released at once) and
  // cancels the token; it is idempotent. The token is cancelled first, while
  // the lock is still this session's: guarded work stops before anyone else
  // can take the lock.
  Mutex mutex(*session, "session/close");
  REQUIRE(mutex.Lock(After(5s)).ok());
  uint64_t holder_when_cancelled = 0;
  session->token().OnCancel([&] {
    auto d = client->LockDescribe("session/close", After(5s));
    if (d.ok() && d->lock().holders_size() == 1) {
      holder_when_cancelled = d->lock().holders(0).lease_id();
    }
  });
  REQUIRE(session->Close(After(5s)).ok());
  CHECK(holder_when_cancelled == lease);
  CHECK(session->state() == SessionState::kClosed);
  CHECK(session->token().cancelled());
  CHECK_FALSE(mutex.held());
  CHECK(session->Close(After(5s)).ok());
  auto after = client->LeaseTimeToLive(lease, After(5s));
  REQUIRE(after.ok());
  CHECK_FALSE(after->found());
  auto described = client->LockDescribe("session/close", After(5s));
  REQUIRE(described.ok());
  CHECK_FALSE(described->found());
  auto changes = recorder.Get();
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].first == SessionState::kClosed);

  // A lost or closed session refuses new locks with FAILED_PRECONDITION.
  Mutex late(*session, "session/late");
  CHECK(late.Lock(After(2s)).code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("Session::Close returns by its deadline while a keepalive hangs at a paused cluster",
          "[client][sdk][session]") {
  TestCluster t;
  auto client = t.NewClient();  // attempt_timeout 1.5 s: a keepalive call may take 3 s
  auto session = t.NewSession(client, 10s);
  for (int id = 1; id <= 3; ++id) t.cluster.Pause(id);
  // The keepalive sent at TTL/3 (3.3 s) hangs: nothing answers it.
  std::this_thread::sleep_for(3500ms);
  const auto closing = Clock::now();
  (void)session->Close(After(500ms));  // the revoke cannot succeed either
  const double took = MillisSince(closing);
  for (int id = 1; id <= 3; ++id) t.cluster.Resume(id);
  INFO("Close took " << took << " ms");
  // Rule: every call has a deadline; Close ends the keepalive in flight
  // instead of waiting out its own (up to 2 x attempt_timeout).
  CHECK(took < 900);
  CHECK(session->state() == SessionState::kClosed);
}

TEST_CASE("Session reports jeopardy then lost when every node is SIGSTOPped, before a handover",
          "[client][sdk][session]") {
  TestCluster t;
  auto client_a = t.NewClient();
  auto client_b = t.NewClient();
  Recorder recorder;
  const auto ttl = 2000ms;
  auto session_a = t.NewSession(client_a, ttl, recorder.Callback());
  auto session_b = t.NewSession(client_b, 30s);
  // A session that closes itself from its own state callback when lost.
  Session* self_closing = nullptr;
  std::atomic<bool> self_closed{false};
  auto session_c = t.NewSession(client_b, ttl, [&](SessionState state) {
    if (state != SessionState::kLost) return;
    (void)self_closing->Close(After(200ms));
    self_closed = true;
  });
  self_closing = session_c.get();
  Mutex mutex_a(*session_a, "session/guarded");
  auto guard = mutex_a.ScopedLock(After(5s));
  REQUIRE(guard.ok());
  const uint64_t token_a = guard->token();
  CancellationToken lost_token = guard->cancelled();
  Clock::time_point cancelled_at{};
  lost_token.OnCancel([&cancelled_at] { cancelled_at = Clock::now(); });

  // Every replica stops: no keepalive can be acknowledged.
  const Deadline local_deadline_before = session_a->local_deadline();
  const auto paused_at = Clock::now();
  for (int id = 1; id <= 3; ++id) t.cluster.Pause(id);
  const bool lost = lost_token.WaitUntil(After(ttl + 2000ms));
  const auto noticed_at = Clock::now();
  // C's last acknowledged keepalive may be up to TTL/3 younger than A's, so
  // the cluster stays paused until C is lost too (else C's next keepalive
  // after the resume would save it).
  const bool self_closed_while_paused =
      Eventually(ttl + 2000ms, [&] { return self_closed.load(); });
  for (int id = 1; id <= 3; ++id) t.cluster.Resume(id);
  REQUIRE(lost);

  auto changes = recorder.Get();
  REQUIRE(changes.size() >= 2);
  // Rule: jeopardy is reported first, then lost (final).
  CHECK(changes[0].first == SessionState::kJeopardy);
  CHECK(changes[1].first == SessionState::kLost);
  CHECK(changes.back().first == SessionState::kLost);
  CHECK(session_a->state() == SessionState::kLost);
  CHECK(changes[0].second < changes[1].second);
  // Rule: Close may be called from the session's own callback.
  CHECK(self_closed_while_paused);
  CHECK(session_c->state() == SessionState::kClosed);
  // Rule: loss is reported before the local deadline (the last acknowledged
  // keepalive's send time + TTL): the server cannot expire the lease earlier.
  const Deadline local_deadline = session_a->local_deadline();
  CHECK(local_deadline <= local_deadline_before + ttl);  // no acknowledgement while paused
  CHECK(changes[1].second <= local_deadline);
  CHECK(cancelled_at <= local_deadline);
  CHECK(noticed_at - paused_at <= ttl + 500ms);
  CHECK(lost_token.reason().find("lost") != std::string::npos);
  // The lock object and its guard know at once.
  CHECK_FALSE(mutex_a.held());
  CHECK_FALSE(guard->owns_lock());
  CHECK(guard->token() == token_a);  // kept for logging

  // Rule: another session gets the lock only after A reported the loss, with
  // a larger fencing token.
  Mutex mutex_b(*session_b, "session/guarded");
  absl::Status locked = mutex_b.Lock(After(15s));
  const auto granted_at = Clock::now();
  INFO(locked.ToString());
  REQUIRE(locked.ok());
  CHECK(granted_at > changes[1].second);
  CHECK(mutex_b.token() > token_a);
  // A's stale token is rejected by ValidateToken.
  auto valid = client_b->ValidateToken("session/guarded", token_a, After(5s));
  REQUIRE(valid.ok());
  CHECK_FALSE(valid->valid());
  CHECK(valid->current_token() == mutex_b.token());
  // The lost session gives up its lease (revoked, or expired by now).
  CHECK(Eventually(10s, [&] {
    auto info = client_b->LeaseTimeToLive(session_a->lease_id(), After(2s));
    return info.ok() && !info->found();
  }));
  // Unlocking a hold the server already released says so and frees nothing.
  absl::Status unlocked = guard->Unlock(After(2s));
  INFO(unlocked.ToString());
  CHECK((unlocked.code() == absl::StatusCode::kFailedPrecondition ||
         unlocked.code() == absl::StatusCode::kNotFound));
  CHECK(guard->Unlock(After(2s)).ok());
  auto still = client_b->ValidateToken("session/guarded", mutex_b.token(), After(5s));
  REQUIRE(still.ok());
  CHECK(still->valid());
}
