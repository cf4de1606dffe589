"""A storage node whose disk is wiped and that comes back under its name must not vote in the groups it
held (real storage nodes over gRPC, fake control plane that records disks as the real one does).

The hazard: with the third replica lagging, the wiped node's promise would elect a leader without the
writes that the old leader and the wiped node had acknowledged together. So a node hosts replicas only under
a map that records its disk, and the control plane marks a new disk's replicas lost (never hosted again;
the auto-admin replaces them: tests/cluster/test_autoadmin_repair.py)."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest

from tests.inproc.test_storage_node import NODES, Cluster, item, pk_in, the_map, until
from tests.inproc.test_storage_node import cluster as cluster  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(90)


def recorded_map(version: int, disks: dict[str, str], lost: tuple[str, ...] = ()) -> dict[str, Any]:
    """The map as the control plane sends it once it recorded each node's disk."""
    partition_map = the_map(version)
    for name, entry in partition_map["nodes"].items():
        entry["incarnation"] = disks[name]
    if lost:
        for part in partition_map["partitions"].values():
            part["lost"] = list(lost)
    return partition_map


async def test_a_wiped_node_never_votes_so_acknowledged_writes_survive(cluster: Cluster) -> None:
    c = cluster
    disks = {name: c.nodes[name].incarnation for name in NODES}
    assert len(set(disks.values())) == 3, "each store has its own disk id"
    c.cp.set_map(recorded_map(2, disks))
    await until(lambda: all(n.map_version == 2 and len(n.hosted) == 2 for n in c.nodes.values()),
                what="the recorded map followed")
    await until(lambda: all(c.cp.heartbeats.get(n, {}).get("incarnation") == disks[n] for n in NODES),
                what="heartbeats naming each node's disk")

    leader = await c.leader_of(11)
    lagging, wiped = [n for n in NODES if n != leader]
    await c.stop_node(lagging)  # the third replica misses every write below
    acked = {pk_in(11, f"w{i}-"): str(i) for i in range(8)}
    for pk, v in acked.items():
        assert "ok" in await c.call("PutItem", {"Item": item(pk, v={"N": v})}, pk=pk)

    # The quick follower's disk dies; it comes back empty under its name. Then the leader dies and the
    # lagging replica returns: the only two replicas up are the empty one and the stale one.
    await c.stop_node(wiped)
    shutil.rmtree(c.tmp / wiped)
    await c.start_node(wiped)
    assert c.nodes[wiped].incarnation not in disks.values()
    await c.stop_node(leader)
    await c.start_node(lagging)
    await until(lambda: c.cp.heartbeats[wiped].get("incarnation") == c.nodes[wiped].incarnation,
                what="the wiped node's new disk heard")
    await asyncio.sleep(1.0)  # many election timeouts
    assert not c.nodes[wiped].hosted, "a node whose disk the map does not record hosts nothing"
    assert not c.nodes[wiped].first_map.is_set()

    # The control plane records the new disk and marks the node's replicas lost; the old leader returns.
    disks[wiped] = c.nodes[wiped].incarnation
    c.cp.set_map(recorded_map(3, disks, lost=(wiped,)))
    await c.start_node(leader)
    for pk, v in acked.items():
        got = await c.call("GetItem", {"Key": item(pk)}, consistent=True, pk=pk, timeout_s=10.0)
        assert got["ok"].get("Item", {}).get("v") == {"N": v}, f"acknowledged write of {pk} lost"
    await until(lambda: c.nodes[wiped].map_version == 3, what="the wiped node follows the map")
    assert not c.nodes[wiped].hosted, "a lost replica is not hosted again"
    assert "ok" in await c.call("PutItem", {"Item": item(pk_in(11, "after"), v={"N": "1"})})
