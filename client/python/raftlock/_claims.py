"""Which handle of one session claims each name (a session keeps one registry
for lock names and one for election names).

The server grants a name to a lease, so two handles sharing a session would
share one hold: the second acquire would return the first's grant, and one
release would end both (likewise a leadership). A handle claims its name here before it asks the
server and gives the claim up once it no longer holds: one handle per name
and session at a time, whatever the mode, so threads sharing a session
exclude each other as sessions do. A handle that is garbage-collected gives
its claim up (claims hold weak references).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Optional

from . import errors


class LocalClaims:
    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._owners: dict = {}

    def claim(self, name: str, owner: object, deadline: Optional[float], blocking: bool,
              session) -> Optional[str]:
        """Claims `name` for `owner`: None once it has the claim (also when it
        had it already). Otherwise "busy" unless `blocking`; then waits until
        the claim is given up, until the monotonic `deadline` ("timed_out",
        also when the claim comes with no time left; None: no limit). Raises
        :class:`~raftlock.errors.SessionLost` when `session` ends meanwhile
        (noticed within 50 ms)."""
        with self._cv:
            while True:
                ref = self._owners.get(name)
                current = None if ref is None else ref()
                if current is owner:
                    return None
                if current is None:
                    if deadline is not None and time.monotonic() >= deadline:
                        return "timed_out"  # no time left to ask the cluster
                    self._owners[name] = weakref.ref(owner)
                    return None
                if not blocking:
                    return "busy"
                if not session.alive:
                    raise errors.SessionLost(
                        f"session {session.lease_id} ended while another handle of it held "
                        f"{name!r}: {session.lost_reason}")
                wait = 0.05
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return "timed_out"
                self._cv.wait(wait)

    def release(self, name: str, owner: object) -> None:
        """Gives up `owner`'s claim on `name`, if it has it."""
        with self._cv:
            ref = self._owners.get(name)
            if ref is not None and ref() is owner:
                del self._owners[name]
                self._cv.notify_all()
