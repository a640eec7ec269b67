"""The committed generated modules must equal a fresh generation from proto/."""

import filecmp
import shutil
import subprocess
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent
GEN = PKG / "raftlock" / "_gen"


def test_generated_stubs_are_up_to_date(tmp_path):
    if not shutil.which("protoc") or not Path("/usr/bin/grpc_python_plugin").exists():
        pytest.skip("protoc / grpc_python_plugin not installed")
    subprocess.run(["bash", str(PKG / "generate.sh"), str(tmp_path)], check=True, timeout=60)
    fresh = sorted(p.name for p in tmp_path.glob("*.py"))
    committed = sorted(p.name for p in GEN.glob("*.py"))
    assert fresh == committed, "generated module set changed: run client/python/generate.sh"
    stale = [name for name in fresh if not filecmp.cmp(tmp_path / name, GEN / name, shallow=False)]
    assert not stale, f"stale generated modules {stale}: run client/python/generate.sh"


def test_generated_modules_import_inside_the_package():
    from raftlock._gen import api_pb2, api_pb2_grpc, cluster_pb2, cluster_pb2_grpc, lock_pb2

    assert api_pb2.DESCRIPTOR.name == "proto/api.proto"
    assert api_pb2.LockAcquireRequest.DESCRIPTOR.full_name == "raftlock.v1.LockAcquireRequest"
    assert hasattr(api_pb2_grpc, "LockStub") and hasattr(cluster_pb2_grpc, "ClusterStub")
    assert cluster_pb2.LeaderHint and lock_pb2.ElectionEvent
