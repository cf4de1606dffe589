from control_plane.metadata import HASH_SPACE, Metadata, MetadataError, encode_command


def nine_nodes() -> Metadata:
    meta = Metadata()
    index = 0
    for az in "abc":
        for i in range(1, 4):
            index += 1
            meta.apply(index, encode_command("register_node", name=f"sn-{az}{i}", az=f"az-{az}", address=f"h:{index}"))
    return meta


def create(meta: Metadata, name: str, partitions: int) -> object:
    placement = meta.place_partitions(partitions)
    return meta.apply(
        meta.applied_index + 1,
        encode_command("create_table", name=name, spec={"TableName": name}, placement=placement,
                       created_at=1.5, table_uuid="u"),
    )


def test_partitions_tile_the_hash_space_with_one_replica_per_az() -> None:
    meta = nine_nodes()
    create(meta, "t", 4)
    parts = meta.table_partitions("t")
    assert parts[0].hash_lo == 0 and parts[-1].hash_hi == HASH_SPACE
    for left, right in zip(parts, parts[1:], strict=False):
        assert left.hash_hi == right.hash_lo
    for part in parts:
        assert sorted(meta.nodes[n].az for n in part.replicas) == ["az-a", "az-b", "az-c"]


def test_replicas_spread_evenly() -> None:
    meta = nine_nodes()
    for i in range(3):
        create(meta, f"t{i}", 3)
    assert set(meta.replicas_per_node().values()) == {3}


def test_duplicate_table_is_an_error_value_and_leaves_state_alone() -> None:
    meta = nine_nodes()
    create(meta, "t", 2)
    version = meta.map_version
    result = create(meta, "t", 2)
    assert isinstance(result, MetadataError) and result.kind == "ResourceInUse"
    assert meta.map_version == version and len(meta.partitions) == 2


def test_apply_is_deterministic_across_replicas() -> None:
    a, b = nine_nodes(), nine_nodes()
    placement = a.place_partitions(3)
    cmd = encode_command("create_table", name="t", spec={}, placement=placement, created_at=0.0, table_uuid="u")
    a.apply(a.applied_index + 1, cmd)
    b.apply(b.applied_index + 1, cmd)
    assert a.to_map() == b.to_map()
    drop = encode_command("delete_table", name="t")
    a.apply(a.applied_index + 1, drop)
    b.apply(b.applied_index + 1, drop)
    assert a.to_map() == b.to_map() and not a.partitions


def test_placement_avoids_nodes_the_leader_does_not_hear_while_their_az_has_others() -> None:
    meta = nine_nodes()
    avoid = frozenset({"sn-a1", "sn-a2", "sn-b1"})
    placed = meta.place_partitions(6, avoid)
    assert all(not set(replicas) & avoid for _, _, replicas in placed)
    # With every node of an AZ avoided, that AZ still gets a replica.
    placed = meta.place_partitions(3, frozenset({"sn-c1", "sn-c2", "sn-c3"}))
    assert sorted(replicas[2] for _, _, replicas in placed) == ["sn-c1", "sn-c2", "sn-c3"]
