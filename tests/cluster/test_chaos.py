"""`ddb fault` and `ddb chaos` on real processes (tier 4). Every process is stopped by PID.

The fault commands work on any cluster; the chaos runs need the router (the DynamoDB endpoint) and are
skipped until router/__main__.py exists. The weakened-cluster run also needs the storage node's debug
setting that acknowledges a write at the leader before a quorum holds it (see docs/chaos.md).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deploy.cluster import router_available
from runtime.config import ClusterConfig
from tests.cluster.conftest import Ddb

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]
needs_router = pytest.mark.skipif(not router_available(), reason="router/__main__.py does not exist yet")


@pytest.fixture
def ddb(ddb_at: Callable[[int], Ddb], request: pytest.FixtureRequest) -> Ddb:
    """A `ddb` runner on its own ports (23300, or the test's parameter); its processes die with the test."""
    return ddb_at(request.param if hasattr(request, "param") else 23300)


def wait_for(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def test_fault_commands_on_real_processes(ddb: Ddb) -> None:
    ddb.run("up", "--nodes-per-az", "1", "--base-port", str(ddb.base_port))
    before = ddb.nodes()
    assert before["sn-b1"]["healthy"]

    assert "SIGSTOP" in ddb.run("fault", "stop", "sn-b1").stdout
    assert "sn-b1: paused" in ddb.run("fault", "list").stdout
    assert wait_for(lambda: not ddb.nodes()["sn-b1"]["healthy"], 10), "a paused node cannot answer Health"
    ddb.run("fault", "cont", "sn-b1")
    assert wait_for(lambda: ddb.nodes()["sn-b1"]["healthy"], 10)

    ddb.run("fault", "kill", "sn-b1")
    assert wait_for(lambda: ddb.nodes()["sn-b1"]["state"] == "dead", 10)
    assert "sn-b1: dead" in ddb.run("fault", "list").stdout
    restarted = ddb.run("fault", "restart", "sn-b1").stdout
    assert "started pid" in restarted
    assert wait_for(lambda: ddb.nodes()["sn-b1"]["healthy"], 30)
    assert ddb.nodes()["sn-b1"]["pid"] != before["sn-b1"]["pid"]

    ddb.run("fault", "partition", "az-a", "az-b")
    ddb.run("fault", "slow", "sn-c1", "*", "--ms", "100")
    listing = ddb.run("fault", "list").stdout
    assert "az-a <-> az-b: cut" in listing and "sn-c1 <-> *: slow +100 ms" in listing
    assert "2 link fault(s) removed" in ddb.run("fault", "heal").stdout
    assert ddb.run("fault", "list").stdout.strip() == "no faults"
    ddb.run("down")


@pytest.mark.slow
@needs_router
@pytest.mark.parametrize("ddb", [23400], indirect=True)
def test_chaos_60_seconds_on_the_default_cluster(ddb: Ddb) -> None:
    ddb.run("up", "--base-port", str(ddb.base_port))
    done = ddb.run("chaos", "--duration", "60", "--seed", "7", check=False, timeout_s=600)
    ddb.run("down")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "VERDICT: PASS" in done.stdout
    assert (ddb.data_dir / "chaos" / "7" / "timeline.html").exists()


@pytest.mark.slow
@needs_router
@pytest.mark.parametrize("ddb", [23600], indirect=True)
def test_chaos_with_wiped_disks(ddb: Ddb) -> None:
    """Storage nodes lose their disks under load (the leader of the workload's partition among them): the
    history stays linearizable, nothing acknowledged is lost, and the replicas converge after the repairs."""
    ddb.run("up", "--base-port", str(ddb.base_port))
    done = ddb.run("chaos", "--duration", "60", "--seed", "5", "--faults", "wipe,kill,partition", check=False,
                   timeout_s=600)
    history = ddb.run("status").stdout
    ddb.run("down")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "VERDICT: PASS" in done.stdout and "begin wipe" in done.stdout
    assert "wiped disk on sn-" in history, history[-3000:]


@needs_router
@pytest.mark.parametrize("ddb", [23700], indirect=True)
def test_chaos_bank_keeps_the_total_through_faults(ddb: Ddb) -> None:
    """Transfers in TransactWriteItems and TransactGetItems of every account under seeded faults (20 s: in
    the default suite, so every change to transactions meets kills and cut links): every snapshot sums to the
    initial total, and some transfers commit."""
    ddb.run("up", "--base-port", str(ddb.base_port))
    done = ddb.run("chaos", "--duration", "20", "--seed", "7", "--workload", "bank", check=False, timeout_s=600)
    ddb.run("down")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "VERDICT: PASS" in done.stdout and "checker (bank): PASS" in done.stdout
    transfers = next(line for line in done.stdout.splitlines() if line.strip().startswith("transfer "))
    assert " ok " in transfers, transfers


@needs_router
@pytest.mark.parametrize("ddb", [23800], indirect=True)
def test_chaos_append_keeps_the_stream_through_faults(ddb: Ddb) -> None:
    """Appends under the default faults (20 s, in the default suite): the history is linearizable, and the
    table's stream, read after healing, holds every acknowledged append of each key once, in order. (Wiped
    disks are left to longer runs, docs/chaos.md: in 20 s the schedule can wipe two replicas of one partition
    before the first is repaired, which no quorum system survives.)"""
    ddb.run("up", "--base-port", str(ddb.base_port))
    done = ddb.run("chaos", "--duration", "20", "--seed", "3", "--workload", "append", check=False, timeout_s=600)
    ddb.run("down")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "VERDICT: PASS" in done.stdout
    assert "stream after healing: agrees" in done.stdout, done.stdout[-3000:]


def _weaken(data_dir: Path) -> bool:
    """Turn on the debug setting that acknowledges writes before a quorum holds them, if the config has
    it (``debug.ack_before_quorum``, to be added by the storage node)."""
    config = ClusterConfig.load(data_dir / "cluster.json")
    debug = getattr(config, "debug", None)
    if debug is None or not hasattr(debug, "ack_before_quorum"):
        return False
    dataclasses.replace(config, debug=dataclasses.replace(debug, ack_before_quorum=True)).save()
    return True


@pytest.mark.slow
@needs_router
@pytest.mark.parametrize("ddb", [23500], indirect=True)
def test_a_weakened_cluster_is_caught(ddb: Ddb) -> None:
    ddb.run("up", "--base-port", str(ddb.base_port))
    ddb.run("down")
    if not _weaken(ddb.data_dir):
        pytest.skip("the cluster config has no debug.ack_before_quorum setting yet")
    ddb.run("up")
    done = ddb.run("chaos", "--duration", "30", "--seed", "3", "--faults", "kill,partition", check=False,
                   timeout_s=600)
    ddb.run("down")
    assert done.returncode == 1, done.stdout[-4000:]
    assert "FAILED: seed 3" in done.stdout and "first violation" in done.stdout
