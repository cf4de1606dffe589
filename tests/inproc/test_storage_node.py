"""Three storage nodes over real gRPC transports on 127.0.0.1, with a fake control plane that serves a fixed
partition map (one table, two partitions) and records heartbeats. Items travel as ITEM requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc.aio
import orjson
import pytest

from dynamo.hashing import partition_hash
from dynamo.keycodec import HASH_SPACE
from proto.kinds import Kind, partition_group
from runtime.config import Limits, PaxosTiming, build_cluster_config
from runtime.replication import DriverConfig
from runtime.store import Store
from runtime.transport import Message, Transport, TransportError
from storagenode.node import NodeConfig, StorageNode

pytestmark = pytest.mark.timeout(60)

NODES = ("sn-a1", "sn-b1", "sn-c1")
SPEC = {
    "TableName": "t",
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}
TABLE_ID = 4
HALF = HASH_SPACE // 2
PARTS = {11: (0, HALF), 12: (HALF, HASH_SPACE)}
LIMITS = Limits(reconnect_backoff_min_ms=20, reconnect_backoff_max_ms=200, connect_timeout_ms=300,
                request_timeout_ms=3000)
TIMING = PaxosTiming(tick_ms=10, heartbeat_interval_ticks=3, election_timeout_ticks=15, lease_ticks=12)
# Compact often, so a replica that was down catches up from a snapshot of the partition's items.
DRIVER = DriverConfig(tick_ms=TIMING.tick_ms, election_timeout_ticks=TIMING.election_timeout_ticks,
                      heartbeat_interval_ticks=TIMING.heartbeat_interval_ticks, compact_after_entries=10)
NODE_CONFIG = NodeConfig(map_wait_ms=1000, map_retry_min_ms=20, map_retry_max_ms=100, control_timeout_ms=300,
                         heartbeat_interval_ms=100, stats_interval_ms=100, write_timeout_ms=1500,
                         leader_ready_wait_ms=500)


def the_map(version: int, with_table: bool = True) -> dict[str, Any]:
    return {
        "version": version,
        "nodes": {n: {"az": n[3], "address": ""} for n in NODES},
        "tables": {"t": {"table_id": TABLE_ID, "status": "ACTIVE", "spec": SPEC, "partitions": list(PARTS)}}
        if with_table else {},
        "partitions": {
            str(pid): {"table_id": TABLE_ID, "lo": str(lo), "hi": str(hi), "replicas": list(NODES)}
            for pid, (lo, hi) in PARTS.items()
        } if with_table else {},
    }


class FakeControlPlane:
    """Answers get_map (long-polling on version) and heartbeat, as cp-a; cp-b and cp-c never answer."""

    def __init__(self) -> None:
        self.map = the_map(1)
        self.changed = asyncio.Event()
        self.heartbeats: dict[str, dict[str, Any]] = {}
        self.map_requests = 0

    def set_map(self, partition_map: dict[str, Any]) -> None:
        self.map = partition_map
        self.changed.set()
        self.changed = asyncio.Event()

    async def on_request(self, sender: str, message: Message) -> bytes:
        assert message.kind == Kind.CONTROL and message.group == "cp"
        req = orjson.loads(message.payload)
        if req["op"] == "get_map":
            self.map_requests += 1
            if self.map["version"] <= req["since"]:
                try:
                    await asyncio.wait_for(self.changed.wait(), req["wait_ms"] / 1000.0)
                except TimeoutError:
                    pass
            return orjson.dumps({"ok": self.map})
        assert req["op"] == "heartbeat", req
        self.heartbeats[req["node"]] = req
        return orjson.dumps({"ok": {"map_version": self.map["version"]}})


async def serve(transport: Transport, port: int) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(options=transport.server_options())
    transport.add_to_server(server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    assert bound, f"could not bind 127.0.0.1:{port}"
    await server.start()
    return server, bound


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.config = build_cluster_config(tmp, nodes_per_az=1, base_port=26400, paxos=TIMING, limits=LIMITS)
        self.peers: dict[str, str] = {"cp-b": "127.0.0.1:1", "cp-c": "127.0.0.1:1"}
        self.cp = FakeControlPlane()
        self.ports: dict[str, int] = {}
        self.servers: dict[str, grpc.aio.Server] = {}
        self.transports: dict[str, Transport] = {}
        self.nodes: dict[str, StorageNode] = {}
        self.stores: dict[str, Store] = {}
        self.node_config = NODE_CONFIG

    async def start(self) -> None:
        cp = Transport("cp-a", self.peers, LIMITS, on_request=self.cp.on_request)
        self.transports["cp-a"] = cp
        self.servers["cp-a"], self.ports["cp-a"] = await serve(cp, 0)
        self.client = Transport("rr-1", self.peers, LIMITS)
        for name in NODES:
            await self.start_node(name, initial=True)
        self.peers.update({n: f"127.0.0.1:{p}" for n, p in self.ports.items()})
        for transport in [*self.transports.values(), self.client]:
            transport.peers.update(self.peers)
        for name in NODES:
            self.nodes[name].start()

    async def start_node(self, name: str, initial: bool = False) -> None:
        holder: dict[str, StorageNode] = {}
        transport = Transport(name, self.peers, LIMITS,
                              on_message=lambda s, m: holder["node"].on_message(s, m),
                              on_request=lambda s, m: holder["node"].on_request(s, m))
        self.transports[name] = transport
        self.servers[name], self.ports[name] = await serve(transport, self.ports.get(name, 0))
        self.stores[name] = Store(self.tmp / name)
        node = holder["node"] = StorageNode(name, self.config, transport, self.stores[name], self.node_config, DRIVER)
        self.nodes[name] = node
        if not initial:
            node.start()

    async def stop_node(self, name: str) -> None:
        node = self.nodes.pop(name)
        await node.stop()
        await self.servers.pop(name).stop(grace=None)
        await self.transports.pop(name).close()
        await asyncio.sleep(0)
        self.stores.pop(name).close()

    async def close(self) -> None:
        for name in list(self.nodes):
            await self.stop_node(name)
        await self.client.close()
        for transport in self.transports.values():
            await transport.close()
        for server in self.servers.values():
            await server.stop(grace=None)

    # ---- a tiny router --------------------------------------------------------------------------------

    async def ask(self, node: str, op: str, request: dict[str, Any], *, consistent: bool = False,
                  pk: str | None = None, table_id: int = TABLE_ID, group: str | None = None) -> dict[str, Any]:
        pk = pk or (request.get("Item") or request["Key"])["pk"]["S"]
        hash64 = partition_hash("S", pk)
        group = group or partition_group(pid_of(pk))
        payload = {"op": op, "table": "t", "table_id": table_id, "map_version": 1, "hash": hash64,
                   "consistent": consistent, "request": {"TableName": "t", **request}}
        raw = await self.client.call(node, group, Kind.ITEM, orjson.dumps(payload), timeout_ms=3000)
        answer: dict[str, Any] = orjson.loads(raw)
        return answer

    async def leader_of(self, pid: int, timeout_s: float = 5.0) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            for name, node in self.nodes.items():
                if pid in node.hosted and node.host.leader_of(partition_group(pid)) == name:
                    return name
            await asyncio.sleep(0.01)
        raise AssertionError(f"no leader for partition {pid}")

    async def call(self, op: str, request: dict[str, Any], *, consistent: bool = False,
                   timeout_s: float = 5.0, pk: str | None = None) -> dict[str, Any]:
        """Send to any node, follow redirects, retry while unavailable: what the router will do."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        target = next(iter(self.nodes))
        last: Any = None
        while loop.time() < deadline:
            try:
                answer = await self.ask(target, op, request, consistent=consistent, pk=pk)
            except TransportError as exc:
                answer = {"unavailable": str(exc)}
            if "ok" in answer or "error" in answer:
                return answer
            last = answer
            hint = answer.get("redirect")
            if hint in self.nodes:
                target = hint
                continue
            names = list(self.nodes)
            target = names[(names.index(target) + 1) % len(names)] if target in names else names[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"{op} did not succeed in {timeout_s}s: {last}")


def pid_of(pk: str) -> int:
    return 11 if partition_hash("S", pk) < HALF else 12


def pk_in(pid: int, prefix: str = "k") -> str:
    return next(f"{prefix}{i}" for i in range(1000) if pid_of(f"{prefix}{i}") == pid)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    await c.start()
    try:
        yield c
    finally:
        await c.close()


async def until(predicate: Any, timeout_s: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def item(pk: str, **attrs: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, **attrs}


async def test_writes_reads_conditions_and_return_values(cluster: Cluster) -> None:
    c = cluster
    await until(lambda: all(len(n.hosted) == 2 for n in c.nodes.values()), what="partitions hosted")
    a, b = pk_in(11), pk_in(12)
    assert await c.call("PutItem", {"Item": item(a, v={"N": "1"}, s={"S": "x"})}) == {"ok": {}}
    assert await c.call("PutItem", {"Item": item(b, v={"N": "2"})}) == {"ok": {}}
    got = await c.call("GetItem", {"Key": item(a)}, consistent=True)
    assert got == {"ok": {"Item": item(a, v={"N": "1"}, s={"S": "x"})}}
    # every replica eventually serves both (eventually consistent reads from the applied store; a and b are in
    # different partitions, and a partition's lazy follower applies late)
    for name in NODES:
        async def seen(name: str = name) -> bool:
            got_a = (await c.ask(name, "GetItem", {"Key": item(a)}))["ok"].get("Item")
            got_b = (await c.ask(name, "GetItem", {"Key": item(b)}))["ok"].get("Item")
            return got_a == item(a, v={"N": "1"}, s={"S": "x"}) and got_b == item(b, v={"N": "2"})
        for _ in range(100):
            if await seen():
                break
            await asyncio.sleep(0.02)
        assert await seen(), name
    # projection and consumed capacity
    got = await c.call("GetItem", {"Key": item(a), "ProjectionExpression": "#s", "ExpressionAttributeNames":
                                   {"#s": "s"}, "ReturnConsumedCapacity": "TOTAL"}, consistent=True)
    assert got == {"ok": {"Item": {"s": {"S": "x"}}, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}}}
    got = await c.call("GetItem", {"Key": item(a), "AttributesToGet": ["v"]})
    assert got["ok"] == {"Item": {"v": {"N": "1"}}}
    assert set(got) <= {"ok", "leader"}  # a follower's eventually consistent answer names the leader
    assert await c.call("GetItem", {"Key": item("missing")}, consistent=True) == {"ok": {}}
    # UpdateItem with ReturnValues
    got = await c.call("UpdateItem", {"Key": item(a), "UpdateExpression": "SET v = v + :one, w = :w",
                                      "ExpressionAttributeValues": {":one": {"N": "1"}, ":w": {"S": "new"}},
                                      "ReturnValues": "UPDATED_OLD"})
    assert got == {"ok": {"Attributes": {"v": {"N": "1"}}}}
    got = await c.call("UpdateItem", {"Key": item(a), "UpdateExpression": "REMOVE w", "ReturnValues": "ALL_NEW",
                                      "ReturnConsumedCapacity": "TOTAL"})
    assert got["ok"]["Attributes"] == item(a, v={"N": "2"}, s={"S": "x"})
    assert got["ok"]["ConsumedCapacity"] == {"TableName": "t", "CapacityUnits": 1.0}
    # a failed condition, with and without the old item
    cond = {"ConditionExpression": "v = :nine", "ExpressionAttributeValues": {":nine": {"N": "9"}}}
    got = await c.call("PutItem", {"Item": item(a), **cond})
    assert got["error"]["__type"].endswith("ConditionalCheckFailedException") and "Item" not in got["error"]
    got = await c.call("DeleteItem", {"Key": item(a), **cond, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})
    assert got["error"]["Item"] == item(a, v={"N": "2"}, s={"S": "x"})
    got = await c.call("PutItem", {"Item": item(a, n={"N": "0"}), "ConditionExpression": "attribute_exists(pk)",
                                   "ReturnValues": "ALL_OLD"})
    assert got == {"ok": {"Attributes": item(a, v={"N": "2"}, s={"S": "x"})}}
    # bad expressions are the client's error, decided at the node
    got = await c.call("UpdateItem", {"Key": item(a), "UpdateExpression": "SET v = :missing"})
    assert got["error"]["__type"].endswith("ValidationException")
    # keys that do not match the schema
    for bad_key in ({"pk": {"N": "1"}}, {"pk": {"S": a}, "extra": {"S": "x"}}, {"other": {"S": a}}):
        got = await c.call("DeleteItem", {"Key": bad_key}, pk=a)
        assert got["error"]["message"] == "The provided key element does not match the schema", bad_key
    got = await c.call("PutItem", {"Item": {"other": {"S": "x"}}}, pk=a)
    assert got["error"]["message"] == "One of the required keys was not given a value"
    # 40 increments of one key in flight at once see each other in order
    leader = await c.leader_of(11)
    answers = await asyncio.gather(*(c.ask(leader, "UpdateItem", {
        "Key": item(a), "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}},
        "ReturnValues": "UPDATED_NEW"}) for _ in range(40)))
    assert sorted(int(ans["ok"]["Attributes"]["n"]["N"]) for ans in answers) == list(range(1, 41))
    assert (await c.call("GetItem", {"Key": item(a)}, consistent=True))["ok"]["Item"]["n"] == {"N": "40"}
    # delete, then it is gone; deleting a missing item is fine
    got = await c.call("DeleteItem", {"Key": item(a), "ReturnValues": "ALL_OLD"})
    assert got["ok"]["Attributes"]["n"] == {"N": "40"}
    assert await c.call("DeleteItem", {"Key": item(a), "ReturnValues": "ALL_OLD"}) == {"ok": {}}
    assert await c.call("GetItem", {"Key": item(a)}, consistent=True) == {"ok": {}}
    # UpdateItem past 400 KB: DynamoDB's message for an update
    big = {"S": "x" * 300_000}
    assert "ok" in await c.call("PutItem", {"Item": item(b, big=big)})
    got = await c.call("UpdateItem", {"Key": item(b), "UpdateExpression": "SET big2 = :b",
                                      "ExpressionAttributeValues": {":b": big}})
    assert got["error"]["__type"].endswith("ValidationException"), got
    assert "update" in got["error"]["message"].lower()


async def test_redirects_stale_and_heartbeats(cluster: Cluster) -> None:
    c = cluster
    leader = await c.leader_of(11)
    follower = next(n for n in NODES if n != leader)
    a, b = pk_in(11), pk_in(12)
    answer: dict[str, Any] = {}
    for _ in range(50):  # the follower may not have heard the leader yet
        answer = await c.ask(follower, "PutItem", {"Item": item(a)})
        if answer.get("redirect"):
            break
        await asyncio.sleep(0.02)
    assert answer == {"redirect": leader}
    assert (await c.ask(follower, "GetItem", {"Key": item(a)}, consistent=True)) == {"redirect": leader}
    # An eventually consistent read: a follower serves it and names the leader; the leader just serves it.
    assert (await c.ask(follower, "GetItem", {"Key": item(a)}))["leader"] == leader
    assert "leader" not in await c.ask(leader, "GetItem", {"Key": item(a)})
    assert await c.ask(leader, "PutItem", {"Item": item(a)}, table_id=99) == {"stale": 1}
    assert await c.ask(leader, "GetItem", {"Key": item(b)}, group="p11") == {"stale": 1}
    assert await c.ask(leader, "GetItem", {"Key": item(b)}, group="p77") == {"stale": 1}
    assert (await c.ask(leader, "TransactWriteItems", {"Key": item(a)}))["error"]["__type"].endswith("UnknownOperationException")
    await until(lambda: set(c.cp.heartbeats) == set(NODES), what="heartbeats from every node")
    await until(lambda: any(r["role"] == "leader" for r in c.cp.heartbeats[leader]["replicas"]), what="roles")
    beat = c.cp.heartbeats[leader]
    assert {r["group"] for r in beat["replicas"]} == {"p11", "p12"}
    await c.call("PutItem", {"Item": item(a, x={"S": "y"})})
    await until(lambda: c.cp.heartbeats[leader]["stats"].get("11", {}).get("items") == 1, what="item stats")
    assert c.cp.heartbeats[leader]["az"] == leader[3]


async def test_a_change_of_leader_is_reported_at_once_not_with_the_next_heartbeat(tmp_path: Path) -> None:
    """Heartbeats every 20 s here: the control plane still hears of a new leader within a second (a new
    table turns ACTIVE, and `ddb status` shows a failover, without waiting for the periodic report)."""
    c = Cluster(tmp_path)
    c.node_config = replace(NODE_CONFIG, heartbeat_interval_ms=20_000)
    await c.start()
    try:
        def reported_leader(pid: int) -> str:
            for name, beat in c.cp.heartbeats.items():
                if name in c.nodes and any(r["group"] == f"p{pid}" and r["role"] == "leader" for r in beat["replicas"]):
                    return name
            return ""

        # Two of the three control-plane addresses never answer here: a failed heartbeat tries the next
        # one soon, not 20 s later.
        old = await c.leader_of(11)
        await until(lambda: reported_leader(11) == old, what="the first leader reported")
        await until(lambda: set(c.cp.heartbeats) == set(NODES), what="every node heard")
        await c.stop_node(old)
        new = await c.leader_of(11)
        loop = asyncio.get_running_loop()
        elected = loop.time()
        await until(lambda: reported_leader(11) == new, timeout_s=1.0, what="the new leader reported at once")
        print(f"new leader reported {1000 * (loop.time() - elected):.0f} ms after its election")
    finally:
        await c.close()


async def test_leader_failover_restart_catch_up_and_no_lost_writes(cluster: Cluster) -> None:
    c = cluster
    acked: dict[str, str] = {}
    keys = [f"k{i}" for i in range(12)]
    for i, pk in enumerate(keys):
        assert "ok" in await c.call("PutItem", {"Item": item(pk, v={"N": str(i)})})
        acked[pk] = str(i)
    old = await c.leader_of(11)
    await c.stop_node(old)
    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    a = pk_in(11, "fail")
    assert "ok" in await c.call("PutItem", {"Item": item(a, v={"N": "1"})}, timeout_s=3.0)
    acked[a] = "1"
    assert loop.time() - killed_at < 3.0
    new = await c.leader_of(11)
    assert new != old
    for i, pk in enumerate(keys):  # writes continue while the old leader is down
        assert "ok" in await c.call("PutItem", {"Item": item(pk, v={"N": str(100 + i)})})
        acked[pk] = str(100 + i)
    await c.start_node(old)
    restarted = c.nodes[old]
    assert set(restarted.hosted) == {11, 12}, "replicas resume from the store before any map"
    # it catches up: its applied store holds every acknowledged write
    async def caught_up() -> bool:
        for pk, v in acked.items():
            try:
                got = await c.ask(old, "GetItem", {"Key": item(pk)})
            except TransportError:  # the client's link to the restarted node reconnects
                return False
            if got.get("ok", {}).get("Item", {}).get("v") != {"N": v}:
                return False
        return True
    for _ in range(150):
        if await caught_up():
            break
        await asyncio.sleep(0.03)
    assert await caught_up()
    written_while_down = 1 + sum(1 for pk in keys if pid_of(pk) == 11)
    assert restarted.hosted[11].machine.applied_entries < written_while_down, "caught up from a snapshot"
    await until(lambda: restarted.first_map.is_set(), what="map after restart")
    for pk, v in acked.items():  # and the leaders have every acknowledged write
        got = await c.call("GetItem", {"Key": item(pk)}, consistent=True)
        assert got["ok"]["Item"]["v"] == {"N": v}, pk


async def test_map_changes_drop_replicas_and_their_items(cluster: Cluster) -> None:
    c = cluster
    a = pk_in(12)
    assert "ok" in await c.call("PutItem", {"Item": item(a)})
    await until(lambda: all(n.map_version == 1 for n in c.nodes.values()), what="map v1")
    # a partition placed on a node this cluster config does not know: its messages are dropped, nothing breaks
    odd = the_map(2)
    odd["partitions"]["13"] = {"table_id": TABLE_ID, "lo": "0", "hi": "1", "replicas": ["sn-a1", "sn-b1", "sn-x9"]}
    c.cp.set_map(odd)
    await until(lambda: all(n.map_version == 2 for n in c.nodes.values()), what="map v2")
    assert 13 in c.nodes["sn-a1"].hosted and 13 not in c.nodes["sn-c1"].hosted
    loop = asyncio.get_running_loop()
    crashes: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: crashes.append(context))
    try:
        await asyncio.sleep(0.3)  # elections on p13 send to sn-x9
        assert "ok" in await c.call("PutItem", {"Item": item(a, v={"N": "2"})})
    finally:
        loop.set_exception_handler(None)
    assert not crashes, crashes
    c.cp.set_map(the_map(3, with_table=False))
    await until(lambda: all(not n.hosted and n.map_version == 3 for n in c.nodes.values()), what="replicas dropped")
    for name, store in c.stores.items():
        assert store.groups() == [], name
        assert store.stats(b"", b"\xff" * 16).count == 0, name
    assert await c.ask(NODES[0], "GetItem", {"Key": item(a)}) == {"stale": 3}


async def test_two_nodes_down_fail_fast_then_recover_without_loss(cluster: Cluster) -> None:
    c = cluster
    acked: dict[str, str] = {}
    for i in range(6):
        pk = f"q{i}"
        assert "ok" in await c.call("PutItem", {"Item": item(pk, v={"N": str(i)})})
        acked[pk] = str(i)
    survivor = await c.leader_of(11)
    for name in NODES:
        if name != survivor:
            await c.stop_node(name)
    loop = asyncio.get_running_loop()
    a = pk_in(11, "lost")
    for _ in range(3):  # the leader cannot commit: a clear non-ok answer, well before the router's timeout
        started = loop.time()
        answer = await c.ask(survivor, "PutItem", {"Item": item(a)})
        assert "ok" not in answer and "error" not in answer, answer
        assert loop.time() - started < NODE_CONFIG.write_timeout_ms / 1000.0 + 0.5
        assert "unavailable" in answer or answer.get("redirect") in ("", *NODES), answer
    got = await c.ask(survivor, "GetItem", {"Key": item("q0")}, consistent=True)
    assert "ok" not in got, "no lease without a quorum"
    for name in NODES:
        if name != survivor:
            await c.start_node(name)
    for pk, v in acked.items():
        got = await c.call("GetItem", {"Key": item(pk)}, consistent=True)
        assert got["ok"]["Item"]["v"] == {"N": v}, pk
    assert "ok" in await c.call("PutItem", {"Item": item(a, v={"N": "7"})})


async def test_a_new_partition_is_first_led_by_the_replica_the_map_names(cluster: Cluster) -> None:
    """The map names each new partition's first leader (``Metadata.first_leaders``): that replica campaigns
    as soon as it hosts the group, while the others wait out their election timeouts."""
    c = cluster
    await until(lambda: all(n.map_version == 1 for n in c.nodes.values()), what="map v1")
    named = {13: "sn-b1", 14: "sn-c1"}
    grown = the_map(2)
    grown["tables"]["u"] = {"table_id": TABLE_ID + 1, "status": "CREATING", "spec": SPEC, "partitions": list(named)}
    for pid, (lo, hi) in zip(named, ((0, HALF), (HALF, HASH_SPACE)), strict=True):
        grown["partitions"][str(pid)] = {"table_id": TABLE_ID + 1, "lo": str(lo), "hi": str(hi),
                                         "replicas": list(NODES), "first_leader": named[pid]}
    c.cp.set_map(grown)

    def leaders() -> dict[int, str]:
        return {pid: leader for pid in named for node in c.nodes.values()
                if (leader := node.host.leader_of(partition_group(pid))) and pid in node.hosted}

    await until(lambda: leaders() == named, timeout_s=3.0, what=f"first leaders {named}")
