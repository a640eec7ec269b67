// Rule 1: leases (sessions).
#include "tests/lock/harness.h"

namespace raftlock::lock::testing {
namespace {

TEST_CASE("lease: grant returns the entry's log index as id, the TTL and its deadline", "[lease]") {
  Harness h;
  h.now = 500;
  ApplyResult r = h.Do(Grant(2000));
  REQUIRE(r.result.code() == 0);
  CHECK(r.result.lease_grant().lease_id() == h.index);
  CHECK(r.result.lease_grant().ttl_ms() == 2000);
  CHECK(r.result.lease_grant().deadline_ms() == 2500);
}

TEST_CASE("lease: TTL below the minimum is rejected and grants nothing", "[lease]") {
  Harness h;
  ApplyResult r = h.Do(Grant(99));
  CHECK(r.result.code() == kInvalidArgument);
  CHECK(r.result.reason() == v1::ERROR_REASON_TTL_OUT_OF_RANGE);
  CHECK_THAT(r.result.message(), Catch::Contains("ttl_ms") && Catch::Contains("100"));
  CHECK(h.sm.ListLeases().empty());
}

TEST_CASE("lease: TTL above the maximum is rejected and grants nothing", "[lease]") {
  Harness h;
  ApplyResult r = h.Do(Grant(100001));
  CHECK(r.result.reason() == v1::ERROR_REASON_TTL_OUT_OF_RANGE);
  CHECK(h.sm.ListLeases().empty());
  CHECK(h.Do(Grant(-5)).result.reason() == v1::ERROR_REASON_TTL_OUT_OF_RANGE);
}

TEST_CASE("lease: TTL bounds are inclusive", "[lease]") {
  Harness h;
  CHECK(h.Do(Grant(100)).result.code() == 0);
  CHECK(h.Do(Grant(100000)).result.code() == 0);
}

TEST_CASE("lease: never expires before TTL since last accepted keepalive", "[lease]") {
  Harness h;
  const uint64_t lease = h.NewLease(1000);
  h.Advance(600);
  REQUIRE(h.Do(KeepAlive(lease)).result.code() == 0);  // at 600: deadline 1600
  h.Advance(999);                                      // 1599
  CHECK(h.sm.TimeToLive(lease).has_value());
  ApplyResult r = h.Advance(1);  // 1600: TTL has passed since the keepalive
  CHECK_FALSE(h.sm.TimeToLive(lease).has_value());
  REQUIRE(LeaseEnds(r).size() == 1);
  CHECK(LeaseEnds(r)[0].reason() == v1::END_REASON_LEASE_EXPIRED);
}

TEST_CASE("lease: keepalive restarts the TTL from the keepalive's cluster time", "[lease]") {
  Harness h;
  const uint64_t lease = h.NewLease(1000);
  h.now = 900;
  ApplyResult r = h.Do(KeepAlive(lease));
  CHECK(r.result.lease_keep_alive().deadline_ms() == 1900);
  CHECK(h.sm.TimeToLive(lease)->last_keepalive_ms() == 900);
  CHECK(h.sm.TimeToLive(lease)->ttl_remaining_ms() == 1000);
}

TEST_CASE("lease: keepalive of an unknown lease is NOT_FOUND", "[lease]") {
  Harness h;
  ApplyResult r = h.Do(KeepAlive(42));
  CHECK(r.result.code() == kNotFound);
  CHECK(r.result.reason() == v1::ERROR_REASON_LEASE_NOT_FOUND);
  CHECK_THAT(r.result.message(), Catch::Contains("lease_id"));
}

TEST_CASE("lease: a keepalive stamped at or after the deadline is too late", "[lease]") {
  Harness h;
  const uint64_t lease = h.NewLease(1000);
  h.now = 1000;
  ApplyResult r = h.Do(KeepAlive(lease));
  CHECK(r.result.reason() == v1::ERROR_REASON_LEASE_NOT_FOUND);
  CHECK(LeaseEnds(r).size() == 1);  // expired first, in the same entry
}

TEST_CASE("lease: revoke ends the lease and releases its locks in the same entry", "[lease]") {
  Harness h;
  const uint64_t lease = h.NewLease();
  const uint64_t token = h.Hold("a", lease);
  h.Hold("b", lease);
  ApplyResult r = h.Do(Revoke(lease));
  REQUIRE(r.result.code() == 0);
  CHECK(r.result.lease_revoke().released_holds() == 2);
  CHECK(LeaseEnds(r).size() == 1);
  CHECK(LeaseEnds(r)[0].reason() == v1::END_REASON_LEASE_REVOKED);
  REQUIRE(Releases(r).size() == 2);
  CHECK(Releases(r)[0].token() == token);
  CHECK_FALSE(h.sm.Describe("a").has_value());
  CHECK_FALSE(h.sm.TimeToLive(lease).has_value());
}

TEST_CASE("lease: revoke of an unknown lease is NOT_FOUND and changes nothing", "[lease]") {
  Harness h;
  h.NewLease();
  const std::string before = StateOf(h.sm);
  CHECK(h.Do(Revoke(77)).result.code() == kNotFound);
  CHECK(StateOf(h.sm) == before);
}

TEST_CASE("lease: expiry is decided by applying an entry, not by the passing of time", "[lease]") {
  Harness h;
  const uint64_t lease = h.NewLease(1000);
  h.now = 5000;  // no entry applied yet at this time
  CHECK(h.sm.TimeToLive(lease).has_value());
  ApplyResult r = h.Do(Tick());
  CHECK(LeaseEnds(r).size() == 1);
  CHECK_FALSE(h.sm.TimeToLive(lease).has_value());
}

TEST_CASE("lease: expiry releases what the lease held and grants waiters in that entry",
          "[lease]") {
  Harness h;
  const uint64_t a = h.NewLease(1000);
  const uint64_t b = h.NewLease(10000);
  h.Hold("x", a);
  REQUIRE(h.Do(Acquire("x", b, v1::LOCK_MODE_EXCLUSIVE, 5000)).result.lock_acquire().outcome() ==
          v1::ACQUIRE_OUTCOME_QUEUED);
  ApplyResult r = h.Advance(1000);
  REQUIRE(LeaseEnds(r).size() == 1);
  REQUIRE(Grants(r).size() == 1);
  CHECK(Grants(r)[0].lease_id() == b);
  CHECK(Grants(r)[0].token() == h.index);
  CHECK(Grants(r)[0].from_queue());
}

TEST_CASE("lease: cluster time never goes back, an earlier stamp does not shorten a TTL",
          "[lease]") {
  Harness h;
  h.now = 1000;
  const uint64_t lease = h.NewLease(1000);  // deadline 2000
  h.now = 1500;
  h.Do(Tick());
  h.now = 1200;  // a lagging stamp
  ApplyResult r = h.Do(KeepAlive(lease));
  CHECK(h.sm.cluster_time_ms() == 1500);
  CHECK(r.result.lease_keep_alive().deadline_ms() == 2500);
}

TEST_CASE("lease: a leader change delays expiry but neither hastens nor resets it", "[lease]") {
  // The old leader's last entry is at 400; during the election no entry is
  // applied; the new leader continues from the last applied cluster time.
  Harness h;
  const uint64_t lease = h.NewLease(1000);  // deadline 1000
  h.Advance(400);
  // New leader: stamps continue from 400 (plus its own elapsed time).
  h.now = 450;
  h.Do(Tick());
  CHECK(h.sm.TimeToLive(lease)->deadline_ms() == 1000);  // not reset to 450 + 1000
  CHECK(h.sm.TimeToLive(lease)->ttl_remaining_ms() == 550);
  h.now = 999;
  h.Do(Tick());
  CHECK(h.sm.TimeToLive(lease).has_value());
  h.now = 1000;
  h.Do(Tick());
  CHECK_FALSE(h.sm.TimeToLive(lease).has_value());
}

TEST_CASE("lease: TimeToLive reports TTL, time left and what the lease holds", "[lease]") {
  Harness h;
  const uint64_t lease = h.NewLease(1000);
  const uint64_t other = h.NewLease(1000);
  h.Hold("b", lease);
  h.Hold("a", lease);
  h.Hold("w", other);
  h.Do(Acquire("w", lease, v1::LOCK_MODE_EXCLUSIVE, 500));
  h.Do(Campaign("e", lease, "v"));
  h.Advance(300);
  auto info = h.sm.TimeToLive(lease);
  REQUIRE(info.has_value());
  CHECK(info->ttl_ms() == 1000);
  CHECK(info->ttl_remaining_ms() == 700);
  CHECK(std::vector<std::string>(info->locks().begin(), info->locks().end()) ==
        std::vector<std::string>{"a", "b"});
  CHECK(info->waiting_size() == 1);
  CHECK(info->elections_size() == 1);
  CHECK_FALSE(h.sm.TimeToLive(999).has_value());
}

TEST_CASE("lease: List returns every live lease in id order", "[lease]") {
  Harness h;
  const uint64_t a = h.NewLease();
  const uint64_t b = h.NewLease();
  const uint64_t c = h.NewLease();
  h.Do(Revoke(b));
  auto all = h.sm.ListLeases();
  REQUIRE(all.size() == 2);
  CHECK(all[0].lease_id() == a);
  CHECK(all[1].lease_id() == c);
}

TEST_CASE("lease: List pages continue after an id, by count and by bytes", "[lease]") {
  Harness h;
  const uint64_t a = h.NewLease();
  const uint64_t b = h.NewLease();
  const uint64_t c = h.NewLease();
  auto first = h.sm.ListLeasesPage(0, 2, SIZE_MAX);
  REQUIRE(first.entries.size() == 2);
  CHECK(first.entries[0].lease_id() == a);
  CHECK(first.entries[1].lease_id() == b);
  CHECK(first.more);
  auto rest = h.sm.ListLeasesPage(b, 2, SIZE_MAX);
  REQUIRE(rest.entries.size() == 1);
  CHECK(rest.entries[0].lease_id() == c);
  CHECK_FALSE(rest.more);
  auto tiny = h.sm.ListLeasesPage(0, 10, 1);
  REQUIRE(tiny.entries.size() == 1);
  CHECK(tiny.more);
}

TEST_CASE("lease: too many leases is RESOURCE_EXHAUSTED", "[lease][limits]") {
  Harness h;
  for (int i = 0; i < 8; ++i) h.NewLease();
  ApplyResult r = h.Do(Grant(1000));
  CHECK(r.result.code() == kResourceExhausted);
  CHECK(r.result.reason() == v1::ERROR_REASON_TOO_MANY_LEASES);
  CHECK_THAT(r.result.message(), Catch::Contains("8"));
  CHECK(h.sm.ListLeases().size() == 8);
}

TEST_CASE("lease: leases due in the same entry expire earliest deadline first", "[lease]") {
  Harness h;
  const uint64_t late = h.NewLease(300);
  const uint64_t early = h.NewLease(200);
  ApplyResult r = h.Advance(1000);
  REQUIRE(LeaseEnds(r).size() == 2);
  CHECK(LeaseEnds(r)[0].lease_id() == early);
  CHECK(LeaseEnds(r)[1].lease_id() == late);
}

TEST_CASE("lease: ids are never reused", "[lease]") {
  Harness h;
  const uint64_t a = h.NewLease();
  h.Do(Revoke(a));
  CHECK(h.NewLease() > a);
}

}  // namespace
}  // namespace raftlock::lock::testing
