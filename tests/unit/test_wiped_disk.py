"""A storage node that comes back with a wiped disk: the control plane's metadata marks its replicas lost,
the auto-admin replaces them, routers skip them (docs/design.md, "A wiped disk")."""

from __future__ import annotations

from typing import Any

import orjson

from autoadmin.planner import BeginRepair, plan
from control_plane.metadata import Metadata, MetadataError, encode_command
from router.routing import PartitionMap
from tests.unit.test_metadata import create, nine_nodes
from tests.unit.test_routing import SPEC


def run(meta: Metadata, op: str, **fields: Any) -> Any:
    return meta.apply(meta.applied_index + 1, encode_command(op, **fields))


def with_disks() -> Metadata:
    meta = nine_nodes()
    for name in sorted(meta.nodes):
        run(meta, "node_incarnation", name=name, incarnation=f"disk-{name}")
    create(meta, "t", 4)
    return meta


def holding(meta: Metadata, name: str) -> list[int]:
    return sorted(pid for pid, p in meta.partitions.items() if name in p.replicas)


def test_the_first_disk_recorded_loses_nothing() -> None:
    meta = nine_nodes()
    create(meta, "t", 4)
    version = meta.map_version
    run(meta, "node_incarnation", name="sn-a1", incarnation="d1")
    assert meta.nodes["sn-a1"].incarnation == "d1" and meta.map_version == version + 1
    assert all(not p.lost for p in meta.partitions.values())
    assert meta.to_map()["nodes"]["sn-a1"]["incarnation"] == "d1"
    run(meta, "node_incarnation", name="sn-a1", incarnation="d1")  # heard again: nothing changes
    assert meta.map_version == version + 1


def test_a_new_disk_under_a_known_name_marks_every_replica_it_held_lost() -> None:
    meta = with_disks()
    held = holding(meta, "sn-a1")
    assert held
    version = meta.map_version
    run(meta, "node_incarnation", name="sn-a1", incarnation="disk-2")
    assert meta.map_version == version + 1 and meta.nodes["sn-a1"].incarnation == "disk-2"
    assert sorted(pid for pid, p in meta.partitions.items() if p.lost == ("sn-a1",)) == held
    assert all(not p.lost for pid, p in meta.partitions.items() if pid not in held)
    the_map = meta.to_map()
    assert all(the_map["partitions"][str(pid)]["lost"] == ["sn-a1"] for pid in held)
    assert meta.history[-1] == {"kind": "wiped", "node": "sn-a1", "lost": held, "at": 0.0}
    # Re-registering the node (a new address) keeps its disk.
    run(meta, "register_node", name="sn-a1", az="az-a", address="h:new")
    assert meta.nodes["sn-a1"].incarnation == "disk-2"


def test_bad_incarnation_commands_are_error_values() -> None:
    meta = with_disks()
    assert isinstance(run(meta, "node_incarnation", name="sn-x9", incarnation="d"), MetadataError)
    assert isinstance(run(meta, "node_incarnation", name="sn-a1", incarnation=""), MetadataError)


def test_lost_and_incarnations_survive_a_snapshot_and_old_rows_restore() -> None:
    meta = with_disks()
    run(meta, "node_incarnation", name="sn-b1", incarnation="disk-2")
    again = Metadata.restore(meta.snapshot())
    assert again.to_map() == meta.to_map()
    assert again.partitions == meta.partitions and again.nodes == meta.nodes
    # Rows from before incarnations and lost replicas.
    raw = orjson.loads(meta.snapshot())
    raw["nodes"] = [row[:3] for row in raw["nodes"]]
    raw["partitions"] = [row[:9] for row in raw["partitions"]]
    old = Metadata.restore(orjson.dumps(raw))
    assert all(n.incarnation == "" for n in old.nodes.values()) and all(not p.lost for p in old.partitions.values())


def test_repair_of_a_lost_replica_clears_it_and_splits_wait_for_it() -> None:
    meta = with_disks()
    pid = holding(meta, "sn-a1")[0]
    run(meta, "node_incarnation", name="sn-a1", incarnation="disk-2")
    refused = run(meta, "begin_split", partition=pid, mid=str(meta.partitions[pid].hash_lo + 1))
    assert isinstance(refused, MetadataError) and refused.kind == "ResourceInUse"
    spare = next(n for n in ("sn-a2", "sn-a3") if n not in meta.partitions[pid].replicas)
    run(meta, "begin_repair", partition=pid, old="sn-a1", new=spare)
    assert meta.partitions[pid].lost == ("sn-a1",)  # still a replica until the group's change is done
    run(meta, "finish_repair", partition=pid, new=spare)
    part = meta.partitions[pid]
    assert spare in part.replicas and "sn-a1" not in part.replicas and part.lost == ()


def test_a_lost_joiner_is_dropped_from_lost_when_the_repair_is_retargeted() -> None:
    meta = with_disks()
    pid = holding(meta, "sn-b1")[0]
    run(meta, "begin_repair", partition=pid, old="sn-b1", new="sn-b2")
    run(meta, "node_incarnation", name="sn-b2", incarnation="disk-2")
    assert "sn-b2" in meta.partitions[pid].lost
    run(meta, "begin_repair", partition=pid, old="sn-b1", new="sn-b3")
    part = meta.partitions[pid]
    assert (part.joining, part.replacing) == ("sn-b3", "sn-b1") and "sn-b2" not in part.lost


def test_split_children_inherit_a_replica_lost_while_the_split_ran() -> None:
    meta = with_disks()
    pid = holding(meta, "sn-c1")[0]
    run(meta, "begin_split", partition=pid, mid=str(meta.partitions[pid].hash_lo + 12345))
    run(meta, "node_incarnation", name="sn-c1", incarnation="disk-2")
    children = run(meta, "finish_split", partition=pid)
    assert [c.lost for c in children] == [("sn-c1",), ("sn-c1",)]


def test_the_planner_replaces_a_lost_replica_on_a_live_node() -> None:
    parts = {"1": {"replicas": ["sn-a1", "sn-b1", "sn-c1"], "lost": ["sn-a1"]},
             "2": {"replicas": ["sn-a2", "sn-b2", "sn-c2"]}}
    nodes = {f"sn-{az}{i}": {"az": az, "alive": True, "dead": False} for az in "abc" for i in (1, 2, 3)}
    assert plan({"map": {"partitions": parts}, "nodes": nodes}) == [BeginRepair(1, "sn-a1", "sn-a3")]
    # A lost joiner is retargeted as a dead one is (while the group's leader reports it a learner).
    parts = {"1": {"replicas": ["sn-a1", "sn-b1", "sn-c1"], "joining": "sn-b2", "replacing": "sn-b1",
                   "lost": ["sn-b2"]}}
    reports = {"p1": {"sn-a1": {"role": "leader", "voters": ["sn-a1", "sn-b1", "sn-c1"], "learners": ["sn-b2"],
                                "outgoing": []}}}
    assert plan({"map": {"partitions": parts}, "nodes": nodes, "reports": reports}) == [
        BeginRepair(1, "sn-b1", "sn-b3")]
    # Never below two usable replicas: a lost one and a dead one leave one.
    parts = {"1": {"replicas": ["sn-a1", "sn-b1", "sn-c1"], "lost": ["sn-a1"]}}
    nodes["sn-b1"] = {"az": "b", "alive": False, "dead": True}
    assert plan({"map": {"partitions": parts}, "nodes": nodes}) == []


def test_routers_skip_a_lost_replica() -> None:
    meta = with_disks()
    pid = holding(meta, "sn-a1")[0]
    run(meta, "node_incarnation", name="sn-a1", incarnation="disk-2")
    wire = meta.to_map()
    wire["tables"]["t"]["spec"] = SPEC
    routes = {p.partition_id: p for p in PartitionMap.from_wire(wire).tables["t"].partitions}
    assert "sn-a1" not in routes[pid].replicas and len(routes[pid].replicas) == 2
    assert all(len(p.replicas) == 3 for q, p in routes.items() if q not in holding(meta, "sn-a1"))
