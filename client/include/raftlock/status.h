// Errors, deadlines and cancellation shared by the whole C++ SDK.
//
// Every SDK call returns an absl::Status (or StatusOr). The code is the gRPC /
// state-machine code; when the server named the exact rule, its ErrorReason
// enum name (docs/semantics.md §6) is attached and readable with ErrorReason().
// The SDK's own conventions:
//   OK                  done (for Lock/Campaign: held / elected)
//   DEADLINE_EXCEEDED   the caller's deadline passed (for Lock/Campaign: not
//                       acquired within it, or the server's wait timed out)
//   UNAVAILABLE         no leader could be reached before the deadline
//   INVALID_ARGUMENT    bad input (names the field)
//   FAILED_PRECONDITION the operation does not apply now (e.g. NOT_HELD, the
//                       session is lost, the lease ended while waiting)
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace raftlock {

using Clock = std::chrono::steady_clock;
// Every call takes a deadline on the monotonic clock.
using Deadline = Clock::time_point;

// A deadline `timeout` from now (saturating: huge timeouts mean "a year").
Deadline After(std::chrono::milliseconds timeout);

// The payload key under which the server's ErrorReason name is stored.
inline constexpr char kReasonPayloadKey[] = "raftlock.v1/reason";

// The ErrorReason name attached to `status` ("" if none), e.g. "ERROR_REASON_NOT_HELD".
std::string ErrorReason(const absl::Status& status);

// `status` with `reason` attached (overwrites an earlier reason).
absl::Status WithReason(absl::Status status, const std::string& reason);

// The payload key marking a retried write that the server no longer remembers
// (it answered SEQUENCE_TOO_OLD after an earlier attempt was sent). Such an
// ABORTED error has an unknown outcome, and re-sending the same WriteId can
// only be refused again: a retry needs a new one.
inline constexpr char kWriteForgottenPayloadKey[] = "raftlock.v1/write-forgotten";

// True for the error described at kWriteForgottenPayloadKey.
bool WriteForgotten(const absl::Status& status);

// A one-shot, thread-safe cancellation signal. Tokens are cheap copies of one
// shared state; a default-constructed token has its own state and is only
// cancelled by Cancel() on a copy of it.
class CancellationToken {
 public:
  CancellationToken();

  // Cancels every copy of this token; the first reason wins. Idempotent, any thread.
  void Cancel(const std::string& reason);
  bool cancelled() const;
  // The reason given to the first Cancel ("" while not cancelled).
  std::string reason() const;
  // Blocks until cancelled or `deadline`; returns cancelled().
  bool WaitUntil(Deadline deadline) const;
  // Runs `fn` once when cancelled (at once, on this thread, if it already is;
  // otherwise on the cancelling thread). `fn` must not block for long.
  void OnCancel(std::function<void()> fn) const;

 private:
  struct State {
    mutable std::mutex mu;
    std::condition_variable cv;
    bool cancelled = false;
    std::string reason;
    std::vector<std::function<void()>> callbacks;
  };
  std::shared_ptr<State> state_;
};

}  // namespace raftlock
