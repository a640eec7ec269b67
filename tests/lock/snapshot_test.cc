// Rule 6: snapshot and restore.
#include "tests/lock/harness.h"

namespace raftlock::lock::testing {
namespace {

// A log touching every kind of state: leases, holds, waits, semaphores,
// elections with history, dedup results.
std::vector<v1::Command> RichLog() {
  std::vector<v1::Command> log;
  int64_t t = 0;
  auto add = [&](v1::Command c, int64_t dt = 10) {
    t += dt;
    c.set_cluster_time_ms(t);
    log.push_back(std::move(c));
  };
  add(WithClient(Grant(1000), 1, 1));  // lease 1
  add(WithClient(Grant(5000), 2, 1));  // lease 2
  add(Grant(300));                     // lease 3
  add(WithClient(Acquire("x", 1), 1, 2));
  add(WithClient(Acquire("x", 2, v1::LOCK_MODE_EXCLUSIVE, 2000), 2, 2));
  add(Acquire("s", 3, v1::LOCK_MODE_SHARED, 0, 2));
  add(Acquire("s", 2, v1::LOCK_MODE_SHARED, 0, 2));
  add(WithClient(Campaign("e", 2, "two"), 2, 3));
  add(Campaign("e", 1, "one", 3000));
  add(Proclaim("e", 2, 8, "TWO"));
  add(Tick(), 400);  // lease 3 expires
  add(WithClient(KeepAlive(1), 1, 3));
  add(WithClient(Release("x", 1, 4), 1, 4));  // grants x to lease 2
  add(WithClient(Release("x", 1, 4), 1, 4));  // retry
  add(Resign("e", 2, 8));                     // lease 1 elected
  add(Tick(), 2000);
  add(WithClient(Grant(700), 3, 1));
  add(Tick(), 5000);
  return log;
}

TEST_CASE("snapshot: restoring a snapshot gives the same bytes and digest", "[snapshot]") {
  LockStateMachine a(TestLimits());
  auto log = RichLog();
  for (size_t i = 0; i < 12; ++i) a.Apply(i + 1, log[i]);
  LockStateMachine b(TestLimits());
  REQUIRE(b.Restore(a.Snapshot()).ok());
  CHECK(b.Snapshot() == a.Snapshot());
  CHECK(b.Digest() == a.Digest());
  CHECK(b.applied_index() == a.applied_index());
  CHECK(b.cluster_time_ms() == a.cluster_time_ms());
  CHECK(b.CheckInvariants() == "");
}

TEST_CASE("snapshot: restore and the rest of the log equal applying the whole log", "[snapshot]") {
  auto log = RichLog();
  for (size_t cut = 0; cut <= log.size(); ++cut) {
    LockStateMachine whole(TestLimits());
    LockStateMachine part(TestLimits());
    for (size_t i = 0; i < cut; ++i) whole.Apply(i + 1, log[i]);
    REQUIRE(part.Restore(whole.Snapshot()).ok());
    for (size_t i = cut; i < log.size(); ++i) {
      ApplyResult x = whole.Apply(i + 1, log[i]);
      ApplyResult y = part.Apply(i + 1, log[i]);
      INFO("cut " << cut << " entry " << i + 1);
      REQUIRE(x.result.SerializeAsString() == y.result.SerializeAsString());
      REQUIRE(x.events.size() == y.events.size());
      for (size_t e = 0; e < x.events.size(); ++e) {
        REQUIRE(x.events[e].SerializeAsString() == y.events[e].SerializeAsString());
      }
      REQUIRE(x.duplicate == y.duplicate);
      REQUIRE(whole.Digest() == part.Digest());
    }
  }
}

TEST_CASE("snapshot: the exactly-once table survives a restore", "[snapshot][dedup]") {
  LockStateMachine a(TestLimits());
  ApplyResult first = a.Apply(1, WithClient(Grant(1000), 4, 1));
  LockStateMachine b(TestLimits());
  REQUIRE(b.Restore(a.Snapshot()).ok());
  ApplyResult retry = b.Apply(2, WithClient(Grant(1000), 4, 1));
  CHECK(retry.duplicate);
  CHECK(retry.result.SerializeAsString() == first.result.SerializeAsString());
  CHECK(b.ListLeases().size() == 1);
}

TEST_CASE("snapshot: an unknown format version is refused and the state is kept", "[snapshot]") {
  LockStateMachine a(TestLimits());
  a.Apply(1, Grant(1000));
  v1::LockSnapshot snap;
  REQUIRE(snap.ParseFromString(a.Snapshot()));
  snap.set_format_version(kSnapshotFormatVersion + 1);
  LockStateMachine b(TestLimits());
  b.Apply(1, Grant(2000));
  const std::string before = b.Snapshot();
  absl::Status s = b.Restore(snap.SerializeAsString());
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(s.message()), Catch::Contains("version"));
  CHECK(b.Snapshot() == before);
}

TEST_CASE("snapshot: garbage or an inconsistent image is refused and the state is kept",
          "[snapshot]") {
  LockStateMachine b(TestLimits());
  b.Apply(1, Grant(2000));
  const std::string before = b.Snapshot();
  CHECK(b.Restore(std::string("\xff\xfe\x01", 3)).code() == absl::StatusCode::kDataLoss);
  v1::LockSnapshot bad;
  bad.set_format_version(kSnapshotFormatVersion);
  auto* lock = bad.add_locks();
  lock->set_name("x");
  lock->add_holders()->set_lease_id(77);  // a holder without a lease
  CHECK(b.Restore(bad.SerializeAsString()).code() == absl::StatusCode::kDataLoss);
  CHECK(b.Snapshot() == before);
}

// Limits are configuration: an operator may lower them, or one replica may
// briefly run with others. A state written under higher limits must still
// restore (else every replica refuses its own snapshot and cannot restart);
// new work is then refused, or evicts, until it is back under them.
TEST_CASE("snapshot: a state over lower count limits still restores", "[snapshot]") {
  LockStateMachine a(TestLimits());
  int64_t t = 0;
  uint64_t index = 0;
  auto apply = [&](v1::Command c) {
    c.set_cluster_time_ms(t += 10);
    a.Apply(++index, c);
  };
  for (uint64_t client = 1; client <= 4; ++client) apply(WithClient(Grant(5000), client, 1));
  for (const char* name : {"e1", "e2"}) {
    apply(Campaign(name, 1, "v"));
    apply(Resign(name, 1, index));
  }
  REQUIRE(a.CheckInvariants().empty());
  REQUIRE(a.leases().size() == 4);
  REQUIRE(a.dedup().size() == 4);

  Limits lower = TestLimits();
  lower.max_leases = 2;
  lower.max_dedup_clients = 2;
  lower.max_idle_elections = 1;
  LockStateMachine b(lower);
  REQUIRE(b.Restore(a.Snapshot()).ok());
  CHECK(b.Snapshot() == a.Snapshot());
  // Over max_leases: a new grant is refused.
  v1::Command grant = Grant(5000);
  grant.set_cluster_time_ms(t + 10);
  CHECK(b.Apply(index + 1, grant).result.code() != 0);
}

TEST_CASE("snapshot: equal logs give equal digests, different states differ", "[snapshot]") {
  auto log = RichLog();
  LockStateMachine a(TestLimits()), b(TestLimits());
  for (size_t i = 0; i < log.size(); ++i) {
    a.Apply(i + 1, log[i]);
    b.Apply(i + 1, log[i]);
    REQUIRE(a.Digest() == b.Digest());
  }
  b.Apply(log.size() + 1, Grant(1000));
  CHECK(a.Digest() != b.Digest());
}

TEST_CASE("snapshot: an empty machine snapshots and restores", "[snapshot]") {
  LockStateMachine a;
  LockStateMachine b;
  REQUIRE(b.Restore(a.Snapshot()).ok());
  CHECK(b.Digest() == a.Digest());
}

}  // namespace
}  // namespace raftlock::lock::testing
