"""Table operations at the control-plane leader, without the network: DynamoDB's rules, the planned
commands, the answers; the metadata snapshot; the heartbeat view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_plane import tables
from control_plane.machine import MetadataMachine
from control_plane.metadata import Metadata, MetadataError, encode_command
from control_plane.view import ClusterView
from dynamo.errors import (
    LimitExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
    ValidationException,
)
from dynamo.streams import stream_label
from runtime.store import Store

ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/"


def cluster() -> Metadata:
    meta = Metadata()
    for az in "abc":
        for i in (1, 2):
            run(meta, encode_command("register_node", name=f"sn-{az}{i}", az=az, address=f"h:{az}{i}"))
    return meta


def run(meta: Metadata, command: bytes) -> Any:
    result = meta.apply(meta.applied_index + 1, command)
    if isinstance(result, MetadataError):
        raise tables.as_dynamo_error(result)
    return result


def create_request(name: str, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    request.update(extra)
    return request


def provisioned(name: str, read: int = 5, write: int = 5) -> dict[str, Any]:
    return create_request(name, BillingMode="PROVISIONED",
                          ProvisionedThroughput={"ReadCapacityUnits": read, "WriteCapacityUnits": write})


def create(meta: Metadata, request: dict[str, Any], partitions: int = 2, active: bool = True) -> None:
    table = run(meta, tables.plan_create(meta, request, partitions=partitions, now_s=1700000000.5,
                                         table_uuid=f"uuid-{request['TableName']}"))
    if active:
        run(meta, encode_command("set_table_status", name=table.name, table_id=table.table_id, status="ACTIVE"))


def test_create_places_partitions_and_describes_creating_then_active() -> None:
    meta = cluster()
    request = create_request("Music", Tags=[{"Key": "team", "Value": "blue"}])
    table = run(meta, tables.plan_create(meta, request, partitions=3, now_s=12.5, table_uuid="u-1"))
    description = tables.describe(table, "eu-west-1", lambda t: (7, 700))
    assert description["TableStatus"] == "CREATING"
    assert description["TableArn"] == "arn:aws:dynamodb:eu-west-1:000000000000:table/Music"
    assert (description["TableId"], description["CreationDateTime"]) == ("u-1", 12.5)
    assert (description["ItemCount"], description["TableSizeBytes"]) == (7, 700)
    assert "Tags" not in table.spec and table.tags == {"team": "blue"}
    assert len(meta.table_partitions("Music")) == 3
    run(meta, encode_command("set_table_status", name="Music", table_id=table.table_id, status="ACTIVE"))
    assert tables.describe_table(meta, "Music", "us-east-1")["Table"]["TableStatus"] == "ACTIVE"


def test_new_partitions_first_leaders_spread_over_the_nodes() -> None:
    """Each partition created with its table names the replica that campaigns first; in creation order the
    least chosen one, so the first leaders of new groups spread like their replicas. Split children have
    none (their parent's leader starts them)."""
    meta = cluster()  # two nodes per AZ
    create(meta, create_request("Albums"), partitions=4)
    create(meta, create_request("Bands"), partitions=2)
    leaders = meta.first_leaders()
    assert sorted(leaders) == sorted(meta.partitions)
    for pid, name in leaders.items():
        assert name in meta.partitions[pid].replicas
    counts = {name: list(leaders.values()).count(name) for name in meta.nodes}
    assert sorted(counts.values()) == [1] * 6  # six partitions, six nodes, one each
    parts = meta.to_map()["partitions"]
    assert {int(pid): part["first_leader"] for pid, part in parts.items()} == leaders


def test_create_errors() -> None:
    meta = cluster()
    create(meta, create_request("tb1"))
    with pytest.raises(ResourceInUseException, match="^Table already exists: tb1$"):
        tables.plan_create(meta, create_request("tb1"), partitions=1, now_s=1.0, table_uuid="u")
    with pytest.raises(ValidationException, match="ReadCapacityUnits and WriteCapacityUnits must both"):
        tables.plan_create(meta, create_request("tb2", BillingMode="PROVISIONED"), partitions=1, now_s=1.0,
                           table_uuid="u")
    with pytest.raises(LimitExceededException, match="need storage nodes in 3 AZs"):
        tables.plan_create(Metadata(), create_request("tb3"), partitions=1, now_s=1.0, table_uuid="u")


def test_table_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "MAX_TABLES", 3)
    monkeypatch.setattr(tables, "MAX_TABLES_IN_TRANSITION", 1)
    meta = cluster()
    create(meta, create_request("tb1"), active=False)
    with pytest.raises(LimitExceededException, match="^Subscriber limit exceeded: Only 1 tables can be created, "
                                                     "updated, or deleted simultaneously$"):
        tables.plan_create(meta, create_request("tb2"), partitions=1, now_s=1.0, table_uuid="u")
    run(meta, encode_command("set_table_status", name="tb1", status="ACTIVE"))
    create(meta, create_request("tb2"))
    create(meta, create_request("tb3"))
    with pytest.raises(LimitExceededException, match="^Subscriber limit exceeded: There is a limit of 3 tables"):
        tables.plan_create(meta, create_request("tb4"), partitions=1, now_s=1.0, table_uuid="u")


def test_describe_missing_table() -> None:
    with pytest.raises(ResourceNotFoundException, match="^Requested resource not found: Table: nope not found$"):
        tables.describe_table(cluster(), "nope", "us-east-1")


@settings(max_examples=25, deadline=None)
@given(names=st.sets(st.from_regex(r"[a-z]{3,6}", fullmatch=True), max_size=12), limit=st.integers(1, 5))
def test_list_tables_pages_through_every_name_once(names: set[str], limit: int) -> None:
    meta = Metadata()
    for name in names:
        meta.tables[name] = None  # type: ignore[assignment]  # list_tables reads names only
    seen: list[str] = []
    request: dict[str, Any] = {"Limit": limit}
    for _ in range(20):
        page = tables.list_tables(meta, request)
        assert len(page["TableNames"]) <= limit
        seen += page["TableNames"]
        if "LastEvaluatedTableName" not in page:
            break
        request = {"Limit": limit, "ExclusiveStartTableName": page["LastEvaluatedTableName"]}
    assert seen == sorted(names)


def test_list_tables_rejects_a_limit_over_100() -> None:
    with pytest.raises(ValidationException):
        tables.list_tables(Metadata(), {"Limit": 101})


def test_delete_rules() -> None:
    meta = cluster()
    create(meta, create_request("busy"), active=False)
    with pytest.raises(ResourceInUseException, match="Table is being created: busy"):
        tables.plan_delete(meta, "busy")
    create(meta, create_request("safe", DeletionProtectionEnabled=True))
    with pytest.raises(ValidationException, match="protected against deletion"):
        tables.plan_delete(meta, "safe")
    with pytest.raises(ResourceNotFoundException):
        tables.plan_delete(meta, "nope")
    create(meta, create_request("gone"))
    partitions = set(meta.tables["gone"].partition_ids)
    table = run(meta, tables.plan_delete(meta, "gone"))
    assert table.status == "DELETING" and "gone" not in meta.tables
    assert not partitions & set(meta.partitions)


def update(meta: Metadata, request: dict[str, Any], now_s: float = 50.0) -> Any:
    command = tables.plan_update(meta, request, now_s=now_s)
    return None if command is None else run(meta, command)


def throughput(read: int, write: int) -> dict[str, int]:
    return {"ReadCapacityUnits": read, "WriteCapacityUnits": write}


def test_update_throughput_and_billing_mode() -> None:
    meta = cluster()
    create(meta, provisioned("tbl", 5, 5))
    with pytest.raises(ValidationException, match="will not change.*Current ReadCapacityUnits provisioned for "
                                                  "the table: 5. Requested ReadCapacityUnits: 5"):
        update(meta, {"TableName": "tbl", "ProvisionedThroughput": throughput(5, 5)})
    with pytest.raises(ValidationException, match="ProvisionedThroughput must be specified when BillingMode is "
                                                  "PROVISIONED"):
        update(meta, {"TableName": "tbl", "BillingMode": "PROVISIONED"})
    table = update(meta, {"TableName": "tbl", "ProvisionedThroughput": throughput(10, 2)}, now_s=60.0)
    pt = tables.describe(table, "us-east-1")["ProvisionedThroughput"]
    assert (pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]) == (10, 2)
    assert pt["LastIncreaseDateTime"] == pt["LastDecreaseDateTime"] == 60.0

    table = update(meta, {"TableName": "tbl", "BillingMode": "PAY_PER_REQUEST"}, now_s=70.0)
    description = tables.describe(table, "us-east-1")
    assert description["BillingModeSummary"] == {"BillingMode": "PAY_PER_REQUEST",
                                                 "LastUpdateToPayPerRequestDateTime": 70.0}
    assert description["ProvisionedThroughput"]["ReadCapacityUnits"] == 0
    assert meta.to_map()["tables"]["tbl"]["spec"]["BillingMode"] == "PAY_PER_REQUEST"
    # Re-sending the current on-demand mode changes nothing and is no error.
    assert tables.plan_update(meta, {"TableName": "tbl", "BillingMode": "PAY_PER_REQUEST"}, now_s=80.0) is None
    with pytest.raises(ValidationException, match="Neither ReadCapacityUnits nor WriteCapacityUnits"):
        update(meta, {"TableName": "tbl", "ProvisionedThroughput": throughput(1, 1)})
    with pytest.raises(ValidationException, match="ProvisionedThroughput must be specified"):
        update(meta, {"TableName": "tbl", "BillingMode": "PROVISIONED"})
    table = update(meta, {"TableName": "tbl", "BillingMode": "PROVISIONED",
                          "ProvisionedThroughput": throughput(3, 4)})
    assert table.spec["BillingMode"] == "PROVISIONED" and table.spec["ProvisionedThroughput"] == throughput(3, 4)


def test_update_errors_and_recorded_fields() -> None:
    meta = cluster()
    with pytest.raises(ResourceNotFoundException):
        update(meta, {"TableName": "nope", "BillingMode": "PAY_PER_REQUEST"})
    create(meta, create_request("newt"), active=False)
    with pytest.raises(ResourceInUseException, match="Table is being created: newt"):
        update(meta, {"TableName": "newt", "BillingMode": "PAY_PER_REQUEST"})
    create(meta, create_request("tbl"))
    with pytest.raises(ValidationException, match="At least one of"):
        update(meta, {"TableName": "tbl"})
    with pytest.raises(ValidationException, match="^DeletionProtection modification must be the only operation"):
        update(meta, {"TableName": "tbl", "DeletionProtectionEnabled": True, "BillingMode": "PAY_PER_REQUEST"})
    with pytest.raises(ValidationException, match="^Table has no stream to disable: TableName: tbl$"):
        update(meta, {"TableName": "tbl", "StreamSpecification": {"StreamEnabled": False}})
    with pytest.raises(ValidationException, match="Table is already encrypted by default$"):
        update(meta, {"TableName": "tbl", "SSESpecification": {"Enabled": False}})
    table = update(meta, {"TableName": "tbl", "StreamSpecification": {"StreamEnabled": True,
                                                                      "StreamViewType": "NEW_IMAGE"}})
    assert tables.describe(table, "us-east-1")["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"
    table = update(meta, {"TableName": "tbl", "DeletionProtectionEnabled": True})
    assert tables.describe(table, "us-east-1")["DeletionProtectionEnabled"] is True
    with pytest.raises(ValidationException, match="protected against deletion"):
        tables.plan_delete(meta, "tbl")


def gsi_create(name: str, attribute: str, **extra: Any) -> dict[str, Any]:
    return {"Create": {"IndexName": name, "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"}],
                       "Projection": {"ProjectionType": "KEYS_ONLY"}, **extra}}


def test_update_creates_and_deletes_global_indexes() -> None:
    """A GSI is derived from the items when read, so UpdateTable adds one ACTIVE at once (the map carries
    it to the routers) and deletes one at once; the attribute definitions follow the keys in use."""
    meta = cluster()
    create(meta, create_request("tbl"))
    table = update(meta, {"TableName": "tbl", "AttributeDefinitions": [{"AttributeName": "g", "AttributeType": "N"}],
                          "GlobalSecondaryIndexUpdates": [gsi_create("by_g", "g")]})
    description = tables.describe(table, "us-east-1")
    (gsi,) = description["GlobalSecondaryIndexes"]
    assert (gsi["IndexName"], gsi["IndexStatus"], gsi["Projection"]) == ("by_g", "ACTIVE", {"ProjectionType": "KEYS_ONLY"})
    assert gsi["IndexArn"] == ARN + "tbl/index/by_g"
    assert description["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"},
                                                   {"AttributeName": "g", "AttributeType": "N"}]
    assert [i["IndexName"] for i in meta.to_map()["tables"]["tbl"]["spec"]["GlobalSecondaryIndexes"]] == ["by_g"]
    with pytest.raises(ValidationException, match="^Attempting to create an index which already exists$"):
        update(meta, {"TableName": "tbl", "AttributeDefinitions": [{"AttributeName": "g", "AttributeType": "N"}],
                      "GlobalSecondaryIndexUpdates": [gsi_create("by_g", "g")]})
    with pytest.raises(ValidationException, match="^Cannot delete an index that is not a GlobalSecondaryIndex: nope$"):
        update(meta, {"TableName": "tbl", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "nope"}}]})
    with pytest.raises(LimitExceededException, match="Only 1 online index can be created or deleted"):
        update(meta, {"TableName": "tbl", "AttributeDefinitions": [{"AttributeName": "h", "AttributeType": "S"}],
                      "GlobalSecondaryIndexUpdates": [gsi_create("by_h", "h"), {"Delete": {"IndexName": "by_g"}}]})
    with pytest.raises(ValidationException, match="Only one global secondary index update per index is allowed "
                                                  "simultaneously. Index: by_g$"):
        update(meta, {"TableName": "tbl", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "by_g"}},
                                                                         {"Delete": {"IndexName": "by_g"}}]})
    with pytest.raises(ValidationException, match="should not be specified for index: by_h when BillingMode is "
                                                  "PAY_PER_REQUEST"):
        update(meta, {"TableName": "tbl", "AttributeDefinitions": [{"AttributeName": "h", "AttributeType": "S"}],
                      "GlobalSecondaryIndexUpdates": [gsi_create("by_h", "h", ProvisionedThroughput=throughput(1, 1))]})
    with pytest.raises(ValidationException, match="Cannot change the type of attribute g"):
        update(meta, {"TableName": "tbl", "AttributeDefinitions": [{"AttributeName": "g", "AttributeType": "S"}],
                      "GlobalSecondaryIndexUpdates": [gsi_create("by_g2", "g")]})
    table = update(meta, {"TableName": "tbl", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "by_g"}}]})
    description = tables.describe(table, "us-east-1")
    assert "GlobalSecondaryIndexes" not in description
    assert description["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    create(meta, provisioned("prov"))
    with pytest.raises(ValidationException, match="ProvisionedThroughput must be specified for index: by_g"):
        update(meta, {"TableName": "prov", "AttributeDefinitions": [{"AttributeName": "g", "AttributeType": "N"}],
                      "GlobalSecondaryIndexUpdates": [gsi_create("by_g", "g")]})
    table = update(meta, {"TableName": "prov", "AttributeDefinitions": [{"AttributeName": "g", "AttributeType": "N"}],
                          "GlobalSecondaryIndexUpdates": [gsi_create("by_g", "g", ProvisionedThroughput=throughput(2, 3))]})
    (gsi,) = tables.describe(table, "us-east-1")["GlobalSecondaryIndexes"]
    assert gsi["ProvisionedThroughput"]["ReadCapacityUnits"] == 2


def test_tags_by_arn() -> None:
    meta = cluster()
    create(meta, create_request("tbl", Tags=[{"Key": "a", "Value": "1"}]))
    run(meta, tables.plan_tag(meta, {"ResourceArn": ARN + "tbl", "Tags": [{"Key": "b", "Value": "2"},
                                                                         {"Key": "a", "Value": "3"}]}))
    assert tables.list_tags(meta, {"ResourceArn": ARN + "tbl"}) == {
        "Tags": [{"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]}
    run(meta, tables.plan_untag(meta, {"ResourceArn": ARN + "tbl", "TagKeys": ["a", "zz"]}))
    assert tables.list_tags(meta, {"ResourceArn": ARN + "tbl"}) == {"Tags": [{"Key": "b", "Value": "2"}]}
    for bad in ("not-an-arn", ARN + "tbl/index/gsi", "arn:aws:s3:::bucket"):
        with pytest.raises(ValidationException, match="^Invalid TableArn: Invalid ResourceArn provided as input "):
            tables.list_tags(meta, {"ResourceArn": bad})
    with pytest.raises(ResourceNotFoundException, match=f"^Requested resource not found: ResourceArn: {ARN}xyz not found$"):
        tables.plan_tag(meta, {"ResourceArn": ARN + "xyz", "Tags": [{"Key": "k", "Value": "v"}]})
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    with pytest.raises(LimitExceededException):
        tables.plan_tag(meta, {"ResourceArn": ARN + "tbl", "Tags": many})
    create(meta, create_request("newt"), active=False)
    with pytest.raises(ResourceInUseException):
        tables.plan_tag(meta, {"ResourceArn": ARN + "newt", "Tags": [{"Key": "k", "Value": "v"}]})


def test_snapshot_restores_the_same_state() -> None:
    meta = cluster()
    create(meta, provisioned("ptb", 2, 3), partitions=4)
    create(meta, create_request("qtb", Tags=[{"Key": "k", "Value": "v"}]), active=False)
    update(meta, {"TableName": "ptb", "ProvisionedThroughput": throughput(9, 9)})
    copy = Metadata.restore(meta.snapshot())
    assert copy.to_map() == meta.to_map()
    assert copy.tables == meta.tables and copy.partitions == meta.partitions and copy.nodes == meta.nodes
    assert (copy.next_table_id, copy.next_partition_id, copy.applied_index) == (
        meta.next_table_id, meta.next_partition_id, meta.applied_index)
    assert copy.snapshot() == meta.snapshot()


def test_machine_keeps_the_metadata_in_the_store(tmp_path: Path) -> None:
    changes: list[int] = []
    with Store(tmp_path / "s") as store:
        machine = MetadataMachine(store, on_map_change=lambda: changes.append(1))
        batch = store.batch()
        machine.apply(batch, 1, encode_command("register_node", name="sn-a1", az="a", address="h:1"))
        machine.apply(batch, 2, b"")
        store.write(batch, sync=True)
    assert changes == [1]
    with Store(tmp_path / "s") as store:
        machine = MetadataMachine(store)
        assert machine.meta.applied_index == 2 and list(machine.meta.nodes) == ["sn-a1"]
        batch = store.batch()
        assert machine.apply(batch, 2, b"") is None, "an entry the state already holds is not applied twice"


def test_view_finds_leaders_and_sums_usage() -> None:
    view = ClusterView(stale_after_ms=1500)
    view.heartbeat("sn-a1", {"replicas": [{"group": "p1", "role": "follower", "leader": "sn-b1"},
                                          {"group": "p2", "role": "follower", "leader": ""}]}, now_ms=0)
    view.heartbeat("sn-b1", {"replicas": [{"group": "p1", "role": "leader", "leader": "sn-b1", "commit": 9}],
                             "stats": {"p1": {"items": 3, "bytes": 30}, "p2": {"item_count": 1,
                                                                               "size_bytes": 5}}}, now_ms=0)
    assert view.leader("p1", 1000) == "sn-b1" and view.leader("p2", 1000) == ""
    assert view.leader("p1", 2000) == "", "stale reports name no leader"
    assert view.usage(["p1", "p2", "p9"]) == (4, 35)
    view.forget_groups({"p1"})
    assert view.usage(["p1", "p2"]) == (3, 30)
    view.heartbeat("sn-c1", {"replicas": "garbage", "stats": [1]}, now_ms=5)
    assert view.node_ages_ms(10) == {"sn-a1": 10, "sn-b1": 10, "sn-c1": 5}


def test_view_accepts_other_spellings_of_a_heartbeat() -> None:
    view = ClusterView(stale_after_ms=1000)
    view.heartbeat("sn-a1", {"replicas": {"p4": {"role": "leader", "commit_index": 3, "items": 2, "bytes": 9}},
                             "stats": {"5": {"item_count": 1, "size_bytes": 1}}}, now_ms=0)
    view.heartbeat("sn-b1", {"replicas": [{"group": 6, "role": "leader"}, {"group": None}, "x"]}, now_ms=0)
    assert view.leader("p4", 0) == "sn-a1" and view.leader("p6", 0) == "sn-b1"
    assert view.reports("p4")[0].commit == 3
    assert view.usage(["p4", "p5"]) == (3, 10)


_OPS = st.lists(
    st.tuples(st.sampled_from(["create", "activate", "delete", "update", "tag", "untag"]),
              st.sampled_from(["tab1", "tab2", "tab3"]), st.integers(1, 4)),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(ops=_OPS)
def test_any_history_snapshots_exactly_and_keeps_the_map_consistent(ops: list[tuple[str, str, int]]) -> None:
    meta = cluster()
    for op, name, n in ops:
        try:
            if op == "create":
                command = tables.plan_create(meta, provisioned(name, n, n) if n % 2 else create_request(name),
                                             partitions=n, now_s=float(n), table_uuid=name)
            elif op == "activate":
                table = meta.tables.get(name)
                if table is None:
                    continue
                command = encode_command("set_table_status", name=name, table_id=table.table_id, status="ACTIVE")
            elif op == "delete":
                command = tables.plan_delete(meta, name)
            elif op == "update":
                maybe = tables.plan_update(meta, {"TableName": name, "BillingMode": "PROVISIONED",
                                                  "ProvisionedThroughput": throughput(n, n + 1)}, now_s=9.0)
                if maybe is None:
                    continue
                command = maybe
            elif op == "tag":
                command = tables.plan_tag(meta, {"ResourceArn": ARN + name, "Tags": [{"Key": f"k{n}", "Value": "v"}]})
            else:
                command = tables.plan_untag(meta, {"ResourceArn": ARN + name, "TagKeys": [f"k{n}"]})
        except (ResourceInUseException, ResourceNotFoundException, ValidationException):
            continue
        run(meta, command)
        copy = Metadata.restore(meta.snapshot())
        assert copy.snapshot() == meta.snapshot() and copy.to_map() == meta.to_map()
    the_map = meta.to_map()
    owned = [pid for t in the_map["tables"].values() for pid in t["partitions"]]
    assert sorted(owned) == sorted(int(p) for p in the_map["partitions"]), "every partition belongs to one table"
    for table in meta.tables.values():
        parts = meta.table_partitions(table.name)
        assert parts[0].hash_lo == 0 and parts[-1].hash_hi == 1 << 64
        assert all(a.hash_hi == b.hash_lo for a, b in zip(parts, parts[1:], strict=False))


def test_streams_are_kept_with_the_table_and_its_closed_shards() -> None:
    """A stream per enabling (its label the time, in ms), disabled in place; a split closes the parent's shard
    (its split entry's index remembered); the map and a snapshot carry all of it."""
    meta = cluster()
    create(meta, create_request("str", StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}))
    table = meta.tables["str"]
    assert table.stream == (round(table.created_at * 1000), "KEYS_ONLY")
    described = tables.describe(table, "us-east-1")
    assert described["LatestStreamLabel"] == stream_label(table.stream[0])
    assert described["LatestStreamArn"].endswith(f":table/str/stream/{described['LatestStreamLabel']}")
    with pytest.raises(ValidationException, match="^Table already has an enabled stream: TableName: str$"):
        update(meta, {"TableName": "str", "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}})
    with pytest.raises(ValidationException, match="^Invalid StreamViewType: Stream ViewType must not be null"):
        update(meta, {"TableName": "str", "StreamSpecification": {"StreamEnabled": True}})
    table = update(meta, {"TableName": "str", "StreamSpecification": {"StreamEnabled": False}}, now_s=500.0)
    assert table.stream is None and table.streams[0][2] == 500_000
    described = tables.describe(table, "us-east-1")
    assert "StreamSpecification" not in described and described["LatestStreamLabel"] == stream_label(table.streams[0][0])
    table = update(meta, {"TableName": "str", "StreamSpecification": {"StreamEnabled": True,
                                                                    "StreamViewType": "NEW_IMAGE"}}, now_s=600.0)
    assert table.stream == (600_000, "NEW_IMAGE") and len(table.streams) == 2
    parent = meta.partitions[table.partition_ids[0]]
    run(meta, encode_command("begin_split", partition=parent.partition_id, mid=str((parent.hash_lo + parent.hash_hi) // 2)))
    run(meta, encode_command("finish_split", partition=parent.partition_id, index=77, at=700.0))
    closed = meta.tables["str"].closed
    assert closed == ((parent.partition_id, 0, parent.hash_lo, parent.hash_hi, 77, 700_000),)
    entry = meta.to_map()["tables"]["str"]
    assert entry["stream"] == [600_000, "NEW_IMAGE"] and len(entry["streams"]) == 2 and len(entry["closed"]) == 1
    copy = Metadata.restore(meta.snapshot())
    assert copy.tables == meta.tables and copy.to_map() == meta.to_map()
    # a day later the disabled stream and the closed shard are forgotten
    later = 700.0 + 24 * 3600 + 1
    table = update(meta, {"TableName": "str", "StreamSpecification": {"StreamEnabled": False}}, now_s=later)
    assert [s[0] for s in table.streams] == [600_000]


def test_a_table_created_with_a_stream_before_streams_were_kept_has_its_stream_after_a_restore() -> None:
    meta = cluster()
    create(meta, create_request("old", StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}))
    older = orjson.loads(meta.snapshot())
    for table in older["tables"]:
        del table["streams"], table["closed"]
    assert Metadata.restore(orjson.dumps(older)).tables["old"].stream == meta.tables["old"].stream is not None
