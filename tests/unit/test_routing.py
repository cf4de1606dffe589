"""The router's partition-map cache: lookups by hash, map versions, leader hints and replica choice."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from router.routing import HASH_SPACE, PartitionMap, Routing, RoutingConfig

SPEC = {
    "TableName": "t",
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "N"},
        {"AttributeName": "g", "AttributeType": "S"},
    ],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "GlobalSecondaryIndexes": [
        {"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
         "Projection": {"ProjectionType": "ALL"}},
    ],
}
REPLICAS = ("sn-a1", "sn-b1", "sn-c1")


def wire_map(version: int, bounds: list[int], status: str = "ACTIVE", name: str = "t",
             first_pid: int = 1) -> dict[str, Any]:
    """A map with one table whose partitions split the hash space at ``bounds``."""
    edges = [0, *sorted(set(bounds) - {0}), HASH_SPACE]
    pids = list(range(first_pid, first_pid + len(edges) - 1))
    partitions = {
        str(pid): {"table_id": 7, "lo": str(lo), "hi": str(hi), "replicas": list(REPLICAS)}
        for pid, lo, hi in zip(pids, edges, edges[1:], strict=False)
    }
    # Listed out of order on purpose: the cache sorts by range.
    return {
        "version": version,
        "nodes": {n: {"az": n[3], "address": "127.0.0.1:1"} for n in REPLICAS},
        "tables": {name: {"table_id": 7, "status": status, "spec": SPEC, "partitions": list(reversed(pids))}},
        "partitions": partitions,
    }


def test_from_wire_builds_key_schema_indexes_and_sorted_partitions() -> None:
    pmap = PartitionMap.from_wire(wire_map(3, [1 << 62, 1 << 63]))
    table = pmap.tables["t"]
    assert pmap.version == 3 and table.table_id == 7 and table.serving
    assert (table.key.hash_name, table.key.hash_type, table.key.range_name, table.key.range_type) == (
        "pk", "S", "sk", "N")
    assert [i.name for i in table.indexes] == ["byg"] and table.indexes[0].is_global
    assert [p.lo for p in table.partitions] == [0, 1 << 62, 1 << 63]
    assert table.partitions[-1].hi == HASH_SPACE
    assert table.partition_for(0) is table.partitions[0]
    assert table.partition_for((1 << 62) - 1) is table.partitions[0]
    assert table.partition_for(1 << 62) is table.partitions[1]
    assert table.partition_for(HASH_SPACE - 1) is table.partitions[2]
    assert pmap.nodes["sn-b1"] == "b"


def test_not_serving_statuses() -> None:
    for status, serving in (("CREATING", False), ("ACTIVE", True), ("UPDATING", True), ("DELETING", False)):
        assert PartitionMap.from_wire(wire_map(1, [], status=status)).tables["t"].serving is serving


def test_a_hole_in_the_map_answers_none() -> None:
    data = wire_map(1, [1 << 63])
    del data["partitions"]["2"]  # the upper half is missing (e.g. mid-split in a stale map)
    table = PartitionMap.from_wire(data).tables["t"]
    assert table.partition_for(5) is not None
    assert table.partition_for(1 << 63) is None
    assert table.partition_for(HASH_SPACE - 1) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, HASH_SPACE - 1), max_size=20), st.lists(st.integers(0, HASH_SPACE - 1), min_size=1,
                                                                       max_size=20))
def test_partition_for_matches_a_linear_scan(bounds: list[int], hashes: list[int]) -> None:
    table = PartitionMap.from_wire(wire_map(1, bounds)).tables["t"]
    for h in hashes:
        expected = [p for p in table.partitions if p.lo <= h < p.hi]
        assert len(expected) == 1
        assert table.partition_for(h) is expected[0]


def test_maps_never_go_backwards_and_drop_dead_hints() -> None:
    routing = Routing()
    assert routing.version == -1 and routing.table("t") is None
    assert routing.update(PartitionMap.from_wire(wire_map(5, [])))
    part = routing.table("t").partitions[0]  # type: ignore[union-attr]
    routing.set_leader(part, "sn-b1")
    assert not routing.update(PartitionMap.from_wire(wire_map(4, [1 << 63])))
    assert not routing.update(PartitionMap.from_wire(wire_map(5, [1 << 63])))
    assert routing.version == 5 and len(routing.table("t").partitions) == 1  # type: ignore[union-attr]
    assert routing.leader_hint(part) == "sn-b1"
    # A split: the parent partition is gone, and so is its hint.
    assert routing.update(PartitionMap.from_wire(wire_map(6, [1 << 63], first_pid=10)))
    assert routing.leader_hint(part) is None
    assert [p.partition_id for p in routing.table("t").partitions] == [10, 11]  # type: ignore[union-attr]


def test_leader_hint_goes_first_and_only_names_replicas() -> None:
    routing = Routing()
    routing.update(PartitionMap.from_wire(wire_map(1, [])))
    part = routing.table("t").partitions[0]  # type: ignore[union-attr]
    assert routing.order(part, True, 0) == list(REPLICAS)
    routing.set_leader(part, "sn-c1")
    assert routing.order(part, True, 0) == ["sn-c1", "sn-a1", "sn-b1"]
    routing.set_leader(part, "sn-z9")  # not a replica: ignored
    assert routing.leader_hint(part) == "sn-c1"
    routing.forget_leader(part, "sn-a1")  # names another node: kept
    assert routing.leader_hint(part) == "sn-c1"
    routing.forget_leader(part, "sn-c1")
    assert routing.leader_hint(part) is None


def test_eventual_reads_round_robin_and_failed_nodes_go_last() -> None:
    routing = Routing(RoutingConfig(failed_node_ttl_ms=1000))
    routing.update(PartitionMap.from_wire(wire_map(1, [])))
    part = routing.table("t").partitions[0]  # type: ignore[union-attr]
    firsts = [routing.order(part, False, 0)[0] for _ in range(6)]
    assert firsts == ["sn-a1", "sn-b1", "sn-c1", "sn-a1", "sn-b1", "sn-c1"]
    routing.node_failed("sn-b1", now_ms=100)
    assert all(routing.order(part, False, 500)[0] != "sn-b1" for _ in range(6))
    assert routing.order(part, False, 500)[-1] == "sn-b1"
    routing.set_leader(part, "sn-b1")
    assert routing.order(part, True, 500) == ["sn-a1", "sn-c1", "sn-b1"]
    # The suspicion expires...
    assert routing.order(part, True, 1100)[0] == "sn-b1"
    # ...or is cleared by a success.
    routing.node_failed("sn-b1", now_ms=2000)
    routing.node_ok("sn-b1")
    assert routing.order(part, True, 2001)[0] == "sn-b1"
    # Everything failed: every replica is still tried.
    for node in REPLICAS:
        routing.node_failed(node, now_ms=3000)
    assert sorted(routing.order(part, False, 3001)) == sorted(REPLICAS)
