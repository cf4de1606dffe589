"""The proto build: many processes starting at once build proto/gen exactly once, atomically."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import proto.build

pytestmark = pytest.mark.timeout(120)
SCRIPT = (
    "import proto.build as b; built = b.ensure_built()\n"
    "from proto.gen import node_pb2, transport_pb2\n"
    "assert transport_pb2.Batch(envelopes=[transport_pb2.Envelope(id=7)]).envelopes[0].id == 7\n"
    "print('built' if built else 'reused')\n"
)


def copy_of_proto_package(root: Path) -> Path:
    target = root / "proto"
    target.mkdir()
    source = Path(proto.build.__file__).parent
    for path in [*source.glob("*.proto"), source / "build.py", source / "__init__.py"]:
        shutil.copy(path, target / path.name)
    return target


def test_concurrent_starts_build_once(tmp_path: Path) -> None:
    package = copy_of_proto_package(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=100)
        assert proc.returncode == 0, err
        outcomes.append(out.strip())
    assert sorted(outcomes) == ["built", "reused", "reused", "reused"]
    assert (package / "gen" / "BUILD_STAMP").exists()
    assert not list(package.glob(".gen-*")), "no temporary build folder is left behind"


def test_a_changed_proto_is_rebuilt(tmp_path: Path) -> None:
    package = copy_of_proto_package(tmp_path)
    run = [sys.executable, "-c", SCRIPT]
    assert subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip() == "built"
    with open(package / "transport.proto", "a") as f:
        f.write("\nmessage Extra { uint32 x = 1; }\n")
    check = "import proto.build as b; b.ensure_built(); from proto.gen import transport_pb2; print(transport_pb2.Extra(x=3).x)"
    assert subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True,
                          check=True).stdout.strip() == "3"
    (package / "transport.proto").write_text("syntax = 'proto3'; message {")
    broken = subprocess.run([sys.executable, "-c", "import proto.build as b; b.ensure_built()"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert broken.returncode != 0 and "ProtoBuildError" in broken.stderr
    assert (package / "gen" / "transport_pb2.py").exists(), "a failed build keeps the previous code"
