// The retry loop and clean-up shared by the SDK's waiting calls
// (LockHandle::AcquireImpl, Election::Campaign); see client/src/internal.h.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <thread>

#include "client/src/internal.h"

namespace raftlock {

namespace {

using std::chrono::milliseconds;

}  // namespace

namespace internal {

int64_t WaitBudgetMs(Deadline deadline) {
  const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  const milliseconds margin = std::clamp(remaining / 10, milliseconds(300), milliseconds(1000));
  const milliseconds wait = std::min<milliseconds>(remaining - margin, std::chrono::hours(1));
  return wait < milliseconds(50) ? 0 : wait.count();
}

bool PollAgain(Deadline deadline) {
  const auto left = deadline - Clock::now();
  if (left <= milliseconds(100)) return false;
  std::this_thread::sleep_for(
      std::min<Clock::duration>(milliseconds(50), left - milliseconds(100)));
  return true;
}

Deadline AttemptsEnd(Deadline deadline) {
  const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  return deadline - std::clamp(remaining / 10, milliseconds(20), milliseconds(500));
}

void WithdrawUnanswered(const std::string& what, Deadline deadline, const AskFn& ask,
                        const std::function<absl::Status(uint64_t, Deadline)>& undo) {
  if (Clock::now() >= deadline) {
    spdlog::warn("raftlock: no time left to withdraw the unanswered {}", what);
    return;
  }
  const Deadline asked_by = Clock::now() + (deadline - Clock::now()) / 2;
  absl::StatusOr<std::optional<uint64_t>> granted = ask(asked_by, /*new_write=*/false);
  if (!granted.ok() && WriteForgotten(granted.status())) {
    granted = ask(asked_by, /*new_write=*/true);
  }
  if (!granted.ok() || !granted->has_value()) return;
  const uint64_t token = **granted;
  absl::Status undone = undo(token, deadline);
  if (!undone.ok()) {
    spdlog::warn("raftlock: could not give back the unanswered {} (token {}): {}", what, token,
                 undone.ToString());
  }
}

bool OutcomeUnknown(const absl::Status& status) {
  if (!ErrorReason(status).empty()) return false;
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

absl::Status RunWaitingCall(const WaitingCallText& text, Deadline deadline, bool try_once,
                            bool* busy, const WaitingAttemptFn& attempt,
                            const std::function<void()>& abandon,
                            std::optional<Deadline> attempts_end_given) {
  if (busy) *busy = false;
  const Deadline attempts_end = attempts_end_given.value_or(AttemptsEnd(deadline));
  const std::string timed_out = text.call + ": " + text.not_granted + " before the deadline";
  bool waited = false;  // an earlier attempt of this call waited on the server
  // Lowered when the cluster's limits.max_wait_timeout_ms is below a wait.
  int64_t wait_cap_ms = std::numeric_limits<int64_t>::max();
  while (true) {
    if (Clock::now() >= attempts_end) return absl::DeadlineExceededError(timed_out);
    const int64_t wait_ms = try_once ? 0 : std::min(WaitBudgetMs(attempts_end), wait_cap_ms);
    absl::StatusOr<WaitingAttempt> answer = attempt(wait_ms, attempts_end);
    if (!answer.ok() && wait_ms > 1 &&
        ErrorReason(answer.status()) == "ERROR_REASON_WAIT_TIMEOUT_OUT_OF_RANGE") {
      // Refused before it reached the log: wait less per attempt (halving
      // finds any limit within a few refusals) and keep waiting.
      wait_cap_ms = wait_ms / 2;
      continue;
    }
    if (!answer.ok() && WriteForgotten(answer.status())) {
      // The cluster forgot the attempt's write, so whether it queued or was
      // granted is unknown; a new attempt by the same lease gets its hold or
      // its place in the queue back (re-acquire), or queues afresh. Without
      // time for one, the clean-up asks the same way and gives back a grant.
      waited = waited || wait_ms > 0;
      if (Clock::now() < attempts_end) continue;
      abandon();
      return absl::DeadlineExceededError(timed_out);
    }
    if (!answer.ok()) {
      if (OutcomeUnknown(answer.status())) abandon();
      if (answer.status().code() == absl::StatusCode::kDeadlineExceeded) {
        return absl::DeadlineExceededError(timed_out);
      }
      return answer.status();
    }
    waited = waited || wait_ms > 0;
    if (answer->granted) return absl::OkStatus();
    switch (answer->reason) {
      case v1::NOT_ACQUIRED_REASON_TIMED_OUT:
        continue;  // the server's wait ended; wait again if the deadline allows
      case v1::NOT_ACQUIRED_REASON_CANCELLED:
        // This call was not cancelled (it got an answer), so another call of
        // the same lease and name was: a stale attempt of this one, whose
        // cancellation reached the server after this retry joined its wait.
        // Wait again if the deadline allows (at the end of the queue); a
        // try-once call reports it not granted, as for BUSY.
        if (!try_once) continue;
        if (busy) *busy = true;
        return absl::OkStatus();
      case v1::NOT_ACQUIRED_REASON_BUSY:
        if (try_once) {
          if (busy) *busy = true;
          return absl::OkStatus();
        }
        if (waited) {
          if (PollAgain(attempts_end)) continue;
          return absl::DeadlineExceededError(timed_out);
        }
        return WithReason(absl::DeadlineExceededError(text.call + ": " + text.busy),
                          "NOT_ACQUIRED_REASON_BUSY");
      case v1::NOT_ACQUIRED_REASON_LEASE_ENDED:
        return WithReason(absl::FailedPreconditionError(text.call + ": the session's lease ended"),
                          "NOT_ACQUIRED_REASON_LEASE_ENDED");
      default:
        abandon();
        return absl::UnknownError(text.call +
                                  ": not granted, for a reason this SDK does not know (" +
                                  std::to_string(static_cast<int>(answer->reason)) + ")");
    }
  }
}

}  // namespace internal
}  // namespace raftlock
