// The retry loop and clean-up of the SDK's waiting calls (Lock, Campaign)
// with the server played by the test: what they do when the cluster no
// longer remembers a write (SEQUENCE_TOO_OLD, docs/semantics.md §5).
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "client/src/internal.h"

using namespace raftlock;
using namespace raftlock::internal;
using namespace std::chrono_literals;

namespace {

// The ABORTED error the Client returns for a retried write the cluster forgot.
absl::Status ForgottenWrite() {
  absl::Status status = absl::AbortedError("the server no longer remembers this write");
  status.SetPayload(kWriteForgottenPayloadKey, absl::Cord("SEQUENCE_TOO_OLD"));
  return status;
}

const WaitingCallText kText{"lock test", "not acquired", "held by another session"};

}  // namespace

TEST_CASE("semantics 5: a waiting call whose write was forgotten goes on with a new attempt",
          "[client][waiting-call]") {
  int attempts = 0;
  int abandoned = 0;
  absl::Status status = RunWaitingCall(
      kText, After(10s), /*try_once=*/false, nullptr,
      [&](int64_t, Deadline) -> absl::StatusOr<WaitingAttempt> {
        // The first attempt's retry was refused SEQUENCE_TOO_OLD; the next
        // one (a new write) finds the lease's place and is granted.
        if (++attempts == 1) return ForgottenWrite();
        return WaitingAttempt{true};
      },
      [&] { ++abandoned; });
  INFO(status.ToString());
  CHECK(status.ok());
  CHECK(attempts == 2);
  CHECK(abandoned == 0);  // a new attempt answers for the forgotten one
}

TEST_CASE("semantics 5: a waiting call whose write was forgotten at its deadline cleans it up",
          "[client][waiting-call]") {
  int attempts = 0;
  int abandoned = 0;
  absl::Status status = RunWaitingCall(
      kText, After(300ms), /*try_once=*/false, nullptr,
      [&](int64_t, Deadline by) -> absl::StatusOr<WaitingAttempt> {
        ++attempts;
        std::this_thread::sleep_until(by);  // retries used up the attempt's time
        return ForgottenWrite();
      },
      [&] { ++abandoned; });
  CHECK(status.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(attempts == 1);
  CHECK(abandoned == 1);  // the forgotten write may have queued or been granted
}

TEST_CASE(
    "semantics 5: the clean-up of an unanswered call asks again with a new write when "
    "the first was forgotten",
    "[client][waiting-call]") {
  std::vector<bool> asked;  // new_write of each ask
  std::optional<uint64_t> undone;
  WithdrawUnanswered(
      "lock test", After(10s),
      [&](Deadline, bool new_write) -> absl::StatusOr<std::optional<uint64_t>> {
        asked.push_back(new_write);
        if (!new_write) return ForgottenWrite();  // as the Client answers a sent write
        return std::optional<uint64_t>(42);       // the lease holds the lock: token 42
      },
      [&](uint64_t token, Deadline) {
        undone = token;
        return absl::OkStatus();
      });
  CHECK(asked == std::vector<bool>{false, true});
  REQUIRE(undone.has_value());
  CHECK(*undone == 42);

  // Any other error ends the clean-up without a second ask.
  asked.clear();
  undone.reset();
  WithdrawUnanswered(
      "lock test", After(10s),
      [&](Deadline, bool new_write) -> absl::StatusOr<std::optional<uint64_t>> {
        asked.push_back(new_write);
        return absl::UnavailableError("no leader");
      },
      [&](uint64_t token, Deadline) {
        undone = token;
        return absl::OkStatus();
      });
  CHECK(asked == std::vector<bool>{false});
  CHECK_FALSE(undone.has_value());
}

TEST_CASE("semantics 3: a wait cancelled by another call of the same lease is waited again",
          "[client][waiting-call]") {
  int attempts = 0;
  int abandoned = 0;
  absl::Status status = RunWaitingCall(
      kText, After(10s), /*try_once=*/false, nullptr,
      [&](int64_t wait_ms, Deadline) -> absl::StatusOr<WaitingAttempt> {
        CHECK(wait_ms > 0);
        if (++attempts == 1) return WaitingAttempt{false, v1::NOT_ACQUIRED_REASON_CANCELLED};
        return WaitingAttempt{true};
      },
      [&] { ++abandoned; });
  INFO(status.ToString());
  CHECK(status.ok());
  CHECK(attempts == 2);
  CHECK(abandoned == 0);
}
