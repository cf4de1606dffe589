"""`ddb up` / `ddb status` / `ddb down` on real processes (tier 4). Every process is stopped by PID."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from deploy.cluster import pid_alive, router_available
from tests.cluster.conftest import Ddb

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


def expected_running(body: dict[str, Any]) -> list[str]:
    """Every node, except the router while router/__main__.py does not exist yet."""
    return [n["name"] for n in body["nodes"] if n["role"] != "router" or router_available()]


def wait_until_gone(pids: list[int], timeout_s: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if pid_alive(p)]


def test_small_cluster_up_status_crash_down_up(ddb_at: Callable[[int], Ddb]) -> None:
    ddb = ddb_at(21200)
    out = ddb.up("--nodes-per-az", "1").stdout
    assert ("endpoint http://localhost:21200" in out) if router_available() else ("router/__main__.py" in out)
    body = ddb.status()
    assert [n["name"] for n in body["nodes"]] == ["cp-a", "cp-b", "cp-c", "sn-a1", "sn-b1", "sn-c1", "rr-1", "aa-1"]
    running = expected_running(body)
    nodes = {n["name"]: n for n in body["nodes"]}
    for name in running:
        assert nodes[name]["healthy"], nodes[name]
        assert nodes[name]["health"]["pid"] == nodes[name]["pid"]
    assert nodes["sn-b1"]["az"] == "b" and nodes["sn-b1"]["health"]["status"]["grpc"] == "127.0.0.1:21205"
    assert "already running" in ddb.up().stdout

    # A process that dies is reported dead, and nothing restarts it.
    victim = nodes["sn-b1"]["pid"]
    os.kill(victim, signal.SIGKILL)
    assert wait_until_gone([victim]) == []
    time.sleep(1.0)
    after = {n["name"]: n for n in ddb.status()["nodes"]}
    assert after["sn-b1"]["state"] == "dead" and not after["sn-b1"]["healthy"]
    assert all(after[n]["healthy"] for n in running if n != "sn-b1")
    table = ddb.run("status").stdout
    assert "DEAD" in table and f"{len(running) - 1}/8 processes healthy" in table

    pids = [n["pid"] for n in after.values() if n["state"] == "running"]
    (ddb.data_dir / "nodes" / "sn-a1" / "marker").write_text("kept")
    down = ddb.run("down").stdout
    assert "sn-b1" in down and "was dead" in down
    assert wait_until_gone(pids, timeout_s=1.0) == [], "down returns only once every process is gone"
    assert not list((ddb.data_dir / "run").glob("*.pid"))
    assert all(n["state"] == "stopped" for n in ddb.status()["nodes"])
    assert "was not running" in ddb.run("down").stdout

    ddb.up()  # same data folder: same config, same data
    again = ddb.status()
    assert all(n["healthy"] for n in again["nodes"] if n["name"] in running)
    assert (ddb.data_dir / "nodes" / "sn-a1" / "marker").read_text() == "kept"
    ddb.run("down")


def test_default_cluster_is_fourteen_healthy_processes(ddb_at: Callable[[int], Ddb]) -> None:
    ddb = ddb_at(21300)
    ddb.up()
    body = ddb.status()
    assert len(body["nodes"]) == 14
    assert sorted(n["name"] for n in body["nodes"] if n["healthy"]) == sorted(expected_running(body))
    by_az: dict[str | None, list[str]] = {}
    for node in body["nodes"]:
        by_az.setdefault(node["az"], []).append(node["name"])
    assert by_az == {"a": ["cp-a", "sn-a1", "sn-a2", "sn-a3"], "b": ["cp-b", "sn-b1", "sn-b2", "sn-b3"],
                     "c": ["cp-c", "sn-c1", "sn-c2", "sn-c3"], None: ["rr-1", "aa-1"]}
    pids = [n["pid"] for n in body["nodes"] if n["pid"]]
    # Every thread of every process runs under the configured policy (the default, SCHED_BATCH), the
    # gRPC and fsync threads started after the policy was set included.
    for pid in pids:
        threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
        assert len(threads) > 1
        assert {os.sched_getscheduler(tid) for tid in threads} == {os.SCHED_BATCH}, pid
    ddb.run("down")
    assert wait_until_gone(pids, timeout_s=1.0) == []


def test_up_refuses_to_change_an_existing_topology(ddb_at: Callable[[int], Ddb]) -> None:
    ddb = ddb_at(21400)
    ddb.up("--nodes-per-az", "1")
    refused = ddb.run("up", "--nodes-per-az", "2", check=False)
    assert refused.returncode != 0 and "1 nodes per AZ, not 2" in refused.stderr
    ddb.run("down")
