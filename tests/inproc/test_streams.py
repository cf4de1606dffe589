"""DynamoDB Streams through the router's cluster backend, against three real storage nodes over gRPC and a
table of four partitions (four shards): every kind of write becomes the records DynamoDB would write, in
order per item; iterators of every type; a disabled stream's shards close; records survive a restart of
every node."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dynamo import streams as ds
from dynamo.errors import ExpiredIteratorException, ResourceNotFoundException, ValidationException
from dynamo.requests import validate_request
from router.backend import method_name
from router.cluster import ClusterBackend
from storagenode.node import NodeConfig
from tests.inproc.test_query_cluster import CONFIG, PARTS, SPEC, the_map
from tests.inproc.test_router_cluster import ctx
from tests.inproc.test_storage_node import NODE_CONFIG, Cluster, until
from tests.inproc.test_transactions import key, pk_in

pytestmark = pytest.mark.timeout(90)
ENABLED_MS = 1_765_000_000_123
ARN = ds.stream_arn("arn:aws:dynamodb:us-east-1:000000000000:table/rows", ENABLED_MS)


def stream_map(version: int, view: str = "NEW_AND_OLD_IMAGES", disabled_ms: int = 0) -> dict[str, Any]:
    partition_map = the_map(version, SPEC)
    table = partition_map["tables"]["rows"]
    table["streams"] = [[ENABLED_MS, view, disabled_ms]]
    table["closed"] = []
    if not disabled_ms:
        table["stream"] = [ENABLED_MS, view]
    return partition_map


class Client:
    def __init__(self, backend: ClusterBackend) -> None:
        self.backend = backend

    async def __call__(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        needs_table = op in ("PutItem", "UpdateItem", "DeleteItem")
        request = validate_request(op, {"TableName": "rows", **body} if needs_table else body)
        result: dict[str, Any] = await getattr(self.backend, method_name(op))(request, ctx(op))  # as the front door
        return result

    async def shards(self) -> list[dict[str, Any]]:
        described = await self("DescribeStream", {"StreamArn": ARN})
        shards: list[dict[str, Any]] = described["StreamDescription"]["Shards"]
        return shards

    async def drain(self, shard: str, kind: str = "TRIM_HORIZON", seq: str | None = None
                    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every record of the shard from the iterator asked for, and the last NextShardIterator."""
        body = {"StreamArn": ARN, "ShardId": shard, "ShardIteratorType": kind, **({"SequenceNumber": seq} if seq else {})}
        iterator: str | None = (await self("GetShardIterator", body))["ShardIterator"]
        records: list[dict[str, Any]] = []
        for _ in range(50):
            assert iterator is not None
            page = await self("GetRecords", {"ShardIterator": iterator, "Limit": 2})
            records += page["Records"]
            iterator = page.get("NextShardIterator")
            if not page["Records"] or iterator is None:
                break
        return records, iterator

    async def everything(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for shard in await self.shards():
            records += (await self.drain(shard["ShardId"]))[0]
        return records


@contextlib.asynccontextmanager
async def started(tmp_path: Path, node_config: NodeConfig = NODE_CONFIG) -> AsyncIterator[tuple[Cluster, Client]]:
    """Three storage nodes holding the table with its stream on, and a router's backend in front."""
    cluster = Cluster(tmp_path)
    cluster.node_config = node_config
    cluster.cp.map = stream_map(1)
    await cluster.start()
    backend = ClusterBackend(cluster.client, ["cp-a", "cp-b", "cp-c"], CONFIG)
    await backend.start()
    try:
        assert await backend.wait_for_map(2_000)
        yield cluster, Client(backend)
    finally:
        await backend.stop()
        await cluster.close()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Cluster, Client]]:
    async with started(tmp_path) as running:
        yield running


def item(pk: str, value: int) -> dict[str, Any]:
    return {**key(pk), "v": {"N": str(value)}}


async def test_every_write_becomes_dynamodbs_records(setup: tuple[Cluster, Client]) -> None:
    cluster, call = setup
    a, b, c = pk_in(21, "a"), pk_in(22, "b"), pk_in(23, "c")
    await call("PutItem", {"Item": item(a, 1)})
    await call("PutItem", {"Item": item(a, 1)})  # the same item again: no record
    await call("UpdateItem", {"Key": key(a), "UpdateExpression": "SET v = :two",
                              "ExpressionAttributeValues": {":two": {"N": "2"}}})
    await call("DeleteItem", {"Key": key(b)})  # nothing to delete: no record
    await call("BatchWriteItem", {"RequestItems": {"rows": [{"PutRequest": {"Item": item(b, 1)}},
                                                            {"PutRequest": {"Item": item(c, 1)}}]}})
    await call("TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "rows", "Item": item(b, 5)}},
        {"Delete": {"TableName": "rows", "Key": key(c)}}]})
    await call("DeleteItem", {"Key": key(a)})

    shards = await call.shards()
    assert sorted(ds.parse_shard_id(s["ShardId"])[1] for s in shards) == sorted(PARTS)  # type: ignore[index]
    assert all("ParentShardId" not in s and "EndingSequenceNumber" not in s["SequenceNumberRange"] for s in shards)
    records = await call.everything()
    by_key: dict[str, list[tuple[str, Any, Any]]] = {}
    for record in records:
        body = record["dynamodb"]
        assert record["eventSource"] == "aws:dynamodb" and record["eventVersion"] == "1.1"
        assert record["awsRegion"] == "us-east-1" and len(record["eventID"]) == 32
        assert body["StreamViewType"] == "NEW_AND_OLD_IMAGES" and len(body["SequenceNumber"]) == 21
        assert abs(body["ApproximateCreationDateTime"] - time.time()) < 60
        by_key.setdefault(body["Keys"]["pk"]["S"], []).append(
            (record["eventName"], (body.get("OldImage") or {}).get("v"), (body.get("NewImage") or {}).get("v")))
    one, two, five = {"N": "1"}, {"N": "2"}, {"N": "5"}
    assert by_key == {
        a: [("INSERT", None, one), ("MODIFY", one, two), ("REMOVE", two, None)],
        b: [("INSERT", None, one), ("MODIFY", one, five)],
        c: [("INSERT", None, one), ("REMOVE", one, None)],
    }
    # Sequence numbers grow within a shard, and every replica holds the same records: restart every node
    # (the leaders change) and read them again.
    for name in list(cluster.nodes):
        await cluster.stop_node(name)
        await cluster.start_node(name)
    assert await call.everything() == records


async def test_iterators_of_every_type(setup: tuple[Cluster, Client]) -> None:
    _, call = setup
    a = pk_in(21, "a")
    (shard,) = [s["ShardId"] for s in await call.shards() if ds.parse_shard_id(s["ShardId"])[1] == 21]  # type: ignore[index]
    for value in (1, 2, 3):
        await call("PutItem", {"Item": item(a, value)})
    latest = (await call("GetShardIterator", {"StreamArn": ARN, "ShardId": shard,
                                              "ShardIteratorType": "LATEST"}))["ShardIterator"]
    empty = await call("GetRecords", {"ShardIterator": latest})
    assert empty["Records"] == [] and empty["NextShardIterator"], "an open shard always gives a next iterator"
    await call("PutItem", {"Item": item(a, 4)})
    after_latest = await call("GetRecords", {"ShardIterator": empty["NextShardIterator"]})
    assert [r["dynamodb"]["NewImage"]["v"]["N"] for r in after_latest["Records"]] == ["4"]
    everything, _ = await call.drain(shard)
    seqs = [r["dynamodb"]["SequenceNumber"] for r in everything]
    assert seqs == sorted(seqs) and len(seqs) == 4
    at, _ = await call.drain(shard, "AT_SEQUENCE_NUMBER", seqs[1])
    after, _ = await call.drain(shard, "AFTER_SEQUENCE_NUMBER", seqs[1])
    assert [r["dynamodb"]["SequenceNumber"] for r in at] == seqs[1:]
    assert [r["dynamodb"]["SequenceNumber"] for r in after] == seqs[2:]
    # DynamoDB Local's answers, word for word
    other = ds.stream_arn("arn:aws:dynamodb:us-east-1:000000000000:table/rows", ENABLED_MS + 1)
    bad = [
        ("GetShardIterator", {"StreamArn": ARN, "ShardId": shard, "ShardIteratorType": "AT_SEQUENCE_NUMBER"},
         ValidationException, "One or more parameter values were invalid: Invalid SequenceNumber"),
        ("GetShardIterator", {"StreamArn": ARN, "ShardId": shard, "ShardIteratorType": "AT_SEQUENCE_NUMBER",
                              "SequenceNumber": "00000000000000000001a"},
         ValidationException, "One or more parameter values were invalid: Invalid SequenceNumber"),
        ("GetShardIterator", {"StreamArn": ARN, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON",
                              "SequenceNumber": seqs[0]},
         ValidationException, "One or more parameter values were invalid: SequenceNumber should not be passed for "
                              "this iterator type"),
        ("GetShardIterator", {"StreamArn": ARN, "ShardId": ds.shard_id(ENABLED_MS, 99), "ShardIteratorType": "LATEST"},
         ResourceNotFoundException, "Shard does not exist"),
        ("GetShardIterator", {"StreamArn": other, "ShardId": shard, "ShardIteratorType": "LATEST"},
         ResourceNotFoundException, "Stream does not exist"),
        ("DescribeStream", {"StreamArn": other}, ResourceNotFoundException,
         f"Requested resource not found: Stream: {other} not found"),
        ("DescribeStream", {"StreamArn": ARN, "Limit": 101}, ValidationException,
         "One or more parameter values were invalid: Limit cannot be greater than the maximum: 100"),
        ("ListStreams", {"Limit": 101}, ValidationException,
         "One or more parameter values were invalid: Limit cannot be greater than the maximum allowed size: 100"),
        ("GetRecords", {"ShardIterator": "not an iterator"}, ValidationException, "Invalid ShardIterator"),
        ("GetRecords", {"ShardIterator": latest, "Limit": 1001}, ValidationException,
         "One or more parameter values were invalid: Limit should be less than or equal to 1000"),
    ]
    for op, body, error, message in bad:
        with pytest.raises(error) as caught:
            await call(op, body)
        assert caught.value.message == message, (op, body)
    assert await call("ListStreams", {"TableName": "missing"}) == {"Streams": []}
    call.backend.streams._clock_ms = lambda: int(time.time() * 1000) + ds.ITERATOR_LIFETIME_MS + 1000
    with pytest.raises(ExpiredIteratorException):
        await call("GetRecords", {"ShardIterator": latest})


async def test_a_disabled_stream_closes_its_shards_and_records_no_more(setup: tuple[Cluster, Client]) -> None:
    cluster, call = setup
    a = pk_in(21, "a")
    await call("PutItem", {"Item": item(a, 1)})
    cluster.cp.map = stream_map(2, disabled_ms=ENABLED_MS + 10)
    await call.backend.refresh_once()
    for node in cluster.nodes.values():
        for _ in range(100):
            if node.map_version >= 2:
                break
            await asyncio.sleep(0.02)
        assert node.map_version >= 2
    await call("PutItem", {"Item": item(a, 2)})
    streams = await call("ListStreams", {"TableName": "rows"})
    assert streams["Streams"] == [{"StreamArn": ARN, "TableName": "rows", "StreamLabel": ds.stream_label(ENABLED_MS)}]
    described = (await call("DescribeStream", {"StreamArn": ARN}))["StreamDescription"]
    assert described["StreamStatus"] == "DISABLED"
    (shard,) = [s["ShardId"] for s in described["Shards"] if ds.parse_shard_id(s["ShardId"])[1] == 21]  # type: ignore[index]
    records, last = await call.drain(shard)
    assert [r["dynamodb"]["NewImage"]["v"]["N"] for r in records] == ["1"], "nothing after the stream ended"
    assert last is None, "a closed shard read to its end gives no next iterator"


async def test_records_older_than_the_retention_are_trimmed_and_never_answered(tmp_path: Path) -> None:
    async with started(tmp_path, replace(NODE_CONFIG, stream_retention_s=1, stream_trim_interval_ms=100)) as (
            cluster, call):
        a = pk_in(21, "a")
        await call("PutItem", {"Item": item(a, 1)})
        assert len(await call.everything()) == 1
        await asyncio.sleep(1.5)
        assert await call.everything() == [], "older than the retention: not answered"
        await until(lambda: sum(n.items.streams.trimmed for n in cluster.nodes.values()) == 3,
                    what="every replica trimmed its record")
