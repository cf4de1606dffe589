"""Issue 6 end to end: Query, Scan and the batch operations on the 14-process cluster, through boto3, on
tables of several partitions (``partitions_per_new_table``). Paging yields every item exactly once; a
4-segment parallel scan covers the table once; batches during a storage-node kill leave work unprocessed
(never fail it) and retrying finishes the job.

Every loop is bounded in count and time; every process is stopped by PID when the module ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from deploy.cluster import router_available
from tests.cluster.conftest import Ddb

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not router_available(), reason="the router process does not exist yet"),
]
BASE_PORT = 28000
HOT_ITEMS = 10_000  # one partition-key value: paged through by Query
SPREAD_ITEMS = 2_000  # over many partition-key values, so every partition holds some
SPREAD_KEYS = 400
TABLE = "issue6"


def create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST")
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})


def item(pk: str, sk: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}, "v": {"S": f"{pk}/{sk}"}}


def write_all(client: Any, table: str, items: list[dict[str, Any]], deadline_s: float = 120.0) -> int:
    """BatchWriteItem in 25s, retrying UnprocessedItems, 5xx answers and throttling until done; answers the
    retries. Throttling is expected: the hot key's 10,000 items go to one partition, whose 1,000 write units
    a second the 8 loading threads can exceed (a faster cluster did, in CI), as DynamoDB's would throttle."""
    retries = 0
    deadline = time.monotonic() + deadline_s
    for i in range(0, len(items), 25):
        pending = [{"PutRequest": {"Item": one}} for one in items[i : i + 25]]
        while pending:
            assert time.monotonic() < deadline, "batch writes did not finish in time"
            try:
                answer = client.batch_write_item(RequestItems={table: pending})
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                assert code in ("ServiceUnavailableException", "InternalServerError", "ServiceUnavailable",
                                "ThrottlingException", "ProvisionedThroughputExceededException"), exc
                retries += 1
                time.sleep(0.2 if "Throttl" in code or "Throughput" in code else 0.1)
                continue
            pending = answer["UnprocessedItems"].get(table, [])
            if pending:
                retries += 1
                time.sleep(0.05)
    return retries


def load(ddb: Ddb, table: str, items: list[dict[str, Any]], threads: int = 8) -> None:
    chunks = [items[i::threads] for i in range(threads)]
    errors: list[BaseException] = []

    def run(chunk: list[dict[str, Any]]) -> None:
        try:
            write_all(ddb.client(attempts=5), table, chunk)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(chunk,), daemon=True) for chunk in chunks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(180)
    assert not errors, errors


def pages(call: Any, limit_pages: int = 1_000, **request: Any) -> Iterator[dict[str, Any]]:
    start = None
    for _ in range(limit_pages):
        if start is not None:
            request["ExclusiveStartKey"] = start
        page = call(**request)
        yield page
        start = page.get("LastEvaluatedKey")
        if start is None:
            return
    raise AssertionError("too many pages")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ddb]:
    ddb = Ddb(tmp_path_factory.mktemp("issue6") / "data", base_port=BASE_PORT)
    try:
        ddb.up()
        client = ddb.client(attempts=5)
        create_table(client, TABLE)
        started = time.monotonic()
        hot = [item("hot", sk) for sk in range(HOT_ITEMS)]
        spread = [item(f"k{i % SPREAD_KEYS}", i // SPREAD_KEYS) for i in range(SPREAD_ITEMS)]
        load(ddb, TABLE, hot + spread)
        print(f"loaded {len(hot) + len(spread)} items in {time.monotonic() - started:.1f}s")
        yield ddb
    finally:
        ddb.run("down", check=False)
        ddb.kill_all()


def all_keys() -> set[tuple[str, int]]:
    return {("hot", sk) for sk in range(HOT_ITEMS)} | {
        (f"k{i % SPREAD_KEYS}", i // SPREAD_KEYS) for i in range(SPREAD_ITEMS)}


def keys_of(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(one["pk"]["S"], int(one["sk"]["N"])) for one in items]


def test_the_table_has_several_partitions(cluster: Ddb) -> None:
    body = cluster.status()
    ours = {p["partition_id"] for p in body.get("partitions", []) if p.get("table") == TABLE}
    assert len(ours) >= 2, body.get("partitions")


def test_query_pages_through_10000_items_in_order_both_ways(cluster: Ddb) -> None:
    client = cluster.client(attempts=5)
    expected = list(range(HOT_ITEMS))

    def query_all(forward: bool, consistent: bool) -> list[int]:
        seen: list[int] = []
        for page in pages(client.query, TableName=TABLE, KeyConditionExpression="pk = :p",
                          ExpressionAttributeValues={":p": {"S": "hot"}}, Limit=700, ScanIndexForward=forward,
                          ConsistentRead=consistent):
            assert page["Count"] == len(page["Items"]) <= 700
            seen += [int(one["sk"]["N"]) for one in page["Items"]]
        return seen

    assert query_all(True, True) == expected
    assert query_all(False, True) == expected[::-1]
    # Eventually consistent pages come from any replica: one may still be catching up, briefly.
    deadline = time.monotonic() + 20
    while (eventual := query_all(True, False)) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert eventual == expected
    # Without a Limit, the 1 MB page budget cuts pages.
    sizes = [page["Count"] for page in pages(client.query, TableName=TABLE, KeyConditionExpression="pk = :p",
                                             ExpressionAttributeValues={":p": {"S": "hot"}}, ConsistentRead=True)]
    assert sum(sizes) == HOT_ITEMS
    page = client.query(TableName=TABLE, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                        FilterExpression="v <> :skip", ProjectionExpression="sk", ConsistentRead=True,
                        ExpressionAttributeValues={":p": {"S": "hot"}, ":a": {"N": "100"}, ":b": {"N": "199"},
                                                   ":skip": {"S": "hot/150"}})
    assert page["ScannedCount"] == 100 and page["Count"] == 99
    assert all(set(one) == {"sk"} for one in page["Items"])


def test_scan_pages_and_parallel_segments_cover_the_table_once(cluster: Ddb) -> None:
    client = cluster.client(attempts=5)
    expected = all_keys()
    seen: list[tuple[str, int]] = []
    for page in pages(client.scan, TableName=TABLE, Limit=900, ConsistentRead=True):
        seen += keys_of(page["Items"])
    assert len(seen) == len(expected) and set(seen) == expected

    results: dict[int, list[tuple[str, int]]] = {}
    errors: list[BaseException] = []

    def segment(n: int) -> None:
        try:
            own = cluster.client(attempts=5)
            got: list[tuple[str, int]] = []
            for page in pages(own.scan, TableName=TABLE, Segment=n, TotalSegments=4, Limit=1_000,
                              ConsistentRead=True):
                got += keys_of(page["Items"])
            results[n] = got
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    workers = [threading.Thread(target=segment, args=(n,), daemon=True) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not errors, errors
    together = [key for n in range(4) for key in results[n]]
    assert len(together) == len(expected) and set(together) == expected
    assert all(results[n] for n in range(4)), "each segment holds part of the table"
    counted = [p for p in pages(client.scan, TableName=TABLE, Select="COUNT", FilterExpression="pk = :p",
                                ExpressionAttributeValues={":p": {"S": "k7"}}, ConsistentRead=True)]
    assert sum(p["Count"] for p in counted) == SPREAD_ITEMS // SPREAD_KEYS
    assert sum(p["ScannedCount"] for p in counted) == len(expected) and all("Items" not in p for p in counted)


def test_batch_get_item(cluster: Ddb) -> None:
    client = cluster.client(attempts=5)
    keys = [{"pk": {"S": f"k{i}"}, "sk": {"N": "0"}} for i in range(99)] + [{"pk": {"S": "nope"}, "sk": {"N": "0"}}]
    got = client.batch_get_item(RequestItems={TABLE: {"Keys": keys, "ConsistentRead": True}},
                                ReturnConsumedCapacity="TOTAL")
    assert got["UnprocessedKeys"] == {}
    assert sorted(keys_of(got["Responses"][TABLE])) == sorted((f"k{i}", 0) for i in range(99))
    assert got["ConsumedCapacity"][0]["TableName"] == TABLE
    with pytest.raises(ClientError) as failed:
        client.batch_get_item(RequestItems={TABLE: {"Keys": [keys[0], keys[0]]}})
    assert "duplicates" in failed.value.response["Error"]["Message"]


def test_aws_cli_pages_scans_and_queries(cluster: Ddb) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from runtime.config import REPO_ROOT

    env = dict(os.environ, AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", AWS_DEFAULT_REGION="eu-west-1")
    aws = [str(Path(sys.executable).parent / "aws"), "dynamodb", "--endpoint-url", cluster.endpoint, "--output", "json"]

    def run(*args: str) -> Any:
        done = subprocess.run([*aws, *args], capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    # The CLI follows LastEvaluatedKey itself: pages of 1,000 add up to the whole table.
    counted = run("scan", "--table-name", TABLE, "--select", "COUNT", "--page-size", "1000", "--consistent-read")
    assert counted["Count"] == len(all_keys())
    got = run("query", "--table-name", TABLE, "--key-condition-expression", "pk = :p", "--no-scan-index-forward",
              "--expression-attribute-values", '{":p": {"S": "k1"}}', "--page-size", "2", "--consistent-read")
    assert [int(one["sk"]["N"]) for one in got["Items"]] == list(range(SPREAD_ITEMS // SPREAD_KEYS))[::-1]


def test_partiql_through_boto3_and_the_aws_cli(cluster: Ddb) -> None:
    """ExecuteStatement and BatchExecuteStatement as SDKs and the CLI send them: SELECT by partition key
    (paged by NextToken) and by a scan, INSERT's DuplicateItemException, UPDATE and DELETE."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from runtime.config import REPO_ROOT

    client = cluster.client(attempts=5)
    found: list[dict[str, Any]] = []
    token = None
    for _ in range(50):
        page = client.execute_statement(Statement=f'SELECT sk, v FROM "{TABLE}" WHERE pk = ? AND sk < 5',
                                        Parameters=[{"S": "k9"}], Limit=2, **({"NextToken": token} if token else {}))
        found += page["Items"]
        token = page.get("NextToken")
        if token is None:
            break
    assert [int(one["sk"]["N"]) for one in found] == [0, 1, 2, 3, 4]
    assert found[0] == {"sk": {"N": "0"}, "v": {"S": "k9/0"}}
    client.execute_statement(Statement=f"INSERT INTO {TABLE} VALUE {{'pk': 'partiql', 'sk': 1, 'n': 1}}")
    with pytest.raises(ClientError) as caught:
        client.execute_statement(Statement=f"INSERT INTO {TABLE} VALUE {{'pk': 'partiql', 'sk': 1}}")
    assert caught.value.response["Error"] == {"Code": "DuplicateItemException",
                                              "Message": "Duplicate primary key exists in table"}
    answers = client.batch_execute_statement(Statements=[
        {"Statement": f"UPDATE {TABLE} SET n = n + 41 WHERE pk = 'partiql' AND sk = 1"},
        {"Statement": f"UPDATE {TABLE} SET n = 1 WHERE pk = 'partiql' AND sk = 2"},
    ])["Responses"]
    assert "Error" not in answers[0] and answers[1]["Error"]["Code"] == "ConditionalCheckFailed"

    env = dict(os.environ, AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", AWS_DEFAULT_REGION="eu-west-1")
    aws = [str(Path(sys.executable).parent / "aws"), "dynamodb", "--endpoint-url", cluster.endpoint, "--output", "json"]
    done = subprocess.run([*aws, "execute-statement", "--statement",
                           f"SELECT n FROM {TABLE} WHERE pk = 'partiql' AND sk = 1", "--consistent-read"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Items"] == [{"n": {"N": "42"}}]
    client.execute_statement(Statement=f"DELETE FROM {TABLE} WHERE pk = 'partiql' AND sk = 1")
    assert client.execute_statement(Statement=f"SELECT * FROM {TABLE} WHERE pk = 'partiql'",
                                    ConsistentRead=True)["Items"] == []


def test_time_to_live_deletes_expired_items_across_partitions(cluster: Ddb) -> None:
    """UpdateTimeToLive / DescribeTimeToLive through boto3 with DynamoDB's answers and errors (the hour's
    cooldown included: the default config keeps DynamoDB's), then the partitions' leaders delete the expired
    items, within a few sweeps (5 s each by default), and only those."""
    client = cluster.client(attempts=5)
    create_table(client, "ttl")
    now = int(time.time())
    expired = [{**item(f"x{i}", 0), "exp": {"N": str(now - 60)}} for i in range(40)]
    kept = [{**item(f"k{i}", 0), "exp": {"N": str(now + 3600)}} for i in range(20)] + [
        {**item(f"s{i}", 0), "exp": {"S": str(now - 60)}} for i in range(10)] + [item(f"p{i}", 0) for i in range(10)]
    write_all(client, "ttl", expired + kept)
    assert client.describe_time_to_live(TableName="ttl")["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}
    answer = client.update_time_to_live(TableName="ttl", TimeToLiveSpecification={"Enabled": True,
                                                                                  "AttributeName": "exp"})
    assert answer["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": "exp"}
    enabled_at = time.monotonic()
    assert client.describe_time_to_live(TableName="ttl")["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}
    for spec, message in (({"Enabled": True, "AttributeName": "exp"}, "TimeToLive is already enabled"),
                          ({"Enabled": False, "AttributeName": "other"},
                           "TimeToLive is active on a different AttributeName: current AttributeName is exp"),
                          ({"Enabled": False, "AttributeName": "exp"},
                           "Time to live has been modified multiple times within a fixed interval")):
        with pytest.raises(ClientError) as caught:
            client.update_time_to_live(TableName="ttl", TimeToLiveSpecification=spec)
        assert caught.value.response["Error"] == {"Code": "ValidationException", "Message": message}
    with pytest.raises(ClientError) as caught:
        client.describe_time_to_live(TableName="nope")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # What Terraform reads next to TTL after creating a table: no backups here.
    backups = client.describe_continuous_backups(TableName="ttl")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"] == {"PointInTimeRecoveryStatus": "DISABLED"}
    with pytest.raises(ClientError) as caught:
        client.describe_continuous_backups(TableName="nope")
    assert caught.value.response["Error"] == {"Code": "TableNotFoundException", "Message": "Table not found: nope"}

    def remaining() -> set[str]:
        pages = client.get_paginator("scan").paginate(TableName="ttl", ConsistentRead=True)
        return {one["pk"]["S"] for page in pages for one in page["Items"]}

    deadline = time.monotonic() + 40
    while remaining() & {one["pk"]["S"] for one in expired}:
        assert time.monotonic() < deadline, "expired items still there after 40 s"
        time.sleep(1.0)
    print(f"40 expired items deleted {time.monotonic() - enabled_at:.1f} s after TTL was enabled")
    assert remaining() == {one["pk"]["S"] for one in kept}


def test_secondary_indexes_through_boto3(cluster: Ddb) -> None:
    """A GSI and an LSI on a table of several partitions: boto3's paginators page through a GSI Query in
    index order both ways (entries from every partition, merged), an LSI Query by its sort key, and a Scan
    of the GSI that sees exactly the items holding its key."""
    client = cluster.client(attempts=5)
    client.create_table(
        TableName="indexed",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"},
                              {"AttributeName": "state", "AttributeType": "S"},
                              {"AttributeName": "at", "AttributeType": "N"}],
        LocalSecondaryIndexes=[{
            "IndexName": "by_at", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}]}],
        GlobalSecondaryIndexes=[{
            "IndexName": "by_state", "Projection": {"ProjectionType": "KEYS_ONLY"},
            "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}]}],
        BillingMode="PAY_PER_REQUEST")
    client.get_waiter("table_exists").wait(TableName="indexed", WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})
    rows = []
    for i in range(1_200):
        one = {**item(f"k{i % 60}", i // 60), "at": {"N": str((i * 37) % 500)}}
        if i % 4:
            one["state"] = {"S": "open" if i % 2 else "shut"}
        rows.append(one)
    write_all(client, "indexed", rows)

    opened = [one for one in rows if one.get("state") == {"S": "open"}]
    assert len({one["pk"]["S"] for one in opened}) > 20
    for forward in (True, False):
        started = time.monotonic()
        found = [one for page in client.get_paginator("query").paginate(
            TableName="indexed", IndexName="by_state", KeyConditionExpression="#s = :s AND #a >= :a",
            ExpressionAttributeNames={"#s": "state", "#a": "at"},
            ExpressionAttributeValues={":s": {"S": "open"}, ":a": {"N": "100"}}, ScanIndexForward=forward,
            PaginationConfig={"PageSize": 50}) for one in page["Items"]]
        elapsed = time.monotonic() - started
        want = [one for one in opened if int(one["at"]["N"]) >= 100]
        assert sorted(keys_of(found)) == sorted(keys_of(want))
        ats = [int(one["at"]["N"]) for one in found]
        assert ats == sorted(ats, reverse=not forward)
        assert all(set(one) == {"pk", "sk", "state", "at"} for one in found)  # KEYS_ONLY
        print(f"GSI query, {len(found)} of 1,200 items in pages of 50: {elapsed * 1000:.0f} ms")

    found = [one for page in client.get_paginator("query").paginate(
        TableName="indexed", IndexName="by_at", KeyConditionExpression="pk = :p", ConsistentRead=True,
        ExpressionAttributeValues={":p": {"S": "k7"}}, PaginationConfig={"PageSize": 3}) for one in page["Items"]]
    want = sorted((one for one in rows if one["pk"]["S"] == "k7"), key=lambda one: (int(one["at"]["N"]),
                                                                                     int(one["sk"]["N"])))
    assert found == want  # ALL: whole items, ordered by the LSI's sort key

    scanned = [one for page in client.get_paginator("scan").paginate(
        TableName="indexed", IndexName="by_state", PaginationConfig={"PageSize": 100}) for one in page["Items"]]
    assert sorted(keys_of(scanned)) == sorted(keys_of([one for one in rows if "state" in one]))
    with pytest.raises(ClientError) as caught:
        client.query(TableName="indexed", IndexName="by_state", KeyConditionExpression="#s = :s",
                     ExpressionAttributeNames={"#s": "state"}, ExpressionAttributeValues={":s": {"S": "open"}},
                     ConsistentRead=True)
    assert caught.value.response["Error"] == {
        "Code": "ValidationException", "Message": "Consistent reads are not supported on global secondary indexes"}

    # UpdateTable adds a GSI over items already there (ACTIVE at once: entries are derived when read), and
    # writes must then type its key; then deletes it.
    answer = client.update_table(
        TableName="indexed", AttributeDefinitions=[{"AttributeName": "v", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[{"Create": {
            "IndexName": "by_v", "KeySchema": [{"AttributeName": "v", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"}}}])
    statuses = {i["IndexName"]: i["IndexStatus"] for i in answer["TableDescription"]["GlobalSecondaryIndexes"]}
    assert statuses == {"by_state": "ACTIVE", "by_v": "ACTIVE"}
    found = client.query(TableName="indexed", IndexName="by_v", KeyConditionExpression="v = :v",
                         ExpressionAttributeValues={":v": {"S": "k7/3"}})["Items"]
    assert found == [one for one in rows if one["v"] == {"S": "k7/3"}]
    with pytest.raises(ClientError) as caught:
        client.put_item(TableName="indexed", Item={**item("k1", 9_999), "v": {"N": "1"}})
    assert "Type mismatch for Index Key v Expected: S Actual: N IndexName: by_v" in caught.value.response["Error"]["Message"]
    client.update_table(TableName="indexed", GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_v"}}])
    assert [i["IndexName"] for i in client.describe_table(TableName="indexed")["Table"]["GlobalSecondaryIndexes"]] == [
        "by_state"]
    deadline = time.monotonic() + 10
    while True:  # the router learns of the deletion with its next map
        try:
            client.query(TableName="indexed", IndexName="by_v", KeyConditionExpression="v = :v",
                         ExpressionAttributeValues={":v": {"S": "k7/3"}})
        except ClientError as exc:
            assert exc.response["Error"]["Message"] == "The table does not have the specified index: by_v"
            break
        assert time.monotonic() < deadline, "the deleted index still answers"
        time.sleep(0.1)


def transfer(src: str, dst: str, amount: int) -> list[dict[str, Any]]:
    """A TransactWriteItems' actions moving ``amount`` from account ``src`` (if it holds that much) to ``dst``."""
    value = {":a": {"N": str(amount)}}
    return [{"Update": {"TableName": TABLE, "Key": {"pk": {"S": src}, "sk": {"N": "0"}},
                        "UpdateExpression": "SET bal = bal - :a", "ConditionExpression": "bal >= :a",
                        "ExpressionAttributeValues": value}},
            {"Update": {"TableName": TABLE, "Key": {"pk": {"S": dst}, "sk": {"N": "0"}},
                        "UpdateExpression": "SET bal = bal + :a", "ExpressionAttributeValues": value}}]


def test_transactions_keep_a_total_while_transfers_race_and_serializable_reads_watch(cluster: Ddb) -> None:
    """Money moves between 20 accounts (spread over the partitions) in TransactWriteItems from 4 threads
    at once, each transfer conditioned on the balance; a fifth thread reads every account with
    TransactGetItems meanwhile. Every read that succeeds sees the same total, and so does the end."""
    accounts = [f"acct{i}" for i in range(20)]
    client = cluster.client(attempts=5)
    client.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": a}, "sk": {"N": "0"}, "bal": {"N": "100"}}}}
        for a in accounts])
    stop = threading.Event()
    errors: list[BaseException] = []
    sums: list[int] = []
    committed: list[int] = []

    def transfers(seed: int) -> None:
        me = cluster.client(attempts=5)
        done = 0
        try:
            for n in range(25):
                src, dst = accounts[(seed * 7 + n) % 20], accounts[(seed * 3 + n * 11 + 1) % 20]
                if src == dst:
                    continue
                for _ in range(40):
                    try:
                        me.transact_write_items(TransactItems=transfer(src, dst, 7))
                        done += 1
                        break
                    except ClientError as exc:
                        if exc.response["Error"]["Code"] != "TransactionCanceledException":
                            raise
                        reasons = [r["Code"] for r in exc.response.get("CancellationReasons", [])]
                        if "ConditionalCheckFailed" in reasons:
                            break  # the source ran dry: a legitimate refusal
                        time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        committed.append(done)

    def reader() -> None:
        me = cluster.client(attempts=5)
        try:
            for _ in range(2_000):
                if stop.is_set():
                    return
                try:
                    got = me.transact_get_items(TransactItems=[
                        {"Get": {"TableName": TABLE, "Key": {"pk": {"S": a}, "sk": {"N": "0"}}}} for a in accounts])
                except ClientError as exc:
                    if exc.response["Error"]["Code"] != "TransactionCanceledException":
                        raise
                    continue
                sums.append(sum(int(r["Item"]["bal"]["N"]) for r in got["Responses"]))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=transfers, args=(seed,), daemon=True) for seed in range(4)]
    watcher = threading.Thread(target=reader, daemon=True)
    for thread in [*threads, watcher]:
        thread.start()
    for thread in threads:
        thread.join(240)
    stop.set()
    watcher.join(60)
    assert not errors, errors
    assert sum(committed) >= 50, committed
    assert sums and set(sums) == {2_000}, sorted(set(sums))
    final = client.transact_get_items(TransactItems=[
        {"Get": {"TableName": TABLE, "Key": {"pk": {"S": a}, "sk": {"N": "0"}}}} for a in accounts])
    assert sum(int(r["Item"]["bal"]["N"]) for r in final["Responses"]) == 2_000
    print(f"transfers committed: {sum(committed)}; consistent reads of the total: {len(sums)}")


def test_transactions_through_the_aws_cli(cluster: Ddb) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from runtime.config import REPO_ROOT

    env = dict(os.environ, AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", AWS_DEFAULT_REGION="eu-west-1")
    aws = [str(Path(sys.executable).parent / "aws"), "dynamodb", "--endpoint-url", cluster.endpoint, "--output", "json"]
    items = [{"Put": {"TableName": TABLE, "Item": {"pk": {"S": f"cli{i}"}, "sk": {"N": "0"}}}} for i in range(3)]
    done = subprocess.run([*aws, "transact-write-items", "--transact-items", json.dumps(items)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    again = [{"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "cli0"}, "sk": {"N": "0"}},
                                 "ConditionExpression": "attribute_not_exists(pk)"}},
             {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "cli1"}, "sk": {"N": "0"}}}}]
    done = subprocess.run([*aws, "transact-write-items", "--transact-items", json.dumps(again)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT)
    assert done.returncode != 0
    assert "TransactionCanceledException" in done.stderr and "[ConditionalCheckFailed, None]" in done.stderr
    gets = [{"Get": {"TableName": TABLE, "Key": {"pk": {"S": f"cli{i}"}, "sk": {"N": "0"}}}} for i in range(4)]
    done = subprocess.run([*aws, "transact-get-items", "--transact-items", json.dumps(gets)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert [bool(r) for r in json.loads(done.stdout)["Responses"]] == [True, True, True, False]


def test_a_router_killed_mid_transactions_leaves_locks_the_partitions_resolve(cluster: Ddb) -> None:
    """16 threads move money between 40 accounts; the router gets SIGKILL among them. Transactions it was
    coordinating stay locked (`ddb status` names them) until the partitions' leaders resolve them from their
    primaries; after that no lock is left and the accounts still hold the total."""
    accounts = [f"rk{i}" for i in range(40)]
    client = cluster.client(attempts=5)
    for half in (accounts[:20], accounts[20:]):
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": a}, "sk": {"N": "0"}, "bal": {"N": "100"}}}}
            for a in half])
    stop = time.monotonic() + 6

    def worker(seed: int) -> None:
        me = cluster.client(attempts=1, read_timeout_s=5)
        n = 0
        while time.monotonic() < stop:
            n += 1
            src, dst = accounts[(seed * 7 + n) % 40], accounts[(seed * 13 + n * 3 + 1) % 40]
            if src == dst:
                continue
            try:
                me.transact_write_items(TransactItems=transfer(src, dst, 1))
            except (ClientError, BotoCoreError):
                time.sleep(0.05)  # the router is down: outcome unknown, or refused

    threads = [threading.Thread(target=worker, args=(seed,), daemon=True) for seed in range(16)]
    for thread in threads:
        thread.start()
    time.sleep(2.5)
    cluster.kill("rr-1")
    for thread in threads:
        thread.join(30)
    locked = [line for line in cluster.run("status").stdout.splitlines() if "locked by transactions" in line]
    assert locked, "16 threads of transactions, and none in flight when the router died?"
    cluster.restart("rr-1")
    deadline = time.monotonic() + 30
    while [line for line in cluster.run("status").stdout.splitlines() if "locked by transactions" in line]:
        assert time.monotonic() < deadline, "transaction locks were never resolved"
        time.sleep(1)
    got = cluster.client(attempts=8).transact_get_items(TransactItems=[
        {"Get": {"TableName": TABLE, "Key": {"pk": {"S": a}, "sk": {"N": "0"}}}} for a in accounts])
    assert sum(int(r["Item"]["bal"]["N"]) for r in got["Responses"]) == 4_000
    print(f"locks left by the killed router: {locked}")


def test_batches_during_a_node_kill_leave_work_unprocessed_and_retries_finish(cluster: Ddb) -> None:
    client = cluster.client(attempts=5)
    extra = [item(f"kill{i % 50}", i) for i in range(1_500)]
    done = threading.Event()
    retries: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            retries.append(write_all(cluster.client(attempts=5), TABLE, extra, deadline_s=150))
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    time.sleep(0.5)
    cluster.kill("sn-a1")
    thread.join(170)
    assert done.is_set() and not errors, errors
    # Every item is there: read back by BatchGetItem, retrying what comes back unprocessed.
    wanted = [{"pk": one["pk"], "sk": one["sk"]} for one in extra]
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    for i in range(0, len(wanted), 100):
        pending: dict[str, Any] = {TABLE: {"Keys": wanted[i : i + 100], "ConsistentRead": True}}
        while pending:
            assert time.monotonic() < deadline, "batch reads did not finish in time"
            try:
                got = client.batch_get_item(RequestItems=pending)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] in ("ServiceUnavailableException", "InternalServerError"), exc
                continue
            found += got["Responses"].get(TABLE, [])
            pending = got["UnprocessedKeys"]
    assert sorted(keys_of(found)) == sorted(keys_of(extra))
    print(f"batch retries during the kill: {retries}")


def test_batches_with_a_partition_out_of_quorum_return_its_work_unprocessed(cluster: Ddb) -> None:
    """Two replicas of one partition down: its puts and keys come back unprocessed, the others' are done;
    once the nodes are back, retrying the unprocessed work finishes it."""
    cluster.restart("sn-a1")  # killed by the previous test
    client = cluster.client(attempts=2, read_timeout_s=15)
    victim = next(p for p in cluster.status()["partitions"]
                  if p["table"] == TABLE and p["leader"] and len(p["replicas"]) == 3 and "sn-a1" not in p["replicas"])
    down = [name for name in victim["replicas"] if not name.startswith("sn-c")]
    cluster.kill(*down)
    rows = [item(f"quorum{i}", 0) for i in range(50)]
    pending: list[dict[str, Any]] = []
    processed = 0
    for i in range(0, len(rows), 25):
        batch = [{"PutRequest": {"Item": one}} for one in rows[i : i + 25]]
        try:
            left = client.batch_write_item(RequestItems={TABLE: batch})["UnprocessedItems"].get(TABLE, [])
        except ClientError as exc:  # every partition in the batch was out of reach at once
            assert exc.response["Error"]["Code"] == "ServiceUnavailableException", exc
            left = batch
        processed += len(batch) - len(left)
        pending += left
    assert pending and processed, (len(pending), processed)  # some work done, some handed back
    keys = [{"pk": one["pk"], "sk": one["sk"]} for one in rows]
    got = client.batch_get_item(RequestItems={TABLE: {"Keys": keys, "ConsistentRead": True}})
    assert got["UnprocessedKeys"].get(TABLE, {}).get("Keys"), "the out-of-quorum partition's keys come back"
    cluster.restart(*down)
    deadline = time.monotonic() + 90
    while pending:
        assert time.monotonic() < deadline, "unprocessed items were never written"
        batch, pending = pending[:25], pending[25:]
        try:
            left = client.batch_write_item(RequestItems={TABLE: batch})["UnprocessedItems"].get(TABLE, [])
        except ClientError as exc:
            assert exc.response["Error"]["Code"] in ("ServiceUnavailableException", "InternalServerError"), exc
            left = batch
        if left:
            time.sleep(0.2)
        pending += left
    found: list[dict[str, Any]] = []
    want: dict[str, Any] = {TABLE: {"Keys": keys, "ConsistentRead": True}}
    while want:
        assert time.monotonic() < deadline, "batch reads did not finish in time"
        try:
            got = client.batch_get_item(RequestItems=want)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] in ("ServiceUnavailableException", "InternalServerError"), exc
            time.sleep(0.2)
            continue
        found += got["Responses"].get(TABLE, [])
        want = got["UnprocessedKeys"]
    assert sorted(keys_of(found)) == sorted(keys_of(rows))


def read_stream(streams: Any, arn: str) -> list[dict[str, Any]]:
    """Every record of every shard of the stream, from each shard's oldest (bounded: 200 pages a shard)."""
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for _ in range(200):
            page = streams.get_records(ShardIterator=iterator, Limit=50)
            records += page["Records"]
            iterator = page.get("NextShardIterator")
            if iterator is None or not page["Records"]:
                break
    return records


def test_streams_through_boto3_and_the_aws_cli(cluster: Ddb) -> None:
    """A table created with a stream: every write becomes its record, in order per item, across the table's
    partitions (one shard each). The records survive the SIGKILL of a shard's leader. Disabling the stream
    closes it; enabling again starts a new one. The AWS CLI reads the same records."""
    client, streams = cluster.client(attempts=5), cluster.streams_client(attempts=5)
    client.create_table(
        TableName="feed", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    client.get_waiter("table_exists").wait(TableName="feed", WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})
    table = client.describe_table(TableName="feed")["Table"]
    arn = table["LatestStreamArn"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert arn == f"{table['TableArn']}/stream/{table['LatestStreamLabel']}"
    keys = [f"u{i}" for i in range(30)]
    for i, key in enumerate(keys):
        client.put_item(TableName="feed", Item={"pk": {"S": key}, "n": {"N": "1"}})
        client.update_item(TableName="feed", Key={"pk": {"S": key}}, UpdateExpression="ADD n :one",
                           ExpressionAttributeValues={":one": {"N": "1"}})
        if i % 3 == 0:
            client.delete_item(TableName="feed", Key={"pk": {"S": key}})
    expected = {key: ["INSERT", "MODIFY"] + (["REMOVE"] if i % 3 == 0 else []) for i, key in enumerate(keys)}

    def events(records: list[dict[str, Any]]) -> dict[str, list[str]]:
        seen: dict[str, list[str]] = {}
        for record in records:
            seen.setdefault(record["dynamodb"]["Keys"]["pk"]["S"], []).append(record["eventName"])
        return seen

    described = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert described["StreamStatus"] == "ENABLED" and described["TableName"] == "feed"
    assert len(described["Shards"]) == len([p for p in cluster.status()["partitions"] if p["table"] == "feed"])
    records = read_stream(streams, arn)
    assert events(records) == expected
    modify = next(r for r in records if r["eventName"] == "MODIFY")["dynamodb"]
    assert modify["OldImage"]["n"] == {"N": "1"} and modify["NewImage"]["n"] == {"N": "2"}

    # A shard's leader dies: its records are on the other replicas.
    leader = next(p["leader"] for p in cluster.status()["partitions"] if p["table"] == "feed")
    cluster.kill(leader)
    try:
        assert events(read_stream(streams, arn)) == expected
    finally:
        cluster.restart(leader)

    # Off, then on again with another view: the first stream closes, a second one starts.
    client.update_table(TableName="feed", StreamSpecification={"StreamEnabled": False})
    assert streams.describe_stream(StreamArn=arn)["StreamDescription"]["StreamStatus"] == "DISABLED"
    with pytest.raises(ClientError) as caught:
        client.update_table(TableName="feed", StreamSpecification={"StreamEnabled": False})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    client.put_item(TableName="feed", Item={"pk": {"S": "while-off"}})
    # The map reaches the leader of the next write's partition 800 ms late (the control plane's messages to
    # it are slowed): UpdateTable answers only once that leader follows the map with the new stream.
    from dynamo.hashing import partition_hash

    after = partition_hash("S", "after")
    late = next(p["leader"] for p in cluster.status()["partitions"]
                if p["table"] == "feed" and int(p["hash_lo"]) <= after < int(p["hash_hi"]))
    for cp in ("cp-a", "cp-b", "cp-c"):
        cluster.run("fault", "slow", cp, late, "--ms", "800", "--oneway")
    try:
        time.sleep(0.5)  # every process reads the fault table within its poll (100 ms)
        answer = client.update_table(TableName="feed", StreamSpecification={"StreamEnabled": True,
                                                                           "StreamViewType": "KEYS_ONLY"})
        second = answer["TableDescription"]["LatestStreamArn"]
        client.put_item(TableName="feed", Item={"pk": {"S": "after"}})
    finally:
        cluster.run("fault", "heal")
    assert second != arn
    listed = streams.list_streams(TableName="feed")["Streams"]
    assert sorted(s["StreamArn"] for s in listed) == sorted([arn, second])
    newer = read_stream(streams, second)
    assert [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in newer] == [("INSERT", "after")]
    assert "NewImage" not in newer[0]["dynamodb"] and newer[0]["dynamodb"]["StreamViewType"] == "KEYS_ONLY"
    assert events(read_stream(streams, arn)) == expected, "nothing more in the closed stream"

    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from runtime.config import REPO_ROOT

    env = dict(os.environ, AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", AWS_DEFAULT_REGION="us-east-1")
    aws = [str(Path(sys.executable).parent / "aws"), "dynamodbstreams", "--endpoint-url", cluster.endpoint,
           "--output", "json"]

    def cli(*args: str) -> Any:
        done = subprocess.run([*aws, *args], capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    shard = cli("describe-stream", "--stream-arn", arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = cli("get-shard-iterator", "--stream-arn", arn, "--shard-id", shard,
                   "--shard-iterator-type", "TRIM_HORIZON")["ShardIterator"]
    got = cli("get-records", "--shard-iterator", iterator)["Records"]
    assert got and {r["eventName"] for r in got} <= {"INSERT", "MODIFY", "REMOVE"}
