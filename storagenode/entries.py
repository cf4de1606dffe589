"""A replica's in-memory list of one GSI's entries, in index order: what lets a GSI Query read a page instead
of the whole partition.

Entries are derived from items (``dynamo.indexes``), so this list is a cache of a function of the
partition's applied state, never a second source of truth: nothing is persisted, a restart or a replaced
state (``PartitionMachine.restore``: a snapshot, a transfer) drops it, and the next GSI Query builds it
again. It is kept exact by ``PartitionData.apply``, which hands it every applied effect in the same
synchronous step that writes the effect to the store, so at every point where a read can run the list
and the store agree.

A storage node's replica receives a new state by a streamed snapshot, which empties it (and drops its
lists) in one synchronous write before any read can run, and serves no reads until the transfer is
installed. (A driver without streams, as some tests build, writes an installed snapshot after an fsync
instead; a list built in that window would disagree with the store, which ``reads._listed`` asserts.)

Building reads the partition's items in chunks, yielding to the event loop between them. An effect
applied meanwhile to a key the build has passed is applied to the list; one ahead of the build is left
to it, since the build will read the store, which already holds it. Reads use the list only once it is
built (before that they read the partition, as without it).

Bounded: at most ``MAX_ENTRIES`` entries per list (a partition with more is read in full instead: the
list is given up, and not built again until the replica restarts or its state is replaced) and
``MAX_LISTS`` lists per replica (the least recently used goes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from dynamo.indexes import IndexRead
from dynamo.items import IndexSchema
from dynamo.keycodec import KeyRange

MAX_ENTRIES = 1_000_000
MAX_LISTS = 24  # a table has at most 20 GSIs; a few more for indexes deleted and created since


class EntryList:
    """One GSI's entries on one replica: (entry key, item's stored key) pairs, sorted. Tuples compare as
    the positions ``entry key · stored key`` do, because entry keys are prefix-free."""

    def __init__(self, index: IndexRead) -> None:
        self.index = index
        self.entries = SortedList()
        self.entry_of: dict[bytes, bytes] = {}  # stored key -> its entry key
        self.ready = False
        self.cursor: bytes | None = b""  # while building: the last stored key read (None: built or given up)
        self.used_at = 0  # a counter of reads, for least-recently-used eviction

    def applied(self, key: bytes, item: dict[str, Any] | None) -> None:
        """The item at ``key`` is now ``item`` (None: deleted)."""
        if not self.ready and (self.cursor is None or key > self.cursor):
            return  # the build has not read this key yet: it will find the store's state
        old = self.entry_of.pop(key, None)
        if old is not None:
            self.entries.remove((old, key))
        if item is not None:
            entry = self.index.entry_key(item)
            if entry is not None:
                self.entry_of[key] = entry
                self.entries.add((entry, key))

    def read(self, key: bytes, item: dict[str, Any]) -> bool:
        """One item the build read; False once the list grew past its bound (the build gives up)."""
        self.cursor = key
        entry = self.index.entry_key(item)
        if entry is not None:
            self.entry_of[key] = entry
            self.entries.add((entry, key))
        return len(self.entries) <= MAX_ENTRIES

    def give_up(self) -> None:
        """Too many entries to keep: the list stays, empty and never ready, so that GSI Queries read the
        partition instead of building it again each time (until the replica restarts or its state is
        replaced)."""
        self.entries.clear()
        self.entry_of.clear()
        self.cursor = None

    def agrees(self, rows: Iterable[tuple[bytes, dict[str, Any]]]) -> bool:
        """Whether this built list holds exactly the entries of ``rows`` (the partition's items now)."""
        assert self.ready
        expected = []
        for key, item in rows:
            entry = self.index.entry_key(item)
            if entry is not None:
                expected.append((entry, key))
        expected.sort()
        return expected == list(self.entries)

    def built(self) -> None:
        self.ready = True
        self.cursor = None

    def select(self, entries: KeyRange, after: tuple[bytes, bytes] | None, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        """The (entry key, stored key) pairs whose entry key is in ``entries``, strictly after ``after`` in
        the read's direction, in that direction."""
        assert self.ready
        lo: tuple[bytes, ...] = (entries.start,)
        hi: tuple[bytes, ...] = (entries.end,)
        if after is not None:
            if reverse:
                hi = min(hi, after)
            else:
                lo = max(lo, after)
        # Exclusive bounds: a 1-tuple bound never equals an entry, and ``after`` itself is excluded.
        yield from self.entries.irange(lo, hi, inclusive=(False, False), reverse=reverse)


class EntryLists:
    """A replica's lists, by index (name and key schema: an index deleted and created again under its name
    with another key is another list)."""

    def __init__(self) -> None:
        self._lists: dict[tuple[Any, ...], EntryList] = {}
        self._reads = 0

    def __bool__(self) -> bool:
        return bool(self._lists)

    def count(self) -> int:
        return len(self._lists)

    def entries(self) -> int:
        return sum(len(one.entries) for one in self._lists.values())

    def get(self, index: IndexRead) -> tuple[EntryList, bool]:
        """The index's list and whether it is new (the caller builds it)."""
        ident = (index.name, index.key)
        self._reads += 1
        found = self._lists.get(ident)
        if found is not None:
            found.used_at = self._reads
            return found, False
        if len(self._lists) >= MAX_LISTS:
            oldest = min(self._lists, key=lambda one: self._lists[one].used_at)
            del self._lists[oldest]
        made = self._lists[ident] = EntryList(index)
        made.used_at = self._reads
        return made, True

    def built_lists(self) -> list[EntryList]:
        return [one for one in self._lists.values() if one.ready]

    def holds(self, listed: EntryList) -> bool:
        return self._lists.get((listed.index.name, listed.index.key)) is listed

    def keep(self, indexes: Iterable[IndexSchema]) -> None:
        """Drop the lists of indexes the table no longer has (UpdateTable deleted them): a list is kept
        exact at every write, which is work for nothing once no Query can read it."""
        wanted = {(index.name, index.key) for index in indexes if index.is_global}
        for ident in [ident for ident in self._lists if ident not in wanted]:
            del self._lists[ident]

    def drop(self, index: IndexRead) -> None:
        self._lists.pop((index.name, index.key), None)

    def clear(self) -> None:
        self._lists.clear()

    def applied(self, key: bytes, item: dict[str, Any] | None) -> None:
        for one in self._lists.values():
            one.applied(key, item)
