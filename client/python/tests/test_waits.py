"""The retry rules of the waiting calls (raftlock/_waits.py), without a
cluster."""

import time

from raftlock._waits import why_not_granted


def test_a_wait_cancelled_by_another_call_of_the_lease_is_waited_again():
    # Semantics 3: the server cancels a lease's wait when a call parked on it
    # is cancelled; a call that got that answer was not the cancelled one
    # (a stale attempt of it was), so it waits again while time remains.
    assert why_not_granted("cancelled", True, None, 30.0, True) is None
    assert why_not_granted("cancelled", True, time.monotonic() + 10.0, 5.0, True) is None
    assert why_not_granted("cancelled", True, time.monotonic() - 1.0, 5.0, True) == "timed_out"
    # A try-once call reports it as it is.
    assert why_not_granted("cancelled", False, None, 0.0, False) == "cancelled"
    # The other reasons are unchanged.
    assert why_not_granted("lease_ended", True, None, 30.0, True) == "lease_ended"
    assert why_not_granted("timed_out", True, None, 30.0, True) is None
