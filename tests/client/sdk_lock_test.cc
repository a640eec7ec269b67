// The SDK's Mutex, SharedMutex, Semaphore and LockGuard against a real 3-node
// cluster (docs/semantics.md §3 locks and fencing tokens, §5 exactly-once).
#include <catch2/catch.hpp>
#include <future>
#include <thread>

#include "raftlock/election.h"
#include "raftlock/mutex.h"
#include "tests/client/client_fixture.h"

using namespace raftlock;
using namespace raftlock::testing;

TEST_CASE("Mutex Lock, TryLock, Unlock and the RAII guard, tokens strictly increase across holders",
          "[client][sdk][lock]") {
  TestCluster t;
  auto client = t.NewClient();
  auto session_a = t.NewSession(client);
  auto session_b = t.NewSession(t.NewClient());
  Mutex a(*session_a, "mutex/one");
  Mutex b(*session_b, "mutex/one");

  REQUIRE(a.Lock(After(5s)).ok());
  const uint64_t token_a = a.token();
  CHECK(token_a > 0);
  CHECK(a.held());
  CHECK(a.mode() == v1::LOCK_MODE_EXCLUSIVE);
  // Rule: one holder; TryLock by another session is false at once.
  auto tried = b.TryLock(After(5s));
  REQUIRE(tried.ok());
  CHECK_FALSE(*tried);
  CHECK_FALSE(b.held());
  CHECK(b.token() == 0);
  // Rule: re-acquiring by the holder returns the same hold (same token).
  auto again = a.TryLock(After(5s));
  REQUIRE(again.ok());
  CHECK(*again);
  CHECK(a.token() == token_a);

  // Rule: Lock(deadline) gives up with DEADLINE_EXCEEDED by its deadline.
  auto start = Clock::now();
  absl::Status timed_out = b.Lock(After(1200ms));
  const double took = MillisSince(start);
  INFO(timed_out.ToString() << " after " << took << " ms");
  CHECK(timed_out.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(ErrorReason(timed_out).empty());  // a wait that ran out: a timeout, not BUSY
  // It keeps back a tenth of its time (here 120 ms) to withdraw an unanswered
  // wait, and polls until a last try-once fits before that: it returns within
  // about the last quarter second, never after the deadline.
  CHECK(took >= 900);
  CHECK(took < 1300);
  // ... and leaves no wait behind.
  auto described = client->LockDescribe("mutex/one", After(5s));
  REQUIRE(described.ok());
  CHECK(described->lock().waiters_size() == 0);

  // Rule: a waiter queued in Lock gets the lock when the holder unlocks, with
  // a larger token.
  auto waiting = std::async(std::launch::async, [&] { return b.Lock(After(10s)); });
  REQUIRE(Eventually(5s, [&] {
    auto d = client->LockDescribe("mutex/one", After(2s));
    return d.ok() && d->lock().waiters_size() == 1;
  }));
  REQUIRE(a.Unlock(After(5s)).ok());
  CHECK_FALSE(a.held());
  CHECK(a.token() == 0);
  CHECK(a.Unlock(After(5s)).ok());  // not held: OK, nothing sent
  REQUIRE(waiting.get().ok());
  const uint64_t token_b = b.token();
  CHECK(token_b > token_a);
  auto valid = client->ValidateToken("mutex/one", token_b, After(5s));
  REQUIRE(valid.ok());
  CHECK(valid->valid());
  auto stale = client->ValidateToken("mutex/one", token_a, After(5s));
  REQUIRE(stale.ok());
  CHECK_FALSE(stale->valid());
  REQUIRE(b.Unlock(After(5s)).ok());

  // Rule: the RAII guard exposes the token and unlocks when destroyed.
  uint64_t token_guard = 0;
  {
    auto guard = a.ScopedLock(After(5s));
    REQUIRE(guard.ok());
    CHECK(guard->owns_lock());
    CHECK(guard->name() == "mutex/one");
    token_guard = guard->token();
    CHECK(token_guard == a.token());
    CHECK(token_guard > token_b);
    CHECK_FALSE(guard->cancelled().cancelled());
    LockGuard moved = std::move(*guard);  // movable: the new guard owns the hold
    CHECK_FALSE(guard->owns_lock());
    CHECK(moved.owns_lock());
    CHECK(moved.token() == token_guard);
  }
  auto freed = client->LockDescribe("mutex/one", After(5s));
  REQUIRE(freed.ok());
  CHECK_FALSE(freed->found());
  CHECK_FALSE(a.held());

  // Tokens keep increasing across ten more holders, alternating sessions.
  uint64_t last = token_guard;
  for (int i = 0; i < 10; ++i) {
    Mutex& m = i % 2 == 0 ? b : a;
    REQUIRE(m.Lock(After(5s)).ok());
    CHECK(m.token() > last);
    last = m.token();
    REQUIRE(m.Unlock(After(5s)).ok());
  }
}

TEST_CASE("SharedMutex shared holders coexist and exclude an exclusive holder",
          "[client][sdk][lock]") {
  TestCluster t;
  auto client = t.NewClient();
  auto s1 = t.NewSession(client);
  auto s2 = t.NewSession(client);
  auto s3 = t.NewSession(client);
  SharedMutex r1(*s1, "rw/one");
  SharedMutex r2(*s2, "rw/one");
  SharedMutex w(*s3, "rw/one");

  REQUIRE(r1.LockShared(After(5s)).ok());
  auto second = r2.TryLockShared(After(5s));
  REQUIRE(second.ok());
  CHECK(*second);  // Rule: shared holders coexist
  CHECK(r1.mode() == v1::LOCK_MODE_SHARED);
  CHECK(r2.token() >= r1.token());
  auto described = client->LockDescribe("rw/one", After(5s));
  REQUIRE(described.ok());
  CHECK(described->lock().holders_size() == 2);
  auto excl = w.TryLock(After(5s));
  REQUIRE(excl.ok());
  CHECK_FALSE(*excl);  // Rule: never together with an exclusive holder

  // Rule: one lease holds a name in one mode: no upgrade (MODE_CONFLICT),
  // and the shared hold stays.
  auto conflict = r1.TryLock(After(5s));
  INFO(conflict.status().ToString());
  CHECK(conflict.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ErrorReason(conflict.status()) == "ERROR_REASON_MODE_CONFLICT");
  CHECK(r1.held());
  CHECK(r1.mode() == v1::LOCK_MODE_SHARED);

  REQUIRE(r1.UnlockShared(After(5s)).ok());
  REQUIRE(r2.UnlockShared(After(5s)).ok());
  auto guard = w.ScopedLock(After(5s));
  REQUIRE(guard.ok());
  CHECK(guard->token() > r2.token());
  auto reader = r1.TryLockShared(After(5s));
  REQUIRE(reader.ok());
  CHECK_FALSE(*reader);  // the writer excludes readers
  REQUIRE(guard->Unlock().ok());
  auto shared_guard = r1.ScopedLockShared(After(5s));
  REQUIRE(shared_guard.ok());
  CHECK(shared_guard->owns_lock());
  CHECK(shared_guard->token() > guard->token());
}

TEST_CASE("Semaphore of 2 permits admits two sessions and queues the third",
          "[client][sdk][lock]") {
  TestCluster t;
  auto client = t.NewClient();
  auto s1 = t.NewSession(client);
  auto s2 = t.NewSession(client);
  auto s3 = t.NewSession(client);
  Semaphore p1(*s1, "sem/two", 2);
  Semaphore p2(*s2, "sem/two", 2);
  Semaphore p3(*s3, "sem/two", 2);
  CHECK(p1.permits() == 2);

  auto g1 = p1.ScopedAcquire(After(5s));
  REQUIRE(g1.ok());
  auto got2 = p2.TryAcquire(After(5s));
  REQUIRE(got2.ok());
  CHECK(*got2);
  auto got3 = p3.TryAcquire(After(5s));
  REQUIRE(got3.ok());
  CHECK_FALSE(*got3);  // Rule: at most N holders
  auto described = client->LockDescribe("sem/two", After(5s));
  REQUIRE(described.ok());
  CHECK(described->lock().permits() == 2);
  CHECK(described->lock().holders_size() == 2);

  // Rule: every object on a name declares the same permits.
  auto s4 = t.NewSession(client);
  Semaphore wrong(*s4, "sem/two", 3);
  auto conflict = wrong.TryAcquire(After(5s));
  INFO(conflict.status().ToString());
  CHECK(conflict.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ErrorReason(conflict.status()) == "ERROR_REASON_PERMITS_CONFLICT");

  // The third waits (FIFO) and is admitted when a permit is released.
  auto waiting = std::async(std::launch::async, [&] { return p3.Acquire(After(10s)); });
  REQUIRE(Eventually(5s, [&] {
    auto d = client->LockDescribe("sem/two", After(2s));
    return d.ok() && d->lock().waiters_size() == 1;
  }));
  const uint64_t first_token = g1->token();
  REQUIRE(g1->Unlock().ok());
  REQUIRE(waiting.get().ok());
  CHECK(p3.token() > first_token);
  CHECK(p3.held());
  REQUIRE(p2.Release(After(5s)).ok());
  REQUIRE(p3.Release(After(5s)).ok());
}

TEST_CASE("retries are exactly-once: a retried write returns its first answer and changes nothing",
          "[client][sdk][exactly-once]") {
  TestCluster t;
  auto client = t.NewClient();

  // A retried grant returns the same lease and grants no second one.
  v1::LeaseGrantRequest grant;
  grant.set_ttl_ms(10000);
  *grant.mutable_write() = client->NextWrite();
  auto first = client->LeaseGrant(grant, After(5s));
  REQUIRE(first.ok());
  CHECK_FALSE(first->header().duplicate());
  auto retried = client->LeaseGrant(grant, After(5s));
  REQUIRE(retried.ok());
  CHECK(retried->header().duplicate());
  CHECK(retried->lease_id() == first->lease_id());
  auto leases = client->LeaseList(After(5s));
  REQUIRE(leases.ok());
  CHECK(leases->leases_size() == 1);

  // A retried acquire after the release answers the first grant and does not
  // take the lock again.
  v1::LockAcquireRequest acquire;
  acquire.set_name("once/lock");
  acquire.set_lease_id(first->lease_id());
  *acquire.mutable_write() = client->NextWrite();
  auto acquired = client->LockAcquire(acquire, After(5s));
  REQUIRE(acquired.ok());
  REQUIRE(acquired->acquired());
  v1::LockReleaseRequest release;
  release.set_name("once/lock");
  release.set_lease_id(first->lease_id());
  release.set_token(acquired->token());
  *release.mutable_write() = client->NextWrite();
  REQUIRE(client->LockRelease(release, After(5s)).ok());
  auto replay = client->LockAcquire(acquire, After(5s));
  REQUIRE(replay.ok());
  CHECK(replay->header().duplicate());
  CHECK(replay->acquired());
  CHECK(replay->token() == acquired->token());
  auto described = client->LockDescribe("once/lock", After(5s));
  REQUIRE(described.ok());
  CHECK_FALSE(described->found());
  // A retried release is answered OK from its first result; a new release of
  // the gone hold is NOT_HELD.
  auto release_again = client->LockRelease(release, After(5s));
  REQUIRE(release_again.ok());
  CHECK(release_again->header().duplicate());
  release.clear_write();
  auto fresh_release = client->LockRelease(release, After(5s));
  CHECK(ErrorReason(fresh_release.status()) == "ERROR_REASON_NOT_HELD");

  // Through a leader crash: every Mutex::Lock either holds with a fresh,
  // larger token or fails; the server never shows two holds of one name.
  auto session = t.NewSession(client);
  Mutex mutex(*session, "once/failover");
  uint64_t last = 0;
  int held = 0;
  for (int i = 0; i < 20; ++i) {
    if (i == 5) t.cluster.Kill(t.leader);
    absl::Status status = mutex.Lock(After(8s));
    INFO("round " << i << ": " << status.ToString());
    if (!status.ok()) continue;
    ++held;
    CHECK(mutex.token() > last);
    last = mutex.token();
    auto d = client->LockDescribe("once/failover", After(8s));
    REQUIRE(d.ok());
    REQUIRE(d->lock().holders_size() == 1);
    CHECK(d->lock().holders(0).token() == last);
    REQUIRE(mutex.Unlock(After(8s)).ok());
  }
  CHECK(held >= 15);

  // The server keeps a client's last 16 results (dedup_window). A write whose
  // first attempt arrives after 16 newer writes of its client (threads
  // sharing a Client) is refused unapplied; the call sends it again with a
  // new WriteId. A retried write refused so may have applied: ABORTED, an
  // unknown outcome.
  v1::LeaseGrantRequest late;
  late.set_ttl_ms(10000);
  *late.mutable_write() = client->NextWrite();
  v1::LeaseGrantRequest retry = late;
  *retry.mutable_write() = client->NextWrite();
  auto applied = client->LeaseGrant(retry, After(5s));
  REQUIRE(applied.ok());
  for (int i = 0; i < 17; ++i) {
    v1::LeaseGrantRequest newer;
    newer.set_ttl_ms(10000);
    REQUIRE(client->LeaseGrant(newer, After(5s)).ok());
  }
  auto late_grant = client->LeaseGrant(late, After(5s));
  INFO(late_grant.status().ToString());
  REQUIRE(late_grant.ok());
  CHECK_FALSE(late_grant->header().duplicate());
  auto forgotten = client->LeaseGrant(retry, After(5s));
  INFO(forgotten.status().ToString());
  CHECK(forgotten.status().code() == absl::StatusCode::kAborted);
  CHECK(ErrorReason(forgotten.status()).empty());
  CHECK(WriteForgotten(forgotten.status()));  // the same WriteId cannot be asked again
  CHECK_FALSE(WriteForgotten(late_grant.status()));

  // The renewed write is reported (sent_write), so a retry of a release whose
  // outcome is unknown re-sends the write that may have applied, not the
  // refused first one, and gets its first answer.
  auto renewal_session = t.NewSession(client);  // the first lease may have expired by now
  v1::LockAcquireRequest take;
  take.set_name("once/renewed");
  take.set_lease_id(renewal_session->lease_id());
  auto taken = client->LockAcquire(take, After(5s));
  REQUIRE(taken.ok());
  REQUIRE(taken->acquired());
  v1::LockReleaseRequest late_release;
  late_release.set_name("once/renewed");
  late_release.set_lease_id(renewal_session->lease_id());
  late_release.set_token(taken->token());
  *late_release.mutable_write() = client->NextWrite();
  for (int i = 0; i < 17; ++i) {
    v1::LeaseGrantRequest newer;
    newer.set_ttl_ms(10000);
    REQUIRE(client->LeaseGrant(newer, After(5s)).ok());
  }
  v1::WriteId sent;
  auto renewed = client->LockRelease(late_release, After(5s), &sent);
  INFO(renewed.status().ToString());
  REQUIRE(renewed.ok());
  CHECK(sent.sequence() > late_release.write().sequence());
  *late_release.mutable_write() = sent;
  auto resent = client->LockRelease(late_release, After(5s));
  INFO(resent.status().ToString());
  REQUIRE(resent.ok());
  CHECK(resent->header().duplicate());
}

namespace {

// A lock held by one session, and a Lock of a second session of the same
// Client parked behind it on the leader (waiting up to `wait`).
struct ParkedLock {
  ParkedLock(const TestCluster& t, const std::string& name, std::chrono::seconds wait)
      : client(t.NewClient()),
        holder_session(t.NewSession(client)),
        waiter_session(t.NewSession(client)),
        holder(*holder_session, name),
        waiter(*waiter_session, name) {
    REQUIRE(holder.Lock(After(5s)).ok());
    waited = std::async(std::launch::async, [this, wait] { return waiter.Lock(After(wait)); });
    REQUIRE(Eventually(5s, [&] {
      auto d = client->LockDescribe(name, After(2s));
      return d.ok() && d->lock().waiters_size() == 1;
    }));
  }

  // Unlocks the holder, then checks that the parked Lock is granted: the
  // waiter alone holds `name`, with a larger token, and nobody waits.
  void CheckWaiterGetsItWhenHolderUnlocks(const std::string& name) {
    const uint64_t holder_token = holder.token();
    REQUIRE(holder.Unlock(After(10s)).ok());
    absl::Status status = waited.get();
    INFO(status.ToString());
    REQUIRE(status.ok());
    CHECK(waiter.held());
    CHECK(waiter.token() > holder_token);
    auto d = client->LockDescribe(name, After(5s));
    REQUIRE(d.ok());
    REQUIRE(d->lock().holders_size() == 1);
    CHECK(d->lock().holders(0).lease_id() == waiter_session->lease_id());
    CHECK(d->lock().waiters_size() == 0);
  }

  std::shared_ptr<Client> client;
  std::unique_ptr<Session> holder_session;
  std::unique_ptr<Session> waiter_session;
  Mutex holder;
  Mutex waiter;
  std::future<absl::Status> waited;  // last: destroyed first, waits for the Lock
};

}  // namespace

TEST_CASE("a Lock waiting on a leader that shuts down keeps its place and is granted later",
          "[client][sdk][failover]") {
  TestCluster t;
  ParkedLock parked(t, "shutdown/lock", 20s);
  auto& [client, holder_session, waiter_session, holder, waiter, waited] = parked;

  // Rule: a graceful shutdown answers the parked call UNAVAILABLE, not
  // "cancelled": its wait is still queued in the replicated state, and the
  // SDK retries the same write on the next leader.
  t.cluster.Terminate(t.leader);
  const int next_leader = t.cluster.WaitForLeader(10s, {t.leader});
  REQUIRE(next_leader != 0);
  CHECK(waited.wait_for(500ms) == std::future_status::timeout);
  parked.CheckWaiterGetsItWhenHolderUnlocks("shutdown/lock");
}

TEST_CASE("a Lock whose retried write the cluster forgot keeps its place and is granted later",
          "[client][sdk][failover]") {
  TestCluster t;
  ParkedLock parked(t, "forgotten/lock", 30s);
  auto& [client, holder_session, waiter_session, holder, waiter, waited] = parked;

  // Semantics 5: the cluster remembers the answers of a client's last 16
  // writes. 17 newer writes of the same Client make it forget the parked
  // acquire, so its retry on the next leader is refused SEQUENCE_TOO_OLD.
  for (int i = 0; i < 17; ++i) {
    v1::LeaseGrantRequest grant;
    grant.set_ttl_ms(60000);
    REQUIRE(client->LeaseGrant(grant, After(5s)).ok());
  }
  t.cluster.Terminate(t.leader);
  REQUIRE(t.cluster.WaitForLeader(10s, {t.leader}) != 0);
  // Rule: the Lock goes on with a new write, which the server answers from
  // the lease's place in the queue: it neither fails nor leaves a wait behind.
  CHECK(waited.wait_for(1s) == std::future_status::timeout);
  parked.CheckWaiterGetsItWhenHolderUnlocks("forgotten/lock");
}

TEST_CASE("a Lock waiting on a leader that is paused fails over by connection pings",
          "[client][sdk][failover]") {
  TestCluster t;
  ParkedLock parked(t, "paused/lock", 40s);
  auto& [client, holder_session, waiter_session, holder, waiter, waited] = parked;

  // Rule: a paused (or partitioned) replica keeps the TCP connection open but
  // never answers. The parked call must notice by HTTP/2 pings and re-send its
  // WriteId to the next leader, not wait out its whole 40-s deadline there.
  t.cluster.Pause(t.leader);
  const int next_leader = t.cluster.WaitForLeader(10s, {t.leader});
  REQUIRE(next_leader != 0);
  const uint64_t holder_token = holder.token();
  REQUIRE(holder.Unlock(After(10s)).ok());
  // Pings notice the paused leader within ping_interval + ping_timeout (6 s).
  REQUIRE(waited.wait_for(10s) == std::future_status::ready);
  absl::Status status = waited.get();
  INFO(status.ToString());
  REQUIRE(status.ok());
  CHECK(waiter.held());
  CHECK(waiter.token() > holder_token);
}

TEST_CASE("two waiting acquires of one lease on one name are both answered by the grant",
          "[client][sdk]") {
  TestCluster t;
  auto client = t.NewClient();
  auto holder_session = t.NewSession(client);
  auto shared_session = t.NewSession(client);
  Mutex holder(*holder_session, "twice/lock");
  REQUIRE(holder.Lock(After(5s)).ok());
  auto acquire = [&] {
    v1::LockAcquireRequest request;
    *request.mutable_write() = client->NextWrite();
    request.set_name("twice/lock");
    request.set_lease_id(shared_session->lease_id());
    request.set_wait_timeout_ms(20000);
    return client->LockAcquire(std::move(request), After(30s));
  };
  auto first_done = std::async(std::launch::async, acquire);
  auto second_done = std::async(std::launch::async, acquire);
  // Both calls are parked for the same (name, lease) wait.
  std::this_thread::sleep_for(500ms);
  REQUIRE(Eventually(5s, [&] {
    auto d = client->LockDescribe("twice/lock", After(2s));
    return d.ok() && d->lock().waiters_size() == 1;
  }));

  // Rule: the lock is held by the lease, so one grant answers every call of
  // that lease waiting for it; neither call waits out its deadline.
  REQUIRE(holder.Unlock(After(5s)).ok());
  REQUIRE(first_done.wait_for(5s) == std::future_status::ready);
  REQUIRE(second_done.wait_for(5s) == std::future_status::ready);
  auto first = first_done.get();
  auto second = second_done.get();
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(first->acquired());
  CHECK(second->acquired());
  CHECK(first->token() == second->token());
  auto d = client->LockDescribe("twice/lock", After(5s));
  REQUIRE(d.ok());
  REQUIRE(d->lock().holders_size() == 1);
  CHECK(d->lock().holders(0).lease_id() == shared_session->lease_id());
}

TEST_CASE("lock objects sharing a session take turns on a name instead of sharing its hold",
          "[client][sdk][lock]") {
  TestCluster t;
  auto client = t.NewClient();
  auto session = t.NewSession(client);
  Mutex first(*session, "turns/lock");
  Mutex second(*session, "turns/lock");
  REQUIRE(first.Lock(After(5s)).ok());
  const uint64_t first_token = first.token();

  // Rule: a second object of the same session does not get the first's hold.
  auto tried = second.TryLock(After(5s));
  REQUIRE(tried.ok());
  CHECK_FALSE(*tried);
  CHECK_FALSE(second.held());
  const auto start = Clock::now();
  absl::Status timed_out = second.Lock(After(800ms));
  CHECK(timed_out.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(MillisSince(start) < 1000);
  // Rule: the holder's own Lock still returns its hold (same token).
  auto again = first.TryLock(After(5s));
  REQUIRE(again.ok());
  CHECK(*again);
  CHECK(first.token() == first_token);

  // Rule: a waiting object gets the name when the holder unlocks, as a new
  // hold with a larger token, and the holder's Unlock does not end it.
  auto waiting = std::async(std::launch::async, [&] { return second.Lock(After(10s)); });
  std::this_thread::sleep_for(300ms);
  CHECK(waiting.wait_for(0ms) == std::future_status::timeout);
  REQUIRE(first.Unlock(After(5s)).ok());
  REQUIRE(waiting.wait_for(5s) == std::future_status::ready);
  REQUIRE(waiting.get().ok());
  CHECK(second.held());
  CHECK(second.token() > first_token);
  REQUIRE(first.Unlock(After(5s)).ok());  // not held by `first`: changes nothing
  auto described = client->LockDescribe("turns/lock", After(5s));
  REQUIRE(described.ok());
  REQUIRE(described->lock().holders_size() == 1);
  CHECK(described->lock().holders(0).token() == second.token());

  // Rule: shared holds take turns too, and so do semaphore permits.
  SharedMutex reader_a(*session, "turns/shared");
  SharedMutex reader_b(*session, "turns/shared");
  REQUIRE(reader_a.LockShared(After(5s)).ok());
  auto shared_tried = reader_b.TryLockShared(After(5s));
  REQUIRE(shared_tried.ok());
  CHECK_FALSE(*shared_tried);
  Semaphore permit_a(*session, "turns/semaphore", 2);
  Semaphore permit_b(*session, "turns/semaphore", 2);
  REQUIRE(permit_a.Acquire(After(5s)).ok());
  auto permit_tried = permit_b.TryAcquire(After(5s));
  REQUIRE(permit_tried.ok());
  CHECK_FALSE(*permit_tried);

  // Rule: an object destroyed while it holds releases its hold first, so the
  // session's next object on the name gets a new hold, not the old one.
  uint64_t dropped_token = 0;
  {
    Mutex dropped(*session, "turns/dropped");
    REQUIRE(dropped.Lock(After(5s)).ok());
    dropped_token = dropped.token();
  }
  Mutex next(*session, "turns/dropped");
  auto next_tried = next.TryLock(After(5s));
  REQUIRE(next_tried.ok());
  CHECK(*next_tried);
  CHECK(next.token() > dropped_token);

  // Rule: a waiting object stops waiting when the session ends.
  auto stranded = std::async(std::launch::async, [&] { return reader_b.Lock(After(30s)); });
  std::this_thread::sleep_for(200ms);
  REQUIRE(session->Close(After(5s)).ok());
  REQUIRE(stranded.wait_for(2s) == std::future_status::ready);
  CHECK(stranded.get().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("Lock and Campaign wait in steps a cluster with a short max_wait_timeout_ms accepts",
          "[client][sdk][lock][limits]") {
  // The SDK asks the server to wait up to an hour per attempt; a cluster may
  // allow less (here 1 s), and then answers WAIT_TIMEOUT_OUT_OF_RANGE.
  ConfigFile config("limits:\n  max_wait_timeout_ms: 1000\n");
  TestCluster t({"--config", config.path()});
  auto client = t.NewClient();
  auto session_a = t.NewSession(client);
  auto session_b = t.NewSession(t.NewClient());

  Mutex a(*session_a, "short-waits/lock");
  Mutex b(*session_b, "short-waits/lock");
  REQUIRE(a.Lock(After(5s)).ok());
  auto waiting = std::async(std::launch::async, [&] { return b.Lock(After(10s)); });
  std::this_thread::sleep_for(2500ms);  // more than two of the server's waits
  REQUIRE(a.Unlock(After(5s)).ok());
  absl::Status granted = waiting.get();
  INFO(granted.ToString());
  CHECK(granted.ok());
  CHECK(b.held());

  Election first(*session_a, "short-waits/election");
  Election second(*session_b, "short-waits/election");
  REQUIRE(first.Campaign("a", After(5s)).ok());
  auto campaigning =
      std::async(std::launch::async, [&] { return second.Campaign("b", After(10s)); });
  std::this_thread::sleep_for(2500ms);
  REQUIRE(first.Resign(After(5s)).ok());
  absl::Status elected = campaigning.get();
  INFO(elected.ToString());
  CHECK(elected.ok());
}
