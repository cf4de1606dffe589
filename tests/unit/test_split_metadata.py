"""Splits in the control plane's state machine: decided with the children's ids, then flipped at once."""

from control_plane.metadata import Metadata, MetadataError
from tests.unit.test_metadata import create, nine_nodes
from tests.unit.test_repair_metadata import step


def test_split_flips_the_map_to_two_children_on_the_same_replicas() -> None:
    meta = nine_nodes()
    create(meta, "t", 2)
    parent = meta.table_partitions("t")[0]
    mid = (parent.hash_lo + parent.hash_hi) // 2
    step(meta, "begin_split", partition=parent.partition_id, mid=str(mid), reason="size")
    entry = meta.to_map()["partitions"][str(parent.partition_id)]
    left_id, right_id = entry["split"]["left"], entry["split"]["right"]
    assert entry["split"]["mid"] == str(mid)
    # a retried begin changes nothing; a repair must wait
    version = meta.map_version
    step(meta, "begin_split", partition=parent.partition_id, mid=str(mid + 1))
    assert meta.map_version == version and meta.partitions[parent.partition_id].split == (mid, left_id, right_id)
    refused = step(meta, "begin_repair", partition=parent.partition_id, old=parent.replicas[0], new="sn-a3")
    assert isinstance(refused, MetadataError)
    step(meta, "finish_split", partition=parent.partition_id)
    parts = meta.table_partitions("t")
    assert [p.partition_id for p in parts[:2]] == [left_id, right_id]
    assert parts[0].hash_lo == parent.hash_lo and parts[0].hash_hi == mid == parts[1].hash_lo
    assert parts[1].hash_hi == parent.hash_hi and parts[2].hash_lo == parent.hash_hi
    assert parts[0].replicas == parts[1].replicas == parent.replicas
    assert parent.partition_id not in meta.partitions
    assert meta.to_map()["partitions"][str(left_id)]["parent"] == parent.partition_id
    # the children start under their parent's leader, not a first leader the map names
    assert "first_leader" not in meta.to_map()["partitions"][str(left_id)]
    assert "first_leader" in meta.to_map()["partitions"][str(parts[2].partition_id)]
    assert [e["state"] for e in meta.history if e["kind"] == "split"] == ["started", "finished"]
    version = meta.map_version
    assert step(meta, "finish_split", partition=parent.partition_id) == []
    assert meta.map_version == version
    again = Metadata.restore(meta.snapshot())
    assert again.to_map() == meta.to_map()


def test_split_point_must_fall_inside_the_range() -> None:
    meta = nine_nodes()
    create(meta, "t", 2)
    parent = meta.table_partitions("t")[1]
    for mid in (parent.hash_lo, parent.hash_hi, parent.hash_hi + 5):
        assert isinstance(step(meta, "begin_split", partition=parent.partition_id, mid=str(mid)), MetadataError)


def test_a_repairing_partition_does_not_split_and_a_split_survives_a_snapshot() -> None:
    meta = nine_nodes()
    create(meta, "t", 1)
    part = meta.table_partitions("t")[0]
    old = part.replicas[0]
    new = next(n for n in meta.nodes if meta.nodes[n].az == meta.nodes[old].az and n != old)
    step(meta, "begin_repair", partition=part.partition_id, old=old, new=new)
    assert isinstance(step(meta, "begin_split", partition=part.partition_id, mid=str(1 << 63)), MetadataError)
    step(meta, "finish_repair", partition=part.partition_id)
    step(meta, "begin_split", partition=part.partition_id, mid=str(1 << 63))
    again = Metadata.restore(meta.snapshot())
    assert again.to_map() == meta.to_map() and again.next_partition_id == meta.next_partition_id
