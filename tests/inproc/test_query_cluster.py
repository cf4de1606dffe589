"""Query, Scan, BatchGetItem and BatchWriteItem through the router's cluster backend, against three real
storage nodes over gRPC on 127.0.0.1 (the fake control plane of test_storage_node serves the map): a table
of four partitions, paged through by Query (both directions) and Scan (whole and by segments)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import storagenode.reads
from dynamo.errors import DynamoError, ValidationException
from dynamo.keycodec import HASH_SPACE
from dynamo.requests import validate_request
from router.cluster import BackendConfig, ClusterBackend
from tests.inproc.test_router_cluster import ctx
from tests.inproc.test_storage_node import NODES, Cluster

pytestmark = pytest.mark.timeout(90)

SPEC = {
    "TableName": "rows",
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                             {"AttributeName": "sk", "AttributeType": "N"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "BillingMode": "PAY_PER_REQUEST",
}
TABLE_ID = 7
QUARTER = HASH_SPACE // 4
PARTS = {21 + i: (i * QUARTER, HASH_SPACE if i == 3 else (i + 1) * QUARTER) for i in range(4)}
CONFIG = BackendConfig(request_deadline_ms=3_000, attempt_timeout_ms=1_000, batch_deadline_ms=1_500,
                       refresh_wait_ms=100, map_poll_wait_ms=1_000)
PKS = [f"p{i}" for i in range(6)]
PER_PK = 30


def the_map(version: int, spec: dict[str, Any] = SPEC) -> dict[str, Any]:
    return {
        "version": version,
        "nodes": {n: {"az": n[3], "address": ""} for n in NODES},
        "tables": {"rows": {"table_id": TABLE_ID, "status": "ACTIVE", "spec": spec, "partitions": list(PARTS)}},
        "partitions": {
            str(pid): {"table_id": TABLE_ID, "lo": str(lo), "hi": str(hi), "replicas": list(NODES)}
            for pid, (lo, hi) in PARTS.items()
        },
    }


class Router:
    def __init__(self, backend: ClusterBackend) -> None:
        self.backend = backend

    async def __call__(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        request = validate_request(op, {"TableName": "rows", **body} if not op.startswith("Batch") else body)
        method = {"Query": self.backend.query, "Scan": self.backend.scan,
                  "BatchGetItem": self.backend.batch_get_item, "BatchWriteItem": self.backend.batch_write_item}[op]
        result: dict[str, Any] = await method(request, ctx(op))
        return result


@pytest.fixture
async def router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Cluster, Router]]:
    monkeypatch.setattr(storagenode.reads, "CHUNK_ITEMS", 4)  # pages cross many read chunks
    cluster = Cluster(tmp_path)
    cluster.cp.map = the_map(1)
    await cluster.start()
    backend = ClusterBackend(cluster.client, ["cp-a", "cp-b", "cp-c"], CONFIG)
    await backend.start()
    try:
        assert await backend.wait_for_map(2_000)
        yield cluster, Router(backend)
    finally:
        await backend.stop()
        await cluster.close()


def row(pk: str, sk: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}, "odd": {"BOOL": sk % 2 == 1}, "pad": {"S": "x" * 20}}


async def load(call: Router) -> None:
    await write_all(call, [{"PutRequest": {"Item": row(pk, sk)}} for pk in PKS for sk in range(PER_PK)])


async def write_all(call: Router, writes: list[dict[str, Any]]) -> None:
    """BatchWriteItem in 25s (puts and deletes), sending unprocessed ones again."""
    for i in range(0, len(writes), 25):
        pending = writes[i : i + 25]
        for _ in range(20):
            answer = await call("BatchWriteItem", {"RequestItems": {"rows": pending}})
            pending = answer["UnprocessedItems"].get("rows", [])
            if not pending:
                break
        assert not pending


async def settle(cluster: Cluster, timeout_s: float = 10.0) -> None:
    """Wait until every replica of every partition holds the same items: eventually consistent reads
    (any replica) then see every acknowledged write."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        sums: dict[int, set[str]] = {}
        for node in cluster.nodes.values():
            for pid, hosted in node.hosted.items():
                rng = hosted.data.range
                sums.setdefault(pid, set()).add(hosted.data.store.checksum(rng.start, rng.end))
        if len(sums) == len(PARTS) and all(len(found) == 1 for found in sums.values()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("replicas did not converge")


async def query_all(call: Router, pk: str, limit: int, forward: bool, **extra: Any) -> list[int]:
    seen: list[int] = []
    start: dict[str, Any] | None = None
    for _ in range(100):
        body = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": pk}},
                "Limit": limit, "ScanIndexForward": forward, **extra}
        if start is not None:
            body["ExclusiveStartKey"] = start
        page = await call("Query", body)
        assert len(page["Items"]) <= limit and page["Count"] == len(page["Items"])
        seen += [int(i["sk"]["N"]) for i in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if start is None:
            return seen
    raise AssertionError("too many pages")


async def scan_all(call: Router, limit: int, **extra: Any) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    start: dict[str, Any] | None = None
    for _ in range(500):
        body: dict[str, Any] = {"Limit": limit, **extra}
        if start is not None:
            body["ExclusiveStartKey"] = start
        page = await call("Scan", body)
        seen += [(i["pk"]["S"], int(i["sk"]["N"])) for i in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if start is None:
            return seen
    raise AssertionError("too many pages")


async def test_query_scan_and_batches_across_partitions(router: tuple[Cluster, Router]) -> None:
    cluster, call = router
    await load(call)
    await settle(cluster)
    everything = sorted((pk, sk) for pk in PKS for sk in range(PER_PK))

    # Query pages in key order, both directions; Limit reached exactly still names a LastEvaluatedKey.
    assert await query_all(call, "p1", 7, True) == list(range(PER_PK))
    assert await query_all(call, "p1", 7, False) == list(reversed(range(PER_PK)))
    assert await query_all(call, "p2", 10, True, ConsistentRead=True) == list(range(PER_PK))
    exact = await call("Query", {"KeyConditionExpression": "pk = :p AND sk >= :s", "Limit": 5,
                                 "ExpressionAttributeValues": {":p": {"S": "p3"}, ":s": {"N": "25"}}})
    assert exact["Count"] == 5 and exact["LastEvaluatedKey"] == {"pk": {"S": "p3"}, "sk": {"N": "29"}}

    # Sort-key conditions, filters (counted after the read), projections, COUNT.
    page = await call("Query", {"KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
                                "FilterExpression": "odd = :t", "ProjectionExpression": "sk",
                                "ExpressionAttributeValues": {":p": {"S": "p0"}, ":a": {"N": "3"}, ":b": {"N": "8"},
                                                              ":t": {"BOOL": True}}})
    assert page["Items"] == [{"sk": {"N": "3"}}, {"sk": {"N": "5"}}, {"sk": {"N": "7"}}]
    assert page["Count"] == 3 and page["ScannedCount"] == 6 and "LastEvaluatedKey" not in page
    counted = await call("Query", {"KeyConditions": {"pk": {"ComparisonOperator": "EQ",
                                                            "AttributeValueList": [{"S": "p4"}]}},
                                   "Select": "COUNT", "ReturnConsumedCapacity": "TOTAL"})
    assert "Items" not in counted and counted["Count"] == PER_PK
    assert counted["ConsumedCapacity"]["CapacityUnits"] > 0
    missing = await call("Query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "zz"}}})
    assert missing == {"Items": [], "Count": 0, "ScannedCount": 0}

    # Scan: pages spanning partitions yield every item once; so do four segments together.
    scanned = await scan_all(call, 17)
    assert sorted(scanned) == everything and len(scanned) == len(everything)
    assert sorted(await scan_all(call, 1000, ConsistentRead=True)) == everything
    whole = await call("Scan", {})  # one page spans every partition
    assert "LastEvaluatedKey" not in whole and whole["Count"] == len(everything)
    segments: list[tuple[str, int]] = []
    for segment in range(4):
        segments += await scan_all(call, 11, Segment=segment, TotalSegments=4)
    assert sorted(segments) == everything and len(segments) == len(everything)
    filtered = await call("Scan", {"FilterExpression": "odd = :t", "ExpressionAttributeValues": {":t": {"BOOL": True}},
                                   "Select": "COUNT"})
    assert filtered["Count"] == len(everything) // 2 and filtered["ScannedCount"] == len(everything)

    # BatchGetItem: found items, missing keys left out, projections.
    keys = [{"pk": {"S": pk}, "sk": {"N": str(sk)}} for pk in PKS for sk in (0, 5, 99)]
    got = await call("BatchGetItem", {"RequestItems": {"rows": {"Keys": keys, "ProjectionExpression": "pk, sk"}}})
    assert got["UnprocessedKeys"] == {}
    assert sorted((i["pk"]["S"], int(i["sk"]["N"])) for i in got["Responses"]["rows"]) == sorted(
        (pk, sk) for pk in PKS for sk in (0, 5))
    assert all(set(i) == {"pk", "sk"} for i in got["Responses"]["rows"])

    # BatchWriteItem deletes, then the items are gone.
    gone = [{"DeleteRequest": {"Key": {"pk": {"S": "p5"}, "sk": {"N": str(sk)}}}} for sk in range(10)]
    assert (await call("BatchWriteItem", {"RequestItems": {"rows": gone}}))["UnprocessedItems"] == {}
    assert await query_all(call, "p5", 100, True, ConsistentRead=True) == list(range(10, PER_PK))


async def test_errors_as_dynamodb_words_them(router: tuple[Cluster, Router]) -> None:
    _, call = router
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("Query", {"KeyConditionExpression": "pk = :p", "FilterExpression": "sk > :s",
                   "ExpressionAttributeValues": {":p": {"S": "a"}, ":s": {"N": "1"}}},
         "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk"),
        ("Query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}},
                   "ExclusiveStartKey": {"pk": {"S": "b"}, "sk": {"N": "1"}}},
         "The provided starting key is outside query boundaries based on provided conditions"),
        ("Query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}},
                   "ExclusiveStartKey": {"pk": {"S": "a"}}},
         "The provided starting key is invalid: The provided key element does not match the schema"),
        ("Query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}},
                   "IndexName": "nope"}, "The table does not have the specified index: nope"),
        ("Scan", {"ExclusiveStartKey": {"pk": {"S": "a"}, "sk": {"N": "1"}}, "Segment": 0, "TotalSegments": 1000},
         "Please use ExclusiveStartKey with correct Segment. TotalSegments: 1000 Segment: 0"),
        ("BatchGetItem", {"RequestItems": {"rows": {"Keys": [{"pk": {"S": "a"}, "sk": {"N": "1"}},
                                                          {"pk": {"S": "a"}, "sk": {"N": "1.0"}}]}}},
         "Provided list of item keys contains duplicates"),
        ("BatchWriteItem", {"RequestItems": {"rows": [
            {"PutRequest": {"Item": {"pk": {"S": "a"}, "sk": {"N": "1"}}}},
            {"DeleteRequest": {"Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}}}]}},
         "Provided list of item keys contains duplicates"),
        ("BatchWriteItem", {"RequestItems": {"rows": [{"PutRequest": {"Item": {"pk": {"S": "a"}}}}]}},
         "The provided key element does not match the schema"),
    ]
    for op, body, message in cases:
        with pytest.raises(ValidationException) as failed:
            await call(op, body)
        assert message in str(failed.value), (op, body, str(failed.value))


async def test_batches_with_a_node_down_leave_work_unprocessed_and_finish_on_retry(
        router: tuple[Cluster, Router]) -> None:
    cluster, call = router
    await load(call)
    await cluster.stop_node("sn-a1")
    rows = [{"PutRequest": {"Item": {**row(pk, 100 + sk), "v": {"N": "2"}}}} for pk in PKS for sk in range(4)]
    pending = {"rows": rows}
    for _ in range(40):
        try:
            answer = await call("BatchWriteItem", {"RequestItems": pending})
        except DynamoError as exc:  # every partition unavailable at once: a retryable error
            assert exc.type_name == "ServiceUnavailableException", exc
            await asyncio.sleep(0.1)
            continue
        pending = answer["UnprocessedItems"]
        if not pending:
            break
        await asyncio.sleep(0.1)
    assert not pending
    keys = {"rows": {"Keys": [{"pk": {"S": pk}, "sk": {"N": str(100 + sk)}} for pk in PKS for sk in range(4)],
                  "ConsistentRead": True}}
    found: list[dict[str, Any]] = []
    for _ in range(40):
        try:
            got = await call("BatchGetItem", {"RequestItems": keys})
        except DynamoError as exc:
            assert exc.type_name == "ServiceUnavailableException", exc
            continue
        found += got["Responses"]["rows"]
        keys = got["UnprocessedKeys"]
        if not keys:
            break
    assert not keys and len(found) == len(rows) and all(i["v"] == {"N": "2"} for i in found)


async def test_pages_stop_at_one_megabyte_read_before_the_filter(router: tuple[Cluster, Router]) -> None:
    _, call = router
    big = "x" * 100_000
    for i in range(0, 30, 10):
        writes = [{"PutRequest": {"Item": {"pk": {"S": "big"}, "sk": {"N": str(sk)}, "b": {"S": big}}}}
                  for sk in range(i, i + 10)]
        # 1 MB a batch is about the partition's write limit a second: later batches meet its throttle.
        for _ in range(50):
            try:
                writes = (await call("BatchWriteItem", {"RequestItems": {"rows": writes}}))["UnprocessedItems"].get(
                    "rows", [])
            except DynamoError as exc:
                assert "Throttling" in exc.type_name, exc
            if not writes:
                break
            await asyncio.sleep(0.1)
        assert not writes
    await settle(router[0])
    filtered = {"KeyConditionExpression": "pk = :p", "FilterExpression": "attribute_not_exists(b)",
                "ExpressionAttributeValues": {":p": {"S": "big"}}}
    page = await call("Query", filtered)
    assert page["Count"] == 0 and 5 <= page["ScannedCount"] < 30 and "LastEvaluatedKey" in page
    for forward in (True, False):
        seen: list[int] = []
        start: dict[str, Any] | None = None
        pages = 0
        while pages < 20:
            body: dict[str, Any] = {"KeyConditionExpression": "pk = :p", "ProjectionExpression": "sk",
                                    "ExpressionAttributeValues": {":p": {"S": "big"}}, "ScanIndexForward": forward}
            if start is not None:
                body["ExclusiveStartKey"] = start
            page = await call("Query", body)
            pages += 1
            seen += [int(i["sk"]["N"]) for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if start is None:
                break
        assert seen == (list(range(30)) if forward else list(range(29, -1, -1))) and pages >= 3
    scanned = await scan_all(call, 1000, ProjectionExpression="pk, sk")
    assert sorted(scanned) == [("big", sk) for sk in range(30)]


async def test_batches_regroup_when_the_map_changed_under_them(router: tuple[Cluster, Router]) -> None:
    """A router whose map predates a split groups keys by the old partitions; the nodes answer ``stale``
    for keys outside their range; the router fetches the new map and regroups, within the request."""
    cluster, call = router
    half = HASH_SPACE // 2
    merged = the_map(1)
    merged["tables"]["rows"]["partitions"] = [21, 23]
    merged["partitions"] = {"21": {**merged["partitions"]["21"], "hi": str(half)},
                            "23": {**merged["partitions"]["23"], "lo": str(half), "hi": str(HASH_SPACE)}}
    old = ClusterBackend(cluster.client, ["cp-a", "cp-b", "cp-c"], CONFIG)  # no poller: it keeps its map
    try:
        assert old.install_map(merged)
        cluster.cp.set_map(the_map(2))
        writes = [{"PutRequest": {"Item": row(f"split{i}", 0)}} for i in range(25)]
        request = validate_request("BatchWriteItem", {"RequestItems": {"rows": writes}})
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await old.batch_write_item(request, ctx("BatchWriteItem"))
        assert answer["UnprocessedItems"] == {}
        assert loop.time() - started < CONFIG.batch_deadline_ms / 1000 and old.map_version == 2
    finally:
        await old.stop()
    keys = [{"pk": {"S": f"split{i}"}, "sk": {"N": "0"}} for i in range(25)]
    got = await call("BatchGetItem", {"RequestItems": {"rows": {"Keys": keys, "ConsistentRead": True}}})
    assert len(got["Responses"]["rows"]) == 25 and got["UnprocessedKeys"] == {}


async def test_big_batches_use_several_log_entries_and_partial_answers(
        router: tuple[Cluster, Router], monkeypatch: pytest.MonkeyPatch) -> None:
    cluster, call = router
    monkeypatch.setattr(storagenode.reads, "MAX_ENTRY_BYTES", 100)  # every item its own log entry
    monkeypatch.setattr(storagenode.reads, "MAX_PART_ANSWER_BYTES", 150)  # about two items per part answer
    node = cluster.nodes["sn-b1"]

    def entries() -> int:
        return sum(hosted.machine.applied_entries for hosted in node.hosted.values())

    before = entries()
    writes = [{"PutRequest": {"Item": row(f"big{i}", 1)}} for i in range(25)]
    assert (await call("BatchWriteItem", {"RequestItems": {"rows": writes}}))["UnprocessedItems"] == {}
    await until_true(lambda: entries() - before >= 25, "an entry per item")
    pending: dict[str, Any] = {"rows": {"Keys": [{"pk": {"S": f"big{i}"}, "sk": {"N": "1"}} for i in range(25)],
                                        "ConsistentRead": True}}
    found: list[dict[str, Any]] = []
    rounds = 0
    while pending and rounds < 30:
        got = await call("BatchGetItem", {"RequestItems": pending})
        found += got["Responses"]["rows"]
        pending = got["UnprocessedKeys"]
        rounds += 1
    assert not pending and sorted(i["pk"]["S"] for i in found) == sorted(f"big{i}" for i in range(25))
    assert rounds > 2  # the parts' answers filled up, and the rest came back unprocessed


async def until_true(predicate: Any, what: str, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
