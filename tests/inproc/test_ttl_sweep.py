"""Time to live on real storage nodes over gRPC (fake control plane): each partition's leader deletes the
items whose TTL attribute expired, through the log (every replica applies the delete), and nothing else:
not items that expire later, not a String or a value more than five years old, not an item updated since
the sweep saw it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from dynamo.ttl import MAX_EXPIRED_AGE_S
from storagenode import streams
from tests.inproc.test_storage_node import NODES, TABLE_ID, Cluster, item, pk_in, the_map, until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    ttl_map = the_map(2)
    ttl_map["tables"]["t"]["ttl"] = "exp"
    ttl_map["tables"]["t"]["stream"] = [1, "OLD_IMAGE"]  # its records name who deleted an item
    c.cp.map = ttl_map
    await c.start()
    try:
        yield c
    finally:
        await c.close()


async def test_leaders_delete_expired_items_and_only_those(cluster: Cluster) -> None:
    c = cluster
    await until(lambda: all(n.map_version == 2 and len(n.hosted) == 2 for n in c.nodes.values()), what="map")
    assert all(n.ttl_attributes for n in c.nodes.values())
    now = time.time()
    values = {
        "gone": {"N": str(int(now) - 10)},
        "later": {"N": str(int(now) + 3600)},
        "string": {"S": str(int(now) - 10)},
        "ancient": {"N": str(int(now - MAX_EXPIRED_AGE_S) - 100)},
    }
    keys: dict[str, str] = {}
    for pid in (11, 12):
        for name, value in values.items():
            pk = pk_in(pid, f"{name}-")
            keys[f"{name}{pid}"] = pk
            assert "ok" in await c.call("PutItem", {"Item": item(pk, exp=value)}, pk=pk)
        plain = pk_in(pid, "plain-")
        keys[f"plain{pid}"] = plain
        assert "ok" in await c.call("PutItem", {"Item": item(plain)}, pk=plain)

    # An item updated after it expired, between the sweep's look and its delete, stays.
    revived = keys["gone11"]
    leader11 = c.nodes[await c.leader_of(11)]
    hosted = leader11.hosted[11]
    skey = hosted.data.storage_key(item(revived))
    assert "ok" in await c.call("PutItem", {"Item": item(revived, exp={"N": str(int(now) + 3600)})}, pk=revived)
    assert not await leader11.items.expire(hosted, skey, "exp", values["gone"]["N"], now)

    deleted = sum([await n.sweep_expired(now) for n in c.nodes.values()])
    assert deleted == 1, "only partition 12's expired item (partition 11's was updated)"
    assert leader11.items.ttl_deleted.get("t", 0) + sum(
        n.items.ttl_deleted.get("t", 0) for n in c.nodes.values() if n is not leader11) == 1
    for name, pk in keys.items():
        got = await c.call("GetItem", {"Key": item(pk)}, consistent=True, pk=pk)
        assert ("Item" in got["ok"]) == (name != "gone12"), name
    # Every replica applied the delete (it went through the log).
    gone = keys["gone12"]
    for name in NODES:
        await until(lambda name=name: c.nodes[name].hosted[12].data.read_applied(
            c.nodes[name].hosted[12].data.storage_key(item(gone))) is None, what=f"{name} applied the delete")
    # Its stream record, on every replica, says time to live deleted it (DynamoDB's userIdentity); the
    # records of the client's own writes do not.
    for name in NODES:
        store = c.nodes[name].store
        records = [orjson.loads(raw) for _, raw in store.scan(*streams.span(TABLE_ID, 12))]
        removed = [r for r in records if r["e"] == "REMOVE"]
        assert len(removed) == 1 and removed[0].get("u") == 1 and removed[0]["o"]["pk"] == item(gone)["pk"], name
        assert all("u" not in r for r in records if r["e"] != "REMOVE")
    # A follower does not sweep; the leader's next look starts over and finds nothing more.
    assert sum([await n.sweep_expired(now) for n in c.nodes.values()]) == 0


async def test_a_sweep_is_bounded_and_goes_on_where_it_stopped(cluster: Cluster) -> None:
    c = cluster
    await until(lambda: all(n.map_version == 2 and len(n.hosted) == 2 for n in c.nodes.values()), what="map")
    now = time.time()
    pks = [pk_in(11, f"e{i}-") for i in range(7)]
    for pk in pks:
        assert "ok" in await c.call("PutItem", {"Item": item(pk, exp={"N": str(int(now) - 1)})}, pk=pk)
    leader = c.nodes[await c.leader_of(11)]
    leader.config = replace(leader.config, admin=replace(leader.config.admin, ttl_sweep_deletes=3))
    counts = [await leader.sweep_expired(now) for _ in range(4)]
    assert counts[:3] == [3, 3, 1] and counts[3] == 0, counts
