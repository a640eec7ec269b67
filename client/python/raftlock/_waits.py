"""Deadlines of the waiting calls (Lock.acquire, Election.campaign), as the
C++ SDK keeps them (client/src/waiting_call.cc): a call with a timeout
returns by its deadline, cleanup of an unanswered wait included."""

from __future__ import annotations

import time
from typing import Optional, Tuple


# A blocking call without a timeout waits on the server in steps of this many
# seconds, as the C++ SDK does. A step that ends re-queues the wait at the end
# of the queue, so steps are long: a leader that dies meanwhile is noticed by
# the channel's HTTP/2 pings, not by the step's end.
WAIT_CHUNK = 3600.0


def attempts_end(deadline: float) -> float:
    """When the attempts of a waiting call with `deadline` must stop: a tenth
    of the time (20 ms to 0.5 s) is kept back to withdraw an unanswered wait."""
    left = deadline - time.monotonic()
    return deadline - min(max(left / 10, 0.02), 0.5)


def wait_budget(end: float, cap: float) -> Tuple[float, float]:
    """(server-side wait, whole call's timeout) for one attempt that must end
    by `end`: the wait leaves a tenth (0.3 s to 1 s) for the answer's round
    trip and retries, and is at most `cap`; under 50 ms it is 0 (try once)."""
    left = end - time.monotonic()
    if left <= 0:
        return 0.0, 0.0
    margin = min(max(left / 10, 0.3), 1.0)
    wait = min(left - margin, cap)
    if wait < 0.05:
        wait = 0.0
    return wait, left


def next_attempt(end: Optional[float], blocking: bool, wait_cap: float,
                 attempted: bool) -> Optional[Tuple[float, Optional[float]]]:
    """The next attempt of a waiting call whose attempts must end by `end`
    (None: no deadline): (server-side wait, the call's timeout beyond the
    wait, None for the client's own), or None once its time is up. A call
    with no time to wait at all (timeout 0) still tries once."""
    if end is None:
        return (wait_cap if blocking else 0.0), None
    if time.monotonic() < end:
        wait, left = wait_budget(end, wait_cap if blocking else 0.0)
        return wait, max(0.0, left - wait)
    if attempted:
        return None
    return 0.0, None


def use_the_rest(end: float, last_wait: float) -> bool:
    """After an attempt that ended ungranted before `end`: True to try again.
    Once too little is left to wait on the server (`last_wait` 0), polls with
    try-once calls every 50 ms until 0.1 s before `end`."""
    left = end - time.monotonic()
    if left <= 0.1:
        return False
    if last_wait == 0:
        time.sleep(min(0.05, left - 0.1))
    return True


def why_not_granted(why: str, blocking: bool, end: Optional[float], last_wait: float,
                    waited: bool) -> Optional[str]:
    """After an attempt answered not granted for `why`: None to try again, or
    the reason the call gives up with. Without a deadline (`end` None) a
    blocking call waits again after each chunk; with one, a call that has
    waited uses the rest of its time (use_the_rest) and, once that is gone,
    gives up "timed_out" (not "busy": it waited its time). A "cancelled"
    wait counts as "timed_out": this call got an answer, so it was another
    call of the same lease and name whose cancellation ended the wait (a
    stale attempt of this one)."""
    if blocking and why == "cancelled":
        why = "timed_out"
    if not blocking or why not in ("timed_out", "busy"):
        return why
    if end is None:
        return None if why == "timed_out" else why
    if not waited:
        return why
    return None if use_the_rest(end, last_wait) else "timed_out"


def time_left(deadline: Optional[float]) -> Optional[float]:
    """Seconds until `deadline` (None: no deadline), at least 0."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())
