"""The folder layout is the architecture: imports point one way (DESIGN.md), pure code stays pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"paxos", "dynamo", "runtime", "proto", "storagenode", "control_plane", "router", "autoadmin", "deploy"}
ALLOWED = {
    "paxos": set(),
    "dynamo": set(),
    "runtime": {"paxos", "dynamo", "proto"},
    "proto": {"paxos", "dynamo"},
    "storagenode": {"paxos", "dynamo", "runtime", "proto"},
    "control_plane": {"paxos", "dynamo", "runtime", "proto"},
    "router": {"paxos", "dynamo", "runtime", "proto"},
    "autoadmin": {"paxos", "dynamo", "runtime", "proto"},
    "deploy": OURS,
}
# Pure code may not touch I/O, clocks, randomness or threads: they are passed in.
IMPURE = {"asyncio", "socket", "time", "random", "threading", "grpc", "rocksdict", "os", "subprocess", "secrets"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def sources(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "gen" not in p.relative_to(ROOT).parts)


def is_simulator(path: Path) -> bool:
    rel = path.relative_to(ROOT / "paxos").parts
    return rel[0] in {"sim", "sim.py", "__main__.py"} or rel[0].startswith("sim")


@pytest.mark.parametrize("package", sorted(OURS))
def test_imports_point_one_way(package: str) -> None:
    for path in sources(package):
        ours = imported_modules(path) & OURS - {package}
        assert ours <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {sorted(ours - ALLOWED[package])}"


@pytest.mark.parametrize("package", ["paxos", "dynamo"])
def test_pure_packages_do_no_io(package: str) -> None:
    for path in sources(package):
        if package == "paxos" and is_simulator(path):
            continue
        impure = imported_modules(path) & IMPURE
        assert not impure, f"{path.relative_to(ROOT)} is pure code but imports {sorted(impure)}"


def test_the_check_catches_an_impure_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom asyncio import sleep\nfrom paxos.core import x\n")
    assert imported_modules(bad) == {"time", "asyncio", "paxos"}
