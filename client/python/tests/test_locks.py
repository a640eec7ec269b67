"""Locks against a real 3-node cluster: fencing tokens, try-lock, waiting,
shared locks, owner-checked release."""

import threading
import time

import grpc
import pytest

import raftlock
from raftlock._gen import api_pb2


def test_lock_context_manager_carries_fencing_token(client):
    with client.lock("jobs/nightly", ttl=5.0) as lock:
        assert lock.fencing_token > 0
        assert lock.held and lock.valid()
        info = client.describe("jobs/nightly")
        assert [h.token for h in info.holders] == [lock.fencing_token]
        assert info.holders[0].lease_id == lock.session.lease_id
        lease_id = lock.session.lease_id
    # Released, and the lock's own session revoked.
    assert client.describe("jobs/nightly") is None
    assert client.time_to_live(lease_id) is None
    assert not lock.held


def test_tokens_strictly_increase_across_holders(client):
    tokens = []
    for _ in range(3):
        with client.lock("jobs/tokens", ttl=2.0) as lock:
            tokens.append(lock.fencing_token)
    assert tokens == sorted(tokens) and len(set(tokens)) == 3
    check = client.validate_token("jobs/tokens", tokens[0])
    assert not check.valid and check.current_token == 0


def test_try_lock_is_busy_while_held(client):
    with client.session(ttl=5.0) as a, client.session(ttl=5.0) as b:
        with a.lock("jobs/busy") as held:
            other = b.lock("jobs/busy", blocking=False)
            assert other.acquire() is False
            assert other.why_not == "busy"
            with pytest.raises(raftlock.LockBusy):
                with b.lock("jobs/busy", blocking=False):
                    pass
            assert client.validate_token("jobs/busy", held.fencing_token).valid
        # Free again: the try-lock now succeeds with a larger token.
        with b.lock("jobs/busy", blocking=False) as mine:
            assert mine.fencing_token > held.fencing_token


def test_waiting_lock_times_out(client):
    with client.session(ttl=5.0) as a, client.session(ttl=5.0) as b:
        with a.lock("jobs/wait"):
            start = time.monotonic()
            with pytest.raises(raftlock.LockTimeout) as caught:
                with b.lock("jobs/wait", timeout=0.6):
                    pass
            elapsed = time.monotonic() - start
            assert caught.value.why == "timed_out"
            # By its timeout: a tenth is kept back to withdraw an unanswered
            # wait, and polling stops 0.1 s before that.
            assert 0.4 <= elapsed < 0.9, elapsed
            # The wait is gone from the queue.
            assert list(client.describe("jobs/wait").waiters) == []


def test_waiter_is_granted_when_holder_releases(client):
    with client.session(ttl=5.0) as a, client.session(ttl=5.0) as b:
        first = a.lock("jobs/handoff")
        assert first.acquire()
        result = {}

        def wait_for_it():
            lock = b.lock("jobs/handoff", timeout=10.0)
            result["ok"] = lock.acquire()
            result["token"] = lock.fencing_token
            result["at"] = time.monotonic()
            lock.release()

        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            info = client.describe("jobs/handoff")
            if info is not None and len(info.waiters) == 1:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the waiter never queued")
        released_at = time.monotonic()
        first.release()
        waiter.join(timeout=10.0)
        assert not waiter.is_alive()
        assert result["ok"] and result["token"] > first.fencing_token
        assert result["at"] - released_at < 2.0


def test_a_wait_without_timeout_keeps_its_place_for_an_hour_at_a_time(client):
    # Rule (FIFO): a server-side wait that ends re-queues at the end of the
    # queue, so a blocking acquire without a timeout asks the server to wait
    # an hour per call, as the C++ SDK does (it used to ask for 30 s).
    with client.session(ttl=5.0) as a, client.session(ttl=5.0) as b:
        first = a.lock("py/untimed")
        assert first.acquire()
        waiter, result = _park_waiter(client, b, "py/untimed", None)  # no timeout
        info = client.describe("py/untimed")
        # Cluster times: the wait ends an hour after it started, which was
        # after the holder's grant.
        waits_for_ms = info.waiters[0].wait_deadline_ms - info.holders[0].granted_ms
        first.release()
        waiter.join(timeout=10.0)
        assert not waiter.is_alive()
        assert result.get("ok"), result
        assert waits_for_ms >= 3500 * 1000, waits_for_ms


def test_lock_handles_sharing_a_session_take_turns_on_a_name(client):
    with client.session(ttl=5.0) as session:
        first = session.lock("turns/py")
        second = session.lock("turns/py", blocking=False)
        assert first.acquire()
        # Rule: a second handle of the same session does not get the first's hold.
        assert second.acquire() is False and second.why_not == "busy"
        start = time.monotonic()
        assert second.acquire(blocking=True, timeout=0.6) is False
        assert second.why_not == "timed_out" and time.monotonic() - start < 0.9
        # Rule: a waiting handle gets the name when the holder releases, as a
        # new hold with a larger token, which the holder's release left alone.
        got = []
        waiter = threading.Thread(
            target=lambda: got.append(second.acquire(blocking=True, timeout=10.0)))
        waiter.start()
        time.sleep(0.3)
        assert got == []
        first.release()
        waiter.join(5.0)
        assert got == [True] and second.fencing_token > first.fencing_token
        assert [h.token for h in client.describe("turns/py").holders] == [second.fencing_token]
        second.release()
        # Rule: shared holds and semaphore permits take turns too.
        with session.lock("turns/shared", shared=True):
            assert session.lock("turns/shared", shared=True, blocking=False).acquire() is False
        with session.lock("turns/pool", shared=True, permits=2):
            assert session.lock("turns/pool", shared=True, permits=2,
                                blocking=False).acquire() is False
        # Rule: a waiting handle stops waiting when the session ends.
        holder = session.lock("turns/end")
        assert holder.acquire()
        outcome = []

        def wait_for_it():
            try:
                session.lock("turns/end").acquire(timeout=30.0)
                outcome.append("returned")
            except raftlock.SessionLost:
                outcome.append("lost")

        stranded = threading.Thread(target=wait_for_it)
        stranded.start()
        time.sleep(0.2)
        session.close()
        stranded.join(2.0)
        assert outcome == ["lost"]


def test_shared_locks_admit_many_holders_but_no_exclusive(client):
    with client.session(ttl=5.0) as a, client.session(ttl=5.0) as b, client.session(ttl=5.0) as c:
        with a.lock("db/schema", shared=True) as r1, b.lock("db/schema", shared=True) as r2:
            info = client.describe("db/schema")
            assert sorted(h.lease_id for h in info.holders) == sorted([a.lease_id, b.lease_id])
            assert r1.fencing_token > 0 and r2.fencing_token > 0
            with pytest.raises(raftlock.LockBusy):
                with c.lock("db/schema", blocking=False):
                    pass
        with c.lock("db/schema", blocking=False) as writer:
            assert writer.fencing_token > max(r1.fencing_token, r2.fencing_token)


def test_semaphore_permits(client):
    with client.session(ttl=5.0) as a, client.session(ttl=5.0) as b, client.session(ttl=5.0) as c:
        with a.lock("pool", shared=True, permits=2), b.lock("pool", shared=True, permits=2):
            assert c.lock("pool", shared=True, permits=2, blocking=False).acquire() is False
            with pytest.raises(raftlock.FailedPrecondition) as caught:
                c.lock("pool", shared=True, permits=3, blocking=False).acquire()
            assert caught.value.reason == "PERMITS_CONFLICT"


def test_release_is_owner_checked_and_errors_carry_reasons(client):
    with client.session(ttl=5.0) as a, client.session(ttl=5.0) as b:
        lock = a.lock("jobs/owner")
        assert lock.acquire()
        with pytest.raises(raftlock.WrongToken) as caught:
            client.release("jobs/owner", a.lease_id, lock.fencing_token + 1000)
        assert caught.value.reason == "WRONG_TOKEN"
        with pytest.raises(raftlock.NotHeld):  # another lease
            client.release("jobs/owner", b.lease_id, lock.fencing_token)
        with pytest.raises(raftlock.LeaseNotFound):  # an unknown lease
            client.release("jobs/owner", a.lease_id + 100000, lock.fencing_token)
        assert client.validate_token("jobs/owner", lock.fencing_token).valid
        lock.release()
        # A second release of a hold that is gone frees nothing.
        with pytest.raises(raftlock.NotHeld):
            client.release("jobs/owner", a.lease_id, lock.fencing_token)
    with pytest.raises(raftlock.InvalidArgument) as caught:
        client.session(ttl=0.2)
    assert caught.value.reason == "TTL_OUT_OF_RANGE"
    with pytest.raises(raftlock.InvalidArgument):
        client.acquire("", 1)


def test_list_and_lease_views(client):
    with client.session(ttl=5.0) as s:
        with s.lock("list/a"), s.lock("list/b"):
            names = [info.name for info in client.locks("list/")]
            assert names == ["list/a", "list/b"]
            # Pages of one: every page is fetched and gathered in order.
            assert [info.name for info in client.locks("list/", page_size=1)] == names
            paged = [lease.lease_id for lease in client.leases(page_size=1)]
            assert s.lease_id in paged and paged == sorted(paged)
            with pytest.raises(raftlock.InvalidArgument) as caught:
                client.locks(page_size=10001)
            assert "limit" in str(caught.value)
            info = s.time_to_live()
            assert info is not None and sorted(info.locks) == ["list/a", "list/b"]
            assert info.ttl_ms == 5000 and 0 < info.ttl_remaining_ms <= 5000
            assert s.lease_id in [lease.lease_id for lease in client.leases()]


def test_lease_list_leaves_out_leases_granted_after_its_first_page(client):
    before = [client.grant(10.0).lease_id for _ in range(3)]
    original = client._call
    granted = []

    def grant_after_first_list(method, request, **kwargs):
        response = original(method, request, **kwargs)
        if isinstance(request, api_pb2.LeaseListRequest) and not granted:
            grant = api_pb2.LeaseGrantRequest(write=client.next_write_id(), ttl_ms=10000)
            granted.append(original(lambda s: s.lease.Grant, grant).lease_id)
        return response

    client._call = grant_after_first_list
    try:
        listed = [lease.lease_id for lease in client.leases(page_size=1)]
    finally:
        del client._call
    assert granted and granted[0] not in listed
    assert set(before) <= set(listed)


def test_answer_over_grpcs_default_4_mib_is_received(long_names_cluster):
    # 80 locks with 60 KiB names: the lease's TimeToLive lists them all (4.7 MiB).
    with raftlock.Client(long_names_cluster.endpoints, timeout=10.0) as c:
        lease = c.grant(30.0)
        for i in range(80):
            assert c.acquire(f"big/{i}/" + "n" * 60 * 1024, lease.lease_id).acquired
        info = c.time_to_live(lease.lease_id)
        assert info is not None and len(info.locks) == 80
        assert info.ByteSize() > 4 << 20


def test_lock_and_campaign_wait_in_steps_a_short_max_wait_accepts(short_waits_cluster):
    # The SDK asks for waits of up to its whole timeout; this cluster allows
    # 1 s and answers WAIT_TIMEOUT_OUT_OF_RANGE above that.
    with raftlock.Client(short_waits_cluster.endpoints, timeout=5.0) as c, \
            c.session(ttl=10.0) as a, c.session(ttl=10.0) as b:
        holder = a.lock("short-waits/lock")
        assert holder.acquire()
        leader = a.election("short-waits/election")
        assert leader.campaign("a", timeout=5.0)
        results = {}

        def wait_for_both():
            lock = b.lock("short-waits/lock", timeout=10.0)
            results["locked"] = lock.acquire()
            results["elected"] = b.election("short-waits/election").campaign("b", timeout=10.0)

        waiter = threading.Thread(target=wait_for_both, daemon=True)
        waiter.start()
        time.sleep(2.5)  # more than two of the server's waits
        holder.release()
        time.sleep(2.5)
        leader.resign()
        waiter.join(timeout=15.0)
        assert not waiter.is_alive()
        assert results == {"locked": True, "elected": True}


def test_acquire_and_campaign_return_by_their_timeout_when_no_replica_answers(cluster):
    # Each attempt, and the clean-up of an unanswered wait, fits inside the
    # call's timeout (as in the C++ SDK), not timeout + the client's timeout.
    with raftlock.Client(cluster.endpoints, timeout=5.0) as c, c.session(ttl=30.0) as s:
        lock = s.lock("deadline/lock")
        election = s.election("deadline/election")
        cluster.pause_all()
        try:
            for call in (lambda: lock.acquire(timeout=1.0),
                         lambda: election.campaign("v", timeout=1.0)):
                start = time.monotonic()
                try:
                    result = call()
                except raftlock.RaftlockError:  # the cluster did not answer in time
                    result = None
                took = time.monotonic() - start
                assert took < 1.5, took
                assert not result
        finally:
            cluster.resume_all()


class _LostAnswer(grpc.RpcError):
    """What a call whose answer was lost looks like: UNAVAILABLE, no trailers."""

    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "answer lost (test interceptor)"

    def trailing_metadata(self):
        return ()


class _DropAnswers(grpc.UnaryUnaryClientInterceptor):
    """Sends every call, then loses the answer of those `drop(method, request)`
    picks: the server applied them, the caller cannot know."""

    def __init__(self, drop):
        self.drop = drop
        self.dropped = 0

    def intercept_unary_unary(self, continuation, details, request):
        outcome = continuation(details, request)
        if self.drop(details.method, request):
            try:
                outcome.result()
            except grpc.RpcError:
                pass
            self.dropped += 1
            raise _LostAnswer()
        return outcome


def test_an_acquire_with_unknown_outcome_is_withdrawn(shared_cluster):
    # Rule: when no answer to a waiting acquire ever comes back, the SDK asks
    # again with the same write id (try-once) and releases what it was granted,
    # so no hold is left that nobody knows about (docs/semantics.md §5).
    dropper = _DropAnswers(lambda method, request: method.endswith("/Acquire")
                           and request.wait_timeout_ms > 0)
    with raftlock.Client(shared_cluster.endpoints, timeout=1.0, attempt_timeout=0.5,
                         interceptors=[dropper]) as lossy, \
            raftlock.Client(shared_cluster.endpoints) as observer, \
            lossy.session(ttl=10.0) as session:
        lock = session.lock("py/unknown-outcome", timeout=1.0)
        with pytest.raises(raftlock.RaftlockError) as caught:
            lock.acquire()
        assert dropper.dropped >= 1
        assert observer.describe("py/unknown-outcome") is None
        assert not lock.held
        assert raftlock.errors.outcome_unknown(caught.value), caught.value


def test_a_release_with_unknown_outcome_can_be_retried(shared_cluster):
    # Rule: a release whose answer was lost keeps the handle held; calling
    # release() again re-sends the same write and gets its first answer (OK),
    # not NOT_HELD.
    drop = {"on": True}
    dropper = _DropAnswers(lambda method, request: drop["on"] and method.endswith("/Release"))
    with raftlock.Client(shared_cluster.endpoints, timeout=1.0, attempt_timeout=0.5,
                         interceptors=[dropper]) as lossy, lossy.session(ttl=10.0) as session:
        lock = session.lock("py/release-retry")
        assert lock.acquire()
        with pytest.raises(raftlock.Unavailable):
            lock.release()
        assert lock.held
        drop["on"] = False
        lock.release()  # the first answer: released
        assert not lock.held
        assert lossy.describe("py/release-retry") is None


def test_an_exception_in_the_with_block_is_not_replaced_by_a_failed_release(shared_cluster):
    drop = {"on": False}
    dropper = _DropAnswers(lambda method, request: drop["on"] and method.endswith("/Release"))
    with raftlock.Client(shared_cluster.endpoints, timeout=1.0, attempt_timeout=0.5,
                         interceptors=[dropper]) as lossy, lossy.session(ttl=10.0) as session:
        lock = session.lock("py/block-error")
        with pytest.raises(ValueError):
            with lock:
                drop["on"] = True  # the release on the way out loses its answer
                raise ValueError("the block's own error")
        assert dropper.dropped >= 1
        assert lock.held  # as far as the client knows
        drop["on"] = False
        lock.release()  # the retried release answers its first result
        assert lossy.describe("py/block-error") is None


def test_a_resign_with_unknown_outcome_can_be_retried(shared_cluster):
    # Rule: as for release: a resign whose answer was lost keeps the handle
    # leading, and resign() again re-sends the same write, so it answers the
    # epoch of the first resign, not "was not leading".
    drop = {"on": True}
    dropper = _DropAnswers(lambda method, request: drop["on"] and method.endswith("/Resign"))
    with raftlock.Client(shared_cluster.endpoints, timeout=1.0, attempt_timeout=0.5,
                         interceptors=[dropper]) as lossy, lossy.session(ttl=10.0) as session:
        election = session.election("py/resign-retry")
        assert election.campaign("me")
        with pytest.raises(raftlock.Unavailable):
            election.resign()
        assert election.token != 0
        drop["on"] = False
        epoch = election.resign()
        assert epoch > 0 and election.token == 0
        assert not lossy.election("py/resign-retry").leader().has_leader


def test_a_fresh_write_behind_16_newer_ones_is_sent_again(client):
    # Rule: the server keeps a client's last 16 results; a write whose first
    # attempt comes after 16 newer writes of its client (threads sharing a
    # Client) is refused unapplied and sent again with a new id. A retried
    # write refused so has an unknown outcome.
    with client.session(ttl=10.0) as session:
        late = client.next_write_id()
        retried = client.next_write_id()
        assert client.acquire("py/too-old/retried", session.lease_id, write_id=retried).acquired
        for i in range(17):
            assert client.acquire(f"py/too-old/{i}", session.lease_id).acquired
        response = client.acquire("py/too-old/late", session.lease_id, write_id=late)
        assert response.acquired and not response.header.duplicate
        with pytest.raises(raftlock.OutcomeUnknown):
            client.acquire("py/too-old/retried", session.lease_id, write_id=retried)
        # A renewed release reports the id it sent, so a retry re-sends that
        # one and gets the first answer.
        late_release = client.next_write_id()
        first_sequence = late_release.sequence
        for i in range(17):
            client.release(f"py/too-old/{i}", session.lease_id,
                           client.describe(f"py/too-old/{i}").holders[0].token)
        client.release("py/too-old/late", session.lease_id, response.token, write_id=late_release)
        assert late_release.sequence > first_sequence
        again = client.release("py/too-old/late", session.lease_id, response.token,
                               write_id=late_release)
        assert again.header.duplicate


def _park_waiter(client, session, name, timeout):
    """Starts a thread whose lock of `name` through `session` waits up to
    `timeout` (None: no timeout); returns (thread, result) once the wait is
    queued. `result` gets "ok" and "token", or "error"."""
    result = {}

    def wait_for_it():
        lock = session.lock(name, timeout=timeout)
        try:
            result["ok"] = lock.acquire()
            result["token"] = lock.fencing_token
        except raftlock.RaftlockError as error:
            result["error"] = error

    waiter = threading.Thread(target=wait_for_it, daemon=True)
    waiter.start()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        info = client.describe(name)
        if info is not None and len(info.waiters) == 1:
            return waiter, result
        time.sleep(0.02)
    pytest.fail("the waiter never queued")


def test_a_wait_parked_at_a_paused_leader_fails_over_by_pings(cluster):
    """A paused (or partitioned) leader keeps its connection open and never
    answers: the parked acquire must notice by HTTP/2 pings and re-send its
    write id to the next leader, not wait out its deadline there."""
    leader = cluster.leader()
    with raftlock.Client(cluster.endpoints, timeout=5.0) as client:
        with client.session(ttl=10.0) as a, client.session(ttl=10.0) as b:
            first = a.lock("paused/lock")
            assert first.acquire()
            waiter, result = _park_waiter(client, b, "paused/lock", 40.0)
            cluster.pause(leader)
            cluster.leader(timeout=10.0, exclude=(leader,))
            first.release()
            waiter.join(timeout=10.0)  # pings notice the pause within about 6 s
            assert not waiter.is_alive(), "the wait stayed parked at the paused leader"
            assert result.get("ok"), result
            assert result["token"] > first.fencing_token


def test_a_wait_whose_write_the_cluster_forgot_keeps_its_place(cluster):
    """Semantics 5: the cluster keeps a client's last 16 results. A parked
    acquire whose retry (after its leader died) finds its write forgotten
    goes on with a new write, which the server answers from the lease's place
    in the queue: it neither fails nor leaves a wait behind."""
    leader = cluster.leader()
    with raftlock.Client(cluster.endpoints, timeout=5.0) as client:
        with client.session(ttl=10.0) as a, client.session(ttl=10.0) as b:
            first = a.lock("forgotten/lock")
            assert first.acquire()
            waiter, result = _park_waiter(client, b, "forgotten/lock", 30.0)
            for i in range(17):  # newer writes of the same Client
                client.acquire(f"forgotten/other/{i}", a.lease_id)
            cluster.kill(leader)
            cluster.leader(timeout=10.0, exclude=(leader,))
            time.sleep(1.0)  # the retry reaches the next leader meanwhile
            assert waiter.is_alive(), result
            first.release()
            waiter.join(timeout=10.0)
            assert not waiter.is_alive(), "the wait was never answered"
            assert result.get("ok"), result
            assert result["token"] > first.fencing_token
            info = client.describe("forgotten/lock")
            assert [h.lease_id for h in info.holders] == [b.lease_id]
            assert len(info.waiters) == 0
