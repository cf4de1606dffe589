"""``ddb bench``'s server CPU: the processes behind a port (a ddb router's whole cluster), their CPU time."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from rich.console import Console

from deploy.bench.report import render
from deploy.bench.server_cpu import (
    ServerCpu,
    ServerProcess,
    cpu_seconds,
    is_local,
    listening_pids,
    server_processes,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


def test_the_process_listening_on_a_port_is_found_and_a_closed_port_has_none() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert listening_pids(port) == set()  # bound, not listening
        listener.listen()
        assert listening_pids(port) == {os.getpid()}
    assert listening_pids(port) == set()


def _fake_proc(root: Path, port: int, processes: dict[int, tuple[str, ...]], listener: int) -> Path:
    """A /proc with a LISTEN socket on ``port`` held by ``listener``, and the given command lines."""
    (root / "net").mkdir(parents=True)
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    (root / "net" / "tcp").write_text(
        header + f"   0: 0100007F:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 4242 1\n"
        + f"   1: 0100007F:{port + 1:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 4343 1\n")
    (root / "net" / "tcp6").write_text(header)
    for pid, args in processes.items():
        folder = root / str(pid)
        (folder / "fd").mkdir(parents=True)
        (folder / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
        (folder / "comm").write_text(Path(args[0]).name + "\n")
        os.symlink("socket:[4242]" if pid == listener else "/dev/null", folder / "fd" / "3")
    (root / "self").mkdir()
    return root


def test_a_ddb_router_stands_for_every_process_of_its_cluster_and_no_other(tmp_path: Path) -> None:
    py = "/venv/bin/python"
    proc = _fake_proc(tmp_path / "proc", 8000, {
        10: (py, "-m", "router", "--config", "/a/cluster.json", "--node", "rr-1"),
        11: (py, "-m", "storagenode", "--config", "/a/cluster.json", "--node", "sn-a1"),
        12: (py, "-m", "control_plane", "--config", "/a/cluster.json", "--node", "cp-a"),
        13: (py, "-m", "storagenode", "--config", "/b/cluster.json", "--node", "sn-a1"),  # another cluster
        14: ("/usr/bin/node", "dynalite", "--port", "8001"),
    }, listener=10)
    assert server_processes(8000, proc) == [ServerProcess(12, "cp-a"), ServerProcess(10, "rr-1"),
                                            ServerProcess(11, "sn-a1")]
    assert server_processes(9000, proc) == []


def test_any_other_server_is_just_the_listening_process(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path / "proc", 4567, {
        20: ("/usr/bin/java", "-jar", "DynamoDBLocal.jar", "-port", "4567"),
        21: ("/usr/bin/java", "-jar", "other.jar"),
    }, listener=20)
    assert server_processes(4567, proc) == [ServerProcess(20, "java")]


def test_cpu_seconds_reads_a_stat_line_whose_command_name_has_spaces_and_parentheses(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    fields = " ".join(["S", "1", "7", "7", "0", "-1", "4194304", "10", "0", "0", "0", "250", "150"] + ["0"] * 39)
    (tmp_path / "7" / "stat").write_text(f"7 (odd) name (x)) {fields}\n")
    assert cpu_seconds(7, tmp_path) == pytest.approx(400 / os.sysconf("SC_CLK_TCK"))
    assert cpu_seconds(8, tmp_path) is None


def test_the_cpu_a_process_spends_between_start_and_stop_is_counted() -> None:
    server = ServerCpu([ServerProcess(os.getpid(), "me"), ServerProcess(2**22 + 1, "gone")])
    server.start()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    spent = server.stop()
    assert set(spent) == {"me"} and 0.15 < spent["me"] < 5.0


def test_only_loopback_endpoints_are_measured() -> None:
    assert is_local("localhost") and is_local("127.0.0.1")
    assert not is_local("192.0.2.1") and not is_local("no-such-host.invalid")


def test_the_report_prints_the_servers_cpu_per_operation() -> None:
    report = {"title": "GetItem", "target": "ddb", "endpoint": "http://127.0.0.1:8000", "clients": 32,
              "client": "http", "records": 10, "item_bytes": 200, "consistent": False, "load": None,
              "by_op": {}, "ops_per_s": 5000.0, "elapsed_s": 10.0, "errors": 0, "cancelled": 0,
              "latency": {"p50_ms": 1.0, "p99_ms": 2.0, "p99.9_ms": 3.0}, "client_cpu_percent": 20.0,
              "client_cpu_us_per_op": 40.0, "errors_by_type": {}, "timeline": [],
              "server_cpu": {"processes": 14, "cpu_s": 17.5, "cores": 1.75, "us_per_op": 350.0,
                             "by_process_cpu_s": {}}}
    console = Console(record=True, width=200)
    render(console, report)
    assert "server: 14 processes, 1.75 cores, 350 µs of CPU per operation" in console.export_text()
