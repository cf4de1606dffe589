"""Issue 7, repair end to end: with a write load running, SIGKILL a storage node and keep it down; within the
repair delay plus 30 s every partition has 3 live replicas again (one per AZ), `ddb verify` passes and no
acknowledged write is lost. Then the auto-admin is killed in the middle of a second repair and, restarted,
finishes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from deploy.cluster import router_available
from runtime.config import AdminPolicy, build_cluster_config
from runtime.faults import FaultTable
from tests.cluster.conftest import Ddb
from tests.cluster.test_cluster_faults import create_table, wait_for

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(400),
    pytest.mark.skipif(not router_available(), reason="the router process does not exist yet"),
]
REPAIR_DELAY_S = 3.0
BASE_PORT = 29000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ddb]:
    data_dir = tmp_path_factory.mktemp("issue7") / "data"
    ddb = Ddb(data_dir, base_port=BASE_PORT)
    data_dir.mkdir(parents=True)
    build_cluster_config(data_dir, base_port=BASE_PORT,
                         admin=AdminPolicy(repair_delay_s=REPAIR_DELAY_S, node_heartbeat_interval_ms=300)).save()
    try:
        ddb.up()
        yield ddb
    finally:
        ddb.run("down", check=False)
        ddb.kill_all()


def cp_view(ddb: Ddb) -> dict[str, Any]:
    """The control-plane leader's view: partitions (replicas) and the auto-admin section."""
    for node in ddb.status()["nodes"]:
        detail = node.get("detail") or {}
        if node["role"] == "control" and detail.get("cp_leader") == node["name"]:
            return dict(detail)
    return {}


class Load:
    """Puts fresh keys from one thread until stopped; remembers what was acknowledged."""

    def __init__(self, ddb: Ddb, table: str, prefix: str) -> None:
        self.client = ddb.client(attempts=6)
        self.table = table
        self.prefix = prefix
        self.acked: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 240
        i = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            key = f"{self.prefix}{i}"
            i += 1
            try:
                self.client.put_item(TableName=self.table, Item={"pk": {"S": key}, "v": {"N": str(i)}})
                self.acked.append(key)
            except (ClientError, BotoCoreError) as exc:
                self.failures.append(f"{key}: {exc}")
            time.sleep(0.005)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def busiest_in(ddb: Ddb, az: str) -> str:
    view = cp_view(ddb)
    counts: dict[str, int] = {}
    for part in view["partitions"].values():
        for name in part["replicas"]:
            if name.startswith(f"sn-{az}"):
                counts[name] = counts.get(name, 0) + 1
    return max(sorted(counts), key=lambda n: counts[n])


def repaired_without(ddb: Ddb, gone: str) -> bool:
    view = cp_view(ddb)
    if not view or view["admin"]["repairs"]:
        return False
    for part in view["partitions"].values():
        if gone in part["replicas"] or sorted(r[3] for r in part["replicas"]) != ["a", "b", "c"]:
            return False
    return True


def verify_ok(ddb: Ddb) -> dict[str, Any]:
    done = ddb.run("verify", "--json", "--timeout", "10", check=False)
    body: dict[str, Any] = orjson.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    assert (done.returncode == 0) == bool(body.get("ok")), done.stdout + done.stderr
    return body


def check_all_readable(ddb: Ddb, table: str, keys: list[str]) -> None:
    client = ddb.client(attempts=6)
    for key in keys:
        got = client.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True)
        assert got.get("Item", {}).get("pk") == {"S": key}, f"acknowledged {key} lost"


def test_a_dead_node_is_repaired_under_load(cluster: Ddb) -> None:
    create_table(cluster.client(), "repair")
    assert verify_ok(cluster)["ok"]
    victim = busiest_in(cluster, "a")
    with Load(cluster, "repair", "r") as load:
        time.sleep(1.0)
        killed_at = time.monotonic()
        cluster.kill(victim)
        wait_for(lambda: repaired_without(cluster, victim), REPAIR_DELAY_S + 30, f"repair of {victim}",
                 interval_s=0.5)
        repaired_s = time.monotonic() - killed_at
        time.sleep(1.0)
    print(f"repaired {victim} in {repaired_s:.1f} s; {len(load.acked)} writes acknowledged")
    assert repaired_s < REPAIR_DELAY_S + 30
    assert len(load.acked) > 50, load.failures[:5]
    body = wait_for(lambda: verify_ok(cluster).get("ok") and verify_ok(cluster), 30, "ddb verify passes",
                    interval_s=1.0)
    assert all(p["ok"] for p in body["partitions"])
    check_all_readable(cluster, "repair", load.acked)
    history = cp_view(cluster)["admin"]["history"]
    assert any(e["kind"] == "repair" and e["old"] == victim and e["state"] == "finished" for e in history)
    # verify fails, naming the partition, while a replica is down
    other = busiest_in(cluster, "b")
    cluster.kill(other)
    failed = verify_ok(cluster)
    assert not failed["ok"] and any(other in p["replicas"] and not p["ok"] for p in failed["partitions"])
    cluster.restart(other)
    wait_for(lambda: verify_ok(cluster).get("ok"), 60, "all replicas back")


def test_autoadmin_killed_mid_repair_finishes_after_restart(cluster: Ddb) -> None:
    config = cluster.config()
    faults = FaultTable(config.faults_path)
    victim = busiest_in(cluster, "c")
    spares = [f"sn-c{i}" for i in range(1, 4) if f"sn-c{i}" != victim]
    # Hold the repair in its catching-up phase: the spares of AZ c hear no other storage node.
    for spare in spares:
        for other in (f"sn-{az}{i}" for az in "ab" for i in range(1, 4)):
            faults.add_partition(spare, other)
    try:
        cluster.kill(victim)
        wait_for(lambda: cp_view(cluster)["admin"]["repairs"], REPAIR_DELAY_S + 20, "a repair to start",
                 interval_s=0.3)
        cluster.kill("aa-1")
    finally:
        faults.heal()
    # The group's leader completes the membership change on its own; the map waits for the auto-admin.
    time.sleep(3.0)
    assert cp_view(cluster)["admin"]["repairs"], "the map changed with no auto-admin running"
    cluster.restart("aa-1")
    wait_for(lambda: repaired_without(cluster, victim), 40, f"repair of {victim} after the auto-admin restart",
             interval_s=0.5)
    wait_for(lambda: verify_ok(cluster).get("ok"), 30, "ddb verify passes")


def test_a_wiped_node_is_replaced_and_loses_nothing(cluster: Ddb) -> None:
    """`ddb fault wipe`: a storage node's disk dies and it comes back empty under its name, under load. The
    control plane sees a new disk, marks every replica the node held lost, and the auto-admin replaces them
    at once (no repair delay: the node is alive, its data is not), while no acknowledged write is lost."""
    create_table(cluster.client(), "wiped")
    victim = busiest_in(cluster, "b")
    held = sorted(pid for pid, p in cp_view(cluster)["partitions"].items() if victim in p["replicas"])
    assert held
    with Load(cluster, "wiped", "w") as load:
        time.sleep(1.0)
        wiped_at = time.monotonic()
        done = cluster.run("fault", "wipe", victim)
        assert "deleted its store" in done.stdout, done.stdout
        wait_for(lambda: repaired_without(cluster, victim), 40, f"replacement of {victim}'s lost replicas",
                 interval_s=0.5)
        repaired_s = time.monotonic() - wiped_at
        time.sleep(1.0)
    print(f"replaced {len(held)} lost replicas of {victim} in {repaired_s:.1f} s; "
          f"{len(load.acked)} writes acknowledged")
    assert len(load.acked) > 50, load.failures[:5]
    history = cp_view(cluster)["admin"]["history"]
    wiped = [e for e in history if e["kind"] == "wiped" and e["node"] == victim]
    assert wiped and sorted(f"p{pid}" for pid in wiped[-1]["lost"]) == sorted(held)
    assert cluster.nodes()[victim]["state"] == "running"
    wait_for(lambda: verify_ok(cluster).get("ok"), 30, "ddb verify passes")
    check_all_readable(cluster, "wiped", load.acked)
    check_all_readable(cluster, "repair", [])  # the table of the first test is still served
