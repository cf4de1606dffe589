"""TransactWriteItems and TransactGetItems through the router's cluster backend, against three real storage
nodes over gRPC and a table of four partitions: commits across partitions, cancellations, conflicts with
single-item writes, idempotency, and a coordinator that stops half-way, whose locks the partitions' leaders
then resolve from the primary item."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dynamo.errors import (
    IdempotentParameterMismatchException,
    InternalServerError,
    ResourceNotFoundException,
    TransactionCanceledException,
    TransactionConflictException,
    ValidationException,
)
from dynamo.hashing import HASH_SPACE, partition_hash
from dynamo.requests import validate_request
from router.cluster import ClusterBackend
from storagenode.app import StorageApp
from storagenode.locks import is_lock
from tests.inproc.test_query_cluster import CONFIG, PARTS, SPEC, the_map
from tests.inproc.test_router_cluster import ctx
from tests.inproc.test_storage_node import NODE_CONFIG, Cluster

pytestmark = pytest.mark.timeout(90)
LOCK_TIMEOUT_MS = 1_500  # above the retries of a transaction that meets a lock (tens of ms)


def pk_in(pid: int, prefix: str = "k") -> str:
    """A partition key whose hash falls in partition ``pid`` of the table."""
    lo, hi = PARTS[pid]
    return next(f"{prefix}{i}" for i in range(10_000) if lo <= partition_hash("S", f"{prefix}{i}") < hi)


def key(pk: str, sk: int = 0) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


class Client:
    def __init__(self, backend: ClusterBackend) -> None:
        self.backend = backend

    async def __call__(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        needs_table = op in ("PutItem", "GetItem", "UpdateItem", "DeleteItem", "Query")
        request = validate_request(op, {"TableName": "rows", **body} if needs_table else body)
        method = {"TransactWriteItems": self.backend.transact_write_items,
                  "TransactGetItems": self.backend.transact_get_items, "PutItem": self.backend.put_item,
                  "GetItem": self.backend.get_item, "UpdateItem": self.backend.update_item,
                  "DeleteItem": self.backend.delete_item, "Query": self.backend.query,
                  "BatchWriteItem": self.backend.batch_write_item,
                  "ExecuteTransaction": self.backend.execute_transaction}[op]
        result: dict[str, Any] = await method(request, ctx(op))
        return result

    async def get(self, pk: str, sk: int = 0) -> dict[str, Any] | None:
        answer = await self("GetItem", {"Key": key(pk, sk), "ConsistentRead": True})
        item: dict[str, Any] | None = answer.get("Item")
        return item


@pytest.fixture
async def setup(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Cluster, Client]]:
    cluster = Cluster(tmp_path)
    cluster.node_config = replace(NODE_CONFIG, txn_lock_timeout_ms=LOCK_TIMEOUT_MS, txn_sweep_interval_ms=50)
    cluster.cp.map = the_map(1, getattr(request, "param", SPEC))
    await cluster.start()
    backend = ClusterBackend(cluster.client, ["cp-a", "cp-b", "cp-c"], CONFIG)
    await backend.start()
    try:
        assert await backend.wait_for_map(2_000)
        yield cluster, Client(backend)
    finally:
        await backend.stop()
        await cluster.close()


def locks_held(cluster: Cluster) -> list[bytes]:
    """Storage keys any replica holds a lock on."""
    held = []
    for node in cluster.nodes.values():
        for hosted in node.hosted.values():
            rng = hosted.data.range
            held += [k for k, raw in hosted.data.store.scan(rng.start, rng.end) if is_lock(raw)]
    return held


async def no_locks(cluster: Cluster, timeout_s: float = 2.0) -> None:
    """No replica holds a lock once the followers applied what their leaders did."""
    async def released() -> bool:
        return not locks_held(cluster)

    await until(released, "every replica to release its locks", timeout_s)


async def until(predicate: Any, what: str, timeout_s: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def put(pk: str, sk: int = 0, **extra: Any) -> dict[str, Any]:
    return {"Put": {"TableName": "rows", "Item": {**key(pk, sk), **extra}}}


async def test_a_transaction_across_four_partitions_commits_every_action(setup: tuple[Cluster, Client]) -> None:
    cluster, call = setup
    a, b, c, d = (pk_in(pid) for pid in PARTS)
    await call("PutItem", {"Item": {**key(b), "n": {"N": "5"}}})
    await call("PutItem", {"Item": {**key(c), "gone": {"BOOL": True}}})
    await call("PutItem", {"Item": {**key(d), "state": {"S": "open"}}})
    answer = await call("TransactWriteItems", {"TransactItems": [
        put(a, v={"S": "new"}),
        {"Update": {"TableName": "rows", "Key": key(b), "UpdateExpression": "ADD n :one",
                    "ConditionExpression": "n = :five",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":five": {"N": "5"}}}},
        {"Delete": {"TableName": "rows", "Key": key(c), "ConditionExpression": "attribute_exists(gone)"}},
        {"ConditionCheck": {"TableName": "rows", "Key": key(d), "ConditionExpression": "#s = :open",
                            "ExpressionAttributeNames": {"#s": "state"},
                            "ExpressionAttributeValues": {":open": {"S": "open"}}}},
    ], "ReturnConsumedCapacity": "TOTAL"})
    assert answer["ConsumedCapacity"] == [{"TableName": "rows", "CapacityUnits": 8.0}]
    assert await call.get(a) == {**key(a), "v": {"S": "new"}}
    assert (await call.get(b) or {})["n"] == {"N": "6"}
    assert await call.get(c) is None
    assert await call.get(d) == {**key(d), "state": {"S": "open"}}
    await no_locks(cluster)
    assert call.backend.transactions.stats["committed"] == 1


async def test_one_failed_condition_cancels_everything_with_dynamodbs_reasons(setup: tuple[Cluster, Client]) -> None:
    cluster, call = setup
    a, b = pk_in(21), pk_in(23)
    await call("PutItem", {"Item": {**key(b), "n": {"N": "1"}}})
    with pytest.raises(TransactionCanceledException) as caught:
        await call("TransactWriteItems", {"TransactItems": [
            put(a, v={"S": "x"}),
            {"Update": {"TableName": "rows", "Key": key(b), "UpdateExpression": "SET n = :two",
                        "ConditionExpression": "n = :two", "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        "ExpressionAttributeValues": {":two": {"N": "2"}}}},
        ]})
    error = caught.value
    assert error.message == ("Transaction cancelled, please refer cancellation reasons for specific reasons "
                             "[None, ConditionalCheckFailed]")
    assert error.extra["CancellationReasons"] == [
        {"Code": "None"},
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed",
         "Item": {**key(b), "n": {"N": "1"}}},
    ]
    assert await call.get(a) is None
    assert (await call.get(b) or {})["n"] == {"N": "1"}
    await no_locks(cluster)
    # The same when the failing action is the primary's (nothing is locked at all), and in one partition.
    for items in ([{"ConditionCheck": {"TableName": "rows", "Key": key(a), "ConditionExpression": "attribute_exists(pk)"}},
                   put(b, n={"N": "9"})],
                  [put(b, 1), {"ConditionCheck": {"TableName": "rows", "Key": key(b, 2),
                                                  "ConditionExpression": "attribute_exists(pk)"}}]):
        with pytest.raises(TransactionCanceledException) as caught:
            await call("TransactWriteItems", {"TransactItems": items})
        codes = [r["Code"] for r in caught.value.extra["CancellationReasons"]]
        assert codes.count("ConditionalCheckFailed") == 1 and codes.count("None") == 1
    assert (await call.get(b) or {})["n"] == {"N": "1"}
    assert await call.get(b, 1) is None
    await no_locks(cluster)


async def test_requests_dynamodb_refuses_before_anything_runs(setup: tuple[Cluster, Client]) -> None:
    _, call = setup
    a = pk_in(22)
    with pytest.raises(ValidationException, match="Transaction request cannot include multiple operations on one item"):
        await call("TransactWriteItems", {"TransactItems": [put(a), {"Delete": {"TableName": "rows", "Key": key(a)}}]})
    with pytest.raises(ResourceNotFoundException):
        await call("TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "nope", "Item": key(a)}}]})
    # As DynamoDB Local answers them: an update of a key attribute and a key of the wrong type are the
    # action's cancellation reason; a missing key attribute fails the request.
    with pytest.raises(TransactionCanceledException) as caught:
        await call("TransactWriteItems", {"TransactItems": [put(pk_in(21)), {"Update": {
            "TableName": "rows", "Key": key(a), "UpdateExpression": "SET pk = :v",
            "ExpressionAttributeValues": {":v": {"S": "x"}}}}]})
    assert caught.value.extra["CancellationReasons"] == [{"Code": "None"}, {
        "Code": "ValidationError",
        "Message": "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"}]
    with pytest.raises(TransactionCanceledException) as caught:
        await call("TransactWriteItems", {"TransactItems": [put(pk_in(21)), {"Delete": {
            "TableName": "rows", "Key": {"pk": {"S": a}, "sk": {"S": "0"}}}}]})
    assert caught.value.extra["CancellationReasons"][1] == {
        "Code": "ValidationError", "Message": "One or more parameter values were invalid: Type mismatch for key"}
    with pytest.raises(ValidationException, match="The number of conditions on the keys is invalid"):
        await call("TransactWriteItems", {"TransactItems": [{"Delete": {"TableName": "rows", "Key": {"pk": {"S": a}}}}]})
    with pytest.raises(ValidationException, match="One of the required keys was not given a value"):
        await call("TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "rows", "Item": {"pk": {"S": a}}}}]})
    assert await call.get(pk_in(21)) is None
    with pytest.raises(ValidationException, match="ExpressionAttributeValues can only be specified when using expressions"):
        await call("TransactWriteItems", {"TransactItems": [{"Delete": {
            "TableName": "rows", "Key": key(a), "ExpressionAttributeValues": {":v": {"S": "x"}}}}]})
    with pytest.raises(ValidationException, match="multiple operations on one item"):
        await call("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "rows", "Key": key(a)}}] * 2})
    assert await call.get(a) is None


async def test_items_in_one_partition_are_one_log_entry_and_hold_no_locks(setup: tuple[Cluster, Client]) -> None:
    cluster, call = setup
    a = pk_in(24)
    await call("TransactWriteItems", {"TransactItems": [put(a, i, n={"N": str(i)}) for i in range(5)]})
    assert call.backend.transactions.stats["single"] == 1
    found = await call("Query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": a}},
                                 "ConsistentRead": True})
    assert [i["n"]["N"] for i in found["Items"]] == ["0", "1", "2", "3", "4"]
    await no_locks(cluster)


async def test_transact_get_items_reads_every_item_with_projections(setup: tuple[Cluster, Client]) -> None:
    _, call = setup
    pks = [pk_in(pid) for pid in PARTS]
    await call("TransactWriteItems", {"TransactItems": [put(pk, a={"S": pk}, b={"N": "1"}) for pk in pks[:3]]})
    answer = await call("TransactGetItems", {"TransactItems": [
        {"Get": {"TableName": "rows", "Key": key(pks[0])}},
        {"Get": {"TableName": "rows", "Key": key(pks[1]), "ProjectionExpression": "#a",
                 "ExpressionAttributeNames": {"#a": "a"}}},
        {"Get": {"TableName": "rows", "Key": key(pks[3])}},
    ], "ReturnConsumedCapacity": "TOTAL"})
    assert answer["Responses"] == [{"Item": {**key(pks[0]), "a": {"S": pks[0]}, "b": {"N": "1"}}},
                                   {"Item": {"a": {"S": pks[1]}}}, {}]
    assert answer["ConsumedCapacity"] == [{"TableName": "rows", "CapacityUnits": 6.0}]


async def test_client_request_token_makes_a_transaction_idempotent(setup: tuple[Cluster, Client]) -> None:
    _, call = setup
    a, b = pk_in(21), pk_in(22)
    body = {"TransactItems": [
        {"Update": {"TableName": "rows", "Key": key(a), "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Update": {"TableName": "rows", "Key": key(b), "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}}], "ClientRequestToken": "tok-1"}
    await call("TransactWriteItems", body)
    await call("TransactWriteItems", body)
    assert (await call.get(a) or {})["n"] == {"N": "1"}
    with pytest.raises(IdempotentParameterMismatchException):
        await call("TransactWriteItems", {**body, "TransactItems": body["TransactItems"][:1]})
    await call("TransactWriteItems", {**body, "ClientRequestToken": "tok-2"})
    assert (await call.get(b) or {})["n"] == {"N": "2"}


class Stopped(Exception):
    """The coordinator 'dies' here."""


async def test_a_coordinator_gone_after_prepare_leaves_locks_that_are_aborted(
        setup: tuple[Cluster, Client], monkeypatch: pytest.MonkeyPatch) -> None:
    cluster, call = setup
    a, b = pk_in(21), pk_in(23)
    await call("PutItem", {"Item": {**key(b), "v": {"S": "before"}}})
    coordinator = call.backend.transactions

    async def die(*args: Any, **kwargs: Any) -> list[str]:
        raise Stopped()

    monkeypatch.setattr(coordinator, "_finish", die)
    with pytest.raises(Stopped):
        await call("TransactWriteItems", {"TransactItems": [put(a, v={"S": "txn"}), put(b, v={"S": "txn"})]})
    monkeypatch.undo()

    async def all_locked() -> bool:
        return len(locks_held(cluster)) == 6  # two items, three replicas each

    await until(all_locked, "every replica to hold the locks", timeout_s=2)
    # `ddb status` shows them, per partition, from the nodes that lead them.
    held: dict[str, int] = {}
    for node in cluster.nodes.values():
        app = StorageApp()
        app.node = node
        for where, count in app.status()["txn_locks"].items():
            held[where] = held.get(where, 0) + count
    assert held == {"rows p21": 1, "rows p23": 1}, held
    # While the locks are held: a write conflicts, a transactional read is cancelled, a consistent read
    # and a Query see the item as it was.
    with pytest.raises(TransactionConflictException, match="Transaction is ongoing for the item"):
        await call("PutItem", {"Item": {**key(b), "v": {"S": "plain"}}})
    with pytest.raises(TransactionConflictException):
        await call("BatchWriteItem", {"RequestItems": {"rows": [{"DeleteRequest": {"Key": key(a)}}]}})
    with pytest.raises(TransactionCanceledException) as caught:
        await call("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "rows", "Key": key(b)}}]})
    assert caught.value.extra["CancellationReasons"] == [
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
    with pytest.raises(TransactionCanceledException) as caught:
        await call("TransactWriteItems", {"TransactItems": [put(pk_in(22)), put(a, v={"S": "other"})]})
    assert [r["Code"] for r in caught.value.extra["CancellationReasons"]] == ["None", "TransactionConflict"]
    assert await call.get(a) is None
    assert (await call.get(b) or {})["v"] == {"S": "before"}
    found = await call("Query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": a}}})
    assert found["Items"] == [] and found["Count"] == 0
    # The leaders find the locks stale and abort the transaction from its primary.

    async def released() -> bool:
        return not locks_held(cluster)

    await until(released, "the locks to be aborted")
    samples = [(sample.name, sample.labels, sample.value) for node in cluster.nodes.values()
               for family in node.collect_metrics() if family.name.startswith("ddb_storage_txn")
               for sample in family.samples]
    assert sum(v for n, labels, v in samples if labels.get("decision") == "abort") >= 1, samples
    assert sum(v for n, _, v in samples if n == "ddb_storage_txn_locks") == 0, samples
    assert call.backend.transactions.stats["canceled"] == 1  # the TransactWriteItems that met a lock
    assert await call.get(a) is None
    assert (await call.get(b) or {})["v"] == {"S": "before"}
    await call("PutItem", {"Item": {**key(b), "v": {"S": "plain"}}})
    assert (await call.get(b) or {})["v"] == {"S": "plain"}


async def test_a_committed_transaction_is_finished_by_its_primary_when_the_coordinator_stops(
        setup: tuple[Cluster, Client], monkeypatch: pytest.MonkeyPatch) -> None:
    cluster, call = setup
    a, b, c = pk_in(22), pk_in(21), pk_in(24)
    coordinator = call.backend.transactions
    real = coordinator._finish

    async def commit_point_only(txn: str, part: Any, decision: str, keys: Any = None, keep: Any = None) -> list[str]:
        if decision == "commit" and keep is None:
            raise InternalServerError("lost")  # the primary committed; the other partitions never hear of it
        return await real(txn, part, decision, keys, keep)

    monkeypatch.setattr(coordinator, "_finish", commit_point_only)
    await call("TransactWriteItems", {"TransactItems": [put(a, v={"S": "1"}), put(b, v={"S": "2"}),
                                                        put(c, v={"S": "3"})]})
    monkeypatch.undo()
    assert locks_held(cluster)  # b and c are still prepared, a's lock records the commit
    # A consistent read learns the outcome from the primary: the transaction committed.
    assert (await call.get(b) or {})["v"] == {"S": "2"}
    assert (await call.get(a) or {})["v"] == {"S": "1"}
    with pytest.raises(TransactionCanceledException):
        await call("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "rows", "Key": key(c)}}]})

    async def released() -> bool:
        return not locks_held(cluster)

    await until(released, "the primary to finish the transaction")
    answer = await call("TransactGetItems", {"TransactItems": [
        {"Get": {"TableName": "rows", "Key": key(pk)}} for pk in (a, b, c)]})
    assert [r["Item"]["v"]["S"] for r in answer["Responses"]] == ["1", "2", "3"]
    resolved = {d: sum(n.items.txn.resolved[d] for n in cluster.nodes.values()) for d in ("commit", "cleanup")}
    assert resolved["cleanup"] >= 1


async def test_locks_move_with_a_snapshot_and_are_found_after_a_restart(setup: tuple[Cluster, Client],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A leader that restarts forgets the locks it knew; it finds them in its store again and resolves them."""
    cluster, call = setup
    a, b = pk_in(21), pk_in(22)
    coordinator = call.backend.transactions

    async def die(*args: Any, **kwargs: Any) -> list[str]:
        raise Stopped()

    monkeypatch.setattr(coordinator, "_finish", die)
    with pytest.raises(Stopped):
        await call("TransactWriteItems", {"TransactItems": [put(a, v={"S": "t"}), put(b, v={"S": "t"})]})
    monkeypatch.undo()
    for name in list(cluster.nodes):
        await cluster.stop_node(name)
    for name in ("sn-a1", "sn-b1", "sn-c1"):
        await cluster.start_node(name)
    # Each replica's lock index was saved with its items: known at once, no scan of the store needed.
    hosted = [h for node in cluster.nodes.values() for h in node.hosted.values()]
    assert hosted and all(h.data.locks_known for h in hosted)
    assert sum(len(h.data.locks) for h in hosted) >= 2  # the leaders' (a follower may apply after it restarts)

    async def released() -> bool:
        return not locks_held(cluster)

    await until(released, "the restarted leaders to abort the locks", timeout_s=15)
    assert await call.get(a) is None


async def test_execute_transaction_runs_partiql_statements_as_one_transaction(setup: tuple[Cluster, Client]) -> None:
    cluster, call = setup
    a, b = pk_in(21), pk_in(23)
    await call("PutItem", {"Item": {**key(b), "n": {"N": "1"}}})
    with pytest.raises(ValidationException, match="multiple operations on one item"):
        await call("ExecuteTransaction", {"TransactStatements": [
            {"Statement": f"UPDATE rows SET n = n + 1 WHERE pk = '{b}' AND sk = 0"},
            {"Statement": f"EXISTS(SELECT * FROM rows WHERE pk = '{b}' AND sk = 0 AND n = 1)"}]})
    with pytest.raises(TransactionCanceledException) as caught:
        await call("ExecuteTransaction", {"TransactStatements": [
            {"Statement": "INSERT INTO rows VALUE {'pk': ?, 'sk': 0, 'v': 'x'}", "Parameters": [{"S": a}]},
            {"Statement": f"EXISTS(SELECT * FROM rows WHERE pk = '{b}' AND sk = 1)"}]})
    assert [r["Code"] for r in caught.value.extra["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    await call("ExecuteTransaction", {"TransactStatements": [
        {"Statement": "INSERT INTO rows VALUE {'pk': ?, 'sk': 0, 'v': 'x'}", "Parameters": [{"S": a}]},
        {"Statement": f"UPDATE rows SET n = n + 1 WHERE pk = '{b}' AND sk = 0 AND n = 1"}]})
    with pytest.raises(TransactionCanceledException) as caught:
        await call("ExecuteTransaction", {"TransactStatements": [
            {"Statement": f"UPDATE rows SET n = 0 WHERE pk = '{b}' AND sk = 0"},
            {"Statement": "INSERT INTO rows VALUE {'pk': ?, 'sk': 0}", "Parameters": [{"S": a}]}]})
    assert caught.value.extra["CancellationReasons"] == [
        {"Code": "None"}, {"Code": "ValidationError", "Message": "Duplicate primary key exists in table"}]
    answer = await call("ExecuteTransaction", {"TransactStatements": [
        {"Statement": f"SELECT v FROM rows WHERE pk = '{a}' AND sk = 0"},
        {"Statement": "SELECT * FROM rows WHERE pk = ? AND sk = 0", "Parameters": [{"S": b}]},
        {"Statement": f"SELECT * FROM rows WHERE pk = '{pk_in(24)}' AND sk = 0"}]})
    assert answer["Responses"] == [{"Item": {"v": {"S": "x"}}}, {"Item": {**key(b), "n": {"N": "2"}}}, {}]
    with pytest.raises(ValidationException, match="does not support both read and write operations"):
        await call("ExecuteTransaction", {"TransactStatements": [
            {"Statement": f"SELECT * FROM rows WHERE pk = '{a}' AND sk = 0"},
            {"Statement": f"DELETE FROM rows WHERE pk = '{b}' AND sk = 0"}]})
    await no_locks(cluster)


async def test_a_commit_the_map_moved_under_is_planned_again_primary_first(
        setup: tuple[Cluster, Client], monkeypatch: pytest.MonkeyPatch) -> None:
    """A router whose map predates a split sends the commit of the primary's partition with an item the
    partition no longer holds: the node answers stale, and the router plans the commit again with the new
    map, the primary's partition before the others."""
    cluster, call = setup
    a, b, c = pk_in(21), pk_in(22), pk_in(23)  # a and b share one partition of the older map below
    captured: dict[str, Any] = {}
    coordinator = call.backend.transactions

    async def stop_before_commit(txn: str, items: Any, positions: list[int], decision: str, *,
                                 keep: bool = False) -> dict[int, str]:
        captured.update(txn=txn, items=items)
        raise Stopped()

    monkeypatch.setattr(coordinator, "_finish_at", stop_before_commit)
    with pytest.raises(Stopped):
        await call("TransactWriteItems", {"TransactItems": [put(a, v={"S": "1"}), put(b, v={"S": "2"}),
                                                            put(c, v={"S": "3"})]})
    monkeypatch.undo()
    half = HASH_SPACE // 2
    merged = the_map(1)
    merged["tables"]["rows"]["partitions"] = [21, 23]
    merged["partitions"] = {"21": {**merged["partitions"]["21"], "hi": str(half)},
                            "23": {**merged["partitions"]["23"], "lo": str(half), "hi": str(HASH_SPACE)}}
    old = ClusterBackend(cluster.client, ["cp-a", "cp-b", "cp-c"], CONFIG)  # no poller: it keeps its map
    sent: list[tuple[str, list[int], bool]] = []
    real_finish = old.transactions._finish

    async def record(txn: str, part: Any, decision: str, keys: Any = None, keep: Any = None) -> list[str]:
        sent.append((decision, list(part.positions), keep is not None))
        return await real_finish(txn, part, decision, keys, keep)

    monkeypatch.setattr(old.transactions, "_finish", record)
    try:
        assert old.install_map(merged)
        cluster.cp.set_map(the_map(2))
        txn, items = captured["txn"], captured["items"]
        states = await old.transactions._finish_at(txn, items, [0, 1], "commit", keep=True)
        assert states == {0: "committed", 1: "none"} and old.map_version == 2
        assert sent == [("commit", [0, 1], True), ("commit", [0], True), ("commit", [1], False)]
        await old.transactions._finish_at(txn, items, [2], "commit")
        await old.transactions._finish_at(txn, items, [0], "cleanup")
    finally:
        await old.stop()
    answer = await call("TransactGetItems", {"TransactItems": [
        {"Get": {"TableName": "rows", "Key": key(pk)}} for pk in (a, b, c)]})
    assert [r["Item"]["v"]["S"] for r in answer["Responses"]] == ["1", "2", "3"]
    await no_locks(cluster)


async def test_a_transaction_meeting_a_lock_that_clears_soon_is_tried_again_and_commits(
        setup: tuple[Cluster, Client], monkeypatch: pytest.MonkeyPatch) -> None:
    _, call = setup
    a, b, c = pk_in(21), pk_in(22), pk_in(23)
    coordinator = call.backend.transactions
    # Enough tries that the second transaction outlasts the first one's commit, on a loaded machine too.
    monkeypatch.setattr(call.backend, "_config", replace(call.backend._config, transaction_conflict_retries=8))
    real_finish_at = coordinator._finish_at
    prepared, release = asyncio.Event(), asyncio.Event()

    async def held_until_released(txn: str, items: Any, positions: list[int], decision: str, *,
                                  keep: bool = False) -> dict[int, str]:
        if keep and not release.is_set():
            prepared.set()
            await asyncio.wait_for(release.wait(), 10)  # the first transaction's locks stay held till then
        return await real_finish_at(txn, items, positions, decision, keep=keep)

    monkeypatch.setattr(coordinator, "_finish_at", held_until_released)
    first = asyncio.ensure_future(call("TransactWriteItems", {"TransactItems": [
        {"Update": {"TableName": "rows", "Key": key(a), "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}}, put(b, v={"S": "first"})]}))
    await asyncio.wait_for(prepared.wait(), 5)
    second = asyncio.ensure_future(call("TransactWriteItems", {"TransactItems": [
        {"Update": {"TableName": "rows", "Key": key(a), "UpdateExpression": "ADD n :ten",
                    "ExpressionAttributeValues": {":ten": {"N": "10"}}}}, put(c, v={"S": "second"})]}))
    for _ in range(500):  # the second meets the first's locks and waits to try again
        if coordinator.stats["conflict_retries"] >= 1:
            break
        await asyncio.sleep(0.01)
    assert coordinator.stats["conflict_retries"] >= 1
    release.set()
    await first
    await second
    assert (await call.get(a) or {})["n"] == {"N": "11"}
    got = await call("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "rows", "Key": key(pk)}}
                                                            for pk in (b, c)]})
    assert [r["Item"]["v"]["S"] for r in got["Responses"]] == ["first", "second"]


WITH_GSI = {**SPEC, "AttributeDefinitions": [*SPEC["AttributeDefinitions"], {"AttributeName": "g", "AttributeType": "S"}],
            "GlobalSecondaryIndexes": [{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                        "Projection": {"ProjectionType": "ALL"}}]}


@pytest.mark.parametrize("setup", [WITH_GSI], indirect=True)
async def test_consumed_capacity_names_the_indexes_a_transaction_writes(setup: tuple[Cluster, Client]) -> None:
    _, call = setup
    a, b = pk_in(21), pk_in(22)
    answer = await call("TransactWriteItems", {"TransactItems": [
        put(a, g={"S": "x"}), put(b), {"ConditionCheck": {"TableName": "rows", "Key": key(pk_in(23)),
                                                          "ConditionExpression": "attribute_not_exists(nope)"}}],
        "ReturnConsumedCapacity": "INDEXES"})
    # Two puts (2 units each, transactional) of which one has a GSI entry (2 more), and a check (2).
    assert answer["ConsumedCapacity"] == [{"TableName": "rows", "CapacityUnits": 8.0, "Table": {"CapacityUnits": 6.0},
                                           "GlobalSecondaryIndexes": {"by_g": {"CapacityUnits": 2.0}}}]
    found = await call("Query", {"IndexName": "by_g", "KeyConditionExpression": "g = :g",
                                 "ExpressionAttributeValues": {":g": {"S": "x"}}})
    assert [i["pk"]["S"] for i in found["Items"]] == [a]
