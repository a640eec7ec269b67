"""Sessions: background keepalive, and jeopardy then lost reported from the
client's own clock before the server could expire the lease."""

import threading
import time

import pytest

import raftlock
from raftlock import SessionState


def test_session_keeps_its_lease_alive(client):
    with client.session(ttl=1.5) as session:
        time.sleep(3.5)  # more than twice the TTL
        assert session.state == SessionState.ALIVE
        info = session.time_to_live()
        assert info is not None and info.ttl_remaining_ms > 0
        assert session.remaining() > 0
    assert session.state == SessionState.CLOSED
    assert client.time_to_live(session.lease_id) is None  # revoked on close


def test_lock_outlives_ttl_while_session_lives(client):
    with client.lock("jobs/long", ttl=1.0) as lock:
        time.sleep(2.5)
        assert lock.held and lock.valid()


def test_jeopardy_then_lost_when_the_cluster_is_paused(cluster):
    c = raftlock.Client(cluster.endpoints, timeout=5.0, attempt_timeout=1.0)
    transitions = []
    mu = threading.Lock()

    def record(session, old, new):
        with mu:
            transitions.append((new, time.monotonic()))

    try:
        session = c.session(ttl=2.0, on_state_change=record)
        lock = session.lock("jobs/paused")
        assert lock.acquire()
        time.sleep(0.8)  # a few keepalives are acknowledged
        assert session.state == SessionState.ALIVE
        paused_at = time.monotonic()
        # The last acknowledged keepalive was sent before the pause: the server
        # cannot expire the lease before that send time plus the TTL.
        ack_bound = session._acked_sent + session.ttl
        cluster.pause_all()
        try:
            assert session.wait_for(SessionState.JEOPARDY, timeout=3.0)
            assert session.wait_lost(timeout=3.0)
            lost_at = time.monotonic()
        finally:
            cluster.resume_all()
        states = [state for state, _ in transitions]
        assert states[:2] == [SessionState.JEOPARDY, SessionState.LOST], states
        jeopardy_at, reported_lost_at = transitions[0][1], transitions[1][1]
        assert jeopardy_at < reported_lost_at <= lost_at
        # Lost is reported before the earliest possible server-side expiry. The
        # callback's own time is checked: this thread may wake up later.
        assert reported_lost_at < ack_bound, (reported_lost_at, ack_bound)
        assert lost_at - paused_at < 2.0
        assert not lock.held
        with pytest.raises(raftlock.SessionLost):
            session.check()
        with pytest.raises(raftlock.SessionLost):
            lock.release()
        # Lost is final even though the cluster is back.
        cluster.leader(timeout=10.0)
        time.sleep(0.5)
        assert session.state == SessionState.LOST
        session.close()
    finally:
        c.close()


def test_listeners_run_on_the_sessions_thread_even_while_callers_poll_the_state(cluster):
    # Rule (Session docstring): listeners are called from the session's own
    # thread, never from a caller that reads `state` or calls check() as the
    # lease runs out (a listener that stops guarded work must not run inside,
    # say, an acquire on another thread).
    c = raftlock.Client(cluster.endpoints, timeout=5.0, attempt_timeout=1.0)
    threads = []

    def record(session, old, new):
        threads.append(threading.current_thread().name)

    try:
        session = c.session(ttl=1.0, on_state_change=record)
        cluster.pause_all()
        try:
            deadline = time.monotonic() + 3.0
            seen_lost = False
            while time.monotonic() < deadline and not seen_lost:
                seen_lost = session.state == SessionState.LOST  # polls as fast as it can
            assert seen_lost
            assert session.wait_for(SessionState.LOST, timeout=1.0)
            time.sleep(0.2)  # the session's thread has reported it
        finally:
            cluster.resume_all()
        assert len(threads) >= 2, threads  # jeopardy, then lost
        assert all(name.startswith("raftlock-") for name in threads), threads
        with pytest.raises(raftlock.SessionLost):
            session.check()
        session.close()
    finally:
        c.close()


def test_session_reports_lost_when_the_server_revokes_it(client):
    session = client.session(ttl=5.0)
    try:
        client.revoke(session.lease_id)
        assert session.wait_lost(timeout=5.0)
        assert "server" in session.lost_reason
    finally:
        session.close()


def test_a_grant_after_the_session_was_lost_is_given_back(client):
    # Rule: once a session reports lost, nothing is held through it. Here the
    # local "lost" comes 2 s after the last acknowledged keepalive (a large
    # lost_margin, no keepalive meanwhile) while the lease lives 6 s at the
    # server; a grant that arrives in between is given back and raises
    # SessionLost, so the lock is free although the lease still lives.
    with client.session(ttl=5.0) as holder_session, \
            client.session(ttl=6.0, keepalive_interval=5.0, lost_margin=4.0) as session:
        holder = holder_session.lock("py/lost-grant")
        assert holder.acquire()
        outcome = {}

        def wait_for_it():
            try:
                outcome["granted"] = session.lock("py/lost-grant", timeout=20.0).acquire()
            except raftlock.RaftlockError as error:
                outcome["error"] = error

        waiter = threading.Thread(target=wait_for_it, daemon=True)
        waiter.start()
        deadline = time.monotonic() + 5.0
        while True:
            info = client.describe("py/lost-grant")
            if info is not None and len(info.waiters) == 1:
                break
            assert time.monotonic() < deadline, "the waiter never queued"
            time.sleep(0.02)
        assert session.wait_lost(timeout=5.0)
        holder.release()
        waiter.join(timeout=10.0)
        assert not waiter.is_alive()
        error = outcome.get("error")
        assert isinstance(error, raftlock.SessionLost), outcome
        assert "granted as its session was lost" in str(error)
        assert client.time_to_live(session.lease_id) is not None  # the lease lives on
        assert client.describe("py/lost-grant") is None  # ... but holds nothing
