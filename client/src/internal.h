// Helpers shared by the SDK's sources (not installed, not public).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/api.pb.h"
#include "raftlock/status.h"

namespace raftlock::internal {

// How long a waiting call (Acquire, Campaign) asks the server to wait: the
// time to `deadline` minus a margin for the server's own "timed out" answer to
// arrive (waits end on applied entries, which come at least every
// TimeAdvance period). 0 (try once) when too little time is left.
int64_t WaitBudgetMs(Deadline deadline);

// A waiting call (Lock, Campaign) that has already waited on the server and
// is then answered BUSY by a try-once attempt, because too little time was
// left for another server-side wait: pauses briefly and returns true while
// time remains to try again, false when the call should report
// DEADLINE_EXCEEDED (a timeout: the caller asked to wait, so not "busy").
bool PollAgain(Deadline deadline);

// When the attempts of a waiting call (Lock, Campaign) must end: the call's
// deadline less a reserve (a tenth of the time left, 20..500 ms) in which an
// attempt whose outcome is unknown is cleaned up (withdrawn, released or
// resigned), so the whole call still returns by `deadline`.
Deadline AttemptsEnd(Deadline deadline);

// True when a failed call may or may not have been applied by the server.
bool OutcomeUnknown(const absl::Status& status);

// Cleans up after a waiting call (Lock, Campaign) whose outcome is unknown,
// by `deadline`. `ask(by, new_write)` re-sends the call as a try-once, with
// the same WriteId unless `new_write`: the server answers its first outcome
// (a wait still queued is parked again and withdrawn when this short call
// ends), and `ask` returns the token if it was granted, nullopt if not, or
// the call's error. If the server forgot that write (SEQUENCE_TOO_OLD), `ask`
// runs again with a new one, which the server answers from the lease's hold
// or place in the queue (re-acquire). `undo(token, by)` then gives the grant
// back (release or resign). Half the time left asks, the rest undoes. `what`
// names the call in the warning logged when the clean-up cannot finish.
using AskFn = std::function<absl::StatusOr<std::optional<uint64_t>>(Deadline, bool new_write)>;
void WithdrawUnanswered(const std::string& what, Deadline deadline, const AskFn& ask,
                        const std::function<absl::Status(uint64_t, Deadline)>& undo);

// What one attempt of a waiting call came to: granted, or why not.
struct WaitingAttempt {
  bool granted = false;
  v1::NotAcquiredReason reason = v1::NOT_ACQUIRED_REASON_UNSPECIFIED;
};

// Sends one attempt of a waiting call with a fresh WriteId, asking the server
// to wait `wait_ms` (0: try once), answered by `by`; records a grant itself.
using WaitingAttemptFn =
    std::function<absl::StatusOr<WaitingAttempt>(int64_t wait_ms, Deadline by)>;

// The words of a waiting call's errors: "<call>: <not_granted> before the
// deadline", "<call>: <busy>".
struct WaitingCallText {
  std::string call;         // e.g. "lock jobs/nightly"
  std::string not_granted;  // e.g. "not acquired"
  std::string busy;         // e.g. "held by another session"
};

// The retry loop of a waiting call (Lock, Campaign), returning by `deadline`:
// attempts until granted, re-waiting when the server's wait times out, and
// polling when a try-once is answered BUSY after an earlier wait, and waiting
// again when its wait was cancelled by another call of the same lease and
// name. `abandon()` withdraws the last attempt (WithdrawUnanswered) when its
// outcome is unknown. With `try_once`, BUSY returns OK and sets *busy.
// `attempts_end`: when the attempts end, AttemptsEnd(deadline) by default; a
// caller that already spent time on the call passes the one it computed at
// the start, so that the clean-up keeps its whole reserve.
absl::Status RunWaitingCall(const WaitingCallText& text, Deadline deadline, bool try_once,
                            bool* busy, const WaitingAttemptFn& attempt,
                            const std::function<void()>& abandon,
                            std::optional<Deadline> attempts_end = std::nullopt);

}  // namespace raftlock::internal
