"""The raftlock client: endpoints, leader discovery and redirect, deadlines and
retries with exponential backoff and full jitter, exactly-once write ids.

Every RPC the SDK makes has a deadline. A call's ``timeout`` bounds the whole
call including its retries; each attempt is further bounded by
``attempt_timeout`` (so a paused or partitioned replica costs one attempt, not
the whole call). Retried:

* ``UNAVAILABLE`` (a follower's "not the leader", no leader elected yet, a
  replica that is down or shutting down), redirecting at once when the
  follower's leader hint names a new leader, otherwise after a backoff;
* an attempt that ran out of its own ``attempt_timeout`` while the call still
  has time left (the next attempt goes to another replica).

Writes carry a ``WriteId(client_id, sequence)`` that every retry reuses, so a
write is applied at most once even when an earlier attempt was applied and only
its answer was lost. Errors decided by the state machine (not held, wrong
token, lease not found, ...) are never retried; they raise the matching
:mod:`raftlock.errors` class.
"""

from __future__ import annotations

import itertools
import logging
import random
import secrets
import threading
import time
from typing import Callable, Iterable, List, Optional, Sequence, Union

import grpc

from . import errors
from ._gen import api_pb2, api_pb2_grpc, cluster_pb2, cluster_pb2_grpc, lock_pb2

log = logging.getLogger("raftlock")

LEADER_HINT_KEY = "raftlock-leader-bin"
REASON_KEY = "raftlock-reason"

_MAX_UNSENT = 4096

_REASON_PREFIX = "ERROR_REASON_"

# Reconnect quickly after a replica restarts (gRPC's default backoff is 1 s..120 s).
# Answers are bounded by the server's limits, not gRPC's 4 MiB default: a lease
# holding thousands of locks has a longer TimeToLive answer (up to about 26 MiB
# at the default limits), so answers of up to 64 MiB are accepted.
_DEFAULT_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_retries", 0),
    ("grpc.max_receive_message_length", 64 << 20),
)

# The shortest ping_interval the SDK allows (replicas accept pings every 0.5 s,
# so this keeps a margin), and the longest ping_interval or ping_timeout
# (seconds).
MIN_PING_INTERVAL = 1.0
MAX_PING_SETTING = 3600.0


def _ping_options(interval: float, timeout: float) -> tuple:
    """Channel options that ping a connection with calls in flight every
    ``interval`` seconds and close it when a ping is unanswered for
    ``timeout``, without limit between data frames (a parked wait sends no
    data); none for interval 0."""
    if interval == 0:
        return ()
    return (
        ("grpc.keepalive_time_ms", int(interval * 1000)),
        ("grpc.keepalive_timeout_ms", int(timeout * 1000)),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 0),
    )


class _Stubs:
    """The four service stubs of one replica's client address."""

    def __init__(self, channel: grpc.Channel):
        self.channel = channel
        self.lease = api_pb2_grpc.LeaseStub(channel)
        self.lock = api_pb2_grpc.LockStub(channel)
        self.election = api_pb2_grpc.ElectionStub(channel)
        self.cluster = cluster_pb2_grpc.ClusterStub(channel)


class _Failure:
    """A classified gRPC error: what it says about the leader and whether the
    call may be retried."""

    def __init__(self, error: grpc.RpcError):
        self.error = error
        self.code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        self.details = (error.details() if hasattr(error, "details") else "") or ""
        self.reason = ""
        self.hint: Optional[cluster_pb2.LeaderHint] = None
        trailers = ()
        try:
            trailers = error.trailing_metadata() or ()
        except Exception:  # pragma: no cover - not every RpcError has trailers
            trailers = ()
        for key, value in trailers:
            if key == REASON_KEY:
                reason = value.decode() if isinstance(value, bytes) else value
                self.reason = reason[len(_REASON_PREFIX):] if reason.startswith(_REASON_PREFIX) else reason
            elif key == LEADER_HINT_KEY:
                hint = cluster_pb2.LeaderHint()
                try:
                    hint.ParseFromString(value if isinstance(value, bytes) else value.encode("latin-1"))
                    self.hint = hint
                except Exception:  # a malformed hint is ignored
                    pass

    @property
    def from_state_machine(self) -> bool:
        return bool(self.reason)

    def to_error(self) -> errors.RaftlockError:
        return errors.from_status(self.code, self.details, self.reason)


class Client:
    """A connection to a raftlock cluster.

    ``endpoints`` lists client addresses (``"host:port"``, or one string with
    commas). Any replica will do: the client finds the leader and follows
    redirects. ``timeout`` is the default deadline of a call, retries included;
    ``attempt_timeout`` bounds one attempt. ``client_id`` is the exactly-once
    identity (random, nonzero; pass one only to resume a previous process's
    sequence space, which is rarely what you want).

    ``ping_interval`` (seconds): while calls are in flight to a replica, its
    connection is pinged this often, and a ping unanswered for
    ``ping_timeout`` closes it, so a wait parked at a paused or partitioned
    replica fails over within about ``ping_interval + ping_timeout`` instead
    of at its deadline. 0 turns pings off; otherwise 1.0 to 3600 (replicas
    accept pings every 0.5 s; the SDK keeps a margin). ``ping_timeout``:
    above 0, at most 3600; keep it well above network hiccups, since a closed
    connection cancels a wait parked at a live leader and the retry queues
    again at the end.

    ``channel_options`` are gRPC channel arguments added after the SDK's own,
    so they override them (including the ping settings above, unchecked).

    A client is thread safe. Close it (or use it as a context manager) to close
    its channels.
    """

    def __init__(
        self,
        endpoints: Union[str, Sequence[str]],
        *,
        timeout: float = 5.0,
        attempt_timeout: float = 2.0,
        backoff_base: float = 0.025,
        backoff_max: float = 1.0,
        client_id: Optional[int] = None,
        interceptors: Iterable[grpc.UnaryUnaryClientInterceptor] = (),
        channel_options: Sequence = (),
        ping_interval: float = 2.0,
        ping_timeout: float = 4.0,
    ):
        if isinstance(endpoints, str):
            endpoints = [e.strip() for e in endpoints.split(",")]
        self._endpoints: List[str] = [e for e in endpoints if e]
        if not self._endpoints:
            raise ValueError("at least one endpoint is required")
        for endpoint in self._endpoints:
            host, colon, port = endpoint.rpartition(":")
            if not host or not colon or not port:
                raise ValueError(f"endpoints: '{endpoint}' is not host:port")
            if not (port.isascii() and port.isdigit() and len(port) <= 5
                    and 1 <= int(port) <= 65535):
                raise ValueError(
                    f"endpoints: '{endpoint}': the port must be a number in [1, 65535]")
        if timeout <= 0 or attempt_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if ping_interval != 0 and not MIN_PING_INTERVAL <= ping_interval <= MAX_PING_SETTING:
            raise ValueError(f"ping_interval must be 0 (no pings) or from {MIN_PING_INTERVAL} "
                             f"to {MAX_PING_SETTING} s, got {ping_interval}")
        if not 0 < ping_timeout <= MAX_PING_SETTING:
            raise ValueError(f"ping_timeout must be above 0 and at most {MAX_PING_SETTING} s, "
                             f"got {ping_timeout}")
        self.timeout = float(timeout)
        self.attempt_timeout = float(attempt_timeout)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.client_id = client_id if client_id else (secrets.randbits(64) or 1)
        self._sequence = itertools.count(1)
        self._interceptors = tuple(interceptors)
        self._channel_options = (
            tuple(_DEFAULT_CHANNEL_OPTIONS) + _ping_options(ping_interval, ping_timeout) + tuple(channel_options)
        )
        self._mu = threading.Lock()
        self._stubs: dict = {}
        self._leader: Optional[str] = None
        self._next_endpoint = random.randrange(len(self._endpoints))
        self._closed = False
        self._rng = random.Random()
        self._unsent: dict = {}  # sequences issued and not yet sent, oldest first

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Closes every channel. Sessions of this client stop keeping alive."""
        with self._mu:
            self._closed = True
            stubs, self._stubs = self._stubs, {}
        for s in stubs.values():
            s.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def endpoints(self) -> List[str]:
        return list(self._endpoints)

    @property
    def leader_address(self) -> Optional[str]:
        """The client address of the replica last known to lead, if any."""
        with self._mu:
            return self._leader

    # ------------------------------------------------------------ plumbing

    def _stubs_for(self, address: str) -> _Stubs:
        with self._mu:
            if self._closed:
                raise errors.ClientClosed("the client is closed")
            stubs = self._stubs.get(address)
            if stubs is None:
                channel = grpc.insecure_channel(address, options=list(self._channel_options))
                if self._interceptors:
                    channel = grpc.intercept_channel(channel, *self._interceptors)
                stubs = _Stubs(channel)
                self._stubs[address] = stubs
            return stubs

    def _pick(self) -> str:
        """The known leader, else the next endpoint in turn."""
        with self._mu:
            if self._leader:
                return self._leader
            address = self._endpoints[self._next_endpoint % len(self._endpoints)]
            self._next_endpoint += 1
            return address

    def _note_leader(self, address: str) -> None:
        with self._mu:
            self._leader = address

    def _note_failure(self, address: str, failure: Optional[_Failure]) -> Optional[str]:
        """Learns from a failed attempt at `address`. Returns the address to
        redirect to at once (a newly named leader), or None to back off and try
        the next replica."""
        with self._mu:
            hint = failure.hint if failure is not None else None
            if hint is not None and hint.leader_id != 0 and hint.leader_address:
                if hint.leader_address != address:
                    self._leader = hint.leader_address
                    return hint.leader_address
            if self._leader == address:
                self._leader = None
            return None

    def _backoff(self, attempt: int, remaining: float) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^attempt)], never past
        the call's deadline."""
        cap = min(self.backoff_max, self.backoff_base * (2 ** min(attempt, 20)))
        return max(0.0, min(self._rng.uniform(0.0, cap), remaining))

    def next_write_id(self) -> api_pb2.WriteId:
        """A fresh exactly-once identity for one write (retries reuse it).

        The server keeps a client's last 16 results. A write whose first
        attempt arrives after 16 newer writes of this client (threads sharing
        a Client) is refused ``SEQUENCE_TOO_OLD`` unapplied; the call then
        sends it again with a new id. A retried write refused so raises
        :class:`~raftlock.errors.OutcomeUnknown`."""
        write = api_pb2.WriteId(client_id=self.client_id, sequence=next(self._sequence))
        with self._mu:
            self._unsent[write.sequence] = None
            while len(self._unsent) > _MAX_UNSENT:  # ids taken and never sent
                self._unsent.pop(next(iter(self._unsent)))
        return write

    def _take_unsent(self, request) -> bool:
        """True if `request` carries a write id never sent before (then it is
        marked sent)."""
        if not hasattr(request, "write") or not request.HasField("write"):
            return False
        with self._mu:
            return self._unsent.pop(request.write.sequence, False) is None

    def _call(
        self,
        method: Callable[[_Stubs], Callable],
        request,
        *,
        timeout: Optional[float] = None,
        attempt_timeout: Optional[float] = None,
        retry_deadline_exceeded: bool = True,
        address: Optional[str] = None,
    ):
        """Runs one unary RPC against the leader with redirects and retries.

        `method` picks the bound stub method, e.g. ``lambda s: s.lock.Acquire``.
        `address` pins the call to one replica (no redirect, no retries
        elsewhere)."""
        total = self.timeout if timeout is None else float(timeout)
        per_attempt = self.attempt_timeout if attempt_timeout is None else float(attempt_timeout)
        deadline = time.monotonic() + total
        attempt = 0
        redirects = 0
        last: Optional[_Failure] = None
        target = address or self._pick()
        unsent = self._take_unsent(request)  # no attempt sent: cannot have applied
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            this_timeout = min(remaining, per_attempt)
            try:
                response = method(self._stubs_for(target))(request, timeout=this_timeout)
            except grpc.RpcError as error:
                failure = _Failure(error)
                if failure.reason == "SEQUENCE_TOO_OLD" and hasattr(request, "write"):
                    if unsent:  # refused unapplied: 16 newer writes of this client came first
                        request.write.CopyFrom(self.next_write_id())
                        unsent = self._take_unsent(request)
                        continue
                    raise errors.OutcomeUnknown(
                        "the server no longer remembers whether this retried write applied "
                        f"(SEQUENCE_TOO_OLD): {failure.details}",
                        code=grpc.StatusCode.ABORTED) from None
                unsent = False  # from here on this attempt may have applied
                if failure.from_state_machine:
                    raise failure.to_error() from None
                last = failure
                code = failure.code
                client_timeout = code == grpc.StatusCode.DEADLINE_EXCEEDED and failure.hint is None
                # CANCELLED: a replica that is shutting down cancels the calls
                # it has not answered (or this client was closed, and the next
                # attempt raises ClientClosed).
                retryable = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED) or (
                    client_timeout and retry_deadline_exceeded
                )
                if not retryable:
                    raise failure.to_error() from None
                if address is not None:
                    # Pinned: retry the same replica after a backoff.
                    time.sleep(self._backoff(attempt, deadline - time.monotonic()))
                    attempt += 1
                    continue
                redirect = self._note_failure(target, failure)
                if redirect is not None and redirects < 3:
                    # A follower named a new leader: go there now.
                    redirects += 1
                    target = redirect
                    continue
                redirects = 0
                if not client_timeout:
                    time.sleep(self._backoff(attempt, deadline - time.monotonic()))
                attempt += 1
                target = self._pick()
                continue
            if address is None:
                self._note_leader(target)
            return response
        if last is None:
            raise errors.DeadlineExceeded(f"no attempt fit in the call's {total:.3f}s deadline",
                                          code=grpc.StatusCode.DEADLINE_EXCEEDED)
        if last.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise errors.DeadlineExceeded(
                f"deadline of {total:.3f}s passed after {attempt + 1} attempts: {last.details}",
                code=grpc.StatusCode.DEADLINE_EXCEEDED)
        raise errors.Unavailable(
            f"no leader answered within {total:.3f}s ({attempt + 1} attempts): {last.details}",
            code=last.code)

    # ------------------------------------------------------------ sessions, locks, elections

    def session(self, ttl: float = 10.0, **kwargs) -> "Session":
        """Grants a lease of `ttl` seconds and keeps it alive in the background.
        See :class:`raftlock.Session`."""
        from .session import Session

        return Session(self, ttl, **kwargs)

    def lock(
        self,
        name: str,
        *,
        ttl: float = 10.0,
        session: Optional["Session"] = None,
        shared: bool = False,
        permits: int = 0,
        blocking: bool = True,
        timeout: Optional[float] = None,
    ) -> "Lock":
        """A lock handle; use it as a context manager::

            with client.lock("jobs/nightly", ttl=5.0) as lock:
                write(resource, fencing_token=lock.fencing_token)

        Without `session` the lock gets its own session (lease of `ttl`
        seconds), revoked when the lock is released. `blocking=False` tries
        once; `timeout` bounds the wait (None: wait until granted).
        """
        from .lock import Lock

        return Lock(self, name, ttl=ttl, session=session, shared=shared, permits=permits,
                    blocking=blocking, timeout=timeout)

    def election(self, name: str, *, session: Optional["Session"] = None, ttl: float = 10.0) -> "Election":
        """An election handle (campaign, proclaim, resign, leader, observe)."""
        from .election import Election

        return Election(self, name, session=session, ttl=ttl)

    # ------------------------------------------------------------ lease calls

    def grant(self, ttl: float, *, timeout: Optional[float] = None) -> api_pb2.LeaseGrantResponse:
        """Grants a bare lease (no keepalive). Prefer :meth:`session`."""
        request = api_pb2.LeaseGrantRequest(write=self.next_write_id(), ttl_ms=_ms(ttl))
        return self._call(lambda s: s.lease.Grant, request, timeout=timeout)

    def revoke(self, lease_id: int, *, timeout: Optional[float] = None) -> api_pb2.LeaseRevokeResponse:
        request = api_pb2.LeaseRevokeRequest(write=self.next_write_id(), lease_id=lease_id)
        return self._call(lambda s: s.lease.Revoke, request, timeout=timeout)

    def time_to_live(self, lease_id: int, *, timeout: Optional[float] = None) -> Optional[lock_pb2.LeaseInfo]:
        """The lease's view (TTL, time left, locks held, ...), or None if it is gone."""
        response = self._call(lambda s: s.lease.TimeToLive,
                              api_pb2.LeaseTimeToLiveRequest(lease_id=lease_id), timeout=timeout)
        return response.lease if response.found else None

    def leases(self, *, timeout: Optional[float] = None, page_size: int = 0) -> List[lock_pb2.LeaseInfo]:
        """Every live lease, by id, fetched in pages of `page_size` (0: the
        server's, 1000; at most 10000), all within `timeout`. Pages are read
        at different indexes, so a lease may end between pages; leases granted
        after the first page was read are left out."""
        request = api_pb2.LeaseListRequest(limit=page_size)
        # A lease id is the log index of its grant: a lease granted after the
        # first read has an id above that read's applied index.
        return self._gather(lambda s: s.lease.List, request, timeout, "leases",
                            lambda last: setattr(request, "after_id", last.lease_id),
                            keep=lambda lease, first: lease.lease_id <= first.header.applied_index)

    # ------------------------------------------------------------ lock calls

    def acquire(
        self,
        name: str,
        lease_id: int,
        *,
        shared: bool = False,
        permits: int = 0,
        wait: float = 0.0,
        timeout: Optional[float] = None,
        write_id: Optional[api_pb2.WriteId] = None,
    ) -> api_pb2.LockAcquireResponse:
        """One Acquire call (try once, or wait up to `wait` seconds server-side).
        Prefer :meth:`lock`. The gRPC deadline of each attempt is set beyond
        the wait, and the whole call's beyond that by ``timeout``."""
        wait_ms = _ms(wait) if wait > 0 else 0
        request = api_pb2.LockAcquireRequest(
            write=write_id or self.next_write_id(), name=name, lease_id=lease_id,
            mode=lock_pb2.LOCK_MODE_SHARED if shared else lock_pb2.LOCK_MODE_EXCLUSIVE,
            permits=permits, wait_timeout_ms=wait_ms)
        extra = self.timeout if timeout is None else float(timeout)
        try:
            return self._call(lambda s: s.lock.Acquire, request, timeout=wait + extra,
                              attempt_timeout=wait + self.attempt_timeout)
        finally:
            if write_id is not None:  # the id last sent (it may have been renewed)
                write_id.CopyFrom(request.write)

    def release(self, name: str, lease_id: int, token: int, *, timeout: Optional[float] = None,
                write_id: Optional[api_pb2.WriteId] = None) -> api_pb2.LockReleaseResponse:
        """Releases a hold. Pass the same `write_id` to retry a release whose
        outcome was unknown: it then answers its first result (the call
        updates `write_id` to the id it last sent, which may be a renewed one)."""
        request = api_pb2.LockReleaseRequest(write=write_id or self.next_write_id(), name=name,
                                             lease_id=lease_id, token=token)
        try:
            return self._call(lambda s: s.lock.Release, request, timeout=timeout)
        finally:
            if write_id is not None:  # the id last sent (it may have been renewed)
                write_id.CopyFrom(request.write)

    def describe(self, name: str, *, timeout: Optional[float] = None) -> Optional[lock_pb2.LockInfo]:
        """Holders and waiters of a lock, or None if nobody holds or waits."""
        response = self._call(lambda s: s.lock.Describe, api_pb2.LockDescribeRequest(name=name),
                              timeout=timeout)
        return response.lock if response.found else None

    def locks(self, prefix: str = "", *, timeout: Optional[float] = None,
              page_size: int = 0) -> List[lock_pb2.LockInfo]:
        """Every lock whose name starts with `prefix`, by name; paged as
        :meth:`leases`."""
        request = api_pb2.LockListRequest(prefix=prefix, limit=page_size)
        return self._gather(lambda s: s.lock.List, request, timeout, "locks",
                            lambda last: setattr(request, "after", last.name))

    def _gather(self, method: Callable[[_Stubs], Callable], request, timeout: Optional[float],
                field: str, continue_after: Callable,
                keep: Optional[Callable] = None) -> list:
        """The entries (`field`) of every page of a List `request`. After a
        page that says more follow, ``continue_after(last entry)`` moves the
        request's cursor. The list ends at the first entry for which
        ``keep(entry, first page)`` is false. All calls share one deadline,
        `timeout` from now."""
        total = self.timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + total
        entries: list = []
        first = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise errors.DeadlineExceeded(f"the list's {total:.3f}s deadline passed between pages",
                                              code=grpc.StatusCode.DEADLINE_EXCEEDED)
            page = self._call(method, request, timeout=left)
            if first is None:
                first = page
            got = getattr(page, field)
            for entry in got:
                if keep is not None and not keep(entry, first):
                    return entries
                entries.append(entry)
            if not page.more or not got:
                return entries
            continue_after(got[-1])

    def validate_token(self, name: str, token: int, *, timeout: Optional[float] = None) -> api_pb2.ValidateTokenResponse:
        """For a guarded resource: ``valid`` (token belongs to a current
        holder) and ``current_token``."""
        return self._call(lambda s: s.lock.ValidateToken,
                          api_pb2.ValidateTokenRequest(name=name, token=token), timeout=timeout)

    # ------------------------------------------------------------ cluster admin

    def status(self, address: Optional[str] = None, *, timeout: Optional[float] = None) -> cluster_pb2.StatusResponse:
        """Cluster.Status of one replica (`address`), or of the leader."""
        if address is not None:
            return self._call(lambda s: s.cluster.Status, cluster_pb2.StatusRequest(),
                              timeout=timeout, address=address)
        total = self.timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + total
        attempt = 0
        while True:
            status = self._call(lambda s: s.cluster.Status, cluster_pb2.StatusRequest(),
                                timeout=max(0.001, deadline - time.monotonic()))
            if status.role == cluster_pb2.ROLE_LEADER:
                return status
            if status.leader_id != 0 and status.leader_address:
                self._note_leader(status.leader_address)
            else:
                with self._mu:
                    self._leader = None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.Unavailable("no leader is known", code=grpc.StatusCode.UNAVAILABLE)
            time.sleep(self._backoff(attempt, remaining))
            attempt += 1

    def statuses(self, *, timeout: float = 1.0) -> dict:
        """Cluster.Status of every endpoint: {address: StatusResponse or None}."""
        out = {}
        for address in self._endpoints:
            try:
                out[address] = self._call(lambda s: s.cluster.Status, cluster_pb2.StatusRequest(),
                                          timeout=timeout, address=address)
            except errors.RaftlockError:
                out[address] = None
        return out

    def members(self, *, timeout: Optional[float] = None) -> cluster_pb2.MembersResponse:
        return self._call(lambda s: s.cluster.Members, cluster_pb2.MembersRequest(), timeout=timeout)

    def transfer_leadership(self, target_id: int, *, timeout: Optional[float] = None) -> cluster_pb2.TransferLeadershipResponse:
        """Makes replica `target_id` the Raft leader. Sent to the leader
        (following redirects); returns once the target leads."""
        total = self.timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + total

        def left() -> float:
            return max(0.001, deadline - time.monotonic())

        self.status(timeout=left())  # find the leader first: a transfer is not retried blindly
        request = cluster_pb2.TransferLeadershipRequest(target_id=target_id)
        response = self._call(lambda s: s.cluster.TransferLeadership, request, timeout=left(),
                              attempt_timeout=left(), retry_deadline_exceeded=False)
        try:
            members = self.members(timeout=left())
            for member in members.members:
                if member.id == response.leader_id and member.client_address:
                    self._note_leader(member.client_address)
        except errors.RaftlockError:
            with self._mu:
                self._leader = None
        return response


def _ms(seconds: float) -> int:
    return max(0, int(round(float(seconds) * 1000)))


# Imported late for type names only (avoids import cycles).
from .session import Session  # noqa: E402
from .lock import Lock  # noqa: E402
from .election import Election  # noqa: E402
