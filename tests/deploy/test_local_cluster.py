"""deploy/local/cluster.sh, the script behind `make run` (README: Set-up, run and test).

Each test runs the script with its own state directory and port bases, so it never
touches a developer's ./.local-cluster. Bases come from below Linux's ephemeral port
range (32768+), where the other tests' OS-assigned ports never land, and are checked
free first. Teardown runs `cluster.sh down` and then SIGKILLs any node still listed,
so no raftlockd outlives a failed test.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
SCRIPT = REPO / "deploy" / "local" / "cluster.sh"
BUILD = Path(os.environ.get("RAFTLOCK_BUILD", REPO / "build"))
CTL = BUILD / "client" / "raftlockctl"
STEP_SECONDS = 30  # bound on every single step; a step normally takes well under 2 s


def _ports_free(ports: List[int]) -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _free_bases(nodes: int) -> Dict[str, str]:
    for _ in range(200):
        peer_base = random.randrange(20000, 26000)
        client_base = random.randrange(26000, 32000)
        ports = [peer_base + i for i in range(1, nodes + 1)]
        ports += [client_base + i for i in range(1, nodes + 1)]
        if _ports_free(ports):
            return {"RAFTLOCK_PEER_BASE": str(peer_base), "RAFTLOCK_CLIENT_BASE": str(client_base)}
    pytest.fail("no free port bases below 32000")


class Script:
    """Runs cluster.sh with a private state directory and port bases."""

    def __init__(self, state_dir: Path, nodes: int = 3):
        if not (BUILD / "server" / "raftlockd").exists() or not CTL.exists():
            pytest.fail(f"build raftlockd and raftlockctl first (looked in {BUILD})")
        self.dir = state_dir
        self.env = dict(os.environ)
        self.env.update(_free_bases(nodes))
        self.env["RAFTLOCK_BUILD"] = str(BUILD)
        self.env["RAFTLOCK_LOCAL_DIR"] = str(state_dir)
        self.nodes = nodes
        client_base = int(self.env["RAFTLOCK_CLIENT_BASE"])
        self.endpoints = ",".join(f"127.0.0.1:{client_base + i}" for i in range(1, nodes + 1))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True,
            timeout=STEP_SECONDS)
        if check:
            assert result.returncode == 0, f"cluster.sh {' '.join(args)}: {result.stderr}"
        return result

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(CTL), "--endpoints", self.endpoints, "--timeout", "5s", *args],
            capture_output=True, text=True, timeout=STEP_SECONDS)

    def pid(self, node: int) -> int:
        return int((self.dir / f"n{node}.pid").read_text())

    def status_lines(self) -> Dict[int, str]:
        """Node number -> its `cluster.sh status` line (pid, state, address)."""
        out = self.run("status").stdout
        return {int(line.split()[1]): line for line in out.splitlines() if line.startswith("node ")}

    def wait_for_leader(self) -> None:
        deadline = time.monotonic() + STEP_SECONDS
        while True:
            status = self.ctl("-o", "json", "cluster", "status")
            if status.returncode == 0:
                replicas = json.loads(status.stdout)
                if any(r.get("status", {}).get("role") == "ROLE_LEADER" for r in replicas):
                    return
            assert time.monotonic() < deadline, f"no leader: {status.stdout}{status.stderr}"
            time.sleep(0.2)

    def kill_leftovers(self) -> None:
        for pid_file in self.dir.glob("n*.pid"):
            try:
                pid = int(pid_file.read_text())
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass


@pytest.fixture
def script(tmp_path):
    s = Script(tmp_path / "state")
    yield s
    try:
        s.run("down", check=False)
    finally:
        s.kill_leftovers()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _wait_gone(pids: List[int]) -> None:
    deadline = time.monotonic() + STEP_SECONDS
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if _alive(p)]}"
        time.sleep(0.1)


def test_up_serves_locks_and_status_kill_stop_restart_down_manage_each_node(script):
    up = script.run("up", "3")
    assert script.endpoints in up.stdout  # the script prints the endpoints to use
    script.wait_for_leader()

    held = script.ctl("lock", "deploy/test", "--", "sh", "-c", "echo token=$RAFTLOCK_FENCING_TOKEN")
    assert held.returncode == 0, held.stderr
    assert "token=" in held.stdout and "token=\n" not in held.stdout

    assert all(" running " in line for line in script.status_lines().values())

    script.run("stop", "2")
    assert " paused " in script.status_lines()[2]
    script.run("cont", "2")
    assert " running " in script.status_lines()[2]

    killed = script.pid(1)
    script.run("kill", "1")
    _wait_gone([killed])
    assert " down " in script.status_lines()[1]
    script.run("restart", "1")
    assert script.pid(1) != killed and " running " in script.status_lines()[1]
    script.wait_for_leader()

    pids = [script.pid(i) for i in (1, 2, 3)]
    down = script.run("down")
    assert "stopped" in down.stdout
    _wait_gone(pids)


def test_commands_after_up_use_the_ports_up_recorded(script):
    script.run("up", "3")
    script.wait_for_leader()
    # A later command without the port variables must still find this cluster.
    for name in ("RAFTLOCK_PEER_BASE", "RAFTLOCK_CLIENT_BASE"):
        del script.env[name]
    client_base = script.endpoints.split(",")[0].rsplit(":", 1)[1]
    status = script.run("status")
    assert f"127.0.0.1:{int(client_base)}" in status.stdout
    assert "unreachable" not in status.stdout and "leader" in status.stdout
    script.run("restart", "2")
    script.wait_for_leader()
    deadline = time.monotonic() + STEP_SECONDS
    while True:  # the restarted node rejoins on its recorded ports
        replicas = json.loads(script.ctl("-o", "json", "cluster", "status").stdout)
        if len([r for r in replicas if "status" in r]) == 3:
            break
        assert time.monotonic() < deadline, f"node 2 did not come back: {replicas}"
        time.sleep(0.2)


def test_up_refuses_a_second_cluster_in_the_same_directory(script):
    script.run("up", "3")
    again = script.run("up", "3", check=False)
    assert again.returncode == 2 and "is running" in again.stderr


def test_up_that_fails_at_start_leaves_no_node_running(script):
    # Node 2's client port is taken: it exits at start, and `up` must stop
    # nodes 1 and 3 rather than leave half a cluster behind.
    client_port = int(script.endpoints.split(",")[1].rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", client_port))
        blocker.listen()
        up = script.run("up", "3", check=False)
        assert up.returncode == 2 and "node 2 exited at start" in up.stderr, up.stderr
    leftovers = [p.name for p in script.dir.glob("n*.pid")]
    assert leftovers == [], f"pid files left: {leftovers}"
    out = subprocess.run(["pgrep", "-f", "--", f"--data-dir {script.dir}/n"],
                         capture_output=True, text=True)
    assert out.returncode == 1, f"raftlockd still running: {out.stdout}{out.stderr}"


def test_a_stale_pid_file_does_not_count_as_a_running_node(script):
    # A pid file left by a crashed run may name a pid the system has reused
    # for another program: `up` must not refuse, and `down` must not signal it.
    other = subprocess.Popen(["sleep", "60"])
    try:
        script.dir.mkdir(parents=True)
        (script.dir / "size").write_text("3\n")
        (script.dir / "n1.pid").write_text(f"{other.pid}\n")
        script.run("down")
        assert other.poll() is None, "down signalled a process that is not a node"
        script.run("up", "3")
        assert script.pid(1) != other.pid
    finally:
        other.kill()
        other.wait()


def test_bad_node_number_is_refused_with_exit_code_2(script):
    script.run("up", "3")
    for args in (["kill", "4"], ["stop", "x"], ["restart", "0"]):
        result = script.run(*args, check=False)
        assert result.returncode == 2 and "no node" in result.stderr, args


def test_run_prints_a_working_command_shows_only_this_runs_logs_and_stops_on_ctrl_c(script):
    # A log left by an earlier run (cluster.sh appends to it) must not be replayed.
    script.dir.mkdir(parents=True)
    (script.dir / "n1.log").write_text("line-from-an-earlier-run\n")

    proc = subprocess.Popen(
        ["bash", str(SCRIPT), "run", "3"], env=script.env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines: List[str] = []
        deadline = time.monotonic() + STEP_SECONDS
        try_line = None
        while try_line is None:
            assert time.monotonic() < deadline, "no 'try:' line: " + "".join(lines)
            line = proc.stdout.readline()
            assert line, "cluster.sh run exited early: " + "".join(lines)
            lines.append(line)
            if line.strip().startswith("try:"):
                try_line = line.strip()[len("try:"):].split()
        assert try_line[0] == str(CTL) and script.endpoints in try_line
        script.wait_for_leader()
        printed = subprocess.run(try_line, capture_output=True, text=True, timeout=STEP_SECONDS)
        assert printed.returncode == 0, printed.stderr
        assert "leader" in printed.stdout.lower()

        pids = [script.pid(i) for i in (1, 2, 3)]
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground group
        rest, _ = proc.communicate(timeout=STEP_SECONDS)
        lines.append(rest)
        assert proc.returncode == 0, "".join(lines)
        _wait_gone(pids)
        output = "".join(lines)
        assert "local cluster stopped" in output
        assert "line-from-an-earlier-run" not in output
        assert (script.dir / "n1.prev.log").read_text() == "line-from-an-earlier-run\n"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
