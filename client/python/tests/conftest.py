"""A real local raftlock cluster for the SDK tests.

The raftlockd binary comes from $RAFTLOCKD (ctest sets it). Every node runs
with a temporary data directory on random free loopback ports, dies with the
test process (PR_SET_PDEATHSIG), and is killed in teardown even when the test
fails; paused nodes are resumed first.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import grpc
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the package under test, from the source tree

from raftlock._gen import cluster_pb2, cluster_pb2_grpc  # noqa: E402

REPO = HERE.parent.parent.parent


def _raftlockd() -> str:
    path = os.environ.get("RAFTLOCKD")
    if path:
        if not os.access(path, os.X_OK):
            pytest.fail(f"RAFTLOCKD={path} is not an executable")
        return path
    for candidate in sorted(REPO.glob("build*/server/raftlockd")):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.skip("set RAFTLOCKD to the raftlockd binary (ctest does)")


def _free_ports(n: int) -> List[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# Each node dies with the test process (PR_SET_PDEATHSIG) through util-linux's
# setpriv, never through a preexec_fn: running Python (ctypes, dlopen) between
# fork and exec in a process that has gRPC threads can deadlock the child, and
# Popen then waits for it forever (seen: a 600 s hang starting a cluster).
_SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"


class LocalCluster:
    """`size` raftlockd processes on 127.0.0.1."""

    def __init__(self, binary: str, size: int = 3, extra_flags: Optional[List[str]] = None):
        self.binary = binary
        self.size = size
        self.extra_flags = list(extra_flags or [])
        self.root = Path(tempfile.mkdtemp(prefix="raftlock-py-"))
        ports = _free_ports(2 * size)
        self.peer_ports = {i + 1: ports[i] for i in range(size)}
        self.client_ports = {i + 1: ports[size + i] for i in range(size)}
        self.procs: Dict[int, subprocess.Popen] = {}
        self.paused: set = set()

    # -------------------------------------------------------------- processes

    def address(self, node: int) -> str:
        return f"127.0.0.1:{self.client_ports[node]}"

    @property
    def endpoints(self) -> List[str]:
        return [self.address(i) for i in range(1, self.size + 1)]

    def node_of(self, address: str) -> int:
        for i in range(1, self.size + 1):
            if self.address(i) == address:
                return i
        raise KeyError(address)

    def members_flag(self) -> str:
        return ",".join(f"{i}=127.0.0.1:{self.peer_ports[i]}/{self.address(i)}"
                        for i in range(1, self.size + 1))

    def start(self, node: int) -> None:
        assert node not in self.procs, f"node {node} already running"
        data = self.root / f"n{node}"
        log = open(self.root / f"n{node}.log", "ab")
        args = [_SETPRIV, "--pdeathsig", "KILL", "--",
                self.binary, "--cluster-id", "pytest", "--node-id", str(node), "--data-dir", str(data),
                "--members", self.members_flag()] + self.extra_flags
        self.procs[node] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        log.close()

    def start_all(self) -> None:
        for node in range(1, self.size + 1):
            self.start(node)

    def kill(self, node: int) -> None:
        proc = self.procs.pop(node, None)
        self.paused.discard(node)
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)

    def pause(self, node: int) -> None:
        if node in self.procs:
            self.procs[node].send_signal(signal.SIGSTOP)
            self.paused.add(node)

    def resume(self, node: int) -> None:
        if node in self.procs:
            self.procs[node].send_signal(signal.SIGCONT)
        self.paused.discard(node)

    def pause_all(self) -> None:
        for node in list(self.procs):
            self.pause(node)

    def resume_all(self) -> None:
        for node in list(self.procs):
            self.resume(node)

    def stop(self) -> None:
        """Kills every node (resuming paused ones) and removes the data."""
        for node in list(self.procs):
            try:
                self.procs[node].send_signal(signal.SIGCONT)
            except Exception:
                pass
            self.kill(node)
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self, lines: int = 30) -> str:
        out = []
        for node in range(1, self.size + 1):
            path = self.root / f"n{node}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- node {node} ({path})\n" + "\n".join(tail))
        return "\n".join(out)

    # -------------------------------------------------------------- status

    def status(self, node: int, timeout: float = 0.5) -> Optional[cluster_pb2.StatusResponse]:
        if node not in self.procs or node in self.paused:
            return None
        # A fresh channel per probe: a channel that tried to connect while the
        # node was still starting can stay in connect backoff for seconds.
        channel = grpc.insecure_channel(self.address(node))
        try:
            return cluster_pb2_grpc.ClusterStub(channel).Status(cluster_pb2.StatusRequest(), timeout=timeout)
        except grpc.RpcError:
            return None
        finally:
            channel.close()

    def leader(self, timeout: float = 10.0, exclude=()) -> int:
        """Waits until one running node is leader and every other running node
        follows it; returns its id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            statuses = {n: self.status(n) for n in self.procs if n not in self.paused and n not in exclude}
            leaders = [n for n, s in statuses.items() if s is not None and s.role == cluster_pb2.ROLE_LEADER]
            if len(leaders) == 1:
                lead = leaders[0]
                if all(s is not None and s.leader_id == lead for s in statuses.values()):
                    return lead
            time.sleep(0.05)
        for node in range(1, self.size + 1):
            if node in self.procs:
                exit_code = self.procs[node].poll()
                if exit_code is not None:
                    raise AssertionError(f"node {node} exited with {exit_code}\n{self.logs()}")
        raise AssertionError(f"no leader within {timeout}s\n{self.logs()}")

    def followers(self) -> List[int]:
        lead = self.leader()
        return [n for n in sorted(self.procs) if n != lead]


def _make_cluster(extra_flags: Optional[List[str]] = None) -> LocalCluster:
    cluster = LocalCluster(_raftlockd(), extra_flags=extra_flags)
    try:
        cluster.start_all()
        cluster.leader(timeout=15.0)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def shared_cluster():
    """One cluster shared by the tests that do not disturb it."""
    cluster = _make_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster():
    """A fresh cluster for a test that kills or pauses nodes."""
    cluster = _make_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def forgetful_cluster(tmp_path):
    """A fresh cluster that keeps only one idle election for Observe."""
    yield from _cluster_with_limits(tmp_path, {"max_idle_elections": 1})


@pytest.fixture
def short_waits_cluster(tmp_path):
    """A fresh cluster whose server-side waits last at most 1 s."""
    yield from _cluster_with_limits(tmp_path, {"max_wait_timeout_ms": 1000})


@pytest.fixture
def long_names_cluster(tmp_path):
    """A fresh cluster that takes lock names of up to 64 KiB."""
    yield from _cluster_with_limits(tmp_path, {"max_name_bytes": 65536})


def _cluster_with_limits(tmp_path, limits: dict):
    config = tmp_path / "limits.yaml"
    config.write_text("limits:\n" + "".join(f"  {key}: {value}\n" for key, value in limits.items()))
    cluster = _make_cluster(["--config", str(config)])
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def client(shared_cluster):
    import raftlock

    shared_cluster.leader()
    c = raftlock.Client(shared_cluster.endpoints, timeout=5.0)
    try:
        yield c
    finally:
        c.close()
