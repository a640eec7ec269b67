// Rule 2: locks, fencing tokens, FIFO queues, semaphores.
#include "tests/lock/harness.h"

namespace raftlock::lock::testing {
namespace {

constexpr auto kX = v1::LOCK_MODE_EXCLUSIVE;
constexpr auto kS = v1::LOCK_MODE_SHARED;

TEST_CASE("lock: exclusive acquire is granted with the granting entry's index as token", "[lock]") {
  Harness h;
  const uint64_t lease = h.NewLease();
  ApplyResult r = h.Do(Acquire("a", lease));
  REQUIRE(r.result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_GRANTED);
  CHECK(r.result.lock_acquire().token() == h.index);
  REQUIRE(Grants(r).size() == 1);
  CHECK_FALSE(Grants(r)[0].from_queue());
}

TEST_CASE("lock: a try-once acquire of a held lock answers BUSY and changes nothing", "[lock]") {
  Harness h;
  const uint64_t a = h.NewLease();
  const uint64_t b = h.NewLease();
  h.Hold("x", a);
  const std::string before = StateOf(h.sm);
  ApplyResult r = h.Do(Acquire("x", b));
  CHECK(r.result.code() == 0);
  CHECK(r.result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_BUSY);
  CHECK(StateOf(h.sm) == before);
}

TEST_CASE("lock: shared holders coexist, an exclusive acquire waits for all of them", "[lock]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease(), c = h.NewLease();
  const uint64_t ta = h.Hold("x", a, kS);
  const uint64_t tb = h.Hold("x", b, kS);
  CHECK(h.Holders("x") == 2);
  CHECK(h.Do(Acquire("x", c, kX, 1000)).result.lock_acquire().outcome() ==
        v1::ACQUIRE_OUTCOME_QUEUED);
  CHECK(Grants(h.Do(Release("x", a, ta))).empty());
  ApplyResult r = h.Do(Release("x", b, tb));
  REQUIRE(Grants(r).size() == 1);
  CHECK(Grants(r)[0].lease_id() == c);
}

TEST_CASE("lock: an exclusive holder blocks shared acquires", "[lock]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  h.Hold("x", a);
  CHECK(h.Do(Acquire("x", b, kS)).result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_BUSY);
}

TEST_CASE("lock: release grants the next FIFO waiter in the same entry", "[lock]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease(), c = h.NewLease();
  const uint64_t t = h.Hold("x", a);
  h.Do(Acquire("x", b, kX, 5000));
  h.Do(Acquire("x", c, kX, 5000));
  ApplyResult r = h.Do(Release("x", a, t));
  REQUIRE(Grants(r).size() == 1);
  CHECK(Grants(r)[0].lease_id() == b);
  CHECK(Grants(r)[0].token() == h.index);
  CHECK(Grants(r)[0].from_queue());
  auto d = h.sm.Describe("x");
  REQUIRE(d->waiters_size() == 1);
  CHECK(d->waiters(0).lease_id() == c);
}

TEST_CASE("lock: no barging -- a compatible acquire queues behind an earlier waiter", "[lock]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease(), c = h.NewLease();
  h.Hold("x", a, kS);
  h.Do(Acquire("x", b, kX, 5000));  // writer queued
  CHECK(h.Do(Acquire("x", c, kS)).result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_BUSY);
  ApplyResult r = h.Do(Acquire("x", c, kS, 5000));
  CHECK(r.result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_QUEUED);
  CHECK(r.result.lock_acquire().queue_position() == 2);
}

TEST_CASE("lock: a release grants every consecutive shared waiter at the head", "[lock]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease(), c = h.NewLease(), d = h.NewLease();
  const uint64_t t = h.Hold("x", a);
  h.Do(Acquire("x", b, kS, 5000));
  h.Do(Acquire("x", c, kS, 5000));
  h.Do(Acquire("x", d, kX, 5000));
  ApplyResult r = h.Do(Release("x", a, t));
  REQUIRE(Grants(r).size() == 2);
  CHECK(Grants(r)[0].token() == Grants(r)[1].token());
  CHECK(h.Waiters("x") == 1);
}

TEST_CASE("lock: fencing tokens strictly increase across holders", "[lock][fencing]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    const uint64_t lease = i % 2 ? a : b;
    const uint64_t t = h.Hold("x", lease);
    CHECK(t > last);
    last = t;
    h.Do(Release("x", lease, t));
  }
}

TEST_CASE("lock: fencing tokens increase even after the lock was deleted and recreated",
          "[lock][fencing]") {
  Harness h;
  const uint64_t a = h.NewLease();
  const uint64_t t1 = h.Hold("x", a);
  h.Do(Release("x", a, t1));
  CHECK_FALSE(h.sm.Describe("x").has_value());
  h.Advance(10);
  CHECK(h.Hold("x", a) > t1);
}

TEST_CASE("lock: release by a lease that does not hold the lock is refused", "[lock][release]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  const uint64_t t = h.Hold("x", a);
  const std::string before = StateOf(h.sm);
  ApplyResult r = h.Do(Release("x", b, t));
  CHECK(r.result.code() == kFailedPrecondition);
  CHECK(r.result.reason() == v1::ERROR_REASON_NOT_HELD);
  CHECK(StateOf(h.sm) == before);
}

TEST_CASE("lock: a stale token cannot release a newer hold", "[lock][release][fencing]") {
  Harness h;
  const uint64_t a = h.NewLease();
  const uint64_t old = h.Hold("x", a);
  h.Do(Release("x", a, old));
  const uint64_t fresh = h.Hold("x", a);
  ApplyResult r = h.Do(Release("x", a, old));
  CHECK(r.result.reason() == v1::ERROR_REASON_WRONG_TOKEN);
  CHECK_THAT(r.result.message(), Catch::Contains("token"));
  CHECK(h.sm.ValidateToken("x", fresh).valid());
}

TEST_CASE("lock: releasing twice is harmless -- the second release frees nothing",
          "[lock][release]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  const uint64_t t = h.Hold("x", a);
  h.Do(Acquire("x", b, kX, 5000));
  REQUIRE(h.Do(Release("x", a, t)).result.code() == 0);  // b now holds
  ApplyResult again = h.Do(Release("x", a, t));
  CHECK(again.result.reason() == v1::ERROR_REASON_NOT_HELD);
  CHECK(Releases(again).empty());
  REQUIRE(h.Holders("x") == 1);
  CHECK(h.sm.Describe("x")->holders(0).lease_id() == b);
}

TEST_CASE("lock: release of a lock never held is NOT_HELD", "[lock][release]") {
  Harness h;
  const uint64_t a = h.NewLease();
  ApplyResult r = h.Do(Release("nothing", a, 1));
  CHECK(r.result.code() == kFailedPrecondition);
  CHECK(r.result.reason() == v1::ERROR_REASON_NOT_HELD);
}

TEST_CASE("lock: release naming an unknown lease is NOT_FOUND", "[lock][release]") {
  Harness h;
  CHECK(h.Do(Release("x", 5, 1)).result.reason() == v1::ERROR_REASON_LEASE_NOT_FOUND);
}

TEST_CASE("lock: a semaphore of N permits admits N shared holders and queues the next",
          "[lock][semaphore]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease(), c = h.NewLease(), d = h.NewLease();
  h.Hold("s", a, kS, 3);
  h.Hold("s", b, kS, 3);
  h.Hold("s", c, kS, 0);  // 0 = use the declaration
  ApplyResult r = h.Do(Acquire("s", d, kS, 1000, 3));
  CHECK(r.result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_QUEUED);
  CHECK(h.sm.Describe("s")->permits() == 3);
  CHECK(h.Holders("s") == 3);
}

TEST_CASE("lock: a conflicting permits declaration is FAILED_PRECONDITION", "[lock][semaphore]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease(), c = h.NewLease();
  h.Hold("s", a, kS, 3);
  ApplyResult r = h.Do(Acquire("s", b, kS, 0, 4));
  CHECK(r.result.code() == kFailedPrecondition);
  CHECK(r.result.reason() == v1::ERROR_REASON_PERMITS_CONFLICT);
  h.Hold("plain", a, kS);
  CHECK(h.Do(Acquire("plain", c, kS, 0, 2)).result.reason() == v1::ERROR_REASON_PERMITS_CONFLICT);
}

TEST_CASE("lock: an exclusive acquire of a semaphore waits until no permit is held",
          "[lock][semaphore]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  const uint64_t t = h.Hold("s", a, kS, 2);
  CHECK(h.Do(Acquire("s", b, kX, 1000)).result.lock_acquire().outcome() ==
        v1::ACQUIRE_OUTCOME_QUEUED);
  ApplyResult r = h.Do(Release("s", a, t));
  REQUIRE(Grants(r).size() == 1);
  CHECK(Grants(r)[0].mode() == kX);
}

TEST_CASE("lock: permits above the limit are rejected", "[lock][semaphore][limits]") {
  Harness h;
  const uint64_t a = h.NewLease();
  ApplyResult r = h.Do(Acquire("s", a, kS, 0, 11));
  CHECK(r.result.code() == kInvalidArgument);
  CHECK(r.result.reason() == v1::ERROR_REASON_PERMITS_OUT_OF_RANGE);
}

TEST_CASE("lock: a waiter whose lease ends leaves the queue", "[lock][queue]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease(), c = h.NewLease(500);
  h.Hold("x", a);
  h.Do(Acquire("x", b, kX, 5000));
  h.Do(Acquire("x", c, kX, 5000));
  ApplyResult r = h.Do(Revoke(b));
  REQUIRE(WaitEnds(r).size() == 1);
  CHECK(WaitEnds(r)[0].reason() == v1::END_REASON_LEASE_REVOKED);
  r = h.Advance(500);
  REQUIRE(WaitEnds(r).size() == 1);
  CHECK(WaitEnds(r)[0].lease_id() == c);
  CHECK(WaitEnds(r)[0].reason() == v1::END_REASON_LEASE_EXPIRED);
  CHECK(h.Waiters("x") == 0);
}

TEST_CASE("lock: a wait ends at its deadline, not before", "[lock][queue]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  h.Hold("x", a);
  ApplyResult q = h.Do(WithClient(Acquire("x", b, kX, 1000), 7, 1));
  CHECK(q.result.lock_acquire().wait_deadline_ms() == 1000);
  CHECK(WaitEnds(h.Advance(999)).empty());
  ApplyResult r = h.Advance(1);
  REQUIRE(WaitEnds(r).size() == 1);
  CHECK(WaitEnds(r)[0].reason() == v1::END_REASON_TIMED_OUT);
  CHECK(WaitEnds(r)[0].client_id() == 7);
  CHECK(WaitEnds(r)[0].sequence() == 1);
  CHECK(h.Waiters("x") == 0);
}

TEST_CASE("lock: a timed-out head waiter unblocks the waiters behind it", "[lock][queue]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease(), c = h.NewLease();
  h.Hold("x", a, kS);
  h.Do(Acquire("x", b, kX, 100));
  h.Do(Acquire("x", c, kS, 5000));
  ApplyResult r = h.Advance(100);
  REQUIRE(WaitEnds(r).size() == 1);
  REQUIRE(Grants(r).size() == 1);
  CHECK(Grants(r)[0].lease_id() == c);
}

TEST_CASE("lock: a cancelled wait leaves the queue, cancelling no wait is NOT_WAITING",
          "[lock][queue]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  h.Hold("x", a);
  h.Do(Acquire("x", b, kX, 5000));
  ApplyResult r = h.Do(CancelWait("x", b));
  CHECK(r.result.code() == 0);
  REQUIRE(WaitEnds(r).size() == 1);
  CHECK(WaitEnds(r)[0].reason() == v1::END_REASON_CANCELLED);
  r = h.Do(CancelWait("x", b));
  CHECK(r.result.code() == kFailedPrecondition);
  CHECK(r.result.reason() == v1::ERROR_REASON_NOT_WAITING);
}

TEST_CASE("lock: re-acquire by the holder returns its hold, another mode is MODE_CONFLICT",
          "[lock]") {
  Harness h;
  const uint64_t a = h.NewLease();
  const uint64_t t = h.Hold("x", a);
  ApplyResult r = h.Do(Acquire("x", a));
  CHECK(r.result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_GRANTED);
  CHECK(r.result.lock_acquire().token() == t);
  CHECK(r.result.lock_acquire().already());
  CHECK(Grants(r).empty());
  CHECK(h.Do(Acquire("x", a, kS)).result.reason() == v1::ERROR_REASON_MODE_CONFLICT);
}

TEST_CASE("lock: acquire by a queued lease returns its place in the queue", "[lock][queue]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease(), c = h.NewLease();
  h.Hold("x", a);
  h.Do(Acquire("x", b, kX, 5000));
  h.Do(Acquire("x", c, kX, 5000));
  ApplyResult r = h.Do(Acquire("x", c, kX, 100));
  CHECK(r.result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_QUEUED);
  CHECK(r.result.lock_acquire().queue_position() == 2);
  CHECK(r.result.lock_acquire().already());
  CHECK(r.result.lock_acquire().wait_deadline_ms() == 5000);
}

TEST_CASE("lock: Describe reports holders, modes, tokens, waiters and TTL left", "[lock][query]") {
  Harness h;
  const uint64_t a = h.NewLease(1000), b = h.NewLease(2000);
  const uint64_t t = h.Hold("x", a, kS);
  h.Do(Acquire("x", b, kX, 700));
  h.Advance(100);
  auto d = h.sm.Describe("x");
  REQUIRE(d.has_value());
  REQUIRE(d->holders_size() == 1);
  CHECK(d->holders(0).lease_id() == a);
  CHECK(d->holders(0).mode() == kS);
  CHECK(d->holders(0).token() == t);
  CHECK(d->holders(0).lease_ttl_remaining_ms() == 900);
  REQUIRE(d->waiters_size() == 1);
  CHECK(d->waiters(0).lease_id() == b);
  CHECK(d->waiters(0).mode() == kX);
  CHECK(d->waiters(0).position() == 1);
  CHECK(d->waiters(0).wait_deadline_ms() == 700);
  CHECK(d->waiters(0).lease_ttl_remaining_ms() == 1900);
}

TEST_CASE("lock: List returns locks with a prefix in name order", "[lock][query]") {
  Harness h;
  const uint64_t a = h.NewLease();
  h.Hold("job/b", a);
  h.Hold("job/a", a);
  h.Hold("other", a);
  auto list = h.sm.ListLocks("job/");
  REQUIRE(list.size() == 2);
  CHECK(list[0].name() == "job/a");
  CHECK(list[1].name() == "job/b");
  CHECK(h.sm.ListLocks().size() == 3);
}

// The names of a page's locks, in order.
std::vector<std::string> NamesOf(const ListPage<v1::LockInfo>& page) {
  std::vector<std::string> names;
  for (const auto& info : page.entries) names.push_back(info.name());
  return names;
}

TEST_CASE("lock: List pages continue after a name, within a prefix, by count and by bytes",
          "[lock][query]") {
  Harness h;
  const uint64_t a = h.NewLease();
  for (const char* name : {"job/a", "job/b", "job/c", "job/d", "other"}) h.Hold(name, a);
  using Names = std::vector<std::string>;
  auto first = h.sm.ListLocksPage("job/", "", 2, SIZE_MAX);
  CHECK(NamesOf(first) == Names{"job/a", "job/b"});
  CHECK(first.more);
  auto second = h.sm.ListLocksPage("job/", "job/b", 2, SIZE_MAX);
  CHECK(NamesOf(second) == Names{"job/c", "job/d"});
  CHECK_FALSE(second.more);  // "other" is outside the prefix
  auto last = h.sm.ListLocksPage("job/", "job/d", 2, SIZE_MAX);
  CHECK(last.entries.empty());
  CHECK_FALSE(last.more);
  // `after` before the prefix starts at the prefix; past it, nothing.
  CHECK(NamesOf(h.sm.ListLocksPage("job/", "a", 10, SIZE_MAX)) ==
        Names{"job/a", "job/b", "job/c", "job/d"});
  CHECK(h.sm.ListLocksPage("job/", "k", 10, SIZE_MAX).entries.empty());
  // Bytes: a page stops before it would pass max_bytes, but always takes one.
  const size_t one = first.entries[0].ByteSizeLong();
  auto by_bytes = h.sm.ListLocksPage("", "", 10, 2 * one);
  CHECK(NamesOf(by_bytes) == Names{"job/a", "job/b"});
  CHECK(by_bytes.more);
  auto tiny = h.sm.ListLocksPage("", "", 10, 1);
  CHECK(NamesOf(tiny) == Names{"job/a"});
  CHECK(tiny.more);
}

TEST_CASE("lock: ValidateToken accepts only a current holder's token", "[lock][fencing]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  const uint64_t t1 = h.Hold("x", a);
  CHECK(h.sm.ValidateToken("x", t1).valid());
  CHECK(h.sm.ValidateToken("x", t1).current_token() == t1);
  h.Do(Acquire("x", b, kX, 5000));
  h.Do(Release("x", a, t1));
  const uint64_t t2 = h.sm.Describe("x")->holders(0).token();
  CHECK_FALSE(h.sm.ValidateToken("x", t1).valid());
  CHECK(h.sm.ValidateToken("x", t1).current_token() == t2);
  CHECK(h.sm.ValidateToken("x", t2).valid());
  CHECK_FALSE(h.sm.ValidateToken("y", t2).valid());
  CHECK_FALSE(h.sm.ValidateToken("x", 0).valid());
}

TEST_CASE("lock: too many locks is RESOURCE_EXHAUSTED", "[lock][limits]") {
  Harness h;
  const uint64_t a = h.NewLease();
  for (int i = 0; i < 8; ++i) h.Hold("l" + std::to_string(i), a);
  ApplyResult r = h.Do(Acquire("l8", a));
  CHECK(r.result.code() == kResourceExhausted);
  CHECK(r.result.reason() == v1::ERROR_REASON_TOO_MANY_LOCKS);
  CHECK_FALSE(h.sm.Describe("l8").has_value());
  CHECK(h.Do(Acquire("l0", a)).result.code() == 0);  // existing locks still work
}

TEST_CASE("lock: too many waiters is RESOURCE_EXHAUSTED", "[lock][limits]") {
  Harness h;
  const uint64_t holder = h.NewLease();
  h.Hold("x", holder);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(h.Do(Acquire("x", h.NewLease(), kX, 1000)).result.lock_acquire().outcome() ==
            v1::ACQUIRE_OUTCOME_QUEUED);
  }
  ApplyResult r = h.Do(Acquire("x", h.NewLease(), kX, 1000));
  CHECK(r.result.reason() == v1::ERROR_REASON_TOO_MANY_WAITERS);
  CHECK(r.result.code() == kResourceExhausted);
  CHECK(h.Waiters("x") == 4);
}

TEST_CASE("lock: a lock with neither holder nor waiter does not exist", "[lock]") {
  Harness h;
  const uint64_t a = h.NewLease();
  const uint64_t t = h.Hold("x", a, kS, 4);
  h.Do(Release("x", a, t));
  CHECK_FALSE(h.sm.Describe("x").has_value());
  CHECK(h.sm.ListLocks().empty());
  // Its declaration went with it.
  CHECK(h.Do(Acquire("x", a, kS, 0, 2)).result.code() == 0);
}

TEST_CASE("lock: a wait that times out in the same entry as the release is not granted",
          "[lock][queue]") {
  Harness h;
  const uint64_t a = h.NewLease(1000), b = h.NewLease();
  h.Hold("x", a);
  h.Do(Acquire("x", b, kX, 1000));
  ApplyResult r = h.Advance(1000);  // a expires and b's wait ends together
  CHECK(Grants(r).empty());
  REQUIRE(WaitEnds(r).size() == 1);
  CHECK(WaitEnds(r)[0].reason() == v1::END_REASON_TIMED_OUT);
  CHECK_FALSE(h.sm.Describe("x").has_value());
}

TEST_CASE("lock: a waiter whose lease expires in the same entry is skipped, not granted",
          "[lock][queue]") {
  Harness h;
  const uint64_t a = h.NewLease(500), b = h.NewLease(500), c = h.NewLease(5000);
  h.Hold("x", a);
  h.Do(Acquire("x", b, kX, 4000));
  h.Do(Acquire("x", c, kX, 4000));
  ApplyResult r = h.Advance(500);
  REQUIRE(Grants(r).size() == 1);
  CHECK(Grants(r)[0].lease_id() == c);
  for (const auto& g : Grants(r)) CHECK(g.lease_id() != b);
}

// Expiry runs before the entry's command. A waiter whose lease that command
// revokes was granted by the expiry pass, and the revoke then handed the lock
// on in the same entry: two exclusive holders with one fencing token.
TEST_CASE("lock: a waiter whose lease the same entry revokes is never granted", "[lock][fencing]") {
  Harness h;
  const uint64_t a = h.NewLease(1000), b = h.NewLease(), c = h.NewLease();
  const uint64_t ta = h.Hold("x", a);
  h.Do(Acquire("x", b, kX, 5000));
  h.Do(Acquire("x", c, kX, 5000));
  h.now += 1000;  // a is due when the next entry applies
  ApplyResult r = h.Do(Revoke(b));
  CHECK(r.result.code() == 0);
  REQUIRE(Grants(r).size() == 1);
  CHECK(Grants(r)[0].lease_id() == c);
  CHECK(Grants(r)[0].token() == h.index);
  CHECK(Grants(r)[0].token() > ta);
  for (const auto& rel : Releases(r)) CHECK(rel.lease_id() == a);
  REQUIRE(WaitEnds(r).size() == 1);
  CHECK(WaitEnds(r)[0].lease_id() == b);
  CHECK(WaitEnds(r)[0].reason() == v1::END_REASON_LEASE_REVOKED);
}

// The queue stops before the lease a revoke names; if that revoke changes
// nothing (here a retry answered from the exactly-once table), the waiter is
// still granted in that entry.
TEST_CASE("lock: a waiter named by a revoke that does nothing is still granted", "[lock][queue]") {
  Harness h;
  const uint64_t a = h.NewLease(500), b = h.NewLease(), other = h.NewLease();
  h.Hold("x", a);
  h.Do(Acquire("x", b, kX, 5000));
  REQUIRE(h.Do(WithClient(Revoke(other), 7, 1)).result.code() == 0);
  h.now += 500;  // a is due at the next entry, the revoke's answer is still kept
  ApplyResult r = h.Do(WithClient(Revoke(b), 7, 1));  // sequence 1 again: a duplicate
  CHECK(r.duplicate);
  REQUIRE(Grants(r).size() == 1);
  CHECK(Grants(r)[0].lease_id() == b);
  CHECK(Grants(r)[0].token() == h.index);
  CHECK(h.Holders("x") == 1);
}

TEST_CASE("lock: every holder of an expired lease is released with the lease", "[lock]") {
  Harness h;
  const uint64_t a = h.NewLease(500);
  h.Hold("x", a);
  h.Hold("y", a, kS);
  ApplyResult r = h.Advance(500);
  CHECK(Releases(r).size() == 2);
  for (const auto& rel : Releases(r)) CHECK(rel.reason() == v1::END_REASON_LEASE_EXPIRED);
  CHECK(h.sm.ListLocks().empty());
}

}  // namespace
}  // namespace raftlock::lock::testing
