"""A split on real storage nodes over gRPC (fake control plane): the map asks, the parent's leader logs the
split entry, every replica starts both children from the parent's state at that entry (no data moves), the
parent answers ``stale`` from then on, and after the map flips the children serve every item, identical on
all replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from dynamo.hashing import partition_hash
from dynamo.keycodec import HASH_SPACE, hash_range
from proto.kinds import Kind, partition_group
from tests.inproc.test_storage_node import HALF, NODES, PARTS, SPEC, TABLE_ID, Cluster, item, until

pytestmark = pytest.mark.timeout(90)
MID = HALF // 2  # partition 11 is [0, HALF): split it in two
LEFT, RIGHT = 21, 22


def split_map(version: int, flipped: bool) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    ranges = {LEFT: (0, MID), RIGHT: (MID, HALF), 12: PARTS[12]} if flipped else dict(PARTS)
    for pid, (lo, hi) in ranges.items():
        entry: dict[str, Any] = {"table_id": TABLE_ID, "lo": str(lo), "hi": str(hi), "replicas": list(NODES)}
        if pid in (LEFT, RIGHT):
            entry["parent"] = 11
        if pid == 11:
            entry["split"] = {"mid": str(MID), "left": LEFT, "right": RIGHT}
        parts[str(pid)] = entry
    return {"version": version, "nodes": {n: {"az": n[3], "address": ""} for n in NODES},
            "tables": {"t": {"table_id": TABLE_ID, "status": "ACTIVE", "spec": SPEC, "partitions": list(ranges)}},
            "partitions": parts}


def group_for(pk: str, flipped: bool) -> str:
    h = partition_hash("S", pk)
    if h >= HALF:
        return partition_group(12)
    if not flipped:
        return partition_group(11)
    return partition_group(LEFT if h < MID else RIGHT)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    await c.start()
    try:
        yield c
    finally:
        await c.close()


async def call(c: Cluster, op: str, request: dict[str, Any], pk: str, flipped: bool,
               timeout_s: float = 5.0) -> dict[str, Any]:
    """What a router does: follow redirects, retry while unavailable, give back stale answers."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    target = NODES[0]
    last: Any = None
    while loop.time() < deadline:
        answer = await c.ask(target, op, request, pk=pk, group=group_for(pk, flipped), consistent=True)
        if "ok" in answer or "error" in answer or "stale" in answer:
            return answer
        last = answer
        hint = answer.get("redirect")
        target = hint if hint in c.nodes else NODES[(NODES.index(target) + 1) % 3]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{op} {pk}: {last}")


async def test_split_starts_children_from_the_parents_state_and_loses_nothing(cluster: Cluster) -> None:
    c = cluster
    await until(lambda: all(len(n.hosted) == 2 for n in c.nodes.values()), what="partitions hosted")
    keys = [f"k{i}" for i in range(60)]
    for i, pk in enumerate(keys):
        assert await call(c, "PutItem", {"Item": item(pk, v={"N": str(i)})}, pk, False) == {"ok": {}}
    left_keys = [k for k in keys if partition_hash("S", k) < MID]
    right_keys = [k for k in keys if MID <= partition_hash("S", k) < HALF]
    assert left_keys and right_keys

    c.cp.set_map(split_map(2, flipped=False))
    await until(lambda: all({11, 12, LEFT, RIGHT} <= n.hosted.keys() for n in c.nodes.values()), timeout_s=10,
                what="children started on every replica")
    indexes = {n.hosted[11].machine.split.index for n in c.nodes.values()}  # type: ignore[union-attr]
    assert len(indexes) == 1  # one split entry, at one index
    # The parent no longer takes writes or reads for the range.
    answer = await call(c, "PutItem", {"Item": item(left_keys[0], v={"N": "-1"})}, left_keys[0], False)
    assert "stale" in answer
    # An unrelated map change (no flip yet) keeps the unborn children.
    c.cp.set_map({**split_map(3, flipped=False)})
    await asyncio.sleep(0.3)
    assert all({LEFT, RIGHT} <= n.hosted.keys() for n in c.nodes.values())

    c.cp.set_map(split_map(4, flipped=True))
    await until(lambda: all(n.hosted.keys() == {12, LEFT, RIGHT} for n in c.nodes.values()), timeout_s=10,
                what="parent dropped everywhere")
    for i, pk in enumerate(keys):
        got = await call(c, "GetItem", {"Key": item(pk)}, pk, True, timeout_s=10)
        assert got == {"ok": {"Item": item(pk, v={"N": str(i)})}}, pk
    for i, pk in enumerate(left_keys + right_keys):
        assert await call(c, "PutItem", {"Item": item(pk, v={"N": str(1000 + i)})}, pk, True) == {"ok": {}}
    # The parent's drop kept its items (they are the children's); replicas agree.
    everything = hash_range(TABLE_ID, 0, HASH_SPACE)
    for name in NODES:
        await until(lambda name=name: c.stores[name].stats(everything.start, everything.end).count == len(keys),
                    what=f"{name} holds every item once")
    for pid in (LEFT, RIGHT):
        async def same(pid: int = pid) -> bool:
            sums = []
            for name in NODES:
                raw = await c.client.call(name, partition_group(pid), Kind.ADMIN, orjson.dumps({"op": "checksum"}))
                sums.append(orjson.loads(raw)["ok"])
            return len({(s["applied"], s["checksum"]) for s in sums}) == 1
        for _ in range(100):
            if await same():
                break
            await asyncio.sleep(0.05)
        assert await same(), pid
