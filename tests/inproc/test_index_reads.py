"""Query and Scan on secondary indexes through the router's cluster backend, against three real storage
nodes over gRPC (the fake control plane of test_storage_node serves the map): a table of four partitions
with an LSI and two GSIs, paged through in both directions and checked against an order computed here
from the items alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import router.cluster
import storagenode.entries
import storagenode.reads
from dynamo import keycodec
from dynamo.errors import DynamoError, ValidationException
from dynamo.hashing import partition_hash
from dynamo.requests import validate_request
from proto.kinds import Kind
from router.cluster import ClusterBackend
from runtime.transport import Message
from tests.inproc.test_query_cluster import CONFIG, TABLE_ID, Router, settle, the_map, write_all
from tests.inproc.test_router_cluster import ctx
from tests.inproc.test_storage_node import Cluster

pytestmark = pytest.mark.timeout(90)

SPEC = {
    "TableName": "rows",
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                             {"AttributeName": "sk", "AttributeType": "N"},
                             {"AttributeName": "score", "AttributeType": "N"},
                             {"AttributeName": "grp", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "LocalSecondaryIndexes": [{
        "IndexName": "by_score",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "score", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"}}],
    "GlobalSecondaryIndexes": [
        {"IndexName": "by_group",
         "KeySchema": [{"AttributeName": "grp", "KeyType": "HASH"}, {"AttributeName": "score", "KeyType": "RANGE"}],
         "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}},
        {"IndexName": "group_only",
         "KeySchema": [{"AttributeName": "grp", "KeyType": "HASH"}],
         "Projection": {"ProjectionType": "ALL"}}],
    "BillingMode": "PAY_PER_REQUEST",
}
PKS = [f"p{i}" for i in range(6)]
PER_PK = 24


def row(pk: str, sk: int) -> dict[str, Any]:
    item = {"pk": {"S": pk}, "sk": {"N": str(sk)}, "note": {"S": f"n{sk % 4}"}, "other": {"S": "x" * 10}}
    if sk % 5 != 4:  # some items lack the range attribute: they are in neither score index
        item["score"] = {"N": str((sk * 7) % 11)}  # equal scores in one collection: ties break by sk
    if sk % 3 != 2:  # some lack the group: not in the GSIs
        item["grp"] = {"S": f"g{sk % 2}"}
    return item


ITEMS = [row(pk, sk) for pk in PKS for sk in range(PER_PK)]


def stored(item: dict[str, Any]) -> bytes:
    pk = item["pk"]["S"]
    return keycodec.item_key(TABLE_ID, partition_hash("S", pk), "S", pk, "N", item["sk"]["N"])


def ident(item: dict[str, Any]) -> tuple[str, int]:
    return item["pk"]["S"], int(item["sk"]["N"])


@pytest.fixture
async def call(loaded: tuple[Cluster, Router]) -> Router:
    return loaded[1]


@pytest.fixture
async def loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Cluster, Router]]:
    monkeypatch.setattr(storagenode.reads, "CHUNK_ITEMS", 4)  # index reads cross many read chunks
    cluster = Cluster(tmp_path)
    cluster.cp.map = the_map(1, SPEC)
    await cluster.start()
    backend = ClusterBackend(cluster.client, ["cp-a", "cp-b", "cp-c"], CONFIG)
    await backend.start()
    try:
        assert await backend.wait_for_map(2_000)
        router = Router(backend)
        await write_all(router, [{"PutRequest": {"Item": item}} for item in ITEMS])
        await settle(cluster)
        yield cluster, router
    finally:
        await backend.stop()
        await cluster.close()


async def pages(call: Router, op: str, body: dict[str, Any], limit: int | None) -> list[dict[str, Any]]:
    """Every page of a Query or Scan, followed by LastEvaluatedKey; each page's shape checked."""
    out: list[dict[str, Any]] = []
    start: dict[str, Any] | None = None
    for _ in range(300):
        request = dict(body)
        if limit is not None:
            request["Limit"] = limit
        if start is not None:
            request["ExclusiveStartKey"] = start
        page = await call(op, request)
        if limit is not None:
            assert page["ScannedCount"] <= limit
        assert page["Count"] == len(page.get("Items", [])) or body.get("Select") == "COUNT"
        out.append(page)
        start = page.get("LastEvaluatedKey")
        if start is None:
            return out
    raise AssertionError("too many pages")


def items_of(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for page in found for item in page["Items"]]


@pytest.mark.parametrize("forward", [True, False])
@pytest.mark.parametrize("limit", [1, 4, None])
async def test_lsi_query_pages_in_index_order(call: Router, forward: bool, limit: int | None) -> None:
    found = await pages(call, "Query", {
        "IndexName": "by_score", "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "p3"}}, "ScanIndexForward": forward}, limit)
    got = items_of(found)
    want = sorted((i for i in ITEMS if i["pk"]["S"] == "p3" and "score" in i),
                  key=lambda i: (int(i["score"]["N"]), int(i["sk"]["N"])), reverse=not forward)
    assert [ident(i) for i in got] == [ident(i) for i in want]
    # KEYS_ONLY: the table's key and the index's key, nothing else.
    assert all(set(i) == {"pk", "sk", "score"} for i in got)
    if limit is not None:
        last = found[-2]["LastEvaluatedKey"] if len(found) > 1 else None
        assert last is None or set(last) == {"pk", "sk", "score"}


async def test_lsi_fetches_whole_items_and_filters_on_them(call: Router) -> None:
    found = await pages(call, "Query", {
        "IndexName": "by_score", "KeyConditionExpression": "pk = :p AND score BETWEEN :lo AND :hi",
        "FilterExpression": "note = :n", "Select": "ALL_ATTRIBUTES",
        "ExpressionAttributeValues": {":p": {"S": "p1"}, ":lo": {"N": "2"}, ":hi": {"N": "6"}, ":n": {"S": "n1"}}},
        3)
    got = items_of(found)
    want = sorted((i for i in ITEMS if i["pk"]["S"] == "p1" and "score" in i and 2 <= int(i["score"]["N"]) <= 6
                   and i["note"]["S"] == "n1"), key=lambda i: (int(i["score"]["N"]), int(i["sk"]["N"])))
    assert got == want  # whole items, as stored
    assert sum(page["ScannedCount"] for page in found) == sum(
        1 for i in ITEMS if i["pk"]["S"] == "p1" and "score" in i and 2 <= int(i["score"]["N"]) <= 6)


@pytest.mark.parametrize("forward", [True, False])
@pytest.mark.parametrize("limit, page_bytes", [(1, None), (5, None), (None, None), (None, 300), (4, 200)])
async def test_gsi_query_merges_every_partition(call: Router, forward: bool, limit: int | None,
                                                page_bytes: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if page_bytes is not None:
        # Shares cut by the byte budget, not by Limit: the page may only go as far as the nearest entry some
        # partition left out, or it would skip that partition's entries before it.
        monkeypatch.setattr(router.cluster, "MAX_PAGE_BYTES", page_bytes)
    found = await pages(call, "Query", {
        "IndexName": "by_group", "KeyConditionExpression": "grp = :g AND score >= :s",
        "ExpressionAttributeValues": {":g": {"S": "g1"}, ":s": {"N": "3"}}, "ScanIndexForward": forward}, limit)
    got = items_of(found)
    members = [i for i in ITEMS if i.get("grp") == {"S": "g1"} and "score" in i and int(i["score"]["N"]) >= 3]
    assert len({i["pk"]["S"] for i in members}) == len(PKS)  # the entries come from every partition
    want = sorted(members, key=lambda i: (int(i["score"]["N"]), stored(i)), reverse=not forward)
    assert [ident(i) for i in got] == [ident(i) for i in want]
    # INCLUDE note: keys of the table and the index, and note.
    assert all(set(i) == {"pk", "sk", "score", "grp", "note"} for i in got)


async def test_gsi_hash_only_query_with_count_and_capacity(call: Router) -> None:
    found = await pages(call, "Query", {
        "IndexName": "group_only", "KeyConditionExpression": "grp = :g", "Select": "COUNT",
        "ExpressionAttributeValues": {":g": {"S": "g0"}}, "ReturnConsumedCapacity": "INDEXES"}, 7)
    assert sum(page["Count"] for page in found) == sum(1 for i in ITEMS if i.get("grp") == {"S": "g0"})
    assert all("Items" not in page for page in found)
    consumed = found[0]["ConsumedCapacity"]
    assert consumed["TableName"] == "rows" and consumed["Table"] == {"CapacityUnits": 0.0}
    assert consumed["GlobalSecondaryIndexes"]["group_only"]["CapacityUnits"] > 0


@pytest.mark.parametrize("index, names", [("by_group", {"pk", "sk", "score", "grp", "note"}),
                                          ("group_only", None), ("by_score", {"pk", "sk", "score"})])
async def test_scan_on_an_index_reads_its_entries(call: Router, index: str, names: set[str] | None) -> None:
    found = await pages(call, "Scan", {"IndexName": index}, 6)
    got = items_of(found)
    keys = {"by_group": ("grp", "score"), "group_only": ("grp",), "by_score": ("score",)}[index]
    want = [i for i in ITEMS if all(k in i for k in keys)]
    assert sorted(ident(i) for i in got) == sorted(ident(i) for i in want)
    assert len(got) == len(want)  # no entry twice
    for item in got:
        assert set(item) == (names if names is not None else set(next(i for i in ITEMS if ident(i) == ident(item))))
    for page in found[:-1]:
        assert set(page["LastEvaluatedKey"]) == {"pk", "sk", *keys}


async def test_segmented_scan_on_a_gsi(call: Router) -> None:
    got: list[tuple[str, int]] = []
    for segment in range(3):
        found = await pages(call, "Scan", {"IndexName": "group_only", "Segment": segment, "TotalSegments": 3}, 4)
        got += [ident(i) for i in items_of(found)]
    assert sorted(got) == sorted(ident(i) for i in ITEMS if "grp" in i)


@pytest.mark.parametrize("body, message", [
    ({"IndexName": "nope", "KeyConditionExpression": "pk = :p"},
     "The table does not have the specified index: nope"),
    ({"IndexName": "by_group", "KeyConditionExpression": "grp = :p", "ConsistentRead": True},
     "Consistent reads are not supported on global secondary indexes"),
    ({"IndexName": "by_group", "KeyConditionExpression": "grp = :p", "Select": "ALL_ATTRIBUTES"},
     "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global "
     "secondary index by_group because its projection type is not ALL"),
    ({"IndexName": "by_group", "KeyConditionExpression": "pk = :p"},
     "Query condition missed key schema element: grp"),
    ({"IndexName": "by_group", "KeyConditionExpression": "grp = :p",
      "ExclusiveStartKey": {"pk": {"S": "a"}, "sk": {"N": "1"}}},
     "The provided starting key is invalid"),
    ({"IndexName": "by_group", "KeyConditionExpression": "grp = :p",
      "ExclusiveStartKey": {"pk": {"S": "a"}, "sk": {"N": "1"}, "grp": {"S": "b"}, "score": {"N": "1"}}},
     "The provided starting key is outside query boundaries based on provided conditions"),
    ({"IndexName": "by_group", "KeyConditionExpression": "grp = :p",
      "ExclusiveStartKey": {"pk": {"S": "a"}, "sk": {"S": "1"}, "grp": {"S": "g0"}, "score": {"N": "1"}}},
     "The provided starting key is invalid: The provided key element does not match the schema"),
    ({"IndexName": "by_group", "KeyConditionExpression": "grp = :p", "ProjectionExpression": "#o, pk, sk, #n",
      "ExpressionAttributeNames": {"#n": "nope", "#o": "other"}},
     "One or more parameter values were invalid: Global secondary index by_group does not project [other, nope]"),
    ({"IndexName": "by_group", "KeyConditionExpression": "grp = :p", "FilterExpression": "#o = :p",
      "ExpressionAttributeNames": {"#o": "other"}},
     "One or more parameter values were invalid: Secondary index by_group does not project one or more filter "
     "attributes: [other]"),
])
async def test_index_query_errors(call: Router, body: dict[str, Any], message: str) -> None:
    with pytest.raises(DynamoError) as caught:
        await call("Query", {"ExpressionAttributeValues": {":p": {"S": "g0"}}, **body})
    assert isinstance(caught.value, ValidationException)
    assert caught.value.message == message


async def test_scan_consistent_read_on_a_gsi_is_refused(call: Router) -> None:
    with pytest.raises(ValidationException, match="Consistent reads are not supported on global secondary indexes"):
        await call("Scan", {"IndexName": "group_only", "ConsistentRead": True})
    page = await call("Scan", {"IndexName": "by_score", "ConsistentRead": True, "Limit": 2})
    assert page["Count"] == 2  # an LSI reads strongly like its table


async def gsi_query_all(call: Router, group: str, forward: bool, limit: int) -> list[tuple[str, int]]:
    found = await pages(call, "Query", {
        "IndexName": "by_group", "KeyConditionExpression": "grp = :g",
        "ExpressionAttributeValues": {":g": {"S": group}}, "ScanIndexForward": forward}, limit)
    return [ident(i) for i in items_of(found)]


def gsi_order(items: list[dict[str, Any]], group: str, forward: bool) -> list[tuple[str, int]]:
    members = [i for i in items if i.get("grp") == {"S": group} and "score" in i]
    return [ident(i) for i in sorted(members, key=lambda i: (int(i["score"]["N"]), stored(i)), reverse=not forward)]


async def test_entry_lists_follow_writes(loaded: tuple[Cluster, Router]) -> None:
    """The first GSI Query builds each replica's entry list; later writes (an index key changed, an item
    that leaves the index, deletes, new items) keep it exact: the next Queries see them, in order."""
    cluster, call = loaded
    assert await gsi_query_all(call, "g1", True, 5) == gsi_order(ITEMS, "g1", True)
    built = [hosted.data.entry_lists for node in cluster.nodes.values() for hosted in node.hosted.values()
             if hosted.data.entry_lists]
    assert built, "no replica built an entry list"
    metrics: dict[str, float] = {}
    for node in cluster.nodes.values():
        for metric in node.collect_metrics():
            if metric.name.startswith("ddb_storage_gsi_"):
                metrics[metric.name] = metrics.get(metric.name, 0) + metric.samples[0].value
    assert metrics["ddb_storage_gsi_entry_lists"] >= 1 and metrics["ddb_storage_gsi_entries"] >= 1
    current = {ident(i): i for i in ITEMS}
    changes: list[dict[str, Any]] = []
    for pk in PKS:
        for sk in range(0, PER_PK, 4):
            one = dict(current[(pk, sk)])
            if sk % 8 == 0:
                one["grp"] = {"S": "g0" if one.get("grp") == {"S": "g1"} else "g1"}  # moves between groups
                one["score"] = {"N": str(sk % 7)}
            else:
                one.pop("grp", None)  # leaves the GSIs
            changes.append({"PutRequest": {"Item": one}})
            current[(pk, sk)] = one
        changes.append({"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"N": "1"}}}})
        del current[(pk, 1)]
        fresh = {**row(pk, 100), "grp": {"S": "g1"}, "score": {"N": "5"}}
        changes.append({"PutRequest": {"Item": fresh}})
        current[(pk, 100)] = fresh
    await write_all(call, changes)
    await settle(cluster)
    now = list(current.values())
    for group in ("g0", "g1"):
        for forward in (True, False):
            assert await gsi_query_all(call, group, forward, 6) == gsi_order(now, group, forward)


async def test_lsi_fetches_what_it_does_not_project(call: Router) -> None:
    """An LSI reads the item for attributes it does not project (DynamoDB fetches them from the table);
    a GSI refuses to (test_index_query_errors)."""
    page = await call("Query", {"IndexName": "by_score", "KeyConditionExpression": "pk = :p",
                                "ExpressionAttributeValues": {":p": {"S": "p2"}}, "ProjectionExpression": "#o, sk",
                                "ExpressionAttributeNames": {"#o": "other"},
                                "Limit": 3})
    assert page["Items"] and all(item == {"other": {"S": "x" * 10}, "sk": item["sk"]} for item in page["Items"])


async def test_a_partition_with_too_many_entries_is_read_instead(loaded: tuple[Cluster, Router],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``MAX_ENTRIES`` a replica gives its list up and reads the partition for each GSI Query: the
    answers stay the same."""
    cluster, call = loaded
    monkeypatch.setattr(storagenode.entries, "MAX_ENTRIES", 3)
    for _ in range(2):  # the first Query gives the lists up; the second reads without them
        assert await gsi_query_all(call, "g1", False, 4) == gsi_order(ITEMS, "g1", False)
    lists = [one for node in cluster.nodes.values() for hosted in node.hosted.values()
             for one in hosted.data.entry_lists._lists.values()]
    assert any(not one.ready for one in lists), "no list was given up"
    assert all(len(one.entries) <= 3 for one in lists)  # ready ones: partitions with few entries


async def test_verify_audits_entry_lists_and_catches_a_broken_one(loaded: tuple[Cluster, Router]) -> None:
    """Each replica checks its built lists against its items in its checksum answer (``ddb verify``): a list
    with an entry removed behind apply's back is named."""
    cluster, call = loaded
    await gsi_query_all(call, "g1", True, 50)

    async def audits() -> dict[tuple[str, int], dict[str, Any]]:
        found = {}
        for name, node in cluster.nodes.items():
            for pid, hosted in node.hosted.items():
                raw = await node._admin(Message(hosted.group, Kind.ADMIN, orjson.dumps({"op": "checksum"})))
                found[(name, pid)] = orjson.loads(raw)["ok"]["entry_lists"]
        return found

    before = await audits()
    checked = [key for key, audit in before.items() if audit["checked"]]
    assert checked and all(not audit["wrong"] for audit in before.values())
    name, pid, listed = next((name, pid, one) for name, pid in checked
                             for one in cluster.nodes[name].hosted[pid].data.entry_lists.built_lists() if one.entries)
    listed.entries.pop(0)  # a list that missed a write
    after = await audits()
    assert after[(name, pid)]["wrong"] == [listed.index.name]
    assert all(not audit["wrong"] for key, audit in after.items() if key != (name, pid))


async def test_writes_report_what_they_consume_on_each_index(loaded: tuple[Cluster, Router]) -> None:
    _, call = loaded

    async def put(item: dict[str, Any]) -> dict[str, Any]:
        body = {"TableName": "rows", "Item": item, "ReturnConsumedCapacity": "INDEXES"}
        result: dict[str, Any] = await call.backend.put_item(validate_request("PutItem", body), ctx("PutItem"))
        return result["ConsumedCapacity"]

    fresh = {"pk": {"S": "cap"}, "sk": {"N": "1"}, "grp": {"S": "g0"}, "score": {"N": "2"}, "note": {"S": "x"}}
    consumed = await put(fresh)
    assert consumed == {"TableName": "rows", "CapacityUnits": 4.0, "Table": {"CapacityUnits": 1.0},
                        "LocalSecondaryIndexes": {"by_score": {"CapacityUnits": 1.0}},
                        "GlobalSecondaryIndexes": {"by_group": {"CapacityUnits": 1.0}, "group_only": {"CapacityUnits": 1.0}}}
    consumed = await put({**fresh, "other": {"S": "y"}})  # only group_only (ALL) projects "other"
    assert consumed["GlobalSecondaryIndexes"] == {"group_only": {"CapacityUnits": 1.0}}
    assert "LocalSecondaryIndexes" not in consumed and consumed["CapacityUnits"] == 2.0


async def test_batch_writes_report_index_capacity(loaded: tuple[Cluster, Router]) -> None:
    _, call = loaded
    writes = [{"PutRequest": {"Item": {"pk": {"S": f"bw{i}"}, "sk": {"N": "1"}, "grp": {"S": "g1"}}}} for i in range(3)]
    answer = await call("BatchWriteItem", {"RequestItems": {"rows": writes}, "ReturnConsumedCapacity": "INDEXES"})
    # No score: only group_only (keyed by grp alone) holds these items; by_group and the LSI need a score.
    assert answer["ConsumedCapacity"] == [{"TableName": "rows", "CapacityUnits": 6.0, "Table": {"CapacityUnits": 3.0},
                                           "GlobalSecondaryIndexes": {"group_only": {"CapacityUnits": 3.0}}}]
