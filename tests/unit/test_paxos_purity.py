"""The replication core stays pure: no I/O, clock, randomness or threads (time and randomness are passed
in). Only the simulator (paxos/sim/) may use them."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"asyncio", "socket", "time", "random", "threading", "grpc", "rocksdict", "os", "subprocess",
             "secrets", "datetime", "multiprocessing", "concurrent", "select", "selectors", "logging"}
CORE = Path(__file__).resolve().parents[2] / "paxos"


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if p.relative_to(CORE).parts[0] != "sim")


def test_the_core_imports_nothing_impure() -> None:
    files = core_files()
    assert {p.name for p in files} >= {"replica.py", "log.py", "types.py", "quorum.py"}
    for path in files:
        bad = imports_of(path) & FORBIDDEN
        assert not bad, f"{path.relative_to(CORE.parent)} imports {sorted(bad)}"
        assert not (imports_of(path) & {"paxos"}) or all(
            m == "paxos" for m in imports_of(path) & {"paxos", "dynamo", "runtime"})


def test_the_check_sees_an_impure_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import time\nfrom random import Random\n")
    assert imports_of(bad) & FORBIDDEN == {"time", "random"}


def test_the_simulator_is_allowed_randomness() -> None:
    assert "random" in imports_of(CORE / "sim" / "cluster.py")
