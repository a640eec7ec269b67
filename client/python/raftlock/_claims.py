"""Which lock handle of one session claims each lock name.

The server grants a name to a lease, so two handles sharing a session would
share one hold: the second acquire would return the first's grant, and one
release would end both. A handle claims its name here before it asks the
server and gives the claim up once it no longer holds: one handle per name
and session at a time, whatever the mode, so threads sharing a session
exclude each other as sessions do. A handle that is garbage-collected gives
its claim up (claims hold weak references).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Callable, Optional

CLAIMED, BUSY, TIMED_OUT, STOPPED = "claimed", "busy", "timed_out", "stopped"


class LocalClaims:
    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._owners: dict = {}

    def claim(self, name: str, owner: object, deadline: Optional[float], blocking: bool,
              stopped: Callable[[], bool]) -> str:
        """Claims `name` for `owner` (CLAIMED, also when it has the claim
        already). Otherwise BUSY unless `blocking`; then waits until the claim
        is given up, until the monotonic `deadline` (TIMED_OUT; None: no
        limit) or `stopped()` (STOPPED, noticed within 50 ms)."""
        with self._cv:
            while True:
                ref = self._owners.get(name)
                current = None if ref is None else ref()
                if current is None:
                    self._owners[name] = weakref.ref(owner)
                    return CLAIMED
                if current is owner:
                    return CLAIMED
                if not blocking:
                    return BUSY
                if stopped():
                    return STOPPED
                wait = 0.05
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return TIMED_OUT
                self._cv.wait(wait)

    def release(self, name: str, owner: object) -> None:
        """Gives up `owner`'s claim on `name`, if it has it."""
        with self._cv:
            ref = self._owners.get(name)
            if ref is not None and ref() is owner:
                del self._owners[name]
                self._cv.notify_all()
