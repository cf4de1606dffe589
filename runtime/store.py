"""The storage node's RocksDB store: every replica's items, Paxos log and metadata in one database.

One ``Store`` per storage-node process; the replicas it hosts share it, so one synced write (one WAL fsync)
commits the work of many partitions at once (group commit). Three column families:

- ``items``: ``table_id · hash64 · enc(pk) [· enc(sk)]`` (``dynamo.keycodec``) -> the item's canonical
  stored bytes (its orjson text). A partition is a key range; a split needs no data movement.
- ``log``: ``group (u64 BE) · index (u64 BE)`` -> one Paxos log entry, opaque bytes.
- ``meta``: ``b"g" · group (u64 BE) · name`` -> per-group state (hard state, applied index, the partition
  descriptor...), and node-wide keys under any other first byte.

Every call is synchronous and short; the storage node's driver calls it from its event loop. Writes go
through a ``WriteBatch`` so that applying a log entry and moving the applied index land atomically.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path

import rocksdict

ITEMS, LOG, META = "items", "log", "meta"
COLUMN_FAMILIES = (ITEMS, LOG, META)

_GROUP = struct.Struct(">Q")
_LOG_KEY = struct.Struct(">QQ")
_INDEX = struct.Struct(">Q")
_FRAME = struct.Struct(">I")
_GROUP_META = b"g"
_HARD_STATE = b"hard_state"
_APPLIED_INDEX = b"applied_index"
MAX_GROUP = (1 << 64) - 1
MAX_INDEX = (1 << 64) - 1
MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """RocksDB tuning for a small machine that runs several storage nodes side by side."""

    items_write_buffer_bytes: int = 16 * MiB
    log_write_buffer_bytes: int = 8 * MiB
    meta_write_buffer_bytes: int = 2 * MiB
    max_write_buffers: int = 2
    block_cache_bytes: int = 32 * MiB
    bloom_bits_per_key: int = 10
    background_jobs: int = 2
    max_open_files: int = 512
    max_total_wal_bytes: int = 64 * MiB
    # Retired WAL files kept for reuse: a synced write into a recycled file overwrites blocks in place, so its
    # fdatasync need not commit the file system's journal for a new file size (~250 -> ~210 µs per synced
    # write here, 20 % less CPU). RocksDB's recyclable record format tells a recycled file's old records apart.
    # Safe with point-in-time recovery, and when switched on for an existing database, since RocksDB 9.2
    # (facebook/rocksdb #12403, #12591); rocksdict 0.3.29 bundles 9.8.4.
    recycled_wal_files: int = 2
    compression: str = "lz4"  # none | lz4 | snappy | zstd
    default_chunk_bytes: int = 1 * MiB

    def __post_init__(self) -> None:
        assert self.compression in {"none", "lz4", "snappy", "zstd"}, self.compression
        assert self.max_write_buffers >= 1 and self.background_jobs >= 1 and self.recycled_wal_files >= 0


@dataclass(frozen=True, slots=True)
class RangeStats:
    count: int
    bytes: int  # keys plus values


class WriteBatch:
    """One atomic write across the column families. Build it with ``Store.batch()``; write it once."""

    __slots__ = ("_batch", "_items", "_log", "_meta", "_written", "_ops")

    def __init__(
        self, items: rocksdict.ColumnFamily, log: rocksdict.ColumnFamily, meta: rocksdict.ColumnFamily
    ) -> None:
        self._batch = rocksdict.WriteBatch(raw_mode=True)
        self._items, self._log, self._meta = items, log, meta
        self._written = False
        self._ops = 0

    def __len__(self) -> int:
        return self._ops

    @property
    def size_bytes(self) -> int:
        return int(self._batch.size_in_bytes())

    def put(self, key: bytes, value: bytes) -> None:
        """Store an item's bytes under its key (``dynamo.keycodec.item_key``)."""
        self._add()
        self._batch.put(key, value, self._items)

    def delete(self, key: bytes) -> None:
        self._add()
        self._batch.delete(key, self._items)

    def delete_range(self, start: bytes, end: bytes) -> None:
        """Delete every item with ``start <= key < end``."""
        assert start <= end
        self._add()
        self._batch.delete_range(start, end, self._items)

    def put_log(self, group: int, index: int, entry: bytes) -> None:
        self._add()
        self._batch.put(log_key(group, index), entry, self._log)

    def delete_log_range(self, group: int, lo: int, hi: int) -> None:
        """Delete the group's log entries with ``lo <= index < hi``."""
        assert 0 <= lo <= hi
        self._add()
        self._batch.delete_range(log_key(group, lo), _log_bound(group, hi), self._log)

    def put_meta(self, key: bytes, value: bytes) -> None:
        self._add()
        self._batch.put(key, value, self._meta)

    def delete_meta(self, key: bytes) -> None:
        self._add()
        self._batch.delete(key, self._meta)

    def delete_meta_range(self, start: bytes, end: bytes) -> None:
        self._add()
        self._batch.delete_range(start, end, self._meta)

    def _add(self) -> None:
        assert not self._written, "a WriteBatch is written once"
        self._ops += 1

    def _take(self) -> rocksdict.WriteBatch:
        assert not self._written, "a WriteBatch is written once"
        self._written = True
        # Column-family handles keep the database open: let go of them once the batch is spent.
        del self._items, self._log, self._meta
        return self._batch


# ------------------------------------------------------------------------------------------ key helpers


def log_key(group: int, index: int) -> bytes:
    assert 0 <= group <= MAX_GROUP and 0 <= index <= MAX_INDEX, (group, index)
    return _LOG_KEY.pack(group, index)


def _log_bound(group: int, index: int) -> bytes:
    """The first log key at or after ``index``; index 2**64 is the end of the group's log."""
    if index > MAX_INDEX:
        assert group < MAX_GROUP
        return _GROUP.pack(group + 1)
    return log_key(group, index)


def group_meta_key(group: int, name: bytes) -> bytes:
    assert 0 <= group <= MAX_GROUP and name
    return _GROUP_META + _GROUP.pack(group) + name


def _group_meta_range(group: int) -> tuple[bytes, bytes]:
    start = _GROUP_META + _GROUP.pack(group)
    end = _GROUP_META + _GROUP.pack(group + 1) if group < MAX_GROUP else _GROUP_META + b"\xff" * 9
    return start, end


# ------------------------------------------------------------------------------------- range operations


# Every read below runs on one RocksDB iterator, which sees the store as it was when the iterator was made:
# a fresh one per call on the live store, long-lived ones in a StoreSnapshot. We use neither rocksdict's
# Snapshot iterators (0.3.29: they do not honour the snapshot) nor ReadOptions iterate bounds (0.3.29: the
# lower bound acts as an upper bound, and bounds misbehave unless both are set), so the loops check the
# range ends themselves.


def _get(iterator: rocksdict.RdictIter, key: bytes) -> bytes | None:
    iterator.seek(key)
    if iterator.valid() and iterator.key() == key:
        return bytes(iterator.value())
    return None


def _scan(
    iterator: rocksdict.RdictIter,
    start: bytes,
    end: bytes,
    reverse: bool,
    limit: int | None,
    max_bytes: int | None,
) -> list[tuple[bytes, bytes]]:
    assert limit is None or limit > 0
    found: list[tuple[bytes, bytes]] = []
    if start >= end:
        return found
    used_bytes = 0
    if reverse:
        iterator.seek_for_prev(end)
        if iterator.valid() and iterator.key() >= end:
            iterator.prev()
    else:
        iterator.seek(start)
    step = iterator.prev if reverse else iterator.next
    while iterator.valid():
        key = iterator.key()
        if (key < start) if reverse else (key >= end):
            break
        value = iterator.value()
        found.append((key, value))
        used_bytes += len(value)
        if (limit is not None and len(found) >= limit) or (max_bytes is not None and used_bytes >= max_bytes):
            break
        step()
    return found


def _forward(iterator: rocksdict.RdictIter, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Walk the range; the caller consumes it fully before touching the iterator again."""
    if start >= end:
        return
    iterator.seek(start)
    while iterator.valid():
        key = iterator.key()
        if key >= end:
            return
        yield key, iterator.value()
        iterator.next()


def _checksum(iterator: rocksdict.RdictIter, start: bytes, end: bytes) -> str:
    digest = blake2b(digest_size=16)
    for key, value in _forward(iterator, start, end):
        digest.update(_FRAME.pack(len(key)))
        digest.update(key)
        digest.update(_FRAME.pack(len(value)))
        digest.update(value)
    return digest.hexdigest()


def _stats(iterator: rocksdict.RdictIter, start: bytes, end: bytes) -> RangeStats:
    count = total = 0
    for key, value in _forward(iterator, start, end):
        count += 1
        total += len(key) + len(value)
    return RangeStats(count, total)


def _export(iterator: rocksdict.RdictIter, start: bytes, end: bytes, chunk_bytes: int) -> Iterator[bytes]:
    """Chunks of framed records. Each chunk is read in one go and the walk resumes by seeking, so other
    reads may use the same iterator between chunks."""
    for chunk, _ in _export_counted(iterator, start, end, chunk_bytes):
        yield chunk


def _export_counted(
    iterator: rocksdict.RdictIter, start: bytes, end: bytes, chunk_bytes: int
) -> Iterator[tuple[bytes, int]]:
    """``_export``'s chunks with the number of records in each."""
    assert chunk_bytes > 0
    position = start
    while position < end:
        chunk = bytearray()
        last = b""
        count = 0
        for key, value in _forward(iterator, position, end):
            chunk += _FRAME.pack(len(key))
            chunk += key
            chunk += _FRAME.pack(len(value))
            chunk += value
            last = key
            count += 1
            if len(chunk) >= chunk_bytes:
                break
        if not chunk:
            return
        position = last + b"\x00"
        yield bytes(chunk), count


def decode_chunk(chunk: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) records of one ``export_range`` chunk."""
    view = memoryview(chunk)
    offset = 0
    while offset < len(view):
        (key_length,) = _FRAME.unpack_from(view, offset)
        offset += _FRAME.size
        key = bytes(view[offset : offset + key_length])
        offset += key_length
        (value_length,) = _FRAME.unpack_from(view, offset)
        offset += _FRAME.size
        value = bytes(view[offset : offset + value_length])
        offset += value_length
        assert offset <= len(view), "truncated snapshot chunk"
        yield key, value


def _log_entries(
    iterator: rocksdict.RdictIter, group: int, lo: int, hi: int, max_bytes: int | None
) -> list[tuple[int, bytes]]:
    entries: list[tuple[int, bytes]] = []
    used_bytes = 0
    for key, value in _forward(iterator, log_key(group, lo), _log_bound(group, hi)):
        entries.append((_LOG_KEY.unpack(key)[1], value))
        used_bytes += len(value)
        if max_bytes is not None and used_bytes >= max_bytes:
            break
    return entries


# ----------------------------------------------------------------------------------------------- store


class _WalSyncer:
    """Makes RocksDB's write-ahead log durable with ``fdatasync`` calls that release the GIL.

    rocksdict holds the GIL for the whole of a write, fsync included, so a synced ``Rdict.write`` on the I/O
    thread stops the event loop for the fsync (~200 µs here, far more on a busy disk). Instead a synced write
    is an unsynced one, which RocksDB hands to the OS before it returns (``manual_wal_flush`` is off), then
    this syncs every live WAL file: the one being written and any older one not yet retired (a retired WAL's
    memtables are in SST files, which RocksDB syncs itself). A WAL file seen for the first time also gets its
    directory synced, so the file itself survives a power cut, as RocksDB's own synced writes ensure.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()  # the I/O thread and the event loop may both sync
        self._fds: dict[str, int] = {}

    def sync(self) -> None:
        with self._lock:
            live = {name for name in os.listdir(self._path) if name.endswith(".log")}
            for name in [name for name in self._fds if name not in live]:
                os.close(self._fds.pop(name))
            new_file = False
            for name in sorted(live):
                fd = self._fds.get(name)
                if fd is None:
                    try:
                        fd = os.open(self._path / name, os.O_RDONLY)
                    except FileNotFoundError:
                        continue  # retired between the listing and now: its data is in synced SST files
                    self._fds[name] = fd
                    new_file = True
                os.fdatasync(fd)
            if new_file:
                directory = os.open(self._path, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


class Store:
    """A storage node's RocksDB database. Open it once per process; ``close()`` before reopening."""

    def __init__(self, path: str | Path, config: StoreConfig | None = None) -> None:
        self.config = config or StoreConfig()
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._cache = rocksdict.Cache(self.config.block_cache_bytes)
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        options.create_missing_column_families(True)
        options.increase_parallelism(self.config.background_jobs)
        options.set_max_background_jobs(self.config.background_jobs)
        options.set_max_open_files(self.config.max_open_files)
        options.set_max_total_wal_size(self.config.max_total_wal_bytes)
        options.set_recycle_log_file_num(self.config.recycled_wal_files)
        options.set_keep_log_file_num(2)
        options.set_max_log_file_size(4 * MiB)
        options.set_bytes_per_sync(1 * MiB)
        families = {
            ITEMS: self._family_options(self.config.items_write_buffer_bytes, bloom=True),
            LOG: self._family_options(self.config.log_write_buffer_bytes, bloom=False),
            META: self._family_options(self.config.meta_write_buffer_bytes, bloom=True),
        }
        self._db = rocksdict.Rdict(str(self.path), options, column_families=families)
        self._items = self._db.get_column_family(ITEMS)
        self._log = self._db.get_column_family(LOG)
        self._meta = self._db.get_column_family(META)
        self._families = {ITEMS: self._items, LOG: self._log, META: self._meta}
        self._handles = tuple(self._db.get_column_family_handle(name) for name in COLUMN_FAMILIES)
        self._no_sync = rocksdict.WriteOptions()
        self._no_sync.sync = False
        self._wal = _WalSyncer(self.path)
        self._closed = False

    def _family_options(self, write_buffer_bytes: int, *, bloom: bool) -> rocksdict.Options:
        options = rocksdict.Options(raw_mode=True)
        options.set_write_buffer_size(write_buffer_bytes)
        options.set_max_write_buffer_number(self.config.max_write_buffers)
        options.set_compression_type(getattr(rocksdict.DBCompressionType, self.config.compression)())
        table = rocksdict.BlockBasedOptions()
        table.set_block_cache(self._cache)
        if bloom:
            table.set_bloom_filter(self.config.bloom_bits_per_key, False)
        options.set_block_based_table_factory(table)
        return options

    def close(self) -> None:
        """Flush and close. Every iterator from ``export_range`` or a snapshot must be dropped first."""
        if self._closed:
            return
        self._closed = True
        self._db.flush_wal(True)
        self._wal.close()
        del self._items, self._log, self._meta, self._handles, self._families
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _iter(self, family: str) -> rocksdict.RdictIter:
        assert not self._closed, "store is closed"
        return self._families[family].iter()

    # writes

    def batch(self) -> WriteBatch:
        items, log, meta = self._handles
        return WriteBatch(items, log, meta)

    def write(self, batch: WriteBatch, sync: bool) -> None:
        """Apply the batch atomically; with ``sync`` it is on disk (WAL fsync) when this returns. The fsync
        runs without the GIL (``_WalSyncer``), so other threads go on meanwhile."""
        assert not self._closed, "store is closed"
        self._db.write(batch._take(), self._no_sync)
        if sync:
            self._wal.sync()

    def delete_range(self, start: bytes, end: bytes, sync: bool = False) -> None:
        """Drop every item with ``start <= key < end`` (a removed replica's data)."""
        batch = self.batch()
        batch.delete_range(start, end)
        self.write(batch, sync)

    def compact_range(self, start: bytes, end: bytes) -> None:
        """Reclaim the disk space of deleted items now (blocks: for after dropping a replica, off the hot path)."""
        assert not self._closed, "store is closed"
        self._items.compact_range(start, end)

    def import_chunk(self, batch: WriteBatch, chunk: bytes,
                     bounds: Sequence[tuple[bytes, bytes]] | None = None) -> int:
        """Add one ``export_range`` chunk's items to ``batch``; returns how many. With ``bounds``, a record
        outside every ``[start, end)`` of them raises ValueError (and nothing of the chunk should be written)."""
        count = 0
        for key, value in decode_chunk(chunk):
            if bounds is not None and not any(start <= key < end for start, end in bounds):
                raise ValueError(f"record {key.hex()} outside the range being imported")
            batch.put(key, value)
            count += 1
        return count

    # item reads

    def get(self, key: bytes) -> bytes | None:
        assert not self._closed, "store is closed"
        value = self._items.get(key)
        return None if value is None else bytes(value)

    def scan(
        self,
        start: bytes,
        end: bytes,
        *,
        reverse: bool = False,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Items with ``start <= key < end`` in key order (descending with ``reverse``).

        Stops after ``limit`` items, or after the item that brings the values' total to ``max_bytes`` (so a
        page always holds at least one item). The caller knows the page was cut short if it holds ``limit``
        items or ``max_bytes`` of values; the last key is then where the next page starts from.
        """
        return _scan(self._iter(ITEMS), start, end, reverse, limit, max_bytes)

    def checksum(self, start: bytes, end: bytes) -> str:
        """An ordered hash of the keys and values in the range: equal iff the contents are equal."""
        return _checksum(self._iter(ITEMS), start, end)

    def stats(self, start: bytes, end: bytes) -> RangeStats:
        """Exact item count and key+value bytes in the range (a scan: fine for ranges of up to ~1M items)."""
        return _stats(self._iter(ITEMS), start, end)

    def middle_key(self, start: bytes, end: bytes) -> bytes | None:
        """The first key at which the range's key+value bytes reach half their total (a size split point:
        split the partition at ``keycodec.key_hash`` of it). None for an empty range. Two exact passes."""
        total = _stats(self._iter(ITEMS), start, end).bytes
        used = 0
        for key, value in _forward(self._iter(ITEMS), start, end):
            used += len(key) + len(value)
            if 2 * used >= total:
                return key
        return None

    def export_range(self, start: bytes, end: bytes, chunk_bytes: int | None = None) -> Iterator[bytes]:
        """The range's items as chunks of about ``chunk_bytes``, from one consistent view of the store."""
        return _export(self._iter(ITEMS), start, end, chunk_bytes or self.config.default_chunk_bytes)

    def snapshot(self) -> StoreSnapshot:
        return StoreSnapshot(self)

    # Paxos log

    def append_log(self, batch: WriteBatch, group: int, entries: Iterable[tuple[int, bytes]]) -> None:
        """Add (index, entry) pairs to the group's log in ``batch`` (overwriting any entry at that index)."""
        for index, entry in entries:
            batch.put_log(group, index, entry)

    def log_entries(
        self, group: int, lo: int, hi: int, max_bytes: int | None = None
    ) -> list[tuple[int, bytes]]:
        """The group's stored entries with ``lo <= index < hi`` (holes skipped), up to ``max_bytes``."""
        return _log_entries(self._iter(LOG), group, lo, hi, max_bytes)

    def truncate_log(self, group: int, upto: int, batch: WriteBatch | None = None) -> None:
        """Forget the group's entries with index <= ``upto`` (covered by applied state or a snapshot)."""
        own = batch is None
        target = self.batch() if batch is None else batch
        target.delete_log_range(group, 0, upto + 1)
        if own:
            self.write(target, sync=False)

    def delete_log_suffix(self, batch: WriteBatch, group: int, from_index: int) -> None:
        """Forget the group's entries with index >= ``from_index``."""
        batch.delete_log_range(group, from_index, MAX_INDEX + 1)

    def log_bounds(self, group: int) -> tuple[int, int] | None:
        """The group's first and last stored log index, or None if its log is empty."""
        start, end = log_key(group, 0), _log_bound(group, MAX_INDEX + 1)
        first = _scan(self._iter(LOG), start, end, False, 1, None)
        if not first:
            return None
        last = _scan(self._iter(LOG), start, end, True, 1, None)
        return _LOG_KEY.unpack(first[0][0])[1], _LOG_KEY.unpack(last[0][0])[1]

    # per-group and node metadata

    def save_hard_state(self, batch: WriteBatch, group: int, state: bytes) -> None:
        batch.put_meta(group_meta_key(group, _HARD_STATE), state)

    def load_hard_state(self, group: int) -> bytes | None:
        return self.get_meta(group_meta_key(group, _HARD_STATE))

    def save_applied_index(self, batch: WriteBatch, group: int, index: int) -> None:
        batch.put_meta(group_meta_key(group, _APPLIED_INDEX), _INDEX.pack(index))

    def load_applied_index(self, group: int) -> int:
        """The last log index applied to the group's items; 0 if none."""
        value = self.get_meta(group_meta_key(group, _APPLIED_INDEX))
        return 0 if value is None else int(_INDEX.unpack(value)[0])

    def put_group_meta(self, batch: WriteBatch, group: int, name: bytes, value: bytes) -> None:
        """Any other per-group record (e.g. the partition descriptor), dropped with the group."""
        batch.put_meta(group_meta_key(group, name), value)

    def get_group_meta(self, group: int, name: bytes) -> bytes | None:
        return self.get_meta(group_meta_key(group, name))

    def delete_group_meta(self, batch: WriteBatch, group: int, name: bytes) -> None:
        batch.delete_meta(group_meta_key(group, name))

    def put_meta(self, batch: WriteBatch, key: bytes, value: bytes) -> None:
        """A node-wide record; keys starting with ``b"g"`` belong to groups."""
        assert not key.startswith(_GROUP_META), key
        batch.put_meta(key, value)

    def get_meta(self, key: bytes) -> bytes | None:
        value = self._meta.get(key)
        return None if value is None else bytes(value)

    def groups(self) -> list[int]:
        """Every group with metadata here: the replicas to restart after a reboot."""
        found: list[int] = []
        start, end = _GROUP_META, _GROUP_META + b"\xff" * 9
        while True:
            page = _scan(self._iter(META), start, end, False, 1, None)
            if not page:
                return found
            (group,) = _GROUP.unpack_from(page[0][0], len(_GROUP_META))
            found.append(group)
            if group == MAX_GROUP:
                return found
            start = _group_meta_range(group)[1]

    def drop_group(self, batch: WriteBatch, group: int) -> None:
        """Forget the group's log and metadata (its items are a key range: ``delete_range`` them)."""
        batch.delete_log_range(group, 0, MAX_INDEX + 1)
        batch.delete_meta_range(*_group_meta_range(group))

    # introspection

    def property_int(self, name: str, family: str = ITEMS) -> int | None:
        """A RocksDB integer property of a column family, e.g. ``rocksdb.estimate-num-keys``."""
        value = self._families[family].property_int_value(name)
        return None if value is None else int(value)


def _load_applied(iterator: rocksdict.RdictIter, group: int) -> int:
    value = _get(iterator, group_meta_key(group, _APPLIED_INDEX))
    return 0 if value is None else int(_INDEX.unpack(value)[0])


class StoreSnapshot:
    """A consistent read-only view of the whole store at one moment (items, log and metadata agree).

    For sending a replica snapshot: the applied index read here matches the exported items exactly.
    It pins RocksDB's files and memtables while it lives: drop it (and its export generators) when done,
    and before closing the store.
    """

    def __init__(self, store: Store) -> None:
        # Three iterators made back to back, with no write in between (the store is used from one thread),
        # see the same sequence number: one consistent view. Every read seeks one of them.
        self._items = store._iter(ITEMS)
        self._log = store._iter(LOG)
        self._meta = store._iter(META)
        self._chunk_bytes = store.config.default_chunk_bytes

    def get(self, key: bytes) -> bytes | None:
        return _get(self._items, key)

    def scan(
        self,
        start: bytes,
        end: bytes,
        *,
        reverse: bool = False,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        return _scan(self._items, start, end, reverse, limit, max_bytes)

    def checksum(self, start: bytes, end: bytes) -> str:
        return _checksum(self._items, start, end)

    def stats(self, start: bytes, end: bytes) -> RangeStats:
        return _stats(self._items, start, end)

    def export_range(self, start: bytes, end: bytes, chunk_bytes: int | None = None) -> Iterator[bytes]:
        return _export(self._items, start, end, chunk_bytes or self._chunk_bytes)

    def export_counted(self, start: bytes, end: bytes, chunk_bytes: int) -> Iterator[tuple[bytes, int]]:
        """``export_range``'s chunks, each with its number of records (a snapshot transfer checks both)."""
        return _export_counted(self._items, start, end, chunk_bytes)

    def log_entries(
        self, group: int, lo: int, hi: int, max_bytes: int | None = None
    ) -> list[tuple[int, bytes]]:
        return _log_entries(self._log, group, lo, hi, max_bytes)

    def load_applied_index(self, group: int) -> int:
        return _load_applied(self._meta, group)

    def load_hard_state(self, group: int) -> bytes | None:
        return _get(self._meta, group_meta_key(group, _HARD_STATE))

    def get_group_meta(self, group: int, name: bytes) -> bytes | None:
        return _get(self._meta, group_meta_key(group, name))
