"""DynamoDB Streams: labels, ARNs, shard ids, iterators, change records, and the records a partition replica
keeps (stamped entries, transactions' locks, splits, snapshots' spans, trimming)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo import streams as ds
from dynamo.keycodec import HASH_SPACE
from paxos.types import Membership, Snapshot
from runtime.store import Store
from storagenode import streams as ss
from storagenode.locks import COMMITTED, PREPARED, Lock
from storagenode.partition import (
    Effect,
    KeySchema,
    PartitionData,
    PartitionMachine,
    SplitInfo,
    encode_effects,
    encode_item,
    encode_split,
)

SCHEMA = KeySchema("pk", "S", None, None)
TABLE = 5
PID = 9


# ---- pure -------------------------------------------------------------------------------------------------


@given(st.integers(0, 4_102_444_800_000))
def test_a_label_names_its_millisecond(ms: int) -> None:
    label = ds.stream_label(ms)
    assert ds.label_ms(label) == ms
    arn = ds.stream_arn("arn:aws:dynamodb:us-east-1:000000000000:table/t-1.x", ms)
    assert ds.parse_stream_arn(arn) == ("t-1.x", ms)


def test_labels_and_arns_as_dynamodb_spells_them() -> None:
    assert ds.stream_label(1_432_158_670_252) == "2015-05-20T21:51:10.252"
    for bad in ("arn:aws:dynamodb:us-east-1:0:table/t", "arn:aws:dynamodb:us-east-1:0:table/t/stream/yesterday",
                "arn:aws:s3:us-east-1:0:table/t/stream/2015-05-20T21:51:10.252", "nonsense",
                "arn:aws:dynamodb:us-east-1:0:table/t/stream/2015-13-20T21:51:10.252"):
        assert ds.parse_stream_arn(bad) is None, bad


@given(st.integers(0, 4_102_444_800_000), st.integers(1, (1 << 40)))
def test_a_shard_id_names_its_stream_and_partition(ms: int, pid: int) -> None:
    text = ds.shard_id(ms, pid)
    assert 28 <= len(text) <= 65
    assert ds.parse_shard_id(text) == (ms, pid)


def test_sequence_numbers_follow_the_log() -> None:
    assert ds.seq_text(ds.seq_of(7, 2)) == "000000000000000700002"
    assert ds.seq_of(7, ds.SEQ_PER_ENTRY - 1) < ds.seq_of(8, 0)
    assert ds.parse_seq("000000000000000700002") == 700002
    assert ds.parse_seq("12a") is None and ds.parse_seq("") is None


def test_an_iterator_round_trips_and_anything_else_is_refused() -> None:
    it = ds.ShardIterator("arn:x", "shardId-1", 42, 1000)
    assert ds.ShardIterator.decode(it.encode()) == it
    for bad in ("", "ddb1|", "ddb1|!!!", "ddb1|" + "e30=", it.encode()[5:], it.encode()[:-4]):
        assert ds.ShardIterator.decode(bad) is None, bad


def test_a_change_keeps_what_its_view_type_asks_for() -> None:
    keys = {"pk": {"S": "a"}}
    old = {**keys, "v": {"N": "1"}}
    new = {**keys, "v": {"N": "2"}}
    assert ds.change("NEW_AND_OLD_IMAGES", keys, old, old) is None, "a write that changes nothing"
    same = ds.change("KEYS_ONLY", keys, {**keys, "v": {"N": "1"}, "s": {"SS": ["a", "b"]}},
                     {**keys, "v": {"N": "1.0"}, "s": {"SS": ["b", "a"]}})
    assert same is None, "equal as DynamoDB compares: 1 and 1.0, a set in another order"
    both = ds.change("NEW_AND_OLD_IMAGES", keys, old, new)
    assert both is not None and both["e"] == "MODIFY" and both["n"] == new and both["o"] == old
    keys_only = ds.change("KEYS_ONLY", keys, None, new)
    assert keys_only == {"e": "INSERT", "k": keys, "z": 3}
    removed = ds.change("NEW_IMAGE", keys, old, None)
    assert removed is not None and removed["e"] == "REMOVE" and "n" not in removed and "o" not in removed
    record = ds.api_record({**removed, "t": 1_500_000_123_456, "u": 1}, 700002, "NEW_IMAGE", "eu-west-1", "e" * 32)
    assert record["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    assert record["dynamodb"]["ApproximateCreationDateTime"] == 1_500_000_123
    assert record["dynamodb"]["SequenceNumber"] == "000000000000000700002"
    assert record["eventSource"] == "aws:dynamodb" and record["awsRegion"] == "eu-west-1"


# ---- a replica's records ----------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "db")
    yield s
    s.close()


def item(pk: str, v: int) -> bytes:
    return encode_item({"pk": {"S": pk}, "v": {"N": str(v)}})


def records(store: Store, partition: int = PID, shard: int = PID) -> list[tuple[int, dict[str, Any]]]:
    start, end = ss.shard_span(TABLE, partition, shard)
    return [(ss.parse_record_key(k)[1], orjson.loads(v)) for k, v in store.scan(start, end)]


def apply(store: Store, machine: PartitionMachine, index: int, effects: list[Effect], stamp: ss.Stamp | None) -> None:
    entry = encode_effects(index, effects)
    batch = store.batch()
    machine.apply(batch, index, stamp.encode(entry) if stamp is not None else entry)
    store.write(batch, sync=False)


def test_stamped_entries_write_one_record_per_changed_item(store: Store) -> None:
    data = PartitionData(store, TABLE, SCHEMA, 0, HASH_SPACE, group=PID)
    machine = PartitionMachine(data)
    k1, k2 = data.storage_key({"pk": {"S": "a"}}), data.storage_key({"pk": {"S": "b"}})
    stamp = ss.Stamp(1000, "NEW_AND_OLD_IMAGES", 5000)
    apply(store, machine, 3, [Effect(k1, item("a", 1), None)], None)  # before the stream: no record
    assert records(store) == []
    apply(store, machine, 4, [Effect(k1, item("a", 2), item("a", 1)), Effect(k2, item("b", 1), None),
                              Effect(k1, item("a", 2), item("a", 2))], stamp)
    got = records(store)
    assert [seq for seq, _ in got] == [ds.seq_of(4, 0), ds.seq_of(4, 1)], "the unchanged third write has none"
    assert [r["e"] for _, r in got] == ["MODIFY", "INSERT"]
    assert got[0][1]["o"]["v"] == {"N": "1"} and got[0][1]["n"]["v"] == {"N": "2"}
    assert got[0][1]["l"] == 1000 and got[0][1]["t"] == 5000
    apply(store, machine, 5, [Effect(k2, None, item("b", 1))], ss.Stamp(1000, "KEYS_ONLY", 6000, ttl=True))
    last = records(store)[-1][1]
    assert last["e"] == "REMOVE" and last["u"] == 1 and "o" not in last and last["k"] == {"pk": {"S": "b"}}


def test_a_transaction_records_its_commit_not_its_locks(store: Store) -> None:
    data = PartitionData(store, TABLE, SCHEMA, 0, HASH_SPACE, group=PID)
    machine = PartitionMachine(data)
    k = data.storage_key({"pk": {"S": "a"}})
    stamp = ss.Stamp(1000, "NEW_AND_OLD_IMAGES", 5000)
    before, after = item("a", 1), item("a", 2)
    apply(store, machine, 1, [Effect(k, before, None)], stamp)
    txn = b"t" * 16
    prepared = Lock(PREPARED, txn, before, after, b"{}").encode()
    committed = Lock(COMMITTED, txn, before, after, b"{}").encode()
    apply(store, machine, 2, [Effect(k, prepared, before)], stamp)  # prepare: reads still see `before`
    apply(store, machine, 3, [Effect(k, committed, prepared)], stamp)  # the commit point: reads see `after`
    apply(store, machine, 4, [Effect(k, after, committed)], stamp)  # cleanup: nothing reads see changes
    assert [(seq // ds.SEQ_PER_ENTRY, r["e"]) for seq, r in records(store)] == [(1, "INSERT"), (3, "MODIFY")]
    aborted = Lock(PREPARED, b"u" * 16, after, None, b"{}").encode()
    apply(store, machine, 5, [Effect(k, aborted, after)], stamp)
    apply(store, machine, 6, [Effect(k, after, aborted)], stamp)  # abort: nothing changed
    assert len(records(store)) == 2


def test_records_travel_with_the_state_and_a_split_copies_them_to_both_children(store: Store) -> None:
    data = PartitionData(store, TABLE, SCHEMA, 0, HASH_SPACE, group=PID)
    machine = PartitionMachine(data)
    k = data.storage_key({"pk": {"S": "a"}})
    apply(store, machine, 1, [Effect(k, item("a", 1), None)], ss.Stamp(1000, "NEW_IMAGE", 5000))
    spans = machine.state_spans()
    assert spans is not None and len(spans) == 2
    stream_start, stream_end = spans[1]
    assert [key for key, _ in store.scan(stream_start, stream_end)] == [ss.record_key(TABLE, PID, PID, ds.seq_of(1, 0))]
    batch = store.batch()
    assert ss.copy_to_children(store, batch, TABLE, PID, (21, 22), data.records_in(batch)) == 1
    store.write(batch, sync=False)
    for child in (21, 22):
        assert records(store, partition=child, shard=PID) == records(store)
    batch = store.batch()
    machine.restore(batch, Snapshot(0, (0, ""), Membership(("a",)), b""))  # a replaced state: records too
    store.write(batch, sync=False)
    assert records(store) == [] and records(store, partition=21, shard=PID) != []


async def test_trimming_deletes_only_old_records(store: Store) -> None:
    class Node:
        hosted: dict[int, Any] = {}

    node = Node()
    node.store = store  # type: ignore[attr-defined]
    service = ss.StreamService.__new__(ss.StreamService)
    service.node = node  # type: ignore[assignment]
    service.trimmed = 0

    class Hosted:
        table_id, partition_id = TABLE, PID

    node.hosted = {PID: Hosted()}
    batch = store.batch()
    for shard in (3, PID):
        for i, t in enumerate((100, 200, 300, 400)):
            batch.put(ss.record_key(TABLE, PID, shard, i), orjson.dumps({"t": t, "l": 1}))
    store.write(batch, sync=False)
    assert await service.trim(250) == 4  # two per shard
    assert [seq for seq, _ in records(store, shard=3)] == [2, 3] and [seq for seq, _ in records(store)] == [2, 3]
    assert await service.trim(250) == 0


def test_a_split_entry_applied_in_one_batch_with_writes_copies_their_records_too(store: Store) -> None:
    """The driver applies several committed entries in one write batch: the records of the writes before
    the split entry are not in the store yet when it copies the parent's records to the children."""
    data = PartitionData(store, TABLE, SCHEMA, 0, HASH_SPACE, group=PID)
    copied: list[int] = []
    machine = PartitionMachine(data, on_split=lambda batch, info: copied.append(ss.copy_to_children(
        store, batch, TABLE, PID, (info.left, info.right), data.records_in(batch))))
    stamp = ss.Stamp(1000, "KEYS_ONLY", 5000)
    k1, k2 = data.storage_key({"pk": {"S": "a"}}), data.storage_key({"pk": {"S": "b"}})
    apply(store, machine, 1, [Effect(k1, item("a", 1), None)], stamp)  # an earlier batch: in the store
    batch = store.batch()
    machine.apply(batch, 2, stamp.encode(encode_effects(2, [Effect(k2, item("b", 1), None)])))
    machine.apply(batch, 3, encode_split(SplitInfo(HASH_SPACE // 2, 21, 22)))
    store.write(batch, sync=False)
    assert copied == [2]
    for child in (21, 22):
        assert [seq for seq, _ in records(store, partition=child, shard=PID)] == [ds.seq_of(1, 0), ds.seq_of(2, 0)]
