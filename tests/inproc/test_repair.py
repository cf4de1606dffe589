"""Repair on real storage nodes over gRPC (fake control plane): a joiner named by the map catches up from a
snapshot plus the log tail, the leader swaps it in for a dead replica, writes go on throughout, the replicas
end identical (ADMIN checksum) and the old node, back, drops what it no longer owns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from dynamo.keycodec import HASH_SPACE, hash_range
from proto.kinds import Kind, partition_group
from runtime.config import build_cluster_config
from runtime.store import Store
from runtime.transport import Transport
from storagenode.node import StorageNode
from tests.inproc.test_storage_node import (
    DRIVER,
    LIMITS,
    NODE_CONFIG,
    PARTS,
    SPEC,
    TABLE_ID,
    TIMING,
    Cluster,
    item,
    serve,
    until,
)

pytestmark = pytest.mark.timeout(90)

FOUNDERS = ("sn-a1", "sn-b1", "sn-c1")
SPARE = "sn-a2"


def repair_map(version: int, replicas: tuple[str, ...], joining: str = "", replacing: str = "", *,
               stream: bool = False) -> dict[str, Any]:
    """``stream``: the table's stream is on (KEYS_ONLY), so writes also make stream records."""
    parts: dict[str, Any] = {}
    for pid, (lo, hi) in PARTS.items():
        entry: dict[str, Any] = {"table_id": TABLE_ID, "lo": str(lo), "hi": str(hi), "replicas": list(replicas)}
        if joining:
            entry.update(joining=joining, replacing=replacing)
        parts[str(pid)] = entry
    table: dict[str, Any] = {"table_id": TABLE_ID, "status": "ACTIVE", "spec": SPEC, "partitions": list(PARTS)}
    if stream:
        table.update(stream=[1, "KEYS_ONLY"], streams=[[1, "KEYS_ONLY", 0]], closed=[])
    return {"version": version,
            "nodes": {n: {"az": n[3], "address": ""} for n in (*FOUNDERS, SPARE)},
            "tables": {"t": table},
            "partitions": parts}


class RepairCluster(Cluster):
    """Cluster with a fourth node, sn-a2, that hosts nothing until the map makes it a joiner."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.limits, self.driver = LIMITS, DRIVER  # a subclass may set its own, with its own config
        self.config = build_cluster_config(tmp, nodes_per_az=2, base_port=29000, paxos=TIMING, limits=LIMITS)
        self.cp.map = repair_map(1, FOUNDERS)

    async def start(self) -> None:
        cp = Transport("cp-a", self.peers, self.limits, on_request=self.cp.on_request)
        self.transports["cp-a"] = cp
        self.servers["cp-a"], self.ports["cp-a"] = await serve(cp, 0)
        self.client = Transport("rr-1", self.peers, self.limits)
        for name in (*FOUNDERS, SPARE):
            await self.start_node(name, initial=True)
        self.peers.update({n: f"127.0.0.1:{p}" for n, p in self.ports.items()})
        for transport in [*self.transports.values(), self.client]:
            transport.peers.update(self.peers)
        for name in (*FOUNDERS, SPARE):
            self.nodes[name].start()

    async def start_node(self, name: str, initial: bool = False) -> None:
        holder: dict[str, StorageNode] = {}
        transport = Transport(name, self.peers, self.limits,
                              on_message=lambda s, m: holder["node"].on_message(s, m),
                              on_request=lambda s, m: holder["node"].on_request(s, m))
        self.transports[name] = transport
        self.servers[name], self.ports[name] = await serve(transport, self.ports.get(name, 0))
        if not initial:
            transport.peers.update(self.peers)
        self.stores[name] = Store(self.tmp / name)
        node = holder["node"] = StorageNode(name, self.config, transport, self.stores[name], NODE_CONFIG, self.driver)
        self.nodes[name] = node
        if not initial:
            node.start()

    async def checksum(self, node: str, pid: int) -> dict[str, Any]:
        raw = await self.client.call(node, partition_group(pid), Kind.ADMIN, orjson.dumps({"op": "checksum"}),
                                     timeout_ms=2000)
        answer: dict[str, Any] = orjson.loads(raw)
        return answer


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[RepairCluster]:
    c = RepairCluster(tmp_path)
    await c.start()
    try:
        yield c
    finally:
        await c.close()


def membership(c: RepairCluster, pid: int) -> dict[str, Any] | None:
    for name, node in c.nodes.items():
        group = partition_group(pid)
        if pid in node.hosted and node.host.leader_of(group) == name:
            return node.host.describe(group)
    return None


async def test_repair_swaps_a_caught_up_joiner_for_a_dead_replica(cluster: RepairCluster) -> None:
    c = cluster
    await until(lambda: all(len(c.nodes[n].hosted) == 2 for n in FOUNDERS), what="partitions hosted")
    assert not c.nodes[SPARE].hosted
    for i in range(40):  # more than compact_after_entries: the joiner needs a snapshot
        assert await c.call("PutItem", {"Item": item(f"k{i}", v={"N": str(i)})}) == {"ok": {}}
    await c.stop_node("sn-a1")

    c.cp.set_map(repair_map(2, FOUNDERS, joining=SPARE, replacing="sn-a1"))
    writes = 40

    def swapped(pid: int) -> bool:
        m = membership(c, pid)
        return m is not None and SPARE in m["voters"] and "sn-a1" not in m["voters"] and not m["outgoing"] \
            and not m["learners"]

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not all(swapped(pid) for pid in PARTS) and loop.time() < deadline:
        assert await c.call("PutItem", {"Item": item(f"k{writes}", v={"N": str(writes)})}) == {"ok": {}}
        writes += 1
    assert all(swapped(pid) for pid in PARTS), [membership(c, pid) for pid in PARTS]
    assert c.nodes[SPARE].hosted.keys() == PARTS.keys()

    c.cp.set_map(repair_map(3, (SPARE, "sn-b1", "sn-c1")))
    for i in range(writes, writes + 10):
        assert await c.call("PutItem", {"Item": item(f"k{i}", v={"N": str(i)})}) == {"ok": {}}
    writes += 10
    # The new replica holds every write: stop another founder; a quorum is now sn-a2 plus one.
    await c.stop_node("sn-c1")
    for i in range(writes):
        got = await c.call("GetItem", {"Key": item(f"k{i}")}, consistent=True, timeout_s=10)
        assert got == {"ok": {"Item": item(f"k{i}", v={"N": str(i)})}}, i

    # Same applied index, same checksum.
    for pid in PARTS:
        async def same(pid: int = pid) -> bool:
            a, b = await c.checksum(SPARE, pid), await c.checksum("sn-b1", pid)
            return a["ok"]["applied"] == b["ok"]["applied"] and a["ok"]["checksum"] == b["ok"]["checksum"]
        for _ in range(100):
            if await same():
                break
            await asyncio.sleep(0.05)
        assert await same(), pid

    # The old node comes back, learns it owns nothing any more, and drops its replicas with their data.
    await c.start_node("sn-a1")
    await until(lambda: c.nodes["sn-a1"].first_map.is_set() and not c.nodes["sn-a1"].hosted, timeout_s=10,
                what="sn-a1 drops its replicas")
    everything = hash_range(TABLE_ID, 0, HASH_SPACE)
    assert c.stores["sn-a1"].stats(everything.start, everything.end).count == 0
    assert c.stores["sn-b1"].stats(everything.start, everything.end).count == writes
