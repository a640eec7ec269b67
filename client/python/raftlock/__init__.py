"""raftlock: distributed locks, leases and leader election over a Raft cluster.

    import raftlock

    client = raftlock.Client(["10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"])
    with client.lock("jobs/nightly", ttl=5.0) as lock:
        run_job(fencing_token=lock.fencing_token)

See client/python/README.md.
"""

from . import errors
from .client import Client
from .election import Election, ElectionEvent, Observer
from .errors import (
    ClientClosed,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    LeaseNotFound,
    LockBusy,
    LockTimeout,
    NotAcquired,
    NotFound,
    NotHeld,
    OutcomeUnknown,
    RaftlockError,
    ResourceExhausted,
    SessionLost,
    Unavailable,
    WrongToken,
)
from .lock import Lock
from .session import Session, SessionState

__version__ = "0.1.0"

__all__ = [
    "Client", "Session", "SessionState", "Lock", "Election", "ElectionEvent", "Observer",
    "errors", "RaftlockError", "InvalidArgument", "NotFound", "LeaseNotFound",
    "FailedPrecondition", "NotHeld", "WrongToken", "ResourceExhausted", "Unavailable",
    "DeadlineExceeded", "NotAcquired", "LockBusy", "LockTimeout", "SessionLost", "ClientClosed",
    "OutcomeUnknown",
]
