"""Repairs and the auto-admin lease in the control plane's state machine."""

from control_plane.metadata import MAX_HISTORY, Metadata, MetadataError, encode_command
from tests.unit.test_metadata import create, nine_nodes


def step(meta: Metadata, op: str, **fields: object) -> object:
    return meta.apply(meta.applied_index + 1, encode_command(op, **fields))


def test_repair_shows_the_joiner_then_swaps_it_in() -> None:
    meta = nine_nodes()
    create(meta, "t", 1)
    part = meta.table_partitions("t")[0]
    old = part.replicas[0]
    new = next(n for n in meta.nodes if meta.nodes[n].az == meta.nodes[old].az and n != old)
    version = meta.map_version
    step(meta, "begin_repair", partition=part.partition_id, old=old, new=new, at=1.0)
    entry = meta.to_map()["partitions"][str(part.partition_id)]
    assert entry["joining"] == new and entry["replacing"] == old and entry["replicas"] == list(part.replicas)
    assert meta.map_version == version + 1
    step(meta, "finish_repair", partition=part.partition_id, new=new, at=2.0)
    entry = meta.to_map()["partitions"][str(part.partition_id)]
    assert "joining" not in entry and new in entry["replicas"] and old not in entry["replicas"]
    assert [e["state"] for e in meta.history] == ["started", "finished"]
    # finishing twice (a retried command) changes nothing
    version = meta.map_version
    step(meta, "finish_repair", partition=part.partition_id, new=new)
    assert meta.map_version == version


def test_one_repair_per_partition_but_a_repair_may_be_retargeted() -> None:
    meta = nine_nodes()
    create(meta, "t", 1)
    part = meta.table_partitions("t")[0]
    a, b, _ = part.replicas
    spare_a = [n for n in meta.nodes if meta.nodes[n].az == meta.nodes[a].az and n != a]
    spare_b = [n for n in meta.nodes if meta.nodes[n].az == meta.nodes[b].az and n != b]
    step(meta, "begin_repair", partition=part.partition_id, old=a, new=spare_a[0])
    refused = step(meta, "begin_repair", partition=part.partition_id, old=b, new=spare_b[0])
    assert isinstance(refused, MetadataError) and refused.kind == "ResourceInUse"
    step(meta, "begin_repair", partition=part.partition_id, old=a, new=spare_a[1])
    assert meta.partitions[part.partition_id].joining == spare_a[1]
    bad = step(meta, "begin_repair", partition=part.partition_id, old="sn-x9", new=spare_a[0])
    assert isinstance(bad, MetadataError)


def test_repair_state_survives_a_snapshot() -> None:
    meta = nine_nodes()
    create(meta, "t", 2)
    part = meta.table_partitions("t")[1]
    old = part.replicas[1]
    new = next(n for n in meta.nodes if meta.nodes[n].az == meta.nodes[old].az and n != old)
    step(meta, "begin_repair", partition=part.partition_id, old=old, new=new)
    step(meta, "admin_lease", holder="aa-1", now_ms=1000.0, duration_ms=5000)
    again = Metadata.restore(meta.snapshot())
    assert again.to_map() == meta.to_map() and again.history == meta.history
    assert again.admin_lease == ("aa-1", 6000.0)


def test_admin_lease_has_one_holder_until_it_expires() -> None:
    meta = nine_nodes()
    assert step(meta, "admin_lease", holder="aa-1", now_ms=0.0, duration_ms=1000)["granted"]  # type: ignore[index]
    assert not step(meta, "admin_lease", holder="aa-2", now_ms=500.0, duration_ms=1000)["granted"]  # type: ignore[index]
    assert step(meta, "admin_lease", holder="aa-1", now_ms=900.0, duration_ms=1000)["granted"]  # type: ignore[index]
    assert step(meta, "admin_lease", holder="aa-2", now_ms=1901.0, duration_ms=1000)["granted"]  # type: ignore[index]


def test_history_is_bounded() -> None:
    meta = nine_nodes()
    create(meta, "t", 1)
    part = meta.table_partitions("t")[0]
    old = part.replicas[0]
    spares = [n for n in meta.nodes if meta.nodes[n].az == meta.nodes[old].az and n != old]
    for i in range(MAX_HISTORY + 5):
        step(meta, "begin_repair", partition=part.partition_id, old=old, new=spares[i % 2])
    assert len(meta.history) == MAX_HISTORY


def test_liveness_waits_one_repair_delay_after_a_control_plane_failover() -> None:
    from control_plane.view import ClusterView

    view = ClusterView(stale_after_ms=1_500)
    view.heartbeat("sn-a1", {"replicas": [{"group": "p1", "role": "leader", "voters": ["sn-a1", "sn-b1"],
                                           "split": 7, "wcu_per_s": 3.5}]}, now_ms=1_000)
    report = view.reports("p1")[0]
    assert report.voters == ("sn-a1", "sn-b1") and report.split == 7 and report.wcu_per_s == 3.5
    # A leader since t=0: sn-a1 was heard at 1000, sn-b1 never.
    assert not view.is_dead("sn-a1", 10_900, 10_000, watching_since_ms=0)
    assert view.is_dead("sn-a1", 11_001, 10_000, watching_since_ms=0)
    assert view.is_dead("sn-b1", 10_001, 10_000, watching_since_ms=0)
    # A leader elected at t=20000 knows nobody yet: no one is dead before 30000.
    assert not view.is_dead("sn-b1", 29_999, 10_000, watching_since_ms=20_000)
    assert not view.is_dead("sn-a1", 29_999, 10_000, watching_since_ms=20_000)
    assert view.is_dead("sn-b1", 30_001, 10_000, watching_since_ms=20_000)
