"""Session: a lease kept alive in the background, with jeopardy and loss
reported from the client's own monotonic clock.

The server ends a lease once cluster time passes the last accepted keepalive
plus the TTL, and cluster time never runs ahead of real time. So if the client
*sent* a keepalive at local monotonic time ``t`` and it was acknowledged, the
lease lives at least until ``t + ttl`` in real time. The session keeps
``acked_sent`` (the send time of the newest acknowledged keepalive, or of the
grant) and reports:

* ``ALIVE``    while ``now < acked_sent + jeopardy_after`` (default ttl/2);
* ``JEOPARDY`` after that: no acknowledgement for a while (the cluster may be
  unreachable or leaderless); it returns to ``ALIVE`` if an ack comes in time;
* ``LOST``     at ``acked_sent + ttl - lost_margin``, *before* the server could
  expire the lease, or at once when the server says the lease is gone. Lost is
  final: whatever was held through the session must be considered gone.
* ``CLOSED``   after :meth:`Session.close`.
"""

from __future__ import annotations

import collections
import enum
import logging
import queue
import threading
import time
from typing import Callable, List, Optional

import grpc

from . import errors
from ._claims import LocalClaims
from ._gen import api_pb2

log = logging.getLogger("raftlock")


class SessionState(enum.Enum):
    ALIVE = "alive"
    JEOPARDY = "jeopardy"
    LOST = "lost"
    CLOSED = "closed"


_STOP = object()


class _Stream:
    """One open KeepAlive stream: its request queue, the send times of the
    requests not yet answered (answers come in request order), and the call."""

    def __init__(self, address: str):
        self.address = address
        self.requests: "queue.Queue" = queue.Queue()
        self.pending = collections.deque()
        self.call = None
        self.cancelled_by_us = False

    def request_iterator(self):
        while True:
            item = self.requests.get()
            if item is _STOP:
                return
            yield item


class Session:
    """A lease that is kept alive until closed.

    Create with :meth:`raftlock.Client.session`::

        with client.session(ttl=5.0) as session:
            with session.lock("jobs/a") as lock:
                ...

    Parameters (seconds): ``ttl`` the lease TTL (cluster minimum 1 s);
    ``keepalive_interval`` (default ttl/3); ``jeopardy_after`` (default ttl/2);
    ``lost_margin`` how long before the earliest possible server-side expiry
    the session reports ``LOST`` (default 10% of the TTL, at least 0.2 s, at
    most 2 s). ``on_state_change(session, old, new)`` is called from the
    session's thread on every transition. ``stream_lifetime`` bounds each
    KeepAlive stream (it is reopened, so every RPC has a deadline).
    """

    def __init__(
        self,
        client,
        ttl: float = 10.0,
        *,
        keepalive_interval: Optional[float] = None,
        jeopardy_after: Optional[float] = None,
        lost_margin: Optional[float] = None,
        on_state_change: Optional[Callable[["Session", SessionState, SessionState], None]] = None,
        timeout: Optional[float] = None,
        stream_lifetime: float = 60.0,
    ):
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._client = client
        # Which lock (election) handle claims each lock (election) name: _claims.py.
        self._claims = LocalClaims()
        self._election_claims = LocalClaims()
        self.ttl = float(ttl)
        self.keepalive_interval = float(keepalive_interval) if keepalive_interval else self.ttl / 3.0
        self.jeopardy_after = float(jeopardy_after) if jeopardy_after else self.ttl / 2.0
        if lost_margin is None:
            lost_margin = min(max(0.1 * self.ttl, 0.2), 2.0, self.ttl / 4.0)
        self.lost_margin = float(lost_margin)
        self._stuck_after = max(min(self.ttl / 4.0, 2.0), 0.25)
        self._stream_lifetime = float(stream_lifetime)
        self._callbacks: List[Callable] = [on_state_change] if on_state_change else []
        self._cv = threading.Condition()
        self._state = SessionState.ALIVE
        self._lost_reason = ""
        self._stream: Optional[_Stream] = None
        self._stop = threading.Event()
        self._acks = 0

        # The lease lives at least ttl after the grant's first attempt was sent.
        sent = time.monotonic()
        response = client.grant(self.ttl, timeout=timeout)
        self.lease_id: int = response.lease_id
        self._acked_sent = sent

        self._receiver = threading.Thread(target=self._receive_loop, name=f"raftlock-ka-{self.lease_id}",
                                          daemon=True)
        self._ticker = threading.Thread(target=self._tick_loop, name=f"raftlock-tick-{self.lease_id}",
                                        daemon=True)
        self._receiver.start()
        self._ticker.start()

    # ------------------------------------------------------------ public API

    @property
    def client(self):
        return self._client

    @property
    def state(self) -> SessionState:
        """The state by the local clock now: JEOPARDY or LOST as soon as the
        clock says so, even before the session's thread, which moves the state
        and calls the listeners, has run (it may be late after a pause)."""
        with self._cv:
            state = self._state
            acked = self._acked_sent
        if state in (SessionState.ALIVE, SessionState.JEOPARDY):
            now = time.monotonic()
            if now >= acked + self.ttl - self.lost_margin:
                return SessionState.LOST
            if now >= acked + self.jeopardy_after:
                return SessionState.JEOPARDY
        return state

    @property
    def alive(self) -> bool:
        """True while the lease is certainly alive (ALIVE or JEOPARDY)."""
        return self.state in (SessionState.ALIVE, SessionState.JEOPARDY)

    @property
    def in_jeopardy(self) -> bool:
        return self.state == SessionState.JEOPARDY

    @property
    def lost(self) -> bool:
        return self.state == SessionState.LOST

    @property
    def lost_reason(self) -> str:
        with self._cv:
            reason = self._lost_reason
        if not reason and self.state == SessionState.LOST:  # not yet reported
            return "no keepalive acknowledged within the lease's TTL"
        return reason

    def safe_until(self) -> float:
        """``time.monotonic()`` value until which the lease is certainly alive
        (the earliest possible server-side expiry minus the lost margin)."""
        with self._cv:
            return self._acked_sent + self.ttl - self.lost_margin

    def remaining(self) -> float:
        """Seconds the lease is still certainly alive (0 when lost/closed)."""
        if not self.alive:
            return 0.0
        return max(0.0, self.safe_until() - time.monotonic())

    def check(self) -> None:
        """Raises :class:`raftlock.errors.SessionLost` unless the lease is
        certainly alive."""
        state = self.state
        if state not in (SessionState.ALIVE, SessionState.JEOPARDY):
            raise errors.SessionLost(f"session {self.lease_id} is {state.value}: {self.lost_reason}")

    def add_listener(self, callback: Callable[["Session", SessionState, SessionState], None]) -> None:
        """Calls ``callback(session, old, new)`` on every state transition."""
        with self._cv:
            self._callbacks.append(callback)

    def wait_for(self, state: SessionState, timeout: float) -> bool:
        """Waits up to `timeout` seconds until the session is in `state`."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._state != state:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(remaining)
            return True

    def wait_lost(self, timeout: float) -> bool:
        return self.wait_for(SessionState.LOST, timeout)

    def time_to_live(self, *, timeout: Optional[float] = None):
        """The server's view of the lease (``LeaseInfo``), or None if gone."""
        return self._client.time_to_live(self.lease_id, timeout=timeout)

    def lock(self, name: str, **kwargs):
        """A lock held through this session (see :meth:`raftlock.Client.lock`).
        Lock handles sharing a session take turns on a name: one handle at a
        time claims it, in any mode, before asking the cluster (another
        handle's acquire waits, or returns False when not blocking), so
        threads sharing a session exclude each other as sessions do."""
        return self._client.lock(name, session=self, **kwargs)

    def election(self, name: str):
        return self._client.election(name, session=self)

    def close(self, *, revoke: bool = True, timeout: Optional[float] = None) -> None:
        """Stops keeping the lease alive and (by default) revokes it, which
        releases every lock, leadership and wait it has. Idempotent."""
        with self._cv:
            already = self._state == SessionState.CLOSED
            was_lost = self._state == SessionState.LOST
        if already:
            return
        self._stop.set()
        self._cancel_stream()
        self._transition(SessionState.CLOSED, "closed")
        for thread in (self._ticker, self._receiver):
            if thread is not threading.current_thread():
                thread.join(timeout=5.0)
        if revoke:
            try:
                self._client.revoke(self.lease_id, timeout=timeout if timeout is not None else
                                    min(self._client.timeout, 2.0 if was_lost else self._client.timeout))
            except errors.RaftlockError as error:
                if not isinstance(error, errors.NotFound):
                    log.warning("raftlock: revoking lease %d failed: %s", self.lease_id, error)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Session(lease_id={self.lease_id}, ttl={self.ttl}, state={self.state.value})"

    # ------------------------------------------------------------ state machine

    def _transition(self, new: SessionState, reason: str = "") -> None:
        with self._cv:
            old = self._state
            if old == new or old in (SessionState.LOST, SessionState.CLOSED):
                return
            if new == SessionState.LOST:
                self._lost_reason = reason
            self._state = new
            callbacks = list(self._callbacks)
            self._cv.notify_all()
        log.info("raftlock: session %d %s -> %s %s", self.lease_id, old.value, new.value, reason)
        if new == SessionState.LOST:
            self._stop.set()
            self._cancel_stream()
        for callback in callbacks:
            try:
                callback(self, old, new)
            except Exception:  # a listener's bug must not stop the session
                log.exception("raftlock: session listener failed")

    def _evaluate(self, now: float) -> float:
        """Moves ALIVE/JEOPARDY/LOST by the local clock; returns the seconds
        until the next possible transition."""
        with self._cv:
            state = self._state
            acked = self._acked_sent
        if state in (SessionState.LOST, SessionState.CLOSED):
            return 1.0
        lost_at = acked + self.ttl - self.lost_margin
        jeopardy_at = acked + self.jeopardy_after
        if now >= lost_at:
            self._transition(SessionState.LOST,
                             f"no keepalive acknowledged for {now - acked:.3f}s (ttl {self.ttl}s)")
            return 1.0
        if now >= jeopardy_at:
            if state == SessionState.ALIVE:
                self._transition(SessionState.JEOPARDY, "keepalives are not being acknowledged")
            return lost_at - now
        if state == SessionState.JEOPARDY:
            self._transition(SessionState.ALIVE, "keepalive acknowledged")
        return jeopardy_at - now

    def _on_ack(self, sent: float) -> None:
        with self._cv:
            if sent > self._acked_sent:
                self._acked_sent = sent
            self._acks += 1
        self._evaluate(time.monotonic())

    # ------------------------------------------------------------ keepalive threads

    def _send(self) -> None:
        with self._cv:
            stream = self._stream
            if stream is None:
                return
            stream.pending.append(time.monotonic())
        stream.requests.put(api_pb2.LeaseKeepAliveRequest(lease_id=self.lease_id))

    def _cancel_stream(self) -> None:
        with self._cv:
            stream = self._stream
        if stream is not None:
            stream.cancelled_by_us = True
            stream.requests.put(_STOP)
            if stream.call is not None:
                stream.call.cancel()

    def _tick_loop(self) -> None:
        next_send = time.monotonic() + self.keepalive_interval
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_send:
                self._send()
                next_send = now + self.keepalive_interval
            until_transition = self._evaluate(now)
            # A stream whose oldest request is unanswered for too long goes to
            # a replica that is paused, partitioned or no longer leading: drop
            # it so the receiver reconnects elsewhere.
            with self._cv:
                stream = self._stream
                oldest = stream.pending[0] if stream is not None and stream.pending else None
            if oldest is not None and now - oldest > self._stuck_after and stream.call is not None:
                log.info("raftlock: session %d keepalive stream to %s is stuck; reconnecting",
                         self.lease_id, stream.address)
                with self._cv:
                    if self._stream is stream:
                        self._stream = None
                stream.cancelled_by_us = True
                stream.requests.put(_STOP)
                stream.call.cancel()
            wait = min(max(0.0, next_send - now), max(0.0, until_transition), 0.05)
            self._stop.wait(max(wait, 0.005))

    def _receive_loop(self) -> None:
        client = self._client
        attempt = 0
        while not self._stop.is_set():
            try:
                address = client._pick()
                stubs = client._stubs_for(address)
            except errors.ClientClosed:
                self._transition(SessionState.LOST, "the client was closed")
                return
            stream = _Stream(address)
            with self._cv:
                self._stream = stream
            failure = None
            try:
                stream.call = stubs.lease.KeepAlive(stream.request_iterator(), timeout=self._stream_lifetime)
                self._send()  # a new stream starts with a keepalive
                for response in stream.call:
                    with self._cv:
                        sent = stream.pending.popleft() if stream.pending else None
                    if response.expired:
                        self._transition(SessionState.LOST, "the server reports the lease expired")
                        return
                    client._note_leader(address)
                    attempt = 0
                    if sent is not None:
                        self._on_ack(sent)
            except grpc.RpcError as error:
                from .client import _Failure

                failure = _Failure(error)
                if failure.reason == "LEASE_NOT_FOUND":
                    self._transition(SessionState.LOST, "the server reports the lease is gone")
                    return
            except Exception as error:  # pragma: no cover - defensive
                log.warning("raftlock: keepalive stream failed: %s", error)
            finally:
                stream.requests.put(_STOP)
                with self._cv:
                    if self._stream is stream:
                        self._stream = None
            if self._stop.is_set():
                return
            lifetime_over = (failure is not None and failure.code == grpc.StatusCode.DEADLINE_EXCEEDED
                             and not stream.cancelled_by_us)
            if failure is None or lifetime_over:
                continue  # stream ended normally: reopen at once
            redirect = client._note_failure(address, failure)
            if redirect is None and stream.cancelled_by_us:
                with client._mu:
                    if client._leader == address:
                        client._leader = None
            if redirect is None:
                delay = client._backoff(attempt, self.keepalive_interval)
                attempt += 1
                self._stop.wait(delay)
