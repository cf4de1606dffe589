"""Split data safety on real storage nodes over gRPC (fake control plane): a split parent's replica must never
delete or write the keys its children own on the same node.

Why it cannot happen in the normal flow (the invariant these tests pin): on one node a child replica exists
only if (a) the parent's replica there applied the split entry (the children start in place from its state
at that index, and the parent applies nothing after it), or (b) the parent's replica there is gone
(``StorageNode.apply_map`` drops what a map no longer lists before it hosts what the map adds, and the
control plane lists the children only once it dropped the parent). A lagging parent replica that never
applied the split entry is dropped, with its whole range, before the children arrive as learners.

The way around it was an OLDER map: control-plane followers answer ``get_map`` from their applied state, so
a restarted storage node (whose followed version started at 0) could take a lagging follower's pre-flip map,
host the parent again next to its children (fresh, as a bootstrap voter), and then drop it with its whole
range (hazard 1: the children's items gone under replicas whose Paxos state says they hold them) or let it
elect a leader and apply writes into the children's keys (hazard 2: an acknowledged write the children never
see, and children replicas that diverge). Two guards: a node persists the newest map version it followed and
ignores older ones, and a node never hosts a partition next to a hosted split child of it (nor deletes a
child's keys when it drops a parent)."""

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
from runtime.store import Store
from runtime.transport import TransportError
from storagenode.node import MAP_VERSION, StorageNode
from tests.inproc.test_repair_split import LEFT, MID, RIGHT, group_for, split_map
from tests.inproc.test_storage_node import HALF, NODES, SPEC, TABLE_ID, Cluster, item, until

pytestmark = pytest.mark.timeout(90)
EVERYTHING = hash_range(TABLE_ID, 0, HASH_SPACE)
KEYS = [f"k{i}" for i in range(40)]


async def call(c: Cluster, op: str, request: dict[str, Any], pk: str, flipped: bool,
               timeout_s: float = 5.0) -> dict[str, Any]:
    """What a router does: follow redirects, skip nodes that are down, retry while unavailable, give back
    stale answers."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    target = NODES[0]
    last: Any = None
    while loop.time() < deadline:
        try:
            answer = await c.ask(target, op, request, pk=pk, group=group_for(pk, flipped), consistent=True)
        except TransportError as exc:
            answer = {"unavailable": str(exc)}
        if "ok" in answer or "error" in answer or "stale" in answer:
            return answer
        last = answer
        hint = answer.get("redirect")
        target = hint if hint in c.nodes else NODES[(NODES.index(target) + 1) % 3]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{op} {pk}: {last}")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    await c.start()
    try:
        yield c
    finally:
        await c.close()


async def split_and_flip(c: Cluster) -> dict[str, str]:
    """Write, split partition 11 (map v2), flip to its children (v4), overwrite every key on the children.
    The newest value of every key."""
    await until(lambda: all(len(n.hosted) == 2 for n in c.nodes.values()), what="partitions hosted")
    for i, pk in enumerate(KEYS):
        assert await call(c, "PutItem", {"Item": item(pk, v={"N": str(i)})}, pk, False) == {"ok": {}}
    c.cp.set_map(split_map(2, flipped=False))
    await until(lambda: all({LEFT, RIGHT} <= n.hosted.keys() for n in c.nodes.values()), timeout_s=10,
                what="children started on every replica")
    c.cp.set_map(split_map(4, flipped=True))
    await until(lambda: all(n.hosted.keys() == {12, LEFT, RIGHT} for n in c.nodes.values()), timeout_s=10,
                what="parent dropped everywhere")
    newest = {}
    for i, pk in enumerate(KEYS):
        assert await call(c, "PutItem", {"Item": item(pk, v={"N": str(1000 + i)})}, pk, True,
                          timeout_s=10) == {"ok": {}}
        newest[pk] = str(1000 + i)
    return newest


async def replicas_agree(c: Cluster, pid: int, timeout_s: float = 10.0) -> None:
    """Every replica of ``pid`` reaches one applied index with one checksum."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    sums: list[dict[str, Any]] = []
    while loop.time() < deadline:
        sums = []
        for name in NODES:
            raw = await c.client.call(name, partition_group(pid), Kind.ADMIN, orjson.dumps({"op": "checksum"}))
            sums.append(orjson.loads(raw).get("ok") or {})
        if len({(s.get("applied"), s.get("checksum"), s.get("receiving")) for s in sums}) == 1 \
                and not sums[0].get("receiving"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"p{pid} replicas differ: {sums}")


async def everything_kept(c: Cluster, newest: dict[str, str]) -> None:
    for name in NODES:
        await until(lambda name=name: c.stores[name].stats(EVERYTHING.start, EVERYTHING.end).count == len(KEYS),
                    timeout_s=10, what=f"{name} holds every item once")
    for pid in (LEFT, RIGHT):
        await replicas_agree(c, pid)
    for pk, v in newest.items():
        got = await call(c, "GetItem", {"Key": item(pk)}, pk, True, timeout_s=10)
        assert got == {"ok": {"Item": item(pk, v={"N": v})}}, pk


def forget_map_version(path: Path) -> None:
    """The store as an older build left it: no record of the map version the node followed."""
    store = Store(path)
    try:
        batch = store.batch()
        batch.delete_meta(MAP_VERSION)
        store.write(batch, sync=True)
    finally:
        store.close()


@pytest.mark.parametrize("forget", [False, True], ids=["version-kept", "version-forgotten"])
async def test_a_restarted_node_never_drops_its_children_items_with_a_stale_parent(cluster: Cluster,
                                                                                 forget: bool) -> None:
    """Hazard 1. ``forget``: the persisted version is gone, so the second guard alone must hold."""
    c = cluster
    newest = await split_and_flip(c)
    victim = "sn-c1"
    await c.stop_node(victim)
    if forget:
        forget_map_version(c.tmp / victim)
    # A lagging control-plane follower answers: the split is under way, the parent is still in the map.
    c.cp.set_map(split_map(3, flipped=False))
    await c.start_node(victim)
    node = c.nodes[victim]
    await asyncio.sleep(1.0)  # the stale map has been offered (and taken, if the node takes it)
    assert 11 not in node.hosted, "the parent is hosted again next to its children"
    assert {12, LEFT, RIGHT} <= node.hosted.keys()
    c.cp.set_map(split_map(5, flipped=True))
    await until(lambda: node.map_version == 5, what="the current map")
    await everything_kept(c, newest)


@pytest.mark.parametrize("forget", [False, True], ids=["version-kept", "version-forgotten"])
async def test_a_stale_parent_takes_no_write_into_its_childrens_keys(cluster: Cluster, forget: bool,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Hazard 2: two replicas restart onto a stale map (a quorum of the parent's group). If they hosted the
    parent again, they would elect a leader and apply a write into keys the children own."""
    c = cluster
    newest = await split_and_flip(c)
    # Hold the parent's split entry back (a leader that has not logged it yet): its writes would be applied.
    monkeypatch.setattr(StorageNode, "_drive_split", lambda self, hosted: None)
    for name in ("sn-b1", "sn-c1"):
        await c.stop_node(name)
        if forget:
            forget_map_version(c.tmp / name)
    c.cp.set_map(split_map(3, flipped=False))
    for name in ("sn-b1", "sn-c1"):
        await c.start_node(name)
    await asyncio.sleep(1.0)
    pk = next(k for k in KEYS if partition_hash("S", k) < MID)
    answer: dict[str, Any] = {}
    for _ in range(100):  # a router holding the stale map: the parent's group, on the restarted replicas
        for name in ("sn-b1", "sn-c1"):
            answer = await c.ask(name, "PutItem", {"Item": item(pk, v={"N": "-1"})}, pk=pk,
                                 group=partition_group(11), consistent=True)
            if "ok" in answer or "stale" in answer:
                break
        if "ok" in answer or "stale" in answer:
            break
        await asyncio.sleep(0.05)
    assert "ok" not in answer, f"a write to the split parent was acknowledged: {answer}"
    monkeypatch.undo()
    c.cp.set_map(split_map(5, flipped=True))
    await until(lambda: all(n.map_version == 5 for n in c.nodes.values()), what="the current map")
    await everything_kept(c, newest)


async def test_dropping_a_parent_keeps_the_keys_of_its_hosted_children(cluster: Cluster) -> None:
    """The last guard on its own: a parent replica that never applied the split entry, hosted next to its
    children (which no map flow produces any more), deletes only what it still owns when dropped."""
    c = cluster
    newest = await split_and_flip(c)
    node = c.nodes["sn-a1"]
    stale = node._host(11, "t", TABLE_ID, 0, HALF, SPEC, NODES, persist=True, learner=True)
    assert stale.machine.split is None
    node._drop(11)
    assert c.stores["sn-a1"].stats(EVERYTHING.start, EVERYTHING.end).count == len(KEYS)
    await everything_kept(c, newest)


async def test_a_parent_replica_that_missed_the_split_is_dropped_before_its_children_arrive(
        cluster: Cluster) -> None:
    """The invariant of the normal flow: a parent replica that never applied the split entry (down through
    the split and the flip) is dropped with its whole range before the children come to its node as
    learners; they get a snapshot, and no item of theirs is lost or overwritten."""
    c = cluster
    await until(lambda: all(len(n.hosted) == 2 for n in c.nodes.values()), what="partitions hosted")
    for i, pk in enumerate(KEYS):
        assert await call(c, "PutItem", {"Item": item(pk, v={"N": str(i)})}, pk, False) == {"ok": {}}
    victim = "sn-c1"
    await c.stop_node(victim)
    c.cp.set_map(split_map(2, flipped=False))
    await until(lambda: all({LEFT, RIGHT} <= n.hosted.keys() for n in c.nodes.values()), timeout_s=10,
                what="children started on the live replicas")
    c.cp.set_map(split_map(4, flipped=True))
    await until(lambda: all(n.hosted.keys() == {12, LEFT, RIGHT} for n in c.nodes.values()), timeout_s=10,
                what="parent dropped on the live replicas")
    newest = {}
    for i, pk in enumerate(KEYS):
        assert await call(c, "PutItem", {"Item": item(pk, v={"N": str(2000 + i)})}, pk, True,
                          timeout_s=10) == {"ok": {}}
        newest[pk] = str(2000 + i)
    await c.start_node(victim)
    node = c.nodes[victim]
    await until(lambda: node.first_map.is_set(), what="the map after the restart")
    assert node.hosted.keys() == {12, LEFT, RIGHT}
    assert all(node.hosted[pid].machine.split is None for pid in node.hosted)
    await everything_kept(c, newest)
