"""Partition effects, the stored items of a replica, its pending overlay, and its state machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo.keycodec import HASH_SPACE
from paxos.replica import Role
from paxos.types import Membership, Snapshot
from runtime.store import Store
from storagenode.partition import (
    Effect,
    KeySchema,
    PartitionData,
    PartitionMachine,
    decode_effects,
    decode_item,
    encode_effects,
    encode_item,
)

SPEC = {
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
}
SCHEMA = KeySchema.from_spec(SPEC)

blobs = st.binary(max_size=64)
effects = st.lists(st.builds(Effect, key=st.binary(min_size=1, max_size=32), new=st.none() | blobs,
                             old=st.none() | blobs.filter(bool)), max_size=5)


@settings(max_examples=200)
@given(st.integers(0, (1 << 64) - 1), effects)
def test_effects_round_trip(proposal_id: int, effs: list[Effect]) -> None:
    assert decode_effects(encode_effects(proposal_id, effs)) == (proposal_id, effs)


def test_empty_put_image_is_a_put_not_a_delete() -> None:
    # A stored item is never empty in practice, but the op byte, not the length, says put or delete.
    (_, (eff,)) = decode_effects(encode_effects(1, [Effect(b"k", b"", None)]))
    assert eff.new == b"" and eff.old is None


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(AssertionError):
        decode_effects(encode_effects(1, [Effect(b"k", b"v", None)]) + b"x")


def test_key_schema_from_spec() -> None:
    assert SCHEMA == KeySchema("pk", "S", "sk", "N")
    item = {"pk": {"S": "a"}, "sk": {"N": "1"}, "x": {"S": "y"}}
    assert SCHEMA.key_of(item) == {"pk": {"S": "a"}, "sk": {"N": "1"}}
    hash_only = KeySchema.from_spec({"AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "B"}],
                                     "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]})
    assert hash_only == KeySchema("id", "B", None, None)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "db")
    yield s
    s.close()


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": sk}}


def test_storage_keys_stay_inside_the_partition_range(store: Store) -> None:
    lo, hi = HASH_SPACE // 4, HASH_SPACE // 2
    data = PartitionData(store, 7, SCHEMA, lo, hi)
    inside = outside = 0
    for i in range(200):
        k = key(f"user{i}", str(i))
        h = data.hash_of(k)
        skey = data.storage_key(k)
        assert skey == data.storage_key(k, h)
        assert (skey in data.range) == data.covers(h)
        inside += data.covers(h)
        outside += not data.covers(h)
    assert inside and outside
    # numbers normalise: 1 and 1.0 are one key
    assert data.storage_key(key("a", "1")) == data.storage_key(key("a", "1.0"))


def write(store: Store, data: PartitionData, pid: int, effs: list[Effect]) -> None:
    batch = store.batch()
    data.apply(batch, pid, effs)
    store.write(batch, sync=False)


def test_apply_and_overlay(store: Store) -> None:
    data = PartitionData(store, 1, SCHEMA, 0, HASH_SPACE)
    k = data.storage_key(key("a", "1"))
    v1, v2 = encode_item({**key("a", "1"), "v": {"N": "1"}}), encode_item({**key("a", "1"), "v": {"N": "2"}})
    assert data.read_latest(k) is None
    # two writes to one key in flight: the second sees the first before either applies
    data.note_proposed(1, [Effect(k, v1, None)])
    assert data.read_latest(k) == v1 and data.read_applied(k) is None
    data.note_proposed(2, [Effect(k, v2, v1)])
    assert data.read_latest(k) == v2
    write(store, data, 1, [Effect(k, v1, None)])
    assert data.read_applied(k) == v1
    assert data.read_latest(k) == v2, "applying an older proposal keeps the newer pending image"
    write(store, data, 2, [Effect(k, v2, v1)])
    assert data.read_latest(k) == v2 and data.read_applied(k) == v2
    assert not data.has_pending(k) and data.pending_count() == 0, "an applied proposal is forgotten"
    # several effects in one entry: each is forgotten once applied, not only the last
    others = [data.storage_key(key(f"m{i}", "1")) for i in range(3)]
    many = [Effect(o, v1, None) for o in others]
    data.note_proposed(7, many)
    assert data.pending_count() == 3
    write(store, data, 7, many)
    assert data.pending_count() == 0
    # a pending delete hides the item
    data.note_proposed(3, [Effect(k, None, v2)])
    assert data.read_latest(k) is None
    data.forget_pending()
    assert data.read_latest(k) == v2
    write(store, data, 3, [Effect(k, None, v2)])
    assert data.read_applied(k) is None
    assert decode_item(v1) == {**key("a", "1"), "v": {"N": "1"}} and decode_item(None) is None


def test_machine_apply_snapshot_restore_and_role(store: Store, tmp_path: Path) -> None:
    data = PartitionData(store, 3, SCHEMA, 0, HASH_SPACE // 2)
    other = PartitionData(store, 3, SCHEMA, HASH_SPACE // 2, HASH_SPACE)
    machine = PartitionMachine(data)
    keys: list[bytes] = []
    mine: list[str] = []
    for i in range(50):
        k = key(f"u{i}", "0")
        target = data if data.covers(data.hash_of(k)) else other
        skey = target.storage_key(k)
        batch = store.batch()
        if target is data:
            keys.append(skey)
            mine.append(f"u{i}")
            machine.apply(batch, i + 1, encode_effects(i, [Effect(skey, encode_item(k), None)]))
        else:
            target.apply(batch, i, [Effect(skey, encode_item(k), None)])
        store.write(batch, sync=False)
    assert machine.apply(store.batch(), 99, b"") is None  # no-op entries apply as nothing
    assert machine.applied_entries == len(keys) > 0
    blob = machine.snapshot_data()
    others = store.stats(other.range.start, other.range.end)
    # restore into a fresh store and into this one (drops what is there first)
    fresh = Store(tmp_path / "fresh")
    try:
        fresh_data = PartitionData(fresh, 3, SCHEMA, 0, HASH_SPACE // 2)
        batch = fresh.batch()
        PartitionMachine(fresh_data).restore(batch, Snapshot(10, (1, "n"), Membership(("n",)), blob))
        fresh.write(batch, sync=False)
        assert fresh.checksum(data.range.start, data.range.end) == store.checksum(data.range.start, data.range.end)
    finally:
        fresh.close()
    stray = data.storage_key(key(mine[0], "5"))
    assert stray in data.range
    write(store, data, 1000, [Effect(stray, b"{}", None)])
    data.note_proposed(77, [Effect(keys[0], None, None)])
    batch = store.batch()
    machine.restore(batch, Snapshot(10, (1, "n"), Membership(("n",)), blob))
    store.write(batch, sync=False)
    assert store.get(stray) is None and all(store.get(k) is not None for k in keys)
    assert data.read_latest(keys[0]) is not None, "restore forgets the overlay"
    assert store.stats(other.range.start, other.range.end) == others, "other partitions untouched"
    data.note_proposed(78, [Effect(keys[0], None, None)])
    machine.on_role(Role.LEADER, "n")
    assert data.read_latest(keys[0]) is None
    machine.on_role(Role.FOLLOWER, "m")
    assert data.read_latest(keys[0]) is not None


def test_the_lock_index_is_saved_with_the_items_and_dropped_with_a_replaced_state(tmp_path: Path) -> None:
    """A restart finds a replica's locks in its group metadata (no scan), written in the same batch as the
    effects that took or released them; a snapshot that replaces the state drops the saved index."""
    from storagenode.locks import PREPARED, Lock

    store = Store(tmp_path / "s")
    try:
        data = PartitionData(store, 3, SCHEMA, 0, HASH_SPACE, group=9)
        assert not data.locks_known  # nothing saved yet: the sweep scans once
        data.locks_known = True  # as the sweep's scan of an empty range leaves it
        key = data.storage_key({"pk": {"S": "a"}, "sk": {"N": "1"}})
        txn = bytes(range(16))
        lock = Lock(PREPARED, txn, None, encode_item({"pk": {"S": "a"}, "sk": {"N": "1"}}), b"{}").encode()
        machine = PartitionMachine(data)
        batch = store.batch()
        machine.apply(batch, 1, encode_effects(1, [Effect(key, lock, None)]))
        store.write(batch, sync=True)
        again = PartitionData(store, 3, SCHEMA, 0, HASH_SPACE, group=9)
        assert again.locks_known and again.locks == {key: txn}
        assert again.read_applied(key) is None and again.read_stored(key) == lock  # reads see the committed view
        assert again.scan_applied(b"", b"\xff", False, 10, 1 << 20) == [(key, None)]
        batch = store.batch()
        machine.apply(batch, 2, encode_effects(2, [Effect(key, encode_item({"pk": {"S": "a"}, "sk": {"N": "1"}}),
                                                          lock)]))
        store.write(batch, sync=True)
        assert PartitionData(store, 3, SCHEMA, 0, HASH_SPACE, group=9).locks == {}
        batch = store.batch()
        machine.restore(batch, Snapshot(10, (1, "n"), Membership(("n",)), b""))
        store.write(batch, sync=True)
        assert not PartitionData(store, 3, SCHEMA, 0, HASH_SPACE, group=9).locks_known
    finally:
        store.close()


def test_a_range_read_counts_its_byte_budget_on_what_reads_see(tmp_path: Path) -> None:
    """A lock's stored bytes hold an item twice; the page budget counts the committed view, as the reader
    does, so a page is never cut short by bytes its reader did not count (which would end a Query early)."""
    from storagenode.locks import PREPARED, Lock

    store = Store(tmp_path / "s")
    try:
        data = PartitionData(store, 3, SCHEMA, 0, HASH_SPACE)
        machine = PartitionMachine(data)
        items = [{"pk": {"S": "a"}, "sk": {"N": str(i)}, "v": {"S": "x" * 100}} for i in range(6)]
        keys = [data.storage_key(item) for item in items]
        effects = [Effect(k, encode_item(item), None) for k, item in zip(keys, items, strict=True)]
        effects[2] = Effect(keys[2], Lock(PREPARED, bytes(16), encode_item(items[2]), encode_item(items[2]) * 20,
                                          b"{}").encode(), None)
        batch = store.batch()
        machine.apply(batch, 1, encode_effects(1, effects))
        store.write(batch, sync=True)
        visible = sum(len(encode_item(item)) for item in items)
        rows = data.scan_applied(b"", b"\xff", False, 10, visible)
        assert [k for k, _ in rows] == keys and [v for _, v in rows] == [encode_item(i) for i in items]
        cut = data.scan_applied(b"", b"\xff", False, 10, 2 * len(encode_item(items[0])))
        assert [k for k, _ in cut] == keys[:2]
    finally:
        store.close()
