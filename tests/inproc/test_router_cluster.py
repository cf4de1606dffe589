"""The router's cluster backend against FAKE control-plane and storage nodes over real gRPC on 127.0.0.1.

The fakes speak proto/kinds.py: the control plane serves a versioned map (long-polled) and table
operations at its leader (others redirect); storage nodes keep one partition's items, redirect writes and
strong reads to the partition's leader and answer ``stale`` for partitions they no longer host. Each test
scripts a failure (redirects, a split, a dead replica, a partition without quorum, a missing table) and
checks what the router did about it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import boto3
import grpc.aio
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dynamo.errors import (
    ConditionalCheckFailedException,
    InternalServerError,
    ResourceInUseException,
    ResourceNotFoundException,
    ServiceUnavailableException,
    ValidationException,
)
from dynamo.hashing import partition_hash
from dynamo.requests import OPERATIONS, validate_request
from proto.kinds import Kind
from router.app import RouterApp
from router.backend import RequestContext, method_name
from router.cluster import BackendConfig, ClusterBackend
from router.routing import HASH_SPACE
from runtime.config import Limits, build_cluster_config
from runtime.process import ProcessHost
from runtime.transport import Message, Transport

pytestmark = pytest.mark.timeout(60)

LIMITS = Limits(reconnect_backoff_min_ms=20, reconnect_backoff_max_ms=200, connect_timeout_ms=300)
FAST = BackendConfig(request_deadline_ms=1_500, attempt_timeout_ms=500, control_deadline_ms=1_500,
                     control_attempt_timeout_ms=500, map_poll_wait_ms=2_000, refresh_wait_ms=100)
CP = ("cp-a", "cp-b", "cp-c")
SN = ("sn-a1", "sn-b1", "sn-c1")
SPEC = {
    "TableName": "tbl",
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def ctx(operation: str = "PutItem") -> RequestContext:
    # Built by field name: the front-door helper may add fields (a signing region) to the context.
    values = {"request_id": "r" * 52, "operation": operation, "access_key_id": "AKID", "region": "us-east-1",
              "signing_region": "us-east-1"}
    names = [f.name for f in dataclasses.fields(RequestContext)]
    return RequestContext(**{name: values[name] for name in names})


class FakeNode:
    """A gRPC transport endpoint whose request handler the fake cluster provides."""

    def __init__(self, name: str, handler: Callable[[str, Message], Any]) -> None:
        self.name = name
        self.transport = Transport(name, {}, LIMITS, on_request=handler)
        self.server: grpc.aio.Server | None = None
        self.address = ""

    async def start(self, address: str = "127.0.0.1:0") -> str:
        server = grpc.aio.server(options=self.transport.server_options())
        self.transport.add_to_server(server)
        port = server.add_insecure_port(address)
        assert port, f"cannot bind {address}"
        await server.start()
        self.server = server
        self.address = f"127.0.0.1:{port}"
        return self.address

    async def kill(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=None)
            self.server = None
        await self.transport.close()


class FakeCluster:
    """One table "tbl"; its partitions' items in one dict per partition; a control plane with a leader."""

    def __init__(self) -> None:
        self.version = 1
        self.status = "ACTIVE"
        self.tables: dict[str, dict[str, Any]] = {"tbl": {"spec": SPEC, "table_id": 1}}
        self.partitions: dict[int, tuple[int, int]] = {1: (0, HASH_SPACE)}
        self.partition_leader: dict[int, str] = {1: "sn-b1"}
        self.items: dict[str, dict[str, Any]] = {}
        self.cp_leader = "cp-a"
        self.wake_polls = True  # False: pending long polls do not learn of changes (a lazy control plane)
        self.changed = asyncio.Event()
        self.polls_waiting = 0
        self.calls: list[tuple[str, str, str]] = []  # (node, op, group)
        self.script: dict[str, list[dict[str, Any]]] = {}  # node -> answers to give before behaving
        self.delay_s: dict[str, float] = {}
        self.nodes: dict[str, FakeNode] = {}
        for name in CP:
            self.nodes[name] = FakeNode(name, self._control_handler(name))
        for name in SN:
            self.nodes[name] = FakeNode(name, self._storage_handler(name))

    async def start(self, addresses: dict[str, str] | None = None) -> dict[str, str]:
        peers = {}
        for name, node in self.nodes.items():
            peers[name] = await node.start((addresses or {}).get(name, "127.0.0.1:0"))
        return peers

    async def stop(self) -> None:
        for node in self.nodes.values():
            await node.kill()

    async def lazy(self) -> None:
        """From now on, the router's pending long poll does not learn of changes: only the router's own
        refreshes (after stale answers, redirects, unknown tables) can."""
        self.wake_polls = False
        for _ in range(500):
            if self.polls_waiting:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the router has no long poll pending")

    def bump(self) -> None:
        self.version += 1
        if self.wake_polls:
            self.changed.set()
            self.changed = asyncio.Event()

    def to_map(self) -> dict[str, Any]:
        tables = {
            name: {"table_id": t["table_id"], "status": self.status if name == "tbl" else "ACTIVE", "spec": t["spec"],
                   "partitions": sorted(self.partitions) if name == "tbl" else []}
            for name, t in self.tables.items()
        }
        return {
            "version": self.version,
            "nodes": {n: {"az": n[3], "address": "-"} for n in SN},
            "tables": tables,
            "partitions": {str(pid): {"table_id": 1, "lo": str(lo), "hi": str(hi), "replicas": list(SN)}
                           for pid, (lo, hi) in self.partitions.items()},
        }

    def _control_handler(self, name: str) -> Callable[[str, Message], Any]:
        async def handle(sender: str, message: Message) -> bytes:
            assert message.kind == Kind.CONTROL and message.group == "cp"
            request = orjson.loads(message.payload)
            op = request["op"]
            self.calls.append((name, op, message.group))
            if op == "get_map":
                if request["since"] >= self.version:
                    waiter = self.changed
                    self.polls_waiting += 1
                    try:
                        await asyncio.wait_for(waiter.wait(), request["wait_ms"] / 1000.0)
                    except TimeoutError:
                        pass
                    finally:
                        self.polls_waiting -= 1
                return orjson.dumps({"ok": self.to_map()})
            if name != self.cp_leader:
                return orjson.dumps({"redirect": self.cp_leader})
            return orjson.dumps(self._table_op(op, request))

        return handle

    def _table_op(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        if op == "describe_table":
            name = request["name"]
            if name not in self.tables:
                return {"error": ResourceNotFoundException(
                    f"Requested resource not found: Table: {name} not found").to_body()}
            return {"ok": {"Table": {"TableName": name, "TableStatus": self.status}}}
        if op == "create_table":
            name = request["request"]["TableName"]
            if name in self.tables:
                return {"error": ResourceInUseException(f"Table already exists: {name}").to_body()}
            self.tables[name] = {"spec": request["request"], "table_id": len(self.tables) + 1}
            self.bump()
            return {"ok": {"TableDescription": {"TableName": name, "TableStatus": "CREATING"}}}
        if op == "list_tables":
            return {"ok": {"TableNames": sorted(self.tables)}}
        return {"error": ValidationException(f"fake control plane: no {op}").to_body()}

    def _storage_handler(self, name: str) -> Callable[[str, Message], Any]:
        async def handle(sender: str, message: Message) -> bytes:
            assert message.kind == Kind.ITEM
            request = orjson.loads(message.payload)
            self.calls.append((name, request["op"], message.group))
            delay = self.delay_s.get(name)
            if delay:
                await asyncio.sleep(delay)
            scripted = self.script.get(name)
            if scripted:
                return orjson.dumps(scripted.pop(0))
            return orjson.dumps(self._item_op(name, message.group, request))

        return handle

    def _item_op(self, name: str, group: str, request: dict[str, Any]) -> dict[str, Any]:
        pid = int(group[1:])
        bounds = self.partitions.get(pid)
        if bounds is None or not bounds[0] <= request["hash"] < bounds[1]:
            return {"stale": self.version}
        op, body = request["op"], request["request"]
        strong = op != "GetItem" or request["consistent"]
        leader = self.partition_leader.get(pid, "")
        if strong and name != leader:
            return {"redirect": leader}
        if op == "PutItem":
            key = body["Item"]["pk"]["S"]
            old = self.items.get(key)
            if body.get("ConditionExpression") == "attribute_not_exists(pk)" and old is not None:
                return {"error": ConditionalCheckFailedException().to_body()}
            self.items[key] = body["Item"]
            return {"ok": {"Attributes": old} if old is not None and body.get("ReturnValues") == "ALL_OLD" else {}}
        if op == "GetItem":
            item = self.items.get(body["Key"]["pk"]["S"])
            answer: dict[str, Any] = {"ok": {} if item is None else {"Item": item}}
            if name != leader and leader:
                answer["leader"] = leader  # a follower's eventually consistent answer names the leader
            return answer
        if op == "DeleteItem":
            self.items.pop(body["Key"]["pk"]["S"], None)
            return {"ok": {}}
        return {"error": ValidationException(f"fake storage node: no {op}").to_body()}

    def item_calls(self) -> list[str]:
        return [node for node, op, group in self.calls if group.startswith("p")]


class FrontDoorValidated:
    """The backend as the front door calls it: every request validated (and its values normalised in place)
    by ``dynamo.requests`` first, as the backend's contract assumes."""

    def __init__(self, backend: ClusterBackend) -> None:
        self._backend = backend
        self._operations = {method_name(op): op for op in OPERATIONS}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._backend, name)
        operation = self._operations.get(name)
        if operation is None:
            return attribute

        async def call(request: dict[str, Any], context: RequestContext) -> Any:
            return await attribute(validate_request(operation, request), context)

        return call


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[FakeCluster, Any, Transport]]:
    fake = FakeCluster()
    peers = await fake.start()
    transport = Transport("rr-1", peers, LIMITS)
    backend = ClusterBackend(transport, CP, FAST)
    await backend.start()
    assert await backend.wait_for_map(3_000)
    yield fake, FrontDoorValidated(backend), transport
    await backend.stop()
    await transport.close()
    await fake.stop()


def put(pk: str, **more: Any) -> dict[str, Any]:
    return {"TableName": "tbl", "Item": {"pk": {"S": pk}, "n": {"N": "1.50"}}, **more}


# ---- item routing ----------------------------------------------------------------------------------------


async def test_writes_follow_the_redirect_and_remember_the_leader(cluster: Any) -> None:
    fake, backend, _ = cluster
    assert await backend.put_item(put("a"), ctx()) == {}
    assert fake.item_calls() == ["sn-a1", "sn-b1"]  # no hint yet: the first replica redirected to the leader
    assert fake.items["a"]["n"] == {"N": "1.5"}  # numbers reach the leader normalised
    fake.calls.clear()
    await backend.put_item(put("b"), ctx())
    got = await backend.get_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}}, "ConsistentRead": True}, ctx("GetItem"))
    assert got == {"Item": {"pk": {"S": "a"}, "n": {"N": "1.5"}}}
    assert fake.item_calls() == ["sn-b1", "sn-b1"]  # straight to the leader now
    # Errors the storage node decided come back as the same DynamoDB error, with their extras.
    with pytest.raises(ConditionalCheckFailedException):
        await backend.put_item(put("a", ConditionExpression="attribute_not_exists(pk)"), ctx())
    assert backend.stats["redirects"] == 1


async def test_leader_change_is_followed(cluster: Any) -> None:
    fake, backend, _ = cluster
    await backend.put_item(put("a"), ctx())
    fake.partition_leader[1] = "sn-c1"
    fake.calls.clear()
    await backend.put_item(put("b"), ctx())
    assert fake.item_calls() == ["sn-b1", "sn-c1"]


async def test_a_redirect_to_a_replica_the_map_lacks_refreshes_the_map(cluster: Any) -> None:
    fake, backend, _ = cluster
    await fake.lazy()
    fake.script["sn-a1"] = [{"redirect": "sn-b9"}]  # a repaired replica set the router has not seen yet
    fake.bump()
    assert await backend.put_item(put("a"), ctx()) == {}
    assert backend.map_version == 2 and fake.item_calls() == ["sn-a1", "sn-a1", "sn-b1"]


async def test_an_empty_redirect_backs_off_until_a_leader_is_elected(cluster: Any) -> None:
    fake, backend, _ = cluster
    fake.partition_leader[1] = ""  # an election is running

    async def elect() -> None:
        await asyncio.sleep(0.2)
        fake.partition_leader[1] = "sn-a1"

    asyncio.get_running_loop().create_task(elect())
    started = time.monotonic()
    assert await backend.put_item(put("a"), ctx()) == {}
    assert 0.15 < time.monotonic() - started < 1.5
    assert fake.item_calls()[-1] == "sn-a1" and "a" in fake.items
    # The backoff is bounded: a few dozen calls at most, not a busy loop.
    assert len(fake.item_calls()) < 30


async def test_eventually_consistent_reads_go_to_the_leader_once_known(cluster: Any) -> None:
    """Without a leader hint, eventually consistent reads round-robin over the replicas; a follower's answer
    names the leader, and from then on they go there (fresh answers, and fewer streams to batch over)."""
    fake, backend, _ = cluster
    fake.items["a"] = {"pk": {"S": "a"}}
    for _ in range(6):
        got = await backend.get_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}}}, ctx("GetItem"))
        assert got["Item"]["pk"] == {"S": "a"}
    calls = fake.item_calls()
    assert calls[0] == "sn-a1", calls  # no hint: the round robin's first replica, a follower
    assert calls[1:] == ["sn-b1"] * 5, calls  # the leader it named, from then on
    fake.calls.clear()
    await fake.nodes["sn-b1"].kill()  # the leader is gone: the reads still find a replica
    got = await backend.get_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}}}, ctx("GetItem"))
    assert got["Item"]["pk"] == {"S": "a"}
    assert fake.item_calls()[-1] != "sn-b1"


async def test_a_stale_map_is_refreshed_after_a_split(cluster: Any) -> None:
    fake, backend, _ = cluster
    await backend.put_item(put("a"), ctx())
    # The partition splits; the control plane does not wake the router's pending long poll, so only the
    # storage nodes' "stale" answers can tell the router.
    await fake.lazy()
    half = HASH_SPACE // 2
    del fake.partitions[1]
    fake.partitions.update({2: (0, half), 3: (half, HASH_SPACE)})
    fake.partition_leader.update({2: "sn-c1", 3: "sn-a1"})
    fake.bump()
    fake.calls.clear()
    got = await backend.get_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}}, "ConsistentRead": True}, ctx("GetItem"))
    assert got["Item"]["pk"] == {"S": "a"}
    groups = [group for _node, _op, group in fake.calls if group.startswith("p")]
    expected = "p2" if partition_hash("S", "a") < half else "p3"
    assert groups[0] == "p1" and groups[-1] == expected
    assert backend.stats["stale"] == 1 and backend.map_version == 2


async def test_failover_when_the_leader_dies_before_the_router_ever_reached_it(cluster: Any) -> None:
    fake, backend, _ = cluster
    await fake.nodes["sn-b1"].kill()  # the leader is gone; the others still name it for a while

    async def elect() -> None:
        await asyncio.sleep(0.3)
        fake.partition_leader[1] = "sn-c1"

    asyncio.get_running_loop().create_task(elect())
    assert await backend.put_item(put("a"), ctx()) == {}
    assert "a" in fake.items and fake.item_calls()[-1] == "sn-c1"
    assert backend.stats["transport_errors"] >= 1


async def test_eventual_reads_skip_a_dead_replica(cluster: Any) -> None:
    fake, backend, _ = cluster
    await backend.put_item(put("a"), ctx())
    await fake.nodes["sn-a1"].kill()
    for _ in range(4):
        got = await backend.get_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}}}, ctx("GetItem"))
        assert got["Item"]["pk"] == {"S": "a"}


async def test_a_write_with_an_unknown_outcome_is_not_resent(cluster: Any) -> None:
    fake, backend, _ = cluster
    await backend.put_item(put("a"), ctx())  # learn the leader
    fake.delay_s["sn-b1"] = 2.0  # slower than the attempt timeout: the write may or may not apply
    fake.calls.clear()
    with pytest.raises(InternalServerError):
        await backend.put_item(put("b"), ctx())
    assert fake.item_calls() == ["sn-b1"]
    assert InternalServerError.retryable and InternalServerError.http_status == 500


async def test_a_write_the_node_could_not_confirm_is_not_resent(cluster: Any) -> None:
    fake, backend, _ = cluster
    await backend.put_item(put("a"), ctx())  # learn the leader
    fake.script["sn-b1"] = [{"unavailable": "the write may or may not have been applied"}]
    fake.calls.clear()
    started = time.monotonic()
    with pytest.raises(InternalServerError, match="may or may not have been applied"):
        await backend.update_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}},
                                   "UpdateExpression": "ADD n :one",
                                   "ExpressionAttributeValues": {":one": {"N": "1"}}}, ctx("UpdateItem"))
    assert fake.item_calls() == ["sn-b1"] and time.monotonic() - started < 0.5


async def test_reads_are_retried_elsewhere_after_a_timeout(cluster: Any) -> None:
    fake, backend, _ = cluster
    await backend.put_item(put("a"), ctx())
    fake.delay_s["sn-a1"] = 2.0
    for _ in range(3):
        got = await backend.get_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}}}, ctx("GetItem"))
        assert got["Item"]["pk"] == {"S": "a"}


async def test_no_quorum_answers_a_retryable_error_by_the_deadline(cluster: Any) -> None:
    fake, backend, _ = cluster
    for node in SN:
        fake.script[node] = [{"unavailable": "lease not ready", "not_applied": True}] * 1000
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableException) as caught:
        await backend.put_item(put("a"), ctx())
    elapsed = time.monotonic() - started
    # Bounded in time (the deadline) and in attempts, whichever comes first: no hang, no busy loop.
    assert elapsed < FAST.request_deadline_ms / 1000 + 0.5
    assert caught.value.http_status == 503 and caught.value.retryable
    assert 3 <= len(fake.item_calls()) <= FAST.max_attempts
    # A slow "unavailable" answer: the deadline is what ends it.
    fake.delay_s.update({node: 0.2 for node in SN})
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableException):
        await backend.get_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}}}, ctx("GetItem"))
    elapsed = time.monotonic() - started
    assert FAST.request_deadline_ms / 1000 - 0.1 < elapsed < FAST.request_deadline_ms / 1000 + 0.5


async def test_bad_requests_fail_before_any_routing(cluster: Any) -> None:
    fake, backend, _ = cluster
    cases = [
        (put("a", ConditionExpression="attribute_not_exists("), "Invalid ConditionExpression"),
        ({"TableName": "tbl", "Item": {"other": {"S": "x"}}}, "Missing the key pk in the item"),
        ({"TableName": "tbl", "Item": {"pk": {"N": "1"}}}, "Type mismatch for key pk expected: S actual: N"),
        ({"TableName": "tbl", "Item": {"pk": {"S": "a"}, "n": {"N": "1e200"}}}, "Number overflow"),
        ({"TableName": "tbl", "Item": {"pk": {"S": "a"}, "big": {"S": "x" * 410_000}}}, "Item size has exceeded"),
    ]
    for request, message in cases:
        with pytest.raises(ValidationException, match=message):
            await backend.put_item(request, ctx())
    with pytest.raises(ValidationException, match="does not match the schema"):
        await backend.get_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}, "x": {"S": "b"}}}, ctx("GetItem"))
    with pytest.raises(ValidationException, match="unused in expressions"):
        await backend.get_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}}, "ProjectionExpression": "pk",
                                "ExpressionAttributeNames": {"#x": "x"}}, ctx("GetItem"))
    with pytest.raises(ValidationException):
        await backend.update_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET"}, ctx())
    assert fake.item_calls() == []


async def test_unknown_and_unready_tables_are_not_found(cluster: Any) -> None:
    fake, backend, _ = cluster
    with pytest.raises(ResourceNotFoundException) as caught:
        await backend.put_item({"TableName": "nope", "Item": {"pk": {"S": "a"}}}, ctx())
    assert caught.value.message == "Requested resource not found"
    await fake.lazy()  # only the router's own refresh can see the table become ACTIVE
    fake.status = "CREATING"
    fake.bump()
    await backend.refresh_map(1, asyncio.get_running_loop().time() + 1)
    with pytest.raises(ResourceNotFoundException):
        await backend.get_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}}}, ctx("GetItem"))
    fake.status = "ACTIVE"
    fake.bump()
    assert await backend.put_item(put("a"), ctx()) == {}
    assert fake.item_calls() == ["sn-a1", "sn-b1"]


# ---- the control plane -----------------------------------------------------------------------------------


async def test_table_operations_follow_the_control_plane_leader(cluster: Any) -> None:
    fake, backend, _ = cluster
    fake.cp_leader = "cp-c"
    fake.calls.clear()
    spec = {**SPEC, "TableName": "tbl2"}
    answer = await backend.create_table(spec, ctx("CreateTable"))
    assert answer == {"TableDescription": {"TableName": "tbl2", "TableStatus": "CREATING"}}
    table_ops = [(node, op) for node, op, _ in fake.calls if op != "get_map"]
    assert table_ops == [("cp-a", "create_table"), ("cp-c", "create_table")]
    with pytest.raises(ResourceInUseException, match="Table already exists: tbl2"):
        await backend.create_table(spec, ctx("CreateTable"))
    with pytest.raises(ResourceNotFoundException, match="Table: zzz not found"):
        await backend.describe_table({"TableName": "zzz"}, ctx("DescribeTable"))
    # The leader dies; cp-b takes over.
    await fake.nodes["cp-c"].kill()
    fake.cp_leader = "cp-b"
    got = await backend.list_tables({}, ctx("ListTables"))
    assert got == {"TableNames": ["tbl", "tbl2"]}
    # Maps keep flowing from the survivors: the new table shows up.
    await backend.refresh_map(backend.map_version - 1, asyncio.get_running_loop().time() + 1)
    assert backend.routing.table("tbl2") is not None


async def test_no_control_plane_is_a_retryable_error(cluster: Any) -> None:
    fake, backend, _ = cluster
    for name in CP:
        await fake.nodes[name].kill()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableException):
        await backend.describe_table({"TableName": "tbl"}, ctx("DescribeTable"))
    assert time.monotonic() - started < FAST.control_deadline_ms / 1000 + 0.5
    # Items are still served from the cached map.
    assert await backend.put_item(put("a"), ctx()) == {}


# ---- the router process with boto3 ------------------------------------------------------------------------


def _base_port() -> int:
    return 27000 + (os.getpid() % 45) * 20


async def test_router_process_serves_boto3(tmp_path: Path) -> None:
    config = build_cluster_config(tmp_path, nodes_per_az=1, base_port=_base_port(), limits=LIMITS)
    fake = FakeCluster()
    await fake.start({name: config.node(name).grpc_address for name in (*CP, *SN)})
    router = config.node("rr-1")
    host = ProcessHost(config, router, RouterApp(FAST))
    app = host.app
    assert isinstance(app, RouterApp)
    try:
        await app.start(host)
        for _ in range(300):
            if host.ready:
                break
            await asyncio.sleep(0.01)
        assert host.ready and app.backend is not None and app.backend.map_version == 1
        assert app.status()["map_version"] == 1
        endpoint = f"http://127.0.0.1:{app.port}"

        def client_session() -> list[Any]:
            client = boto3.client(
                "dynamodb", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="x",
                aws_secret_access_key="y", config=Config(retries={"max_attempts": 1}, connect_timeout=5,
                                                         read_timeout=10),
            )
            client.put_item(TableName="tbl", Item={"pk": {"S": "k1"}, "v": {"N": "007"}})
            got = client.get_item(TableName="tbl", Key={"pk": {"S": "k1"}}, ConsistentRead=True)
            desc = client.describe_table(TableName="tbl")
            endpoints = client.describe_endpoints()
            limits = client.describe_limits()
            try:
                client.get_item(TableName="missing", Key={"pk": {"S": "k1"}})
                missing = "no error"
            except ClientError as exc:
                missing = exc.response["Error"]["Code"]
            return [got, desc, endpoints, limits, missing]

        got, desc, endpoints, limits, missing = await asyncio.to_thread(client_session)
        assert got["Item"] == {"pk": {"S": "k1"}, "v": {"N": "7"}}
        assert desc["Table"]["TableStatus"] == "ACTIVE"
        assert endpoints["Endpoints"][0]["CachePeriodInMinutes"] > 0
        assert limits["TableMaxWriteCapacityUnits"] > 0
        assert missing == "ResourceNotFoundException"
        assert app._outcomes[("PutItem", 200)] == 1
    finally:
        await app.stop()
        for task in list(host._tasks):
            task.cancel()
        await host.transport.close()
        await fake.stop()
