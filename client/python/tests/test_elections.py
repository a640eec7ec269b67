"""Elections: campaign, proclaim, resign, leader, and observe as an iterator."""

import threading
import time

import pytest

import raftlock


def test_campaign_proclaim_resign(client):
    with client.session(ttl=5.0) as a, client.session(ttl=5.0) as b:
        ea, eb = a.election("svc/primary"), b.election("svc/primary")
        assert ea.campaign("node-a")
        assert ea.is_leader and ea.token > 0
        info = ea.leader()
        assert info.has_leader and info.value == b"node-a" and info.leader_lease_id == a.lease_id
        assert eb.campaign("node-b", blocking=False) is False and eb.why_not == "busy"
        epoch = ea.proclaim("node-a v2")
        assert epoch > ea.leader().epoch - 1
        assert ea.leader().value == b"node-a v2"
        with pytest.raises(raftlock.NotHeld):
            eb.proclaim("not me")
        no_leader_epoch = ea.resign()
        assert no_leader_epoch > epoch
        assert not ea.is_leader
        assert not ea.leader().has_leader
        # Neither leading nor queued: a second resign has nothing to do (as in C++).
        assert ea.resign() == 0
        assert eb.campaign("node-b", blocking=False)
        assert eb.token > ea.token or eb.token > 0


def test_campaign_waits_and_times_out(client):
    with client.session(ttl=5.0) as a, client.session(ttl=5.0) as b:
        ea, eb = a.election("svc/wait"), b.election("svc/wait")
        assert ea.campaign("a")
        assert eb.campaign("b", timeout=0.5) is False
        assert eb.why_not == "timed_out"


def test_election_handles_sharing_a_session_take_turns_on_a_name(client):
    with client.session(ttl=5.0) as session:
        first, second = session.election("turns/svc"), session.election("turns/svc")
        assert first.campaign("first")
        first_token = first.token
        # Rule: a second handle of the same session is not elected alongside the first.
        assert second.campaign("second", blocking=False) is False and second.why_not == "busy"
        start = time.monotonic()
        assert second.campaign("second", timeout=0.6) is False
        assert second.why_not == "timed_out" and time.monotonic() - start < 0.9
        assert not second.is_leader
        # Rule: it is elected once the first resigns, as a new leadership.
        won = []
        waiter = threading.Thread(target=lambda: won.append(second.campaign("second", timeout=10.0)))
        waiter.start()
        time.sleep(0.3)
        assert won == []
        first.resign()
        waiter.join(5.0)
        assert won == [True] and second.token > first_token
        assert second.is_leader and second.leader().value == b"second"


def test_observe_iterates_epochs_including_no_leader(client):
    with client.session(ttl=5.0) as a, client.session(ttl=5.0) as b:
        ea, eb = a.election("svc/observed"), b.election("svc/observed")
        with ea.observe() as observer:
            first = observer.next(timeout=5.0)
            assert first.kind == "current" and not first.has_leader
            assert ea.campaign("a")
            ev = observer.next(timeout=5.0)
            assert (ev.kind, ev.value, ev.leader_lease_id) == ("elected", b"a", a.lease_id)
            ea.proclaim("a2")
            ev2 = observer.next(timeout=5.0)
            assert (ev2.kind, ev2.value) == ("proclaimed", b"a2") and ev2.epoch > ev.epoch
            # b queues behind a; a resigns: "no leader" then b elected, in one entry.


            done = {}
            waiter = threading.Thread(target=lambda: done.setdefault("ok", eb.campaign("b", timeout=10.0)))
            waiter.start()
            deadline = time.monotonic() + 5.0
            while not list(ea.leader().candidates):
                assert time.monotonic() < deadline, "b never queued"
                time.sleep(0.02)
            ea.resign()
            gone = observer.next(timeout=5.0)
            assert gone.kind == "no_leader" and not gone.has_leader and gone.reason == "released"
            new = observer.next(timeout=5.0)
            assert new.kind == "elected" and new.leader_lease_id == b.lease_id and new.value == b"b"
            assert gone.epoch > ev2.epoch and new.epoch == gone.epoch + 1
            waiter.join(timeout=10.0)
            assert done["ok"] and eb.token == new.token
            # Lease revoked: the leadership ends with a "no leader" event.
            b.close()
            ended = observer.next(timeout=5.0)
            assert ended.kind == "no_leader" and ended.reason == "lease_revoked"
            last = ended.epoch
        # Resume after an epoch: only later events.
        with ea.observe(after_epoch=ev.epoch) as resumed:
            epochs = [resumed.next(timeout=5.0).epoch for _ in range(4)]
            assert epochs == sorted(epochs) and epochs[0] > ev.epoch and epochs[-1] == last
        with pytest.raises(StopIteration):
            next(resumed)


def test_observe_delivers_the_current_state_once_across_streams(client):
    # Rule: each new stream (every stream_timeout) starts where the last one
    # ended; the current state of a never-used election (epoch 0, no leader)
    # is delivered once, not again with every stream.
    with client.election("svc/never-used").observe(stream_timeout=1.0) as observer:
        first = observer.next(timeout=5.0)
        assert first.kind == "current" and not first.has_leader and first.epoch == 0
        with pytest.raises(TimeoutError):
            observer.next(timeout=2.5)  # past two stream lifetimes


def test_observe_reports_a_forgotten_election_as_skipped_once(forgetful_cluster):
    # Rule: resuming after an epoch of a forgotten election is reported as
    # skipped with the state "no leader" -- once, not again with every stream.
    with raftlock.Client(forgetful_cluster.endpoints, timeout=5.0) as client, \
            client.session(ttl=10.0) as session:
        forgotten = session.election("svc/forgotten")
        assert forgotten.campaign("a")
        last_epoch = forgotten.resign()
        for name in ("svc/idle-1", "svc/idle-2"):  # pushes svc/forgotten out
            other = session.election(name)
            assert other.campaign("b")
            other.resign()
        with forgotten.observe(after_epoch=last_epoch, stream_timeout=1.0) as observer:
            first = observer.next(timeout=5.0)
            assert first.kind == "skipped" and not first.has_leader
            with pytest.raises(TimeoutError):
                observer.next(timeout=2.5)  # past two stream lifetimes
            assert session.election("svc/forgotten").campaign("c")
            again = observer.next(timeout=5.0)
            assert again.kind == "elected" and again.value == b"c"
