// Rule 5: bad input gets a precise error and changes nothing.
#include "tests/lock/harness.h"

namespace raftlock::lock::testing {
namespace {

// Whether `reason` is decided by the command alone, without state.
bool IsShapeError(v1::ErrorReason reason) {
  switch (reason) {
    case v1::ERROR_REASON_NAME_EMPTY:
    case v1::ERROR_REASON_NAME_TOO_LONG:
    case v1::ERROR_REASON_VALUE_TOO_LONG:
    case v1::ERROR_REASON_WAIT_TIMEOUT_OUT_OF_RANGE:
    case v1::ERROR_REASON_INVALID_MODE:
    case v1::ERROR_REASON_PERMITS_OUT_OF_RANGE:
    case v1::ERROR_REASON_TTL_OUT_OF_RANGE:
    case v1::ERROR_REASON_MALFORMED_COMMAND:
      return true;
    default:
      return false;
  }
}

// Applies `cmd` and checks it fails with (code, reason) leaving the state
// unchanged. The API's check before proposing (CheckCommand) must refuse the
// same command for the same reason when no state is needed, and pass it
// otherwise, so no replica turns away what the state machine would accept.
void ExpectRejected(Harness& h, const v1::Command& cmd, int32_t code, v1::ErrorReason reason,
                    const std::string& field) {
  const Error shape = CheckCommand(cmd, h.sm.limits());
  CHECK(shape.reason == (IsShapeError(reason) ? reason : v1::ERROR_REASON_NONE));
  const std::string before = StateOf(h.sm);
  ApplyResult r = h.Do(cmd);
  CHECK(r.result.code() == code);
  CHECK(r.result.reason() == reason);
  CHECK_THAT(r.result.message(), Catch::Contains(field));
  CHECK(r.result.payload_case() == v1::CommandResult::PAYLOAD_NOT_SET);
  CHECK(StateOf(h.sm) == before);
}

TEST_CASE("validation: an empty name is INVALID_ARGUMENT", "[validation]") {
  Harness h;
  const uint64_t a = h.NewLease();
  ExpectRejected(h, Acquire("", a), kInvalidArgument, v1::ERROR_REASON_NAME_EMPTY, "name");
  ExpectRejected(h, Campaign("", a, "v"), kInvalidArgument, v1::ERROR_REASON_NAME_EMPTY, "name");
  ExpectRejected(h, Release("", a, 1), kInvalidArgument, v1::ERROR_REASON_NAME_EMPTY, "name");
}

TEST_CASE("validation: every named command refuses a bad name before looking at its lease",
          "[validation]") {
  Harness h;  // max_name_bytes = 16; lease 99 does not exist
  const std::string long_name(17, 'n');
  for (const std::string& name : {std::string(), long_name}) {
    const v1::ErrorReason reason =
        name.empty() ? v1::ERROR_REASON_NAME_EMPTY : v1::ERROR_REASON_NAME_TOO_LONG;
    for (const v1::Command& c :
         {Acquire(name, 99), Release(name, 99, 1), CancelWait(name, 99), Campaign(name, 99, "v"),
          Proclaim(name, 99, 1, "v"), Resign(name, 99, 1)}) {
      ExpectRejected(h, c, kInvalidArgument, reason, "name");
    }
  }
}

TEST_CASE("validation: TTL, permits and value limits are checked before the lease",
          "[validation]") {
  Harness h;  // min_ttl_ms 100, max_ttl_ms 100000, max_permits 10, max_value_bytes 8
  ExpectRejected(h, Grant(99), kInvalidArgument, v1::ERROR_REASON_TTL_OUT_OF_RANGE, "ttl_ms");
  ExpectRejected(h, Grant(100001), kInvalidArgument, v1::ERROR_REASON_TTL_OUT_OF_RANGE, "ttl_ms");
  ExpectRejected(h, Acquire("s", 99, v1::LOCK_MODE_SHARED, 0, 11), kInvalidArgument,
                 v1::ERROR_REASON_PERMITS_OUT_OF_RANGE, "permits");
  ExpectRejected(h, Campaign("e", 99, "123456789"), kInvalidArgument,
                 v1::ERROR_REASON_VALUE_TOO_LONG, "value");
}

TEST_CASE("validation: a name over max_name_bytes is INVALID_ARGUMENT, at the limit is fine",
          "[validation]") {
  Harness h;  // max_name_bytes = 16
  const uint64_t a = h.NewLease();
  ExpectRejected(h, Acquire(std::string(17, 'n'), a), kInvalidArgument,
                 v1::ERROR_REASON_NAME_TOO_LONG, "16");
  CHECK(h.Do(Acquire(std::string(16, 'n'), a)).result.code() == 0);
}

TEST_CASE("validation: a wait timeout out of range is INVALID_ARGUMENT", "[validation]") {
  Harness h;
  const uint64_t a = h.NewLease();
  ExpectRejected(h, Acquire("x", a, v1::LOCK_MODE_EXCLUSIVE, -1), kInvalidArgument,
                 v1::ERROR_REASON_WAIT_TIMEOUT_OUT_OF_RANGE, "wait_timeout_ms");
  ExpectRejected(h, Acquire("x", a, v1::LOCK_MODE_EXCLUSIVE, 100001), kInvalidArgument,
                 v1::ERROR_REASON_WAIT_TIMEOUT_OUT_OF_RANGE, "wait_timeout_ms");
  ExpectRejected(h, Campaign("x", a, "v", -1), kInvalidArgument,
                 v1::ERROR_REASON_WAIT_TIMEOUT_OUT_OF_RANGE, "wait_timeout_ms");
}

TEST_CASE("validation: an unknown lock mode is INVALID_ARGUMENT", "[validation]") {
  Harness h;
  const uint64_t a = h.NewLease();
  v1::Command c = Acquire("x", a);
  c.mutable_lock_acquire()->set_mode(static_cast<v1::LockMode>(7));
  ExpectRejected(h, c, kInvalidArgument, v1::ERROR_REASON_INVALID_MODE, "mode");
}

TEST_CASE("validation: an unknown lease is NOT_FOUND for every lease-scoped command",
          "[validation]") {
  Harness h;
  for (const v1::Command& c :
       {Acquire("x", 99), Release("x", 99, 1), CancelWait("x", 99), Campaign("x", 99, "v"),
        Proclaim("x", 99, 1, "v"), Resign("x", 99, 1), KeepAlive(99), Revoke(99)}) {
    ExpectRejected(h, c, kNotFound, v1::ERROR_REASON_LEASE_NOT_FOUND, "lease_id");
  }
}

TEST_CASE("validation: a command without an operation is MALFORMED_COMMAND", "[validation]") {
  Harness h;
  ExpectRejected(h, v1::Command(), kInvalidArgument, v1::ERROR_REASON_MALFORMED_COMMAND, "op");
}

TEST_CASE("validation: unparsable entry bytes are MALFORMED_COMMAND and still consume the index",
          "[validation]") {
  Harness h;
  ApplyResult r = h.sm.ApplyEntry(1, std::string("\xff\xff\xff", 3));
  CHECK(r.result.reason() == v1::ERROR_REASON_MALFORMED_COMMAND);
  CHECK(h.sm.applied_index() == 1);
}

TEST_CASE("validation: an empty entry (a leader's no-op) only advances the applied index",
          "[validation]") {
  Harness h;
  const std::string before = StateOf(h.sm);
  ApplyResult r = h.sm.ApplyEntry(3, "");
  CHECK(r.result.code() == 0);
  CHECK(r.events.empty());
  CHECK(h.sm.applied_index() == 3);
  CHECK(StateOf(h.sm) == before);
}

TEST_CASE("validation: an index at or below the applied index is STALE_INDEX and changes nothing",
          "[validation]") {
  Harness h;
  h.NewLease();
  const std::string snap = h.sm.Snapshot();
  ApplyResult r = h.sm.Apply(h.index, Grant(1000));
  CHECK(r.result.code() == kFailedPrecondition);
  CHECK(r.result.reason() == v1::ERROR_REASON_STALE_INDEX);
  CHECK(h.sm.Snapshot() == snap);
  CHECK(h.sm.ApplyEntry(0, "").result.reason() == v1::ERROR_REASON_STALE_INDEX);
}

TEST_CASE("validation: an entry whose command is rejected still applies its time effects",
          "[validation]") {
  Harness h;
  const uint64_t a = h.NewLease(100);
  h.now = 200;
  ApplyResult r = h.Do(Acquire("", a));
  CHECK(r.result.reason() == v1::ERROR_REASON_NAME_EMPTY);
  CHECK(LeaseEnds(r).size() == 1);
}

TEST_CASE("validation: a value over max_value_bytes on proclaim is rejected", "[validation]") {
  Harness h;
  const uint64_t a = h.NewLease();
  const uint64_t token = h.Do(Campaign("e", a, "v")).result.election_campaign().token();
  ExpectRejected(h, Proclaim("e", a, token, "123456789"), kInvalidArgument,
                 v1::ERROR_REASON_VALUE_TOO_LONG, "value");
}

TEST_CASE("validation: every error reason maps to its status class", "[validation]") {
  CHECK(CodeOf(v1::ERROR_REASON_NONE) == kOk);
  CHECK(CodeOf(v1::ERROR_REASON_TTL_OUT_OF_RANGE) == kInvalidArgument);
  CHECK(CodeOf(v1::ERROR_REASON_LEASE_NOT_FOUND) == kNotFound);
  CHECK(CodeOf(v1::ERROR_REASON_TOO_MANY_WAITERS) == kResourceExhausted);
  CHECK(CodeOf(v1::ERROR_REASON_WRONG_TOKEN) == kFailedPrecondition);
  CHECK(CodeOf(v1::ERROR_REASON_NOT_HELD) == kFailedPrecondition);
}

}  // namespace
}  // namespace raftlock::lock::testing
