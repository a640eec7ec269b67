"""The documented install step works offline: a virtual environment that sees
Debian's grpcio/protobuf, `pip install --no-build-isolation --no-index
./client/python`, then `import raftlock` from outside the source tree."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent


def test_pip_install_from_the_repo_into_a_venv(tmp_path):
    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                          capture_output=True, text=True, timeout=120)
    if made.returncode != 0 and "ensurepip" in (made.stdout + made.stderr):
        pytest.fail("python3-venv is missing: scripts/install-deps.sh installs it")
    assert made.returncode == 0, made.stderr
    pip = venv / "bin" / "pip"
    # A copy, so the build's by-products (build/, *.egg-info) stay out of the repo.
    source = tmp_path / "raftlock-src"
    shutil.copytree(PACKAGE, source,
                    ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    installed = subprocess.run(
        [str(pip), "install", "--no-build-isolation", "--no-index", "--quiet", str(source)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import raftlock, raftlock._gen.api_pb2 as a; print(raftlock.__file__); "
         "print(a.DESCRIPTOR.name)"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    where, descriptor = probe.stdout.split()
    assert str(venv) in where, f"imported from {where}, not the venv"
    assert descriptor == "proto/api.proto"
