"""Lock: a named lock held through a session, carrying its fencing token."""

from __future__ import annotations

import logging
import time
from typing import Optional

from . import errors
from ._gen import api_pb2
from ._waits import WAIT_CHUNK, attempts_end, next_attempt, time_left, why_not_granted

log = logging.getLogger("raftlock")

_WHY = {
    api_pb2.NOT_ACQUIRED_REASON_BUSY: "busy",
    api_pb2.NOT_ACQUIRED_REASON_TIMED_OUT: "timed_out",
    api_pb2.NOT_ACQUIRED_REASON_CANCELLED: "cancelled",
    api_pb2.NOT_ACQUIRED_REASON_LEASE_ENDED: "lease_ended",
}


class Lock:
    """A named lock. Use :meth:`raftlock.Client.lock` or
    :meth:`raftlock.Session.lock` to make one.

    As a context manager it acquires on entry (raising
    :class:`~raftlock.errors.LockBusy` / :class:`~raftlock.errors.LockTimeout`
    when not granted) and releases on exit. If the session was lost while the
    block ran, exit raises :class:`~raftlock.errors.SessionLost` (unless the
    block already raised): the critical section may not have been exclusive.

    ``fencing_token`` is the grant's token: pass it to the guarded resource,
    which should reject any token smaller than the largest it has seen.
    """

    def __init__(self, client, name: str, *, ttl: float = 10.0, session=None, shared: bool = False,
                 permits: int = 0, blocking: bool = True, timeout: Optional[float] = None):
        if not name:
            raise ValueError("a lock needs a name")
        self._client = client
        self.name = name
        self.shared = shared
        self.permits = permits
        self.blocking = blocking
        self.timeout = timeout
        self._ttl = ttl
        self._session = session
        self._owns_session = session is None
        self.fencing_token: int = 0
        self.header: Optional[api_pb2.ResponseHeader] = None
        self._held = False
        self._release_write = None
        self.why_not = ""

    @property
    def token(self) -> int:
        return self.fencing_token

    @property
    def session(self):
        return self._session

    @property
    def held(self) -> bool:
        """True while acquired, not released, and the session certainly alive."""
        return self._held and self._session is not None and self._session.alive

    def acquire(self, blocking: Optional[bool] = None, timeout: Optional[float] = None) -> bool:
        """Acquires the lock; returns False when busy (try-once) or when
        `timeout` seconds passed without a grant. It returns (or raises) by
        its timeout, withdrawing an unanswered wait included. `timeout=None`
        with blocking waits until granted (in one-hour server-side waits).
        Raises :class:`~raftlock.errors.SessionLost` if the lease ends."""
        if self._held:
            raise RuntimeError(f"lock {self.name!r} is already held by this handle")
        blocking = self.blocking if blocking is None else blocking
        timeout = self.timeout if timeout is None else timeout
        if self._session is None:
            self._session = self._client.session(self._ttl)
        self._session.check()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        end = None if deadline is None else attempts_end(deadline)
        self.why_not = ""
        wait_cap = WAIT_CHUNK if deadline is None else float("inf")
        attempted = False
        waited = False  # an attempt of this call waited on the server
        claims = self._session._claims
        try:
            # First the session's claim on the name: another handle of this
            # session would share this one's hold at the server.
            why_not = claims.claim(self.name, self, end, blocking, self._session)
            if why_not:
                self.why_not = why_not
                return False
            while True:
                step = next_attempt(end, blocking, wait_cap, attempted)
                if step is None:
                    self.why_not = self.why_not or "timed_out"
                    return False
                wait, call_timeout = step  # call_timeout None: the client's own
                attempted = True
                self._session.check()
                write_id = self._client.next_write_id()
                try:
                    response = self._client.acquire(self.name, self._session.lease_id,
                                                    shared=self.shared, permits=self.permits,
                                                    wait=wait, timeout=call_timeout,
                                                    write_id=write_id)
                except errors.OutcomeUnknown:
                    # The cluster forgot this attempt's write, so whether it
                    # queued or was granted is unknown; a new attempt by the
                    # same lease gets its hold or its place in the queue back
                    # (re-acquire), or queues afresh. Without time for one,
                    # the clean-up asks the same way and gives back a grant.
                    waited = waited or wait > 0
                    if end is None or time.monotonic() < end:
                        continue
                    self._withdraw(write_id, time_left(deadline))
                    self.why_not = "timed_out"
                    return False
                except errors.RaftlockError as error:
                    if error.reason == "WAIT_TIMEOUT_OUT_OF_RANGE" and wait > 0.002:
                        # The cluster's limits.max_wait_timeout_ms is below this
                        # wait (refused before the log): wait less per call.
                        wait_cap = wait / 2
                        continue
                    if errors.outcome_unknown(error):
                        self._withdraw(write_id, time_left(deadline))
                    raise
                self.header = response.header
                if response.acquired:
                    self.fencing_token = response.token
                    self._held = True
                    if not self._session.alive:
                        # Granted as the session was lost: the server may hand it on.
                        self._give_back()
                        raise errors.SessionLost(
                            f"lock {self.name!r} was granted as its session was lost: "
                            f"{self._session.lost_reason}")
                    return True
                why = _WHY.get(response.reason, "unspecified")
                self.why_not = why
                if why == "lease_ended":
                    raise errors.SessionLost(f"the lease ended while waiting for {self.name!r}")
                waited = waited or wait > 0
                why_not = why_not_granted(why, blocking, end, wait, waited)
                if why_not is None:
                    continue
                self.why_not = why_not
                return False
        except BaseException:
            if not self._held:
                claims.release(self.name, self)
                self._close_owned_session()
            raise
        finally:
            if not self._held:
                claims.release(self.name, self)
            if not self._held and self._owns_session and self._session is not None and \
                    not self._session.alive:
                self._close_owned_session()

    def release(self) -> None:
        """Releases the hold (owner-checked by lease and token). A lock that
        has its own session also revokes that session. Raises
        :class:`~raftlock.errors.SessionLost` when the lease was lost while
        held (the hold is gone either way)."""
        if not self._held:
            self._close_owned_session()
            return
        session = self._session
        lost = session.lost
        if self._release_write is None:
            self._release_write = self._client.next_write_id()  # reused if release is retried
        try:
            if not lost:
                try:
                    self._client.release(self.name, session.lease_id, self.fencing_token,
                                         write_id=self._release_write)
                except (errors.NotHeld, errors.LeaseNotFound, errors.WrongToken) as error:
                    raise errors.SessionLost(
                        f"lock {self.name!r} (token {self.fencing_token}) was no longer held: {error}",
                        code=error.code, reason=error.reason) from None
        except errors.RaftlockError as error:
            if errors.outcome_unknown(error) and not self._owns_session:
                if isinstance(error, errors.OutcomeUnknown):
                    self._release_write = None  # forgotten by the server: a retry needs a new id
                raise  # still held as far as we know: release() may be called again
            self._held = False
            self._release_write = None
            session._claims.release(self.name, self)
            self._close_owned_session()  # revokes the lease: the hold ends either way
            raise
        self._held = False
        self._release_write = None
        session._claims.release(self.name, self)
        self._close_owned_session()
        if lost:
            raise errors.SessionLost(f"the session of lock {self.name!r} was lost while it was held: "
                                     f"{session.lost_reason}")

    def valid(self, *, timeout: Optional[float] = None) -> bool:
        """Asks the cluster whether this hold's token is still current."""
        if not self._held:
            return False
        return self._client.validate_token(self.name, self.fencing_token, timeout=timeout).valid

    def _withdraw(self, write_id, timeout: Optional[float] = None) -> None:
        """After an acquire whose outcome is unknown: asks again with the same
        write id (the server answers its first outcome; a wait still queued is
        withdrawn when this try-once call ends), or with a new one if the
        server forgot it (answered from the lease's hold or place), and
        releases what was granted, all within `timeout` (None: the client's).
        Best effort; an owned session is revoked anyway."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if timeout is not None and timeout <= 0:
            log.warning("raftlock: no time left to withdraw the unanswered acquire of %r", self.name)
            return
        try:
            try:
                response = self._client.acquire(self.name, self._session.lease_id,
                                                shared=self.shared, permits=self.permits, wait=0.0,
                                                timeout=timeout, write_id=write_id)
            except errors.OutcomeUnknown:
                response = self._client.acquire(self.name, self._session.lease_id,
                                                shared=self.shared, permits=self.permits, wait=0.0,
                                                timeout=time_left(deadline),
                                                write_id=self._client.next_write_id())
            if response.acquired:
                self._client.release(self.name, self._session.lease_id, response.token,
                                     timeout=time_left(deadline))
        except errors.RaftlockError as error:
            log.warning("raftlock: could not give back the unanswered acquire of %r: %s",
                        self.name, error)

    def _give_back(self) -> None:
        """Releases a hold this handle will not keep (best effort)."""
        self._held = False
        try:
            self._client.release(self.name, self._session.lease_id, self.fencing_token)
        except errors.RaftlockError as error:
            log.debug("raftlock: giving back %r: %s", self.name, error)

    def _close_owned_session(self) -> None:
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            session.close()

    def __enter__(self) -> "Lock":
        if not self.acquire():
            self._close_owned_session()
            why = self.why_not or "busy"
            if why == "busy":
                raise errors.LockBusy(f"lock {self.name!r} is held by someone else", why)
            raise errors.LockTimeout(f"lock {self.name!r} was not granted within {self.timeout}s", why)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.release()
        except errors.RaftlockError as error:
            if exc_type is None:
                raise
            # The block's own exception is the one the caller must see.
            log.warning("raftlock: releasing %r after an exception in its block: %s",
                        self.name, error)

    def __repr__(self) -> str:
        return f"Lock({self.name!r}, token={self.fencing_token}, held={self._held})"
