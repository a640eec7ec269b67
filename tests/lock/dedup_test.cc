// Rule 4: exactly-once.
#include "tests/lock/harness.h"

namespace raftlock::lock::testing {
namespace {

TEST_CASE("dedup: a retried command returns its first result and changes nothing", "[dedup]") {
  Harness h;
  const uint64_t a = h.NewLease();
  ApplyResult first = h.Do(WithClient(Acquire("x", a), 1, 1));
  const uint64_t token = first.result.lock_acquire().token();
  h.Do(Release("x", a, token));
  const std::string before = StateOf(h.sm);
  ApplyResult retry = h.Do(WithClient(Acquire("x", a), 1, 1));
  CHECK(retry.duplicate);
  CHECK(retry.result.SerializeAsString() == first.result.SerializeAsString());
  CHECK(StateOf(h.sm) == before);  // not acquired again
}

TEST_CASE("dedup: a retried release cannot free the next holder's lock", "[dedup][release]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  const uint64_t t = h.Hold("x", a);
  h.Do(Acquire("x", b, v1::LOCK_MODE_EXCLUSIVE, 5000));
  ApplyResult first = h.Do(WithClient(Release("x", a, t), 9, 3));
  REQUIRE(first.result.code() == 0);
  ApplyResult retry = h.Do(WithClient(Release("x", a, t), 9, 3));
  CHECK(retry.result.code() == 0);
  CHECK(retry.duplicate);
  CHECK(h.sm.Describe("x")->holders(0).lease_id() == b);
}

// A retry repeats its request. A release that reused a grant's sequence was
// answered OK with duplicate = true and released nothing; an acquire that
// reused it got the grant's result, which the API read as INTERNAL.
TEST_CASE("dedup: a sequence reused by another operation is refused", "[dedup]") {
  Harness h;
  ApplyResult grant = h.Do(WithClient(Grant(1000), 5, 1));
  const uint64_t lease = grant.result.lease_grant().lease_id();
  const uint64_t token = h.Hold("x", lease);
  const std::string before = StateOf(h.sm);
  ApplyResult release = h.Do(WithClient(Release("x", lease, token), 5, 1));
  CHECK_FALSE(release.duplicate);
  CHECK(release.result.code() == kInvalidArgument);
  CHECK(release.result.reason() == v1::ERROR_REASON_MALFORMED_COMMAND);
  CHECK_THAT(release.result.message(), Catch::Contains("another operation"));
  ApplyResult acquire = h.Do(WithClient(Acquire("y", lease), 5, 1));
  CHECK(acquire.result.code() == kInvalidArgument);
  CHECK(StateOf(h.sm) == before);
  // The same operation is still answered by its first result.
  ApplyResult retry = h.Do(WithClient(Grant(1000), 5, 1));
  CHECK(retry.duplicate);
  CHECK(retry.result.lease_grant().lease_id() == lease);
}

TEST_CASE("dedup: a retried lease grant does not grant a second lease", "[dedup]") {
  Harness h;
  ApplyResult first = h.Do(WithClient(Grant(1000), 5, 1));
  ApplyResult retry = h.Do(WithClient(Grant(1000), 5, 1));
  CHECK(retry.result.lease_grant().lease_id() == first.result.lease_grant().lease_id());
  CHECK(h.sm.ListLeases().size() == 1);
}

TEST_CASE("dedup: a sequence older than the kept results is SEQUENCE_TOO_OLD", "[dedup]") {
  Harness h;  // dedup_window = 3
  const uint64_t a = h.NewLease();
  for (uint64_t s = 1; s <= 4; ++s) h.Do(WithClient(KeepAlive(a), 2, s));
  ApplyResult r = h.Do(WithClient(KeepAlive(a), 2, 1));
  CHECK(r.result.code() == kFailedPrecondition);
  CHECK(r.result.reason() == v1::ERROR_REASON_SEQUENCE_TOO_OLD);
  CHECK(h.Do(WithClient(KeepAlive(a), 2, 2)).duplicate);
}

TEST_CASE("dedup: concurrent sequences applied out of order are each applied once", "[dedup]") {
  Harness h;
  const uint64_t a = h.NewLease();
  ApplyResult s2 = h.Do(WithClient(Acquire("y", a), 3, 2));
  ApplyResult s1 = h.Do(WithClient(Acquire("x", a), 3, 1));
  CHECK_FALSE(s1.duplicate);
  CHECK(s1.result.lock_acquire().token() == h.index);
  CHECK(h.Do(WithClient(Acquire("y", a), 3, 2)).duplicate);
  CHECK(h.Do(WithClient(Acquire("x", a), 3, 1)).duplicate);
}

TEST_CASE("dedup: client id 0 opts out -- a repeat executes again", "[dedup]") {
  Harness h;
  h.Do(Grant(1000));
  h.Do(Grant(1000));
  CHECK(h.sm.ListLeases().size() == 2);
}

TEST_CASE("dedup: a client id with sequence 0 is malformed and changes nothing", "[dedup]") {
  Harness h;
  ApplyResult r = h.Do(WithClient(Grant(1000), 4, 0));
  CHECK(r.result.code() == kInvalidArgument);
  CHECK(r.result.reason() == v1::ERROR_REASON_MALFORMED_COMMAND);
  CHECK(h.sm.ListLeases().empty());
}

TEST_CASE("dedup: results are kept while the client's lease lives", "[dedup][retention]") {
  Harness h;  // retention 1000
  const uint64_t a = h.NewLease(5000);
  ApplyResult first = h.Do(WithClient(Acquire("x", a), 1, 1));
  for (int i = 0; i < 4; ++i) {
    h.Advance(1000);
    h.Do(KeepAlive(a));
  }
  CHECK(h.Do(WithClient(Acquire("x", a), 1, 1)).duplicate);
}

TEST_CASE("dedup: results expire dedup_retention_ms after the client's lease ends",
          "[dedup][retention]") {
  Harness h;  // retention 1000
  const uint64_t a = h.NewLease(500);
  h.Do(WithClient(KeepAlive(a), 1, 1));
  h.Advance(500);  // lease expires at 500
  CHECK(h.sm.dedup().size() == 1);
  h.Advance(999);
  CHECK(h.sm.dedup().size() == 1);
  h.Advance(1);
  CHECK(h.sm.dedup().size() == 0);
  // A retry now executes again (and fails: the lease is gone).
  ApplyResult r = h.Do(WithClient(KeepAlive(a), 1, 1));
  CHECK_FALSE(r.duplicate);
  CHECK(r.result.reason() == v1::ERROR_REASON_LEASE_NOT_FOUND);
}

TEST_CASE("dedup: a retried revoke returns its first answer within the retention",
          "[dedup][retention]") {
  Harness h;
  const uint64_t a = h.NewLease();
  ApplyResult first = h.Do(WithClient(Revoke(a), 1, 1));
  h.Advance(999);
  ApplyResult retry = h.Do(WithClient(Revoke(a), 1, 1));
  CHECK(retry.duplicate);
  CHECK(retry.result.code() == 0);
}

TEST_CASE("dedup: the table is bounded, the least recently used client is forgotten",
          "[dedup][limits]") {
  Harness h;  // max_dedup_clients = 4
  const uint64_t a = h.NewLease();
  for (uint64_t c = 1; c <= 5; ++c) h.Do(WithClient(KeepAlive(a), c, 1));
  CHECK(h.sm.dedup().size() == 4);
  CHECK_FALSE(h.Do(WithClient(KeepAlive(a), 1, 1)).duplicate);  // client 1 was forgotten
  CHECK(h.Do(WithClient(KeepAlive(a), 5, 1)).duplicate);
}

TEST_CASE("dedup: an error result is remembered like any other", "[dedup]") {
  Harness h;
  const uint64_t a = h.NewLease();
  ApplyResult first = h.Do(WithClient(Release("x", a, 1), 1, 1));
  CHECK(first.result.reason() == v1::ERROR_REASON_NOT_HELD);
  h.Hold("x", a);
  ApplyResult retry = h.Do(WithClient(Release("x", a, 1), 1, 1));
  CHECK(retry.duplicate);
  CHECK(retry.result.reason() == v1::ERROR_REASON_NOT_HELD);
  CHECK(h.Holders("x") == 1);
}

TEST_CASE("dedup: a duplicate keeps the original index and cluster time", "[dedup]") {
  Harness h;
  ApplyResult first = h.Do(WithClient(Grant(1000), 1, 1));
  h.Advance(10);
  ApplyResult retry = h.Do(WithClient(Grant(1000), 1, 1));
  CHECK(retry.result.index() == first.result.index());
  CHECK(retry.result.cluster_time_ms() == first.result.cluster_time_ms());
}

TEST_CASE("dedup: a retried waiting acquire returns QUEUED, the grant is an event", "[dedup]") {
  Harness h;
  const uint64_t a = h.NewLease(), b = h.NewLease();
  const uint64_t t = h.Hold("x", a);
  ApplyResult q = h.Do(WithClient(Acquire("x", b, v1::LOCK_MODE_EXCLUSIVE, 5000), 8, 1));
  CHECK(q.result.lock_acquire().outcome() == v1::ACQUIRE_OUTCOME_QUEUED);
  ApplyResult rel = h.Do(Release("x", a, t));
  REQUIRE(Grants(rel).size() == 1);
  CHECK(Grants(rel)[0].client_id() == 8);
  CHECK(Grants(rel)[0].sequence() == 1);
  CHECK(h.Do(WithClient(Acquire("x", b, v1::LOCK_MODE_EXCLUSIVE, 5000), 8, 1))
            .result.lock_acquire()
            .outcome() == v1::ACQUIRE_OUTCOME_QUEUED);
  CHECK(h.sm.Describe("x")->holders(0).lease_id() == b);
}

}  // namespace
}  // namespace raftlock::lock::testing
