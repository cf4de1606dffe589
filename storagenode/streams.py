"""DynamoDB Streams at a storage node: the change records each replica keeps, and the reads of them.

**Records are part of a partition's replicated state.** A leader that decides a write while the table's
stream is on stamps the log entry (``Stamp``: which stream, its view type, the time, whether time to live
deleted the item). Every replica, applying the entry, writes one record per item the entry changes, in the
same write batch as the items (``storagenode.partition.PartitionData.apply``), so the records are exactly
as durable and as replicated as the writes: a write acknowledged is a record kept. A write that changes
nothing writes no record, and neither does a transaction's lock: only what reads can see counts (a
prepared lock shows the old item, a COMMITTED one the new).

**Where they live**: in the items column family, under a key space no table uses (``STREAM_SPACE`` plus
the table's id), then the partition that holds them, the shard they belong to, and the sequence number:
``span(table, partition)`` is one contiguous range, which snapshots carry with the items
(``PartitionMachine.state_spans``) and a dropped replica deletes.

**Splits**: a shard is a partition while the stream is on. When a partition splits, its shard closes and
each child opens one. Applying the split entry, every replica copies the parent's records (its own and the
ancestors' it holds) into both children's spans, in the split's write batch, so a child holds the closed
shards of its whole lineage and the parent's span can go with the parent.

**Trimming**: records older than ``stream_retention_s`` (24 hours, as DynamoDB's) are deleted by each
replica on its own; reads never answer older ones, so replicas that trimmed at different moments answer
alike.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from dynamo import keycodec
from dynamo.streams import MAX_GET_RECORDS, MAX_GET_RECORDS_BYTES, VIEW_TYPES, seq_of
from runtime.logs import get_logger

if TYPE_CHECKING:
    from storagenode.items import ItemService
    from storagenode.node import Hosted

log = get_logger("storagenode.streams")

# A stamped entry: this magic, the stamp, then the effects entry. An effects entry starts with its
# proposal id (a counter from 1, little-endian): reaching these eight bytes would take 2**63 proposals.
STREAM_MAGIC = b"\xfeDDBSTRM"
_STAMP = struct.Struct(">QBQB")  # stream enabled ms, view type, time ms, flags
FLAG_TTL = 1
STREAM_SPACE = 1 << 31  # stream records of table T are stored under the key space of "table" STREAM_SPACE + T
_U64 = struct.Struct(">Q")
TRIM_BATCH = 512  # records deleted per write while trimming


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a leader adds to an entry it logs while the table's stream is on."""

    enabled_ms: int  # the stream (its label)
    view_type: str
    time_ms: int  # ApproximateCreationDateTime, from the leader's clock
    ttl: bool = False  # time to live deleted the item (the record names DynamoDB as the one who did)

    def encode(self, effects_entry: bytes) -> bytes:
        flags = FLAG_TTL if self.ttl else 0
        return STREAM_MAGIC + _STAMP.pack(self.enabled_ms, VIEW_TYPES.index(self.view_type), self.time_ms,
                                          flags) + effects_entry


def decode_stamped(data: bytes) -> tuple[Stamp, bytes]:
    """The stamp and the effects entry of a stamped entry (``data`` starts with ``STREAM_MAGIC``)."""
    enabled_ms, view, time_ms, flags = _STAMP.unpack_from(data, len(STREAM_MAGIC))
    return Stamp(enabled_ms, VIEW_TYPES[view], time_ms, bool(flags & FLAG_TTL)), data[len(STREAM_MAGIC) + _STAMP.size:]


# ---- key layout ------------------------------------------------------------------------------------------


def _prefix(table_id: int, partition_id: int) -> bytes:
    assert 0 <= table_id < STREAM_SPACE, table_id
    return keycodec.table_prefix(STREAM_SPACE + table_id) + _U64.pack(partition_id)


def span(table_id: int, partition_id: int) -> tuple[bytes, bytes]:
    """Every record the partition's replicas hold: its own shard's and its ancestors'."""
    prefix = _prefix(table_id, partition_id)
    return prefix, keycodec.prefix_end(prefix)


def shard_span(table_id: int, partition_id: int, shard: int, from_seq: int = 0) -> tuple[bytes, bytes]:
    """The records of ``shard`` the partition holds, from sequence number ``from_seq``."""
    prefix = _prefix(table_id, partition_id) + _U64.pack(shard)
    return prefix + _U64.pack(from_seq), keycodec.prefix_end(prefix)


def record_key(table_id: int, partition_id: int, shard: int, seq: int) -> bytes:
    return _prefix(table_id, partition_id) + _U64.pack(shard) + _U64.pack(seq)


def parse_record_key(key: bytes) -> tuple[int, int]:
    """(shard, sequence number) of a record's key."""
    shard, seq = struct.unpack_from(">QQ", key, len(key) - 16)
    return shard, seq


def record_value(stamp: Stamp, record: dict[str, Any]) -> bytes:
    record["t"] = stamp.time_ms
    record["l"] = stamp.enabled_ms
    if stamp.ttl:
        record["u"] = 1
    return orjson.dumps(record)


def write_record(batch: Any, table_id: int, partition_id: int, stamp: Stamp, index: int, position: int,
                 record: dict[str, Any]) -> tuple[bytes, bytes]:
    """Put one record into ``batch``; returns it (key, value)."""
    row = record_key(table_id, partition_id, partition_id, seq_of(index, position)), record_value(stamp, record)
    batch.put(*row)
    return row


def copy_to_children(store: Any, batch: Any, table_id: int, parent: int, children: tuple[int, ...],
                     unwritten: list[tuple[bytes, bytes]]) -> int:
    """Copy every record the parent holds into each child's span, in the split entry's batch; how many.
    ``unwritten``: the parent's records in that same batch (entries applied with the split entry), which the
    store does not hold yet."""
    start, end = span(table_id, parent)
    count = 0
    prefix_len = len(start)
    for key, value in [*store.scan(start, end), *unwritten]:
        assert start <= key < end, "a record outside the parent's span"
        tail = key[prefix_len:]
        for child in children:
            batch.put(_prefix(table_id, child) + tail, value)
        count += 1
    return count


# ---- the node's service ----------------------------------------------------------------------------------


class StreamService:
    """The ITEM operations that read a partition's stream records:

    - ``StreamRead`` ``{"shard", "lo", "hi", "label", "from", "limit"}``: the records of ``shard`` (a partition
      whose range was [lo, hi): this one or an ancestor) of the stream enabled at ``label``, from sequence
      number ``from``, at most ``limit`` of them and about 1 MB. Answers ``Records`` ([seq, record] pairs),
      ``Next`` (where the next read starts) and ``End`` (the shard's records were read to the last one the
      partition's leader holds). Served by the leader only (others redirect).
    - ``StreamPosition``: the sequence number the next record of this partition will have at least (a
      LATEST iterator), from the replica's applied index.
    """

    def __init__(self, service: ItemService) -> None:
        self.service = service
        self.node = service.node
        self.trimmed = 0  # records this node deleted as too old (metrics, tests)
        service.ops.update({"StreamRead": self.read, "StreamPosition": self.position})

    def _check_shard(self, hosted: Hosted, req: dict[str, Any]) -> None:
        from storagenode.items import Answer  # noqa: PLC0415 - items imports this module's users

        lo, hi = int(req["lo"]), int(req["hi"])
        data = hosted.data
        # Ranges only ever split: a partition inside the shard's range is the shard's partition or a
        # descendant of it, which holds the shard's records. Anything else is a router with an older map.
        if not (lo <= data.hash_lo and data.hash_hi <= hi):
            raise Answer({"stale": self.node.map_version})

    async def read(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        self._check_shard(hosted, req)
        # At the leader, once it applied everything committed before its election: a shard that will get
        # no more records (a disabled stream's) must not look read to its end on a replica still behind.
        await self.service.leader_ready(hosted)
        shard, label, from_seq = int(req["shard"]), int(req["label"]), int(req["from"])
        limit = max(1, min(int(req.get("limit") or MAX_GET_RECORDS), MAX_GET_RECORDS))
        oldest_ms = self._now_ms() - self.node.node_config.stream_retention_s * 1000
        start, end = shard_span(hosted.table_id, hosted.partition_id, shard, from_seq)
        records: list[list[Any]] = []
        size = 0
        next_seq = from_seq
        at_end = True
        store = self.node.store
        while True:
            rows = store.scan(start, end, limit=MAX_GET_RECORDS)
            for key, value in rows:
                _, seq = parse_record_key(key)
                record = orjson.loads(value)
                if record["l"] == label and record["t"] >= oldest_ms:
                    if len(records) >= limit or (records and size + len(value) > MAX_GET_RECORDS_BYTES):
                        at_end = False
                        break
                    records.append([seq, record])
                    size += len(value)
                next_seq = seq + 1
            else:
                if len(rows) == MAX_GET_RECORDS:
                    start = keycodec.successor(rows[-1][0])
                    await asyncio.sleep(0)  # a long run of other streams' records: let others in
                    continue
            break
        return orjson.dumps({"ok": {"Records": records, "Next": next_seq, "End": at_end}})

    async def position(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        self._check_shard(hosted, req)
        await self.service.leader_ready(hosted)
        applied = self.node.host.describe(hosted.group)["applied_index"]
        return orjson.dumps({"ok": {"Next": seq_of(applied + 1, 0)}})

    @staticmethod
    def _now_ms() -> int:
        return int(time.time() * 1000)

    # ---- trimming --------------------------------------------------------------------------------------

    async def trim_loop(self) -> None:
        cfg = self.node.node_config
        while True:
            await asyncio.sleep(cfg.stream_trim_interval_ms / 1000.0)
            try:
                await self.trim(self._now_ms() - cfg.stream_retention_s * 1000)
            except Exception:  # noqa: BLE001 - a failed pass is logged; the next one tries again
                log.exception("trimming stream records failed")

    async def trim(self, oldest_ms: int) -> int:
        """Delete the records older than ``oldest_ms`` of every partition hosted here; how many. Within a
        shard records are in log order, so each shard is read only up to its first young record. Yields to
        the event loop between batches: a day's records of a busy table are many."""
        store = self.node.store
        deleted = 0
        for hosted in list(self.node.hosted.values()):
            start, end = span(hosted.table_id, hosted.partition_id)
            while start < end:
                rows = store.scan(start, end, limit=TRIM_BATCH)
                if not rows:
                    break
                batch = store.batch()
                old = 0
                next_start = end
                for key, value in rows:
                    if orjson.loads(value)["t"] < oldest_ms:
                        batch.delete(key)
                        old += 1
                        next_start = keycodec.successor(key)
                        continue
                    # Young: the rest of this shard is younger still. Go on with the next shard.
                    next_start = keycodec.prefix_end(key[:-8])
                    break
                if old:
                    store.write(batch, sync=False)
                    deleted += old
                start = next_start
                await asyncio.sleep(0)
        self.trimmed += deleted
        if deleted:
            log.info("stream records trimmed", records=deleted)
        return deleted
