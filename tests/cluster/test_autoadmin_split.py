"""Issue 7, splits end to end on the 14-process cluster (split threshold 1 MB, a short heat window, a low
per-partition write limit, new tables with one partition):

- by size: a table loaded past 1 MB under a write load ends with several partitions; every acknowledged item
  is there exactly once (GetItem of every key, and the replicas' item counts: Scan is not on main yet) and no
  request failed;
- by heat: a small table written hard splits by heat;
- issue 7's throughput test: clients writing a hot key range as fast as they can are throttled to the
  partition's limit (60 WCU/s here), the partition splits by heat and their acknowledged puts per second rise;
- the auto-admin killed in the middle of a split: the restarted one finishes it.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from deploy.cluster import router_available
from runtime.config import AdminPolicy, build_cluster_config
from tests.cluster.conftest import Ddb
from tests.cluster.test_autoadmin_repair import Load, cp_view, verify_ok
from tests.cluster.test_cluster_faults import create_table, wait_for

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(400),
    pytest.mark.skipif(not router_available(), reason="the router process does not exist yet"),
]
BASE_PORT = 29100
SPLIT_BYTES = 1_000_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ddb]:
    data_dir = tmp_path_factory.mktemp("issue7-split") / "data"
    ddb = Ddb(data_dir, base_port=BASE_PORT)
    data_dir.mkdir(parents=True)
    admin = AdminPolicy(repair_delay_s=3.0, node_heartbeat_interval_ms=300, split_size_bytes=SPLIT_BYTES,
                        split_heat_window_s=3.0, split_heat_fraction=0.5, partition_max_wcu=60,
                        partitions_per_new_table=1)
    build_cluster_config(data_dir, base_port=BASE_PORT, admin=admin).save()
    try:
        ddb.up()
        yield ddb
    finally:
        ddb.run("down", check=False)
        ddb.kill_all()


def table_partitions(ddb: Ddb, table: str) -> list[dict[str, Any]]:
    view = cp_view(ddb)
    return [p for p in view.get("partitions", {}).values() if p["table"] == table]


GROUPS = 5  # the "big" table's GSI key: g = i % GROUPS


class BigLoad(Load):
    """Puts ~4 KB items with fresh keys (and a GSI key ``g``)."""

    PAD = "x" * 4000

    def _run(self) -> None:
        deadline = time.monotonic() + 240
        i = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            key = f"{self.prefix}{i}"
            i += 1
            try:
                self.client.put_item(TableName=self.table, Item={"pk": {"S": key}, "pad": {"S": self.PAD},
                                                                 "g": {"S": f"g{(i - 1) % GROUPS}"}})
                self.acked.append(key)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and asserted on
                self.failures.append(f"{key}: {exc}")


def gsi_keys(client: Any, group: str) -> list[str]:
    """Every item of the GSI key ``group`` (KEYS_ONLY), following LastEvaluatedKey."""
    keys: list[str] = []
    start: dict[str, Any] | None = None
    for _ in range(1_000):
        page = client.query(TableName="big", IndexName="by_g", KeyConditionExpression="g = :g",
                            ExpressionAttributeValues={":g": {"S": group}}, Limit=50,
                            **({"ExclusiveStartKey": start} if start else {}))
        keys.extend(item["pk"]["S"] for item in page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return keys
    raise AssertionError("too many pages")


class IndexReads:
    """Reads the GSI from a thread while the table splits (every partition is asked for each Query, and the
    map changes under the router): records what failed."""

    def __init__(self, ddb: Ddb) -> None:
        self.client = ddb.client(attempts=6)
        self.rounds = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 240
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                keys = gsi_keys(self.client, f"g{self.rounds % GROUPS}")
                if len(keys) != len(set(keys)):
                    self.failures.append(f"a GSI Query answered an item twice: {len(keys)} keys")
                self.rounds += 1
            except (ClientError, BotoCoreError) as exc:
                self.failures.append(repr(exc))
            time.sleep(0.2)

    def __enter__(self) -> IndexReads:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


ACCOUNTS = [f"acct{i}" for i in range(10)]  # in the table that splits: money moves while it does


class Transfers:
    """Moves money between accounts with TransactWriteItems from a thread while the table splits (the
    router's plan of partitions goes stale under the coordinator), and reads all accounts with
    TransactGetItems: records every total seen and what failed."""

    def __init__(self, ddb: Ddb, table: str) -> None:
        self.client = ddb.client(attempts=6)
        self.table = table
        self.committed = 0
        self.totals: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _key(self, account: str) -> dict[str, Any]:
        return {"pk": {"S": account}}

    def _run(self) -> None:
        deadline = time.monotonic() + 240
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            n += 1
            src, dst = ACCOUNTS[n % 10], ACCOUNTS[(n * 3 + 1) % 10]
            try:
                if src != dst:
                    self.client.transact_write_items(TransactItems=[
                        {"Update": {"TableName": self.table, "Key": self._key(src), "UpdateExpression": "SET bal = bal - :a",
                                    "ConditionExpression": "bal >= :a", "ExpressionAttributeValues": {":a": {"N": "3"}}}},
                        {"Update": {"TableName": self.table, "Key": self._key(dst), "UpdateExpression": "SET bal = bal + :a",
                                    "ExpressionAttributeValues": {":a": {"N": "3"}}}}])
                    self.committed += 1
                if n % 5 == 0:
                    got = self.client.transact_get_items(TransactItems=[
                        {"Get": {"TableName": self.table, "Key": self._key(a)}} for a in ACCOUNTS])
                    self.totals.append(sum(int(r["Item"]["bal"]["N"]) for r in got["Responses"]))
            except ClientError as exc:
                # Cancelled (a conflict, a dry account), or an outcome the router could not learn in time (an
                # InternalServerError): a transfer either happened whole or not at all, so totals still hold.
                if exc.response["Error"]["Code"] not in ("TransactionCanceledException", "InternalServerError",
                                                         "ServiceUnavailableException", "ThrottlingException",
                                                         "ProvisionedThroughputExceededException"):
                    self.failures.append(repr(exc))
            except BotoCoreError as exc:
                self.failures.append(repr(exc))
            time.sleep(0.02)

    def __enter__(self) -> Transfers:
        self.client.transact_write_items(TransactItems=[
            {"Put": {"TableName": self.table, "Item": {**self._key(a), "bal": {"N": "100"}}}} for a in ACCOUNTS])
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


def test_a_table_past_the_size_threshold_splits_under_load(cluster: Ddb) -> None:
    """... and its GSI, read all along (each replica's entry lists are built before the split; the children
    start without), answers every acknowledged item once, in every group, after the splits."""
    client = cluster.client()
    client.create_table(
        TableName="big", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        BillingMode="PAY_PER_REQUEST", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    client.get_waiter("table_exists").wait(TableName="big", WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    assert len(table_partitions(cluster, "big")) == 1
    with BigLoad(cluster, "big", "b") as load, IndexReads(cluster) as index_reads, Transfers(cluster, "big") as money:
        wait_for(lambda: len(load.acked) * 4000 > 2.5 * SPLIT_BYTES, 120, "2.5 MB written", interval_s=0.5)
        wait_for(lambda: len(table_partitions(cluster, "big")) >= 3, 60, "the table to split", interval_s=0.5)
    print(f"GSI read {index_reads.rounds} times during the load and the splits")
    assert index_reads.rounds > 0 and not index_reads.failures, index_reads.failures[:5]
    print(f"transfers committed during the splits: {money.committed}; totals read: {len(money.totals)}")
    assert money.committed > 0 and not money.failures, money.failures[:5]
    assert money.totals and set(money.totals) == {1_000}, sorted(set(money.totals))
    parts = table_partitions(cluster, "big")
    print(f"{len(load.acked)} items, {len(parts)} partitions, failures {len(load.failures)}")
    assert not load.failures, load.failures[:5]
    # The partitions tile the hash space.
    bounds = sorted((int(p["hash_lo"]), int(p["hash_hi"])) for p in parts)
    assert bounds[0][0] == 0 and bounds[-1][1] == 1 << 64
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    client = cluster.client(attempts=6)
    for key in load.acked:
        got = client.get_item(TableName="big", Key={"pk": {"S": key}}, ConsistentRead=True)
        assert got.get("Item", {}).get("pk") == {"S": key}, f"acknowledged {key} lost"
    # Scan over the split table: every item exactly once.
    scanned: list[str] = []
    start: dict[str, Any] | None = None
    for _ in range(10_000):
        page = client.scan(TableName="big", ConsistentRead=True, ProjectionExpression="pk",
                           **({"ExclusiveStartKey": start} if start else {}))
        scanned.extend(item["pk"]["S"] for item in page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert len(scanned) == len(set(scanned)), "Scan returned an item twice"
    assert set(load.acked) <= set(scanned), "Scan missed acknowledged items"
    # The GSI over the split table: each group exactly the items written with its key (reads are eventually
    # consistent, so a follower may lag a moment: asked again until it agrees, within a bound).
    acked = set(load.acked)
    final = client.transact_get_items(TransactItems=[{"Get": {"TableName": "big", "Key": {"pk": {"S": a}}}}
                                                     for a in ACCOUNTS])
    assert sum(int(r["Item"]["bal"]["N"]) for r in final["Responses"]) == 1_000
    for group in range(GROUPS):
        want = {key for key in scanned if key.startswith("b") and int(key[1:]) % GROUPS == group}
        assert {key for key in acked if int(key[1:]) % GROUPS == group} <= want
        deadline = time.monotonic() + 20
        while True:
            got = gsi_keys(client, f"g{group}")
            if sorted(got) == sorted(want):
                break
            assert time.monotonic() < deadline, f"GSI group g{group}: {len(got)} keys, {len(want)} written"
            time.sleep(0.5)
    check_stream_across_splits(cluster, set(load.acked), final["Responses"])
    body = wait_for(lambda: (lambda b: b if b.get("ok") else None)(verify_ok(cluster)), 60, "ddb verify passes",
                    interval_s=1.0)
    # Splits may have gone on since (partitions still over the threshold): never fewer partitions.
    assert sum(p["table"] == "big" for p in body["partitions"]) >= len(parts)
    events = cp_view(cluster)["admin"]["history"]
    assert any(e["kind"] == "split" and e["state"] == "finished" for e in events)


def check_stream_across_splits(cluster: Ddb, acked: set[str], accounts: list[dict[str, Any]]) -> None:
    """The table's stream after its splits: each split partition is a closed shard whose children name it as
    their parent and start after it ends; read in that order, every acknowledged put is one INSERT, and each
    account's last image is its balance now."""
    streams = cluster.streams_client(attempts=6)
    arn = cluster.client().describe_table(TableName="big")["Table"]["LatestStreamArn"]
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    by_id = {shard["ShardId"]: shard for shard in shards}
    closed = [shard for shard in shards if "EndingSequenceNumber" in shard["SequenceNumberRange"]]
    children = [shard for shard in shards if "ParentShardId" in shard]
    print(f"stream: {len(shards)} shards, {len(closed)} closed")
    assert closed and len(children) == 2 * len(closed)
    for child in children:
        parent = by_id[child["ParentShardId"]]["SequenceNumberRange"]
        assert int(child["SequenceNumberRange"]["StartingSequenceNumber"]) > int(parent["EndingSequenceNumber"])
    inserts: dict[str, int] = {}
    last_balance: dict[str, str] = {}
    for shard in shards:  # parents before children
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for _ in range(2_000):
            page = streams.get_records(ShardIterator=iterator)
            for record in page["Records"]:
                key = record["dynamodb"]["Keys"]["pk"]["S"]
                if record["eventName"] == "INSERT":
                    inserts[key] = inserts.get(key, 0) + 1
                if key in ACCOUNTS:
                    last_balance[key] = record["dynamodb"]["NewImage"]["bal"]["N"]
            iterator = page.get("NextShardIterator")
            if iterator is None or not page["Records"]:
                break
        if shard in closed:
            assert iterator is None, f"closed shard {shard['ShardId']} still gives an iterator at its end"
    assert acked <= set(inserts), f"{len(acked - set(inserts))} acknowledged puts have no record"
    assert set(inserts.values()) == {1}, "a put recorded twice"
    assert last_balance == {r["Item"]["pk"]["S"]: r["Item"]["bal"]["N"] for r in accounts}


def test_a_hot_partition_splits_by_heat(cluster: Ddb) -> None:
    create_table(cluster.client(), "hot")
    client = cluster.client(attempts=6)
    keys = [f"h{i}" for i in range(64)]
    deadline = time.monotonic() + 60
    i = 0
    while len(table_partitions(cluster, "hot")) < 2 and time.monotonic() < deadline:
        for _ in range(200):
            client.put_item(TableName="hot", Item={"pk": {"S": keys[i % len(keys)]}, "n": {"N": str(i)}})
            i += 1
    assert len(table_partitions(cluster, "hot")) >= 2, "no split by heat"
    assert any(e["kind"] == "split" and e.get("reason") == "heat" for e in cp_view(cluster)["admin"]["history"])
    for key in keys:
        assert client.get_item(TableName="hot", Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")


THROTTLED = ("ProvisionedThroughputExceededException", "ThrottlingException")


class Surge:
    """Threads that put to a small hot key range as fast as the table lets them. Each thread owns its keys
    and writes them with increasing values, so the last value acknowledged for a key is what a read must
    find. A throttled put was surely not applied: the thread pauses briefly and sends it again. Any other
    failure is recorded (the test allows none). Items of ~3 KB cost 3 write units each: the partition limit
    then binds at a third of the puts a second, far below what the cluster can do even on a loaded machine."""

    PAD = "x" * 3000
    UNITS = 3  # write units of one put

    def __init__(self, ddb: Ddb, table: str, keys: int = 256, threads: int = 8, pause_s: float = 0.01) -> None:
        self.table = table
        self.keys = [f"hot{i}" for i in range(keys)]
        self.threads = threads
        self.pause_s = pause_s
        self.clients = [ddb.client(attempts=1) for _ in range(threads)]
        self.acks: list[float] = []  # monotonic time of every acknowledged put
        self.last: dict[str, int] = {}  # key -> the last value acknowledged for it
        self.throttled = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def _run(self, n: int) -> None:
        client = self.clients[n]
        mine = self.keys[n :: self.threads]
        deadline = time.monotonic() + 240
        value = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            value += 1
            key = mine[value % len(mine)]
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    client.put_item(TableName=self.table,
                                    Item={"pk": {"S": key}, "v": {"N": str(value)}, "pad": {"S": self.PAD}})
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in THROTTLED:
                        self.throttled += 1
                        time.sleep(self.pause_s)
                        continue
                    self.failures.append(f"{key}={value}: {exc}")
                except BotoCoreError as exc:
                    self.failures.append(f"{key}={value}: {exc}")
                else:
                    self.acks.append(time.monotonic())
                    self.last[key] = value
                break

    def rate(self, start: float, end: float) -> float:
        """Acknowledged puts per second between two monotonic times."""
        return sum(start <= t < end for t in list(self.acks)) / (end - start)

    def __enter__(self) -> Surge:
        self.started = time.monotonic()
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)


def test_a_hot_key_range_splits_by_heat_and_the_clients_throughput_rises(cluster: Ddb) -> None:
    """Issue 7: one partition admits at most partition_max_wcu (60) write units a second, so a client
    writing 3-unit items as fast as it can gets about 20 puts/s; the partition, hot at its limit, splits by heat, each
    child with its own full buckets, and the same client's acknowledged puts per second rise."""
    create_table(cluster.client(), "surge")
    assert len(table_partitions(cluster, "surge")) == 1
    with Surge(cluster, "surge") as surge:
        # Before: a partition's heat is reported only after a whole heat window (3 s) of traffic, so no split
        # can begin in the first 3 s; skip the first second (the initial burst).
        time.sleep(3.2)
        before = surge.rate(surge.started + 1.0, surge.started + 3.0)
        wait_for(lambda: len(table_partitions(cluster, "surge")) >= 2, 90, "a split by heat", interval_s=0.5)
        split_seen = time.monotonic()
        # After: the children are hot at their own limits and split again, and while a partition's split
        # entry is applied its keys stall (these closed-loop threads soon all wait on them): measure over a
        # long window, a few splits' worth.
        time.sleep(14.0)
        after = surge.rate(split_seen + 2.0, split_seen + 14.0)
    parts = table_partitions(cluster, "surge")
    seconds = int(split_seen + 14.0 - surge.started)
    print("\nacknowledged puts per second:", [round(surge.rate(surge.started + i, surge.started + i + 1))
                                             for i in range(seconds)],
          f"(first split seen at {split_seen - surge.started:.1f} s)")
    print(f"surge: {before:.1f} acknowledged puts/s before the split, {after:.1f} after "
          f"({len(parts)} partitions), {len(surge.acks)} acknowledged, {surge.throttled} throttled")
    assert not surge.failures, surge.failures[:5]
    assert surge.throttled > 0, "the client was never throttled: the limit did not bind"
    assert before * Surge.UNITS <= 60 * 1.5, f"{before:.1f} puts/s before the split: the 60 WCU/s limit did not hold"
    assert after >= 1.5 * before, f"throughput did not rise after the split: {before:.1f} -> {after:.1f} puts/s"
    assert any(e["kind"] == "split" and e.get("reason") == "heat" for e in cp_view(cluster)["admin"]["history"])
    # The storage nodes counted the throttles per partition, and `ddb status` shows them.
    counted = sum(n for node in cluster.status()["nodes"] for what, n in
                  (((node.get("health") or {}).get("status") or {}).get("throttled") or {}).items()
                  if what.startswith("surge "))
    assert 0 < counted <= surge.throttled
    assert "throttled requests (over a partition's limit): " in cluster.run("status").stdout
    client = cluster.client(attempts=10)
    for key, value in surge.last.items():
        got = client.get_item(TableName="surge", Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
        assert got is not None and got["v"] == {"N": str(value)}, f"acknowledged {key}={value} lost: {got}"


def test_autoadmin_killed_mid_split_finishes_after_restart(cluster: Ddb) -> None:
    """The split begins; before its entry is reported applied, the storage nodes are paused (the cp hears
    nothing) and the auto-admin is killed; after they resume, the restarted auto-admin flips the map."""
    config = cluster.config()
    log_paths = [config.log_path(n.name) for n in config.nodes if n.name.startswith("cp-")]
    sizes = {p: p.stat().st_size if p.exists() else 0 for p in log_paths}
    storage = [n.name for n in config.nodes if n.name.startswith("sn-")]
    create_table(cluster.client(), "mid")
    caught = None
    with BigLoad(cluster, "mid", "m") as load:
        deadline = time.monotonic() + 120
        while caught is None and time.monotonic() < deadline:
            for path in log_paths:
                if not path.exists():
                    continue
                with path.open("rb") as f:
                    f.seek(sizes[path])
                    text = f.read().decode(errors="replace")
                found = re.search(r'"split begun".*?"group": ?"(p\d+)"', text) or re.search(r"split begun", text)
                if found:
                    caught = found
                    break
            time.sleep(0.01)
        assert caught is not None, "no split began"
        pids = [cluster.pid_of(n) for n in storage]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            cluster.kill("aa-1")
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        load._stop.set()
    in_progress = cp_view(cluster)["admin"]["splits"]
    if not in_progress:
        pytest.skip("the split finished before the auto-admin was killed (timing); nothing to resume")
    time.sleep(2.0)
    assert cp_view(cluster)["admin"]["splits"], "the map flipped with no auto-admin running"
    cluster.restart("aa-1")
    wait_for(lambda: not cp_view(cluster)["admin"]["splits"], 30, "the restarted auto-admin finishes the split",
             interval_s=0.5)
    client = cluster.client(attempts=6)
    for key in load.acked:
        got = client.get_item(TableName="mid", Key={"pk": {"S": key}}, ConsistentRead=True)
        assert got.get("Item", {}).get("pk") == {"S": key}, f"acknowledged {key} lost"
    wait_for(lambda: verify_ok(cluster).get("ok"), 60, "ddb verify passes", interval_s=1.0)
