"""Errors raised by the raftlock SDK.

Every error is a :class:`RaftlockError`. Errors the state machine decided carry
the gRPC code and the exact rule as ``reason`` (the ``ErrorReason`` enum name
without its prefix, e.g. ``"NOT_HELD"``; see docs/semantics.md section 6).
"""

from __future__ import annotations

from typing import Optional

import grpc


class RaftlockError(Exception):
    """Base class of every SDK error.

    ``code`` is the :class:`grpc.StatusCode` of the failed call (``None`` for
    errors raised by the SDK itself), ``reason`` the state machine's rule name
    (``"NOT_HELD"``, ``"LEASE_NOT_FOUND"``, ...) or ``""``.
    """

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None, reason: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        parts = []
        if self.code is not None:
            parts.append(self.code.name)
        if self.reason:
            parts.append(self.reason)
        prefix = "/".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class InvalidArgument(RaftlockError):
    """Bad input (a name, TTL, wait timeout, permits or value out of range)."""


class NotFound(RaftlockError):
    """The lease does not exist (never granted, revoked or expired)."""


class LeaseNotFound(NotFound):
    """``reason == "LEASE_NOT_FOUND"``: the lease is gone; start a new session."""


class FailedPrecondition(RaftlockError):
    """The request does not fit the current state (NOT_HELD, WRONG_TOKEN, ...)."""


class NotHeld(FailedPrecondition):
    """Release/proclaim/resign of something the lease does not hold."""


class WrongToken(FailedPrecondition):
    """The lease holds it, but under another (newer) fencing token."""


class ResourceExhausted(RaftlockError):
    """A configured limit of the cluster is reached."""


class Unavailable(RaftlockError):
    """No leader answered before the call's deadline (after retries)."""


class DeadlineExceeded(RaftlockError):
    """The call's deadline passed before it completed."""


class NotAcquired(RaftlockError):
    """A lock or leadership was not obtained. ``why`` is ``"busy"``,
    ``"timed_out"``, ``"cancelled"`` or ``"lease_ended"``."""

    def __init__(self, message: str, why: str):
        super().__init__(message)
        self.why = why


class LockBusy(NotAcquired):
    """Try-once acquire/campaign and somebody else holds it."""


class LockTimeout(NotAcquired):
    """Waited for the lock/leadership until the timeout without getting it."""


class OutcomeUnknown(RaftlockError):
    """A retried write the server no longer remembers (``SEQUENCE_TOO_OLD``
    after an earlier attempt): it may or may not have been applied."""


def outcome_unknown(error: BaseException) -> bool:
    """True when a failed write may or may not have been applied: the cluster
    did not answer it with a decision of the state machine."""
    if isinstance(error, OutcomeUnknown):
        return True
    if not isinstance(error, RaftlockError) or error.reason:
        return False
    return error.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                          grpc.StatusCode.CANCELLED, grpc.StatusCode.ABORTED,
                          grpc.StatusCode.UNKNOWN)


class SessionLost(RaftlockError):
    """The session's lease is (or may already be) gone: everything held through
    it must be considered lost."""


class ClientClosed(RaftlockError):
    """The client was closed."""


_BY_REASON = {
    "LEASE_NOT_FOUND": LeaseNotFound,
    "NOT_HELD": NotHeld,
    "WRONG_TOKEN": WrongToken,
}

_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def from_status(code: grpc.StatusCode, message: str, reason: str = "") -> RaftlockError:
    """The most specific error class for a gRPC code and a raftlock reason."""
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code, RaftlockError)
    return cls(message, code=code, reason=reason)
