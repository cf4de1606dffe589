"""Admission control end to end in one process: three real storage nodes (test_storage_node's fake control
plane serves a map of four partitions) behind the router's cluster backend, with tiny per-partition limits
(1 write unit and 1 read unit a second, a one-second burst), so one big item puts a partition in debt for
seconds while its neighbours serve. And the router's mapping of a throttled answer to DynamoDB's errors
(test_router_cluster's fake nodes)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dynamo.errors import DynamoError, ProvisionedThroughputExceededException, ThrottlingException
from dynamo.hashing import partition_hash
from dynamo.requests import validate_request
from router.cluster import MSG_THROTTLED_ON_DEMAND, BackendConfig, ClusterBackend
from runtime.config import AdminPolicy
from tests.inproc.test_query_cluster import PARTS, the_map
from tests.inproc.test_router_cluster import SPEC as FAKE_SPEC
from tests.inproc.test_router_cluster import cluster as fake_cluster  # noqa: F401 - a fixture
from tests.inproc.test_router_cluster import ctx, put
from tests.inproc.test_storage_node import Cluster

pytestmark = pytest.mark.timeout(60)

CONFIG = BackendConfig(request_deadline_ms=3_000, attempt_timeout_ms=1_000, batch_deadline_ms=1_500,
                       refresh_wait_ms=100, map_poll_wait_ms=1_000)
TINY = AdminPolicy(partition_max_wcu=1, partition_max_rcu=1, partition_burst_s=1.0)
BIG = "x" * 10_000  # 10 write units, 3 read units (strongly consistent)


def pk_in(pid: int, avoid: tuple[str, ...] = ()) -> str:
    """A partition key whose hash falls in partition ``pid``."""
    lo, hi = PARTS[pid]
    return next(pk for pk in (f"k{i}" for i in range(10_000))
                if lo <= partition_hash("S", pk) < hi and pk not in avoid)


class Calls:
    def __init__(self, backend: ClusterBackend) -> None:
        self.backend = backend

    async def __call__(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        request = validate_request(op, body if op.startswith("Batch") else {"TableName": "rows", **body})
        method = {"PutItem": self.backend.put_item, "GetItem": self.backend.get_item,
                  "Query": self.backend.query, "BatchGetItem": self.backend.batch_get_item,
                  "BatchWriteItem": self.backend.batch_write_item}[op]
        result: dict[str, Any] = await method(request, ctx(op))
        return result


@pytest.fixture
async def tiny(tmp_path: Path) -> AsyncIterator[tuple[Cluster, Calls]]:
    cluster = Cluster(tmp_path)
    cluster.config = dataclasses.replace(cluster.config, admin=TINY)
    cluster.cp.map = the_map(1)
    await cluster.start()
    backend = ClusterBackend(cluster.client, ["cp-a", "cp-b", "cp-c"], CONFIG)
    await backend.start()
    try:
        assert await backend.wait_for_map(2_000)
        yield cluster, Calls(backend)
    finally:
        await backend.stop()
        await cluster.close()


def row(pk: str, sk: int, pad: str = "") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}, **({"pad": {"S": pad}} if pad else {})}


def key(pk: str, sk: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


async def test_a_partition_in_debt_throttles_its_writes_and_leaves_its_batch_parts_unprocessed(
        tiny: tuple[Cluster, Calls]) -> None:
    cluster, call = tiny
    hot, cool = pk_in(21), pk_in(22)
    # One big item: admitted on a positive bucket, then charged its 10 units: 9 seconds of debt.
    await call("PutItem", {"Item": row(hot, 1, BIG)})
    with pytest.raises(ThrottlingException) as caught:
        await call("PutItem", {"Item": row(hot, 2)})
    assert caught.value.message == MSG_THROTTLED_ON_DEMAND
    assert caught.value.extra["ThrottlingReasons"] == [{"reason": "TableWriteKeyRangeThroughputExceeded"}]
    # A batch over both partitions: the throttled partition's writes come back unprocessed, the other's apply.
    answer = await call("BatchWriteItem", {"RequestItems": {"rows": [
        {"PutRequest": {"Item": row(hot, 3)}}, {"PutRequest": {"Item": row(cool, 3)}}]}})
    assert answer["UnprocessedItems"] == {"rows": [{"PutRequest": {"Item": row(hot, 3)}}]}
    # Every part throttled: the whole call fails with the throttling error.
    with pytest.raises(ThrottlingException):
        await call("BatchWriteItem", {"RequestItems": {"rows": [{"PutRequest": {"Item": row(hot, 4)}}]}})
    # Nothing throttled was applied (reads have their own bucket).
    found = {int(item["sk"]["N"]) for item in (await call("Query", {
        "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": hot}},
        "ConsistentRead": True, "ProjectionExpression": "sk"}))["Items"]}
    assert found == {1}
    got = await call("GetItem", {"Key": key(cool, 3), "ConsistentRead": True})
    assert got["Item"] == row(cool, 3)
    # The leader counted the throttles by partition and kind, and the demand they carried as heat.
    leader = cluster.nodes[await cluster.leader_of(21)]
    assert leader.items.throttles[("rows", 21, "write")] == 3
    metrics = {tuple(s.labels.values()): s.value for family in leader.items.collect_metrics() for s in family.samples}
    assert metrics[("rows", "21", "write")] == 3
    heat = leader.hosted[21].machine.heat
    assert sum(bucket[1] for bucket in heat._buckets) == 10 + 3  # the big put, and 3 throttled puts of 1


async def test_reads_in_debt_leave_batch_get_keys_unprocessed(tiny: tuple[Cluster, Calls]) -> None:
    _, call = tiny
    hot, cool = pk_in(23), pk_in(24)
    await call("BatchWriteItem", {"RequestItems": {"rows": [
        {"PutRequest": {"Item": row(hot, 1, BIG)}}, {"PutRequest": {"Item": row(cool, 1)}}]}})
    # A strongly consistent read of the big item: 3 read units from a bucket of 1.
    assert (await call("GetItem", {"Key": key(hot, 1), "ConsistentRead": True}))["Item"]["pad"] == {"S": BIG}
    answer = await call("BatchGetItem", {"RequestItems": {"rows": {
        "Keys": [key(hot, 1), key(cool, 1)], "ConsistentRead": True, "ProjectionExpression": "pk, sk"}}})
    assert answer["Responses"] == {"rows": [key(cool, 1)]}
    assert answer["UnprocessedKeys"]["rows"]["Keys"] == [key(hot, 1)]
    assert answer["UnprocessedKeys"]["rows"]["ProjectionExpression"] == "pk, sk"
    with pytest.raises(ThrottlingException) as caught:
        await call("BatchGetItem", {"RequestItems": {"rows": {"Keys": [key(hot, 1)], "ConsistentRead": True}}})
    assert caught.value.extra["ThrottlingReasons"] == [{"reason": "TableReadKeyRangeThroughputExceeded"}]
    # A Query page is throttled as a whole.
    with pytest.raises(ThrottlingException):
        await call("Query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": hot}},
                             "ConsistentRead": True})


# ---- the router's mapping (fake storage nodes) ---------------------------------------------------------


async def test_a_throttled_write_is_answered_at_once_and_never_resent(fake_cluster: Any) -> None:  # noqa: F811
    fake, backend, _ = fake_cluster
    fake.script["sn-a1"] = [{"throttled": "write", "not_applied": True}]
    with pytest.raises(ThrottlingException) as caught:
        await backend.put_item(put("a"), ctx())
    error = caught.value
    assert error.http_status == 400 and error.retryable
    assert error.to_body() == {"__type": "com.amazon.coral.availability#ThrottlingException",
                               "message": MSG_THROTTLED_ON_DEMAND,
                               "ThrottlingReasons": [{"reason": "TableWriteKeyRangeThroughputExceeded"}]}
    assert fake.item_calls() == ["sn-a1"] and "a" not in fake.items
    assert backend.stats["throttled"] == 1 and backend.stats["unknown_outcome"] == 0


async def test_a_provisioned_table_answers_provisioned_throughput_exceeded(fake_cluster: Any) -> None:  # noqa: F811
    fake, backend, _ = fake_cluster
    fake.tables["tbl"]["spec"] = {**{k: v for k, v in FAKE_SPEC.items() if k != "BillingMode"},
                                  "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}
    fake.bump()
    await backend.refresh_map(1, asyncio.get_running_loop().time() + 2)
    fake.script["sn-a1"] = [{"throttled": "read", "not_applied": True}]
    with pytest.raises(ProvisionedThroughputExceededException) as caught:
        await backend.get_item({"TableName": "tbl", "Key": {"pk": {"S": "a"}}}, ctx("GetItem"))
    body = caught.value.to_body()
    assert body["__type"] == "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    assert body["message"] == ("The level of configured provisioned throughput for the table was exceeded. "
                               "Consider increasing your provisioning level with the UpdateTable API.")
    assert body["ThrottlingReasons"] == [{"reason": "TableReadKeyRangeThroughputExceeded"}]
    assert isinstance(caught.value, DynamoError) and caught.value.http_status == 400
