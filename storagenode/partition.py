"""One replica of one partition: its items in the node's store, the effects it applies, the writes its
leader decides.

A write is decided at the leader against the newest state: the applied items plus the effects this leader
has already proposed but not yet applied (``_pending``), so two writes to one key in flight see each other
in log order. The decision is an *effect* (the new image or a delete, with the old image for streams) that
goes into the replicated log; every replica applies effects verbatim.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from dynamo import items as dynamo_items
from dynamo import keycodec
from dynamo.hashing import partition_hash
from dynamo.keycodec import KeyRange
from dynamo.streams import change
from paxos.errors import PaxosError
from paxos.replica import Role
from paxos.types import Snapshot
from storagenode import streams
from storagenode.admission import PartitionAdmission
from storagenode.entries import EntryLists
from storagenode.locks import LOCK_MAGIC, committed_view, lock_txn
from storagenode.streams import STREAM_MAGIC, Stamp, decode_stamped, write_record

Item = dict[str, Any]

_HEADER = struct.Struct("<QI")  # proposal id, number of effects
_EFFECT = struct.Struct("<BIII")  # op, key length, new image length, old image length
OP_PUT = 1
OP_DELETE = 2
# A split entry: this magic, then JSON. An effects entry starts with its proposal id (a counter from 1,
# little-endian), which never spells this.
SPLIT_MAGIC = b"\xffDDBSPLIT"
LOCKS_META = b"txn-locks"  # group metadata: the replica's lock index, [[storage key hex, transaction id hex]]


class PartitionSplit(PaxosError):
    """The write was logged after the partition's split entry: it was not applied (the router retries it on
    the child that owns the key now)."""


@dataclass(frozen=True, slots=True)
class SplitInfo:
    """The split entry: hashes from ``mid`` go to the right child. ``index`` is where the parent's log holds
    it (0 until applied): both children start from the parent's state at that index."""

    mid: int
    left: int
    right: int
    index: int = 0

    def encode(self) -> bytes:
        return orjson.dumps({"mid": str(self.mid), "left": self.left, "right": self.right, "index": self.index})

    @staticmethod
    def decode(raw: bytes) -> SplitInfo:
        d = orjson.loads(raw)
        return SplitInfo(int(d["mid"]), int(d["left"]), int(d["right"]), int(d.get("index", 0)))


def encode_split(info: SplitInfo) -> bytes:
    return SPLIT_MAGIC + info.encode()


class HeatMeter:
    """Load on one replica, as demand: the units of the requests it served AND of those it throttled (a
    throttled partition would otherwise look cool at exactly its limit), per second over a sliding window
    (one bucket per second), writes and reads apart; and the hashes of the most recent requests, from which
    a split by heat takes its key.

    ``rate`` is the heat in write units: the busier of writes and reads, reads weighted by
    ``read_weight`` (the write limit over the read limit, so a partition at its read limit is as hot as one
    at its write limit)."""

    def __init__(self, window_s: float = 30.0, recent: int = 2048, read_weight: float = 1000 / 3000) -> None:
        self.window_s = window_s
        self.read_weight = read_weight
        self._buckets: deque[list[float]] = deque()  # [second, write units, read units]
        self._recent: deque[int] = deque(maxlen=recent)
        self.started_s: float | None = None

    def record(self, now_s: float, units: float, hash64: int | None = None, *, read: bool = False) -> None:
        """``units`` of demand now (negative: a correction of an earlier estimate); ``hash64``: the key's
        partition hash, kept for the split point (None: units only)."""
        second = int(now_s)
        if self.started_s is None:
            self.started_s = now_s
        column = 2 if read else 1
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][column] += units
        else:
            bucket = [float(second), 0.0, 0.0]
            bucket[column] = units
            self._buckets.append(bucket)
        while self._buckets and self._buckets[0][0] <= second - self.window_s:
            self._buckets.popleft()
        if hash64 is not None:
            self._recent.append(hash64)

    def note(self, hash64: int) -> None:
        """One more key of recent traffic (for the split point), its units recorded on their own."""
        self._recent.append(hash64)

    def _sums(self, now_s: float) -> tuple[float, float] | None:
        if self.started_s is None or now_s - self.started_s < self.window_s:
            return None
        floor = int(now_s) - self.window_s
        writes = reads = 0.0
        for second, w, r in self._buckets:
            if second > floor:
                writes += w
                reads += r
        return max(0.0, writes), max(0.0, reads)

    def write_rate(self, now_s: float) -> float:
        """Write units per second over the window (0 until a full window was observed: heat is sustained)."""
        sums = self._sums(now_s)
        return 0.0 if sums is None else sums[0] / self.window_s

    def read_rate(self, now_s: float) -> float:
        sums = self._sums(now_s)
        return 0.0 if sums is None else sums[1] / self.window_s

    def rate(self, now_s: float) -> float:
        """The heat in write units per second (what the leader reports as ``wcu_per_s``)."""
        sums = self._sums(now_s)
        if sums is None:
            return 0.0
        return max(sums[0], sums[1] * self.read_weight) / self.window_s

    def split_point(self, lo: int, hi: int) -> int | None:
        """A hash in (lo, hi) with about half of the recent writes on each side; for one hot key at the
        range's start, the hash right after it (that key alone on the left). None if no such point."""
        hashes = sorted(h for h in self._recent if lo <= h < hi)
        if not hashes:
            return None
        mid = hashes[len(hashes) // 2]
        if mid > hashes[0]:
            return mid
        above = next((h for h in hashes if h > hashes[0]), None)
        if above is not None:
            return above  # the smallest hash alone on the left
        if hashes[0] > lo:
            return hashes[0]  # one hot hash: alone on the right (and later cut after it)
        return lo + 1 if lo + 1 < hi else None


@dataclass(frozen=True, slots=True)
class Effect:
    key: bytes
    new: bytes | None  # the item's stored bytes afterwards, None for a delete
    old: bytes | None  # the stored bytes before, None if absent


def encode_effects(proposal_id: int, effects: list[Effect]) -> bytes:
    out = [_HEADER.pack(proposal_id, len(effects))]
    for eff in effects:
        new = eff.new if eff.new is not None else b""
        old = eff.old if eff.old is not None else b""
        out.append(_EFFECT.pack(OP_PUT if eff.new is not None else OP_DELETE, len(eff.key), len(new), len(old)))
        out.append(eff.key)
        out.append(new)
        out.append(old)
    return b"".join(out)


def decode_effects(data: bytes) -> tuple[int, list[Effect]]:
    proposal_id, count = _HEADER.unpack_from(data, 0)
    pos = _HEADER.size
    effects: list[Effect] = []
    for _ in range(count):
        op, key_len, new_len, old_len = _EFFECT.unpack_from(data, pos)
        pos += _EFFECT.size
        key = data[pos : pos + key_len]
        pos += key_len
        new = data[pos : pos + new_len]
        pos += new_len
        old = data[pos : pos + old_len]
        pos += old_len
        assert op in (OP_PUT, OP_DELETE), op
        effects.append(Effect(key, new if op == OP_PUT else None, old if old_len else None))
    assert pos == len(data), "trailing bytes in an effects entry"
    return proposal_id, effects


@dataclass(frozen=True, slots=True)
class KeySchema:
    hash_name: str
    hash_type: str
    range_name: str | None
    range_type: str | None

    @staticmethod
    def from_spec(spec: dict[str, Any]) -> KeySchema:
        types = {d["AttributeName"]: d["AttributeType"] for d in spec["AttributeDefinitions"]}
        hash_name = next(k["AttributeName"] for k in spec["KeySchema"] if k["KeyType"] == "HASH")
        range_name = next((k["AttributeName"] for k in spec["KeySchema"] if k["KeyType"] == "RANGE"), None)
        return KeySchema(hash_name, types[hash_name], range_name, types[range_name] if range_name else None)

    def dynamo(self) -> dynamo_items.KeySchema:
        """The same key as ``dynamo.items`` spells it (what expressions, indexes and capacity take)."""
        return dynamo_items.KeySchema(self.hash_name, self.hash_type, self.range_name, self.range_type)

    def key_of(self, item: Item) -> Item:
        key = {self.hash_name: item[self.hash_name]}
        if self.range_name is not None:
            key[self.range_name] = item[self.range_name]
        return key


class PartitionData:
    """The items of one partition replica, stored in the node's shared store."""

    def __init__(self, store: Any, table_id: int, schema: KeySchema, hash_lo: int, hash_hi: int,
                 clock: Callable[[], float] = time.monotonic, group: int | None = None) -> None:
        self.store = store
        self.clock = clock
        self.group = group  # the replication group's number in the store (its metadata keeps the lock index)
        self.table_id = table_id
        self.schema = schema
        self.hash_lo = hash_lo
        self.hash_hi = hash_hi
        self.range: KeyRange = keycodec.hash_range(table_id, hash_lo, hash_hi)
        # Set once this partition's split entry is applied (or proposed, at the leader): the children own
        # the keys, so this replica answers ``stale`` for all of them.
        self.frozen = False
        # key -> (proposal id, image) of effects proposed by this leader and not applied yet.
        self._pending: dict[bytes, tuple[int, bytes | None]] = {}
        # GSI entries in index order, derived from the applied items (built by the first GSI Query).
        self.entry_lists = EntryLists()
        # Transactions' locks held here (``storagenode.locks``): storage key -> transaction id, kept by
        # ``apply``. ``locks_known``: also every lock that was in the store before (found by a scan of the
        # range, ``storagenode.txn``); a replaced state starts a new ``locks_epoch`` and must be scanned again.
        self.locks: dict[bytes, bytes] = {}
        self.lock_seen: dict[bytes, float] = {}  # transaction id -> when this replica first held a lock of it
        self.locks_known = False
        self.locks_epoch = 0
        # The stream records of the apply batch under way (``records_in``); replaced by the next batch's.
        self._unwritten_batch: Any = None
        self.unwritten_records: list[tuple[bytes, bytes]] = []
        saved = store.get_group_meta(group, LOCKS_META) if group is not None else None
        if saved is not None:  # the index as the last applied entry left it: no scan after a restart
            for key_hex, txn_hex in orjson.loads(saved):
                self.note_lock(bytes.fromhex(key_hex), bytes.fromhex(txn_hex))
            self.locks_known = True

    # ---- keys ------------------------------------------------------------------------------------------

    def hash_of(self, key: Item) -> int:
        value = next(iter(key[self.schema.hash_name].values()))
        return partition_hash(self.schema.hash_type, value)

    def covers(self, hash64: int) -> bool:
        return not self.frozen and self.hash_lo <= hash64 < self.hash_hi

    def storage_key(self, key: Item, hash64: int | None = None) -> bytes:
        s = self.schema
        pk = next(iter(key[s.hash_name].values()))
        if hash64 is None:
            hash64 = partition_hash(s.hash_type, pk)
        if s.range_name is None:
            return keycodec.item_key(self.table_id, hash64, s.hash_type, pk)
        sk = next(iter(key[s.range_name].values()))
        return keycodec.item_key(self.table_id, hash64, s.hash_type, pk, s.range_type, sk)

    # ---- reads -------------------------------------------------------------------------------------------

    def read_applied(self, key: bytes) -> bytes | None:
        """The item as reads see it: its applied bytes, or a transaction's lock's committed view."""
        value: bytes | None = self.store.get(key)
        if value is not None and value[:1] == LOCK_MAGIC:
            return committed_view(value)
        return value

    def read_stored(self, key: bytes) -> bytes | None:
        """The applied bytes as stored: an item, or a transaction's lock on it."""
        value: bytes | None = self.store.get(key)
        return value

    def read_latest(self, key: bytes) -> bytes | None:
        """What a new write must see: this leader's newest proposed bytes, else the applied ones, locks
        included (a write to a locked item conflicts with its transaction)."""
        pending = self._pending.get(key)
        if pending is not None:
            return pending[1]
        return self.read_stored(key)

    def pending_count(self) -> int:
        """Writes this leader proposed and has not applied yet (each is forgotten when it applies)."""
        return len(self._pending)

    def has_pending(self, key: bytes) -> bool:
        """Whether this leader has a write to ``key`` proposed and not applied yet."""
        return key in self._pending

    def scan_applied(self, start: bytes, end: bytes, reverse: bool, limit: int,
                     max_bytes: int) -> list[tuple[bytes, bytes | None]]:
        """Up to ``limit`` stored rows of ``[start, end)`` in this partition, as reads see them: a locked
        item's committed view, which is None for an item a transaction is creating (the caller skips it,
        but it counts towards ``limit``, so a short answer still means the range is read to its end)."""
        lo = max(start, self.range.start)
        hi = min(end, self.range.end)
        if lo >= hi:
            return []
        if not self.locks and self.locks_known:
            rows: list[tuple[bytes, bytes | None]] = self.store.scan(lo, hi, reverse=reverse, limit=limit,
                                                                     max_bytes=max_bytes)
            return rows
        # The byte budget counts what reads see (as the callers do), not the locks' stored bytes: a page cut
        # short by bytes the caller did not count would look like the end of the range.
        seen: list[tuple[bytes, bytes | None]] = []
        total = 0
        for key, raw in self.store.scan(lo, hi, reverse=reverse, limit=limit):
            view = committed_view(raw)
            seen.append((key, view))
            total += len(view or b"")
            if total >= max_bytes:
                break
        return seen

    # ---- writes ------------------------------------------------------------------------------------------

    def note_proposed(self, proposal_id: int, effects: list[Effect]) -> None:
        for eff in effects:
            self._pending[eff.key] = (proposal_id, eff.new)

    def note_lock(self, key: bytes, txn: bytes) -> None:
        self.locks[key] = txn
        if txn not in self.lock_seen:
            self.lock_seen[txn] = self.clock()

    def save_locks(self, batch: Any) -> None:
        """Keep the lock index with the items ``batch`` writes (once it is complete: until then a restart
        finds no index and scans)."""
        if self.locks_known and self.group is not None:
            self.store.put_group_meta(batch, self.group, LOCKS_META,
                                      orjson.dumps([[key.hex(), txn.hex()] for key, txn in self.locks.items()]))

    def forget_locks(self, batch: Any = None) -> None:
        """The state was replaced (in ``batch``): the locks held are the new state's, found by scanning it
        again; the saved index goes with the state it described."""
        self.locks.clear()
        self.lock_seen.clear()
        self.locks_known = False
        self.locks_epoch += 1
        if batch is not None and self.group is not None:
            self.store.delete_group_meta(batch, self.group, LOCKS_META)

    def _record(self, batch: Any, stamp: Stamp, index: int, position: int, eff: Effect) -> None:
        """The stream record of one effect, if it changes what reads see (``storagenode.streams``)."""
        assert self.group is not None, "a partition without a group number keeps no stream records"
        old = decode_item(committed_view(eff.old))
        new = decode_item(committed_view(eff.new))
        item = new if new is not None else old
        if item is None:
            return
        record = change(stamp.view_type, self.schema.key_of(item), old, new)
        if record is not None:
            row = write_record(batch, self.table_id, self.group, stamp, index, position, record)
            if self._unwritten_batch is not batch:
                self._unwritten_batch, self.unwritten_records = batch, []
            self.unwritten_records.append(row)

    def records_in(self, batch: Any) -> list[tuple[bytes, bytes]]:
        """The stream records this replica put into ``batch`` (not in the store until the batch is written:
        a split entry applied in the same batch must copy them too)."""
        return self.unwritten_records if self._unwritten_batch is batch else []

    def forget_pending(self) -> None:
        """Leadership lost: what this replica proposed may or may not commit; the log decides."""
        self._pending.clear()

    def apply(self, batch: Any, proposal_id: int, effects: list[Effect], stamp: Stamp | None = None,
              index: int = 0) -> None:
        """Write the effects into ``batch``, which the driver writes to the store before anything else
        runs: the entry lists, updated here too, never disagree with the store a read sees. A ``stamp``d
        entry (the table's stream was on; ``index`` is the entry's place in the log) also writes a stream
        record for each item whose view changes."""
        lists = self.entry_lists
        locks_changed = False
        for position, eff in enumerate(effects):
            new = eff.new
            if stamp is not None:
                self._record(batch, stamp, index, position, eff)
            if new is None:
                batch.delete(eff.key)
            else:
                batch.put(eff.key, new)
            if new is not None and new[:1] == LOCK_MAGIC:
                self.note_lock(eff.key, lock_txn(new))
                locks_changed = True
                new = committed_view(new)
            elif self.locks and self.locks.pop(eff.key, None) is not None:
                locks_changed = True
            if lists:
                lists.applied(eff.key, decode_item(new))
            pending = self._pending.get(eff.key)
            if pending is not None and pending[0] == proposal_id:
                del self._pending[eff.key]
        if locks_changed:
            self.save_locks(batch)


class PartitionMachine:
    """The replication driver's state machine for one partition replica (``runtime.replication.StateMachine``).

    Log entries are ``encode_effects`` blobs (stamped ones while the table's stream is on); applying one
    writes its images verbatim. The state is the partition's item range and its stream records in the store
    (``state_spans``): snapshots carry no data, the driver streams the spans to a replica that needs them
    (``runtime.snapshot_stream``).
    """

    def __init__(self, data: PartitionData, on_split: Callable[[Any, SplitInfo], None] | None = None,
                 heat: HeatMeter | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.data = data
        self.applied_entries = 0  # effects entries applied since start (for metrics and tests)
        self.split: SplitInfo | None = None
        self.on_split = on_split
        self.heat = heat or HeatMeter()
        self.clock = clock
        # This replica's admission buckets, made by the item service on the first request it serves: a new
        # replica (a split child) starts with full ones.
        self.admission: PartitionAdmission | None = None

    def apply(self, batch: Any, index: int, data: bytes) -> Any:
        if not data:  # a leader's no-op or a membership entry
            return None
        stamp = None
        if data.startswith(STREAM_MAGIC):
            stamp, data = decode_stamped(data)
        elif data.startswith(SPLIT_MAGIC):
            if self.split is None:
                self.split = replace(SplitInfo.decode(data[len(SPLIT_MAGIC):]), index=index)
                self.data.frozen = True
                self.data.forget_pending()
                if self.on_split is not None:
                    self.on_split(batch, self.split)
            return None
        if self.split is not None:
            # Logged after the split (a write that raced it): the children own its key now. Not applied.
            return PartitionSplit(f"partition split at index {self.split.index}")
        proposal_id, effects = decode_effects(data)
        self.data.apply(batch, proposal_id, effects, stamp, index)
        self.applied_entries += 1
        return None

    def state_spans(self) -> tuple[tuple[bytes, bytes], ...] | None:
        """The key ranges of the store that are this replica's state: the items, and the stream records
        (when the partition has a group number; ``storagenode.streams``)."""
        if self.split is not None:
            return None  # the range is the split children's now
        spans = [(self.data.range.start, self.data.range.end)]
        if self.data.group is not None:
            spans.append(streams.span(self.data.table_id, self.data.group))
        return tuple(spans)

    def snapshot_data(self) -> bytes:
        """The whole state as one blob: only for a driver without streamed snapshots (tests)."""
        spans = self.state_spans() or ()
        return b"".join(chunk for start, end in spans for chunk in self.data.store.export_range(start, end))

    def restore(self, batch: Any, snapshot: Snapshot) -> None:
        if self.split is not None:
            return  # the range belongs to this split parent's children now: their state is not ours to replace
        for start, end in self.state_spans() or ():
            batch.delete_range(start, end)
        if snapshot.data:
            self.data.store.import_chunk(batch, snapshot.data)
        self.data.forget_pending()
        self.data.forget_locks(batch)
        self.data.entry_lists.clear()  # derived from the state replaced: the next GSI Query builds them again

    def on_role(self, role: Role, leader: str) -> None:
        if role is not Role.LEADER:
            self.data.forget_pending()


def encode_item(item: Item) -> bytes:
    return orjson.dumps(item)


def decode_item(raw: bytes | None) -> Item | None:
    if raw is None:
        return None
    item: Item = orjson.loads(raw)
    return item

