"""Cluster administration, leader discovery and redirect, retries across a
leader failure, and exactly-once retries."""

import threading
import time

import grpc
import pytest

import raftlock
from raftlock._gen import cluster_pb2


def test_cluster_status_members_and_transfer_leadership(cluster):
    with raftlock.Client(cluster.endpoints) as c:
        status = c.status()
        assert status.role == cluster_pb2.ROLE_LEADER
        old = status.node_id
        assert sorted(m.id for m in c.members().members) == [1, 2, 3]
        statuses = c.statuses()
        assert all(s is not None for s in statuses.values())
        assert sum(s.role == cluster_pb2.ROLE_LEADER for s in statuses.values()) == 1
        target = next(n for n in (1, 2, 3) if n != old)
        response = c.transfer_leadership(target, timeout=5.0)
        assert response.leader_id == target
        assert c.leader_address == cluster.address(target)
        assert cluster.leader() == target
        with c.lock("after/transfer", ttl=2.0) as lock:
            assert lock.fencing_token > 0


def test_redirect_from_a_follower_first_endpoint_list(shared_cluster):
    lead = shared_cluster.leader()
    follower = next(n for n in (1, 2, 3) if n != lead)
    # Only a follower is named: the client must learn the leader from its hint.
    with raftlock.Client([shared_cluster.address(follower)]) as c:
        with c.lock("redirect/only-follower", ttl=2.0) as lock:
            assert lock.fencing_token > 0
        assert c.leader_address == shared_cluster.address(lead)
    order = [shared_cluster.address(n) for n in (1, 2, 3) if n != lead] + [shared_cluster.address(lead)]
    with raftlock.Client(order) as c:
        assert c.describe("redirect/nothing") is None
        assert c.leader_address == shared_cluster.address(lead)


def test_leader_kill_then_retry_succeeds(cluster):
    with raftlock.Client(cluster.endpoints, timeout=10.0) as c:
        session = c.session(ttl=5.0)
        with session.lock("failover/a") as before:
            pass
        old = cluster.leader()
        cluster.kill(old)
        start = time.monotonic()
        with session.lock("failover/a", timeout=10.0) as after:
            elapsed = time.monotonic() - start
            assert after.fencing_token > before.fencing_token
        assert elapsed < 8.0
        new = cluster.leader(exclude=(old,))
        assert new != old and c.leader_address == cluster.address(new)
        # The session kept its lease across the failover.
        assert session.alive and session.time_to_live() is not None
        session.close()


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return ()


class LoseFirstAnswer(grpc.UnaryUnaryClientInterceptor):
    """Lets the first call of each named method reach the server, then throws
    its answer away and reports UNAVAILABLE, as a lost response would."""

    def __init__(self, methods):
        self.methods = set(methods)
        self.seen = {}  # method -> list of (request, response)

    def intercept_unary_unary(self, continuation, details, request):
        method = details.method.rsplit("/", 1)[-1]
        outcome = continuation(details, request)
        if method in self.methods:
            calls = self.seen.setdefault(method, [])
            response = outcome.result()
            calls.append((request, response))
            if len(calls) == 1:
                raise _FakeRpcError(grpc.StatusCode.UNAVAILABLE, "answer lost (test)")
        return outcome


def test_exactly_once_retries_reuse_the_write_id(shared_cluster):
    lost = LoseFirstAnswer({"Grant", "Acquire", "Release"})
    with raftlock.Client(shared_cluster.endpoints, interceptors=[lost]) as c:
        before = len(c.leases())
        session = c.session(ttl=5.0)
        # Grant applied once although it was sent twice.
        grants = lost.seen["Grant"]
        assert len(grants) == 2 and grants[0][0].write == grants[1][0].write
        assert grants[1][1].header.duplicate and grants[1][1].lease_id == grants[0][1].lease_id
        assert len(c.leases()) == before + 1
        lock = session.lock("once/a")
        assert lock.acquire()
        acquires = lost.seen["Acquire"]
        assert len(acquires) == 2 and acquires[0][0].write == acquires[1][0].write
        assert acquires[1][1].header.duplicate
        assert acquires[0][1].token == acquires[1][1].token == lock.fencing_token
        assert [h.token for h in c.describe("once/a").holders] == [lock.fencing_token]
        lock.release()  # the retried release answers OK (its first answer)
        releases = lost.seen["Release"]
        assert len(releases) == 2 and releases[1][1].header.duplicate
        assert c.describe("once/a") is None
        session.close()


def test_bad_client_options_are_refused_naming_the_limit():
    with pytest.raises(ValueError, match="ping_interval.*from 1.0"):
        raftlock.Client("127.0.0.1:1", ping_interval=0.5)
    with pytest.raises(ValueError, match="ping_timeout"):
        raftlock.Client("127.0.0.1:1", ping_timeout=0)
    with pytest.raises(ValueError, match="endpoint"):
        raftlock.Client([])
    for bad in ("no-port", "127.0.0.1:abc", "127.0.0.1:0", "127.0.0.1:65536", ":9001"):
        with pytest.raises(ValueError, match="endpoints: '.*'"):
            raftlock.Client(bad)
    raftlock.Client("127.0.0.1:1", ping_interval=0).close()  # pings off
