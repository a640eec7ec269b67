"""Elections for your own services: campaign, proclaim, resign, leader, observe."""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from typing import Optional, Tuple, Union

import grpc

from . import errors
from ._waits import WAIT_CHUNK, attempts_end, next_attempt, time_left, why_not_granted
from ._gen import api_pb2, cluster_pb2, lock_pb2

log = logging.getLogger("raftlock")

_WHY = {
    api_pb2.NOT_ACQUIRED_REASON_BUSY: "busy",
    api_pb2.NOT_ACQUIRED_REASON_TIMED_OUT: "timed_out",
    api_pb2.NOT_ACQUIRED_REASON_CANCELLED: "cancelled",
    api_pb2.NOT_ACQUIRED_REASON_LEASE_ENDED: "lease_ended",
}

_KIND = {
    lock_pb2.ELECTION_EVENT_ELECTED: "elected",
    lock_pb2.ELECTION_EVENT_PROCLAIMED: "proclaimed",
    lock_pb2.ELECTION_EVENT_NO_LEADER: "no_leader",
}


def _bytes(value: Union[str, bytes, None]) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else bytes(value)


def _end_reason(reason: int) -> str:
    if not reason:
        return ""
    name = lock_pb2.EndReason.Name(reason)
    return name[len("END_REASON_"):].lower()


@dataclasses.dataclass(frozen=True)
class ElectionEvent:
    """One message of :meth:`Election.observe`.

    ``kind``: ``"elected"`` (a new leader), ``"proclaimed"`` (same leader, new
    value), ``"no_leader"`` (the leader resigned or its lease ended; ``reason``
    says which), ``"current"`` (the state when observation started) or
    ``"skipped"`` (events were missed; this is the current state to
    resynchronise from). ``epoch`` strictly increases across events.
    """

    kind: str
    name: str
    epoch: int
    has_leader: bool
    leader_lease_id: int = 0
    value: bytes = b""
    token: int = 0
    reason: str = ""
    candidates: Tuple[int, ...] = ()

    @classmethod
    def from_event(cls, event: lock_pb2.ElectionEvent) -> "ElectionEvent":
        kind = _KIND.get(event.type, "unspecified")
        return cls(kind=kind, name=event.name, epoch=event.epoch, has_leader=kind != "no_leader",
                   leader_lease_id=event.leader_lease_id, value=event.value, token=event.token,
                   reason=_end_reason(event.reason))

    @classmethod
    def from_info(cls, kind: str, info: lock_pb2.ElectionInfo) -> "ElectionEvent":
        return cls(kind=kind, name=info.name, epoch=info.epoch, has_leader=info.has_leader,
                   leader_lease_id=info.leader_lease_id, value=info.value, token=info.token,
                   candidates=tuple(info.candidates))


class Observer:
    """An iterator of :class:`ElectionEvent` s, fed by a background thread
    that keeps an Observe stream open (reconnecting, resuming after the last
    epoch seen; each stream has a deadline of `stream_timeout` and is then
    resumed). A state report ("current" or "skipped") is not repeated by a
    new stream while nothing changed. ``next(timeout)`` waits at most
    `timeout` seconds. Close it (or use ``with``) to stop."""

    _END = object()

    def __init__(self, client, name: str, after_epoch: int = 0, *, stream_timeout: float = 30.0):
        self._client = client
        self.name = name
        self.last_epoch = after_epoch
        self._last_state = None  # the last state reported, if no event came after it
        self._stream_timeout = stream_timeout
        self._queue: "queue.Queue" = queue.Queue()
        self._stop = threading.Event()
        self._mu = threading.Lock()
        self._call = None
        self._thread = threading.Thread(target=self._run, name=f"raftlock-observe-{name}", daemon=True)
        self._thread.start()

    def __iter__(self) -> "Observer":
        return self

    def __next__(self) -> ElectionEvent:
        item = self._queue.get()
        return self._deliver(item)

    def next(self, timeout: float) -> ElectionEvent:
        """The next event, waiting at most `timeout` seconds (TimeoutError)."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no election event for {self.name!r} within {timeout}s") from None
        return self._deliver(item)

    def _deliver(self, item) -> ElectionEvent:
        if item is Observer._END:
            self._queue.put(item)  # stay ended for later calls
            raise StopIteration
        if isinstance(item, BaseException):
            self._queue.put(Observer._END)
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        with self._mu:
            call = self._call
        if call is not None:
            call.cancel()
        self._thread.join(timeout=5.0)
        self._queue.put(Observer._END)

    def __enter__(self) -> "Observer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        from .client import _Failure

        client = self._client
        attempt = 0
        while not self._stop.is_set():
            try:
                address = client._pick()
                stubs = client._stubs_for(address)
            except errors.ClientClosed as error:
                self._queue.put(error)
                return
            request = api_pb2.ObserveRequest(name=self.name, after_epoch=self.last_epoch)
            failure = None
            received = False
            try:
                call = stubs.election.Observe(request, timeout=self._stream_timeout)
                with self._mu:
                    self._call = call
                if self._stop.is_set():
                    call.cancel()
                for message in call:
                    attempt = 0
                    received = True
                    if message.HasField("event") and not message.skipped:
                        event = ElectionEvent.from_event(message.event)
                        if event.epoch <= self.last_epoch:
                            continue  # already delivered before a reconnect
                    elif self._last_state is not None and message.current == self._last_state:
                        # The state reported last, with no event since: a
                        # never-used election (epoch 0), or a forgotten one
                        # re-reported as skipped on each new stream. Not news.
                        continue
                    else:
                        event = ElectionEvent.from_info("skipped" if message.skipped else "current",
                                                        message.current)
                    if message.HasField("event") and not message.skipped:
                        self._last_state = None
                    else:
                        self._last_state = lock_pb2.ElectionInfo()
                        self._last_state.CopyFrom(message.current)
                    self.last_epoch = max(self.last_epoch, event.epoch)
                    self._queue.put(event)
            except grpc.RpcError as error:
                failure = _Failure(error)
            finally:
                with self._mu:
                    self._call = None
            if self._stop.is_set():
                return
            if failure is None or (failure.code == grpc.StatusCode.DEADLINE_EXCEEDED and received):
                continue  # the stream's lifetime ended: resume after the last epoch
            if failure.code == grpc.StatusCode.DEADLINE_EXCEEDED:
                # A whole stream without a message: a quiet election, or a
                # paused or cut-off replica. Ask it; look elsewhere if silent.
                try:
                    client._call(lambda s: s.cluster.Status, cluster_pb2.StatusRequest(),
                                 timeout=client.attempt_timeout, address=address)
                except errors.RaftlockError:
                    client._note_failure(address, None)
                continue
            if failure.from_state_machine or failure.code == grpc.StatusCode.INVALID_ARGUMENT:
                self._queue.put(failure.to_error())
                return
            if client._note_failure(address, failure) is None:
                self._stop.wait(client._backoff(attempt, 1.0))
                attempt += 1


class Election:
    """An election named `name`. Campaigning needs a session (the leadership
    lasts while its lease lives); without one, the election makes its own of
    `ttl` seconds on the first campaign and revokes it on :meth:`close`.

    ``token`` is the leadership's fencing token (like a lock's); ``epoch`` the
    epoch of the last change this handle made."""

    def __init__(self, client, name: str, *, session=None, ttl: float = 10.0):
        if not name:
            raise ValueError("an election needs a name")
        self._client = client
        self.name = name
        self._session = session
        self._owns_session = session is None
        self._ttl = ttl
        self.token: int = 0
        self.epoch: int = 0
        self.why_not = ""
        self._resign_write = None  # reused while a resign's outcome is unknown

    @property
    def session(self):
        return self._session

    @property
    def is_leader(self) -> bool:
        """True while this handle leads and its session is certainly alive."""
        return self.token != 0 and self._session is not None and self._session.alive

    def campaign(self, value: Union[str, bytes] = b"", *, blocking: bool = True,
                 timeout: Optional[float] = None) -> bool:
        """Becomes leader with `value`, waiting in FIFO order (up to `timeout`
        seconds, or until elected when None). Returns False when not elected
        (busy with ``blocking=False``, or timed out); returns (or raises) by
        its timeout, withdrawing an unanswered candidacy included. Handles
        sharing a session take turns on a name, as lock handles do: another
        handle's campaign waits until this one stops leading."""
        if self._session is None:
            self._session = self._client.session(self._ttl)
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        end = None if deadline is None else attempts_end(deadline)
        # First the session's claim on the name, as lock handles claim theirs:
        # another handle of this session would share this one's leadership.
        claims = self._session._election_claims
        why_not = claims.claim(self.name, self, end, blocking, self._session)
        if why_not:
            self.why_not = why_not
            return False
        try:
            return self._campaign_claimed(value, blocking, deadline, end)
        finally:
            if not self.token:
                claims.release(self.name, self)

    def _campaign_claimed(self, value, blocking: bool, deadline: Optional[float],
                          end: Optional[float]) -> bool:
        """campaign() once the session's claim on the name is this handle's."""
        payload = _bytes(value)
        wait_cap = WAIT_CHUNK if deadline is None else float("inf")
        attempted = False
        waited = False  # an attempt of this call waited on the server
        while True:
            self._session.check()
            step = next_attempt(end, blocking, wait_cap, attempted)
            if step is None:
                self.why_not = self.why_not or "timed_out"
                return False
            wait, call_timeout = step
            if call_timeout is None:
                call_timeout = self._client.timeout
            attempted = True
            request = api_pb2.CampaignRequest(write=self._client.next_write_id(), name=self.name,
                                              lease_id=self._session.lease_id, value=payload,
                                              wait_timeout_ms=int(round(wait * 1000)))
            try:
                response = self._client._call(lambda s: s.election.Campaign, request,
                                              timeout=wait + call_timeout,
                                              attempt_timeout=wait + self._client.attempt_timeout)
            except errors.OutcomeUnknown:
                # The cluster forgot this attempt's write, so whether it
                # queued or won is unknown; a new attempt by the same lease
                # gets its leadership or its place in the queue back. Without
                # time for one, the clean-up asks the same way and resigns.
                waited = waited or wait > 0
                if end is None or time.monotonic() < end:
                    continue
                self._withdraw(request, time_left(deadline))
                self.why_not = "timed_out"
                return False
            except errors.RaftlockError as error:
                if error.reason == "WAIT_TIMEOUT_OUT_OF_RANGE" and wait > 0.002:
                    # The cluster's limits.max_wait_timeout_ms is below this
                    # wait (refused before the log): wait less per call.
                    wait_cap = wait / 2
                    continue
                if errors.outcome_unknown(error):
                    self._withdraw(request, time_left(deadline))  # carries the write id last sent
                raise
            if response.elected:
                self.token = response.token
                self._resign_write = None
                self.epoch = response.epoch
                if not self._session.alive:
                    # Elected as the session was lost: the server may end it any moment.
                    try:
                        self.resign()
                    except errors.RaftlockError as error:
                        log.debug("raftlock: resigning %r: %s", self.name, error)
                    raise errors.SessionLost(
                        f"{self.name!r} was won as its session was lost: {self._session.lost_reason}")
                return True
            why = _WHY.get(response.reason, "unspecified")
            self.why_not = why
            if why == "lease_ended":
                raise errors.SessionLost(f"the lease ended while campaigning for {self.name!r}")
            waited = waited or wait > 0
            why_not = why_not_granted(why, blocking, end, wait, waited)
            if why_not is None:
                continue
            self.why_not = why_not
            return False

    def proclaim(self, value: Union[str, bytes], *, timeout: Optional[float] = None) -> int:
        """Publishes a new leader value; returns the new epoch."""
        self._require_leader()
        request = api_pb2.ProclaimRequest(write=self._client.next_write_id(), name=self.name,
                                          lease_id=self._session.lease_id, token=self.token,
                                          value=_bytes(value))
        response = self._client._call(lambda s: s.election.Proclaim, request, timeout=timeout)
        self.epoch = response.epoch
        return response.epoch

    def resign(self, *, timeout: Optional[float] = None) -> int:
        """Steps down (or withdraws a queued candidacy); returns the epoch of
        the "no leader" event (0 if this handle was not leading)."""
        if self._session is None:
            return 0
        if self._resign_write is None:
            self._resign_write = self._client.next_write_id()
        request = api_pb2.ResignRequest(write=self._resign_write, name=self.name,
                                        lease_id=self._session.lease_id, token=self.token)
        try:
            response = self._client._call(lambda s: s.election.Resign, request, timeout=timeout)
        except errors.RaftlockError as error:
            if request.token == 0 and error.reason == "NOT_WAITING":
                self._resign_write = None
                return 0  # neither leading nor queued: nothing to resign
            if not errors.outcome_unknown(error):
                self.token = 0  # decided: nothing is led under this token
                self._resign_write = None
                self._session._election_claims.release(self.name, self)
            elif isinstance(error, errors.OutcomeUnknown):
                self._resign_write = None  # forgotten by the server: a retry needs a new id
            else:
                # Still leading as far as we know: a retry re-sends the id last
                # sent (the client may have renewed it) and gets the first answer.
                self._resign_write = request.write
            raise
        self.token = 0
        self._resign_write = None
        self._session._election_claims.release(self.name, self)
        if response.was_leader:
            self.epoch = response.epoch
        return response.epoch if response.was_leader else 0

    def _withdraw(self, request: api_pb2.CampaignRequest, timeout: Optional[float] = None) -> None:
        """After a campaign whose outcome is unknown: asks again with the same
        write id (the server answers its first outcome; a queued candidacy is
        withdrawn when this try-once call ends), or with a new one if the
        server forgot it, and resigns a leadership won, all within `timeout`
        (None: the client's). Best effort; an owned session is revoked anyway."""
        if timeout is not None and timeout <= 0:
            log.warning("raftlock: no time left to withdraw the unanswered campaign for %r",
                        self.name)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        probe = api_pb2.CampaignRequest()
        probe.CopyFrom(request)
        probe.wait_timeout_ms = 0
        try:
            try:
                response = self._client._call(lambda s: s.election.Campaign, probe,
                                              timeout=timeout)
            except errors.OutcomeUnknown:
                probe.write.CopyFrom(self._client.next_write_id())
                response = self._client._call(lambda s: s.election.Campaign, probe,
                                              timeout=time_left(deadline))
            if response.elected:
                resign = api_pb2.ResignRequest(write=self._client.next_write_id(), name=self.name,
                                               lease_id=self._session.lease_id,
                                               token=response.token)
                self._client._call(lambda s: s.election.Resign, resign,
                                   timeout=time_left(deadline))
        except errors.RaftlockError as error:
            log.warning("raftlock: could not withdraw the unanswered campaign for %r: %s",
                        self.name, error)

    def leader(self, *, timeout: Optional[float] = None) -> lock_pb2.ElectionInfo:
        """Who leads now (``has_leader``, ``value``, ``token``, ``epoch``,
        ``candidates``)."""
        response = self._client._call(lambda s: s.election.Leader,
                                      api_pb2.LeaderRequest(name=self.name), timeout=timeout)
        return response.election

    def observe(self, after_epoch: int = 0, *, stream_timeout: float = 30.0) -> Observer:
        """Every change after `after_epoch` (0: start with the current state),
        as an iterator of :class:`ElectionEvent`."""
        return Observer(self._client, self.name, after_epoch, stream_timeout=stream_timeout)

    def close(self) -> None:
        """Resigns if leading (best effort) and closes an election-owned session."""
        try:
            if self.token and self._session is not None and self._session.alive:
                self.resign()
        except errors.RaftlockError as error:
            log.warning("raftlock: resign of %r failed: %s", self.name, error)
        finally:
            if self._owns_session and self._session is not None:
                session, self._session = self._session, None
                session.close()

    def __enter__(self) -> "Election":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _require_leader(self) -> None:
        if self._session is None or not self.token:
            raise errors.NotHeld(f"this handle does not lead {self.name!r}", reason="NOT_HELD")
        self._session.check()
