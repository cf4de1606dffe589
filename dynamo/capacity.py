"""Capacity units as DynamoDB bills them, and the ConsumedCapacity structures responses carry.

* A read unit is one strongly consistent read of up to 4 KB; an eventually consistent read costs half; a
  transactional read costs double. A write unit is one write of up to 1 KB; transactional writes double.
* Sizes round up per operation, with a minimum of one unit (reading or deleting a missing item still
  costs one): GetItem rounds its item; Query and Scan add up the sizes of every item they read (before any
  filter) and round the total once; BatchGetItem and BatchWriteItem bill each item as its own request.
* PutItem, UpdateItem and DeleteItem bill the larger of the item before and after the write.
* A secondary index is billed for each entry it writes: a new entry, a removed one, or both when the
  write moves the entry to a new index key.

Sizes are ``dynamo.size.item_size`` of the items (for an index, of the projected index entry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024


class ReturnConsumedCapacity(Enum):
    """What a request asked to be told about the capacity it consumed."""

    TOTAL = "TOTAL"
    INDEXES = "INDEXES"
    NONE = "NONE"


def _blocks(size_bytes: int, unit_bytes: int) -> int:
    assert size_bytes >= 0, size_bytes
    return max(1, -(-size_bytes // unit_bytes))


def read_units(size_bytes: int, *, consistent: bool, transactional: bool = False) -> float:
    """Read units for reading ``size_bytes`` in one operation (rounded up to 4 KB, at least one)."""
    blocks = _blocks(size_bytes, READ_UNIT_BYTES)
    if transactional:
        return 2.0 * blocks
    return float(blocks) if consistent else blocks / 2


def write_units(size_bytes: int, *, transactional: bool = False) -> float:
    """Write units for writing ``size_bytes`` in one operation (rounded up to 1 KB, at least one)."""
    return float(_blocks(size_bytes, WRITE_UNIT_BYTES) * (2 if transactional else 1))


def get_item_units(item_size: int | None, *, consistent: bool) -> float:
    """GetItem: the item's size rounded up to 4 KB; a missing item costs the minimum."""
    return read_units(item_size or 0, consistent=consistent)


def query_units(item_sizes: Iterable[int], *, consistent: bool) -> float:
    """Query and Scan: the sizes of all items read (before filtering) summed, then rounded up once."""
    return read_units(sum(item_sizes), consistent=consistent)


scan_units = query_units


def batch_get_units(item_sizes: Iterable[int | None], *, consistent: bool) -> float:
    """BatchGetItem (one table): each item rounded up to 4 KB on its own, then summed."""
    return sum(read_units(size or 0, consistent=consistent) for size in item_sizes)


def write_item_units(old_size: int | None, new_size: int | None, *, transactional: bool = False) -> float:
    """PutItem, UpdateItem, DeleteItem: the larger of the item before and after, rounded up to 1 KB."""
    return write_units(max(old_size or 0, new_size or 0), transactional=transactional)


def batch_write_units(writes: Iterable[tuple[int | None, int | None]]) -> float:
    """BatchWriteItem (one table): each (old size, new size) write billed on its own, then summed."""
    return sum(write_item_units(old, new) for old, new in writes)


def transact_get_units(item_sizes: Iterable[int | None]) -> float:
    """TransactGetItems (one table): each item a transactional read."""
    return sum(read_units(size or 0, consistent=True, transactional=True) for size in item_sizes)


def index_write_units(
    old_entry_size: int | None, new_entry_size: int | None, *, key_changed: bool, transactional: bool = False
) -> float:
    """Write units an index consumes for one base-table write.

    ``old_entry_size`` / ``new_entry_size``: size of the index entry (the projected item) before and after,
    None when the item is not (or no longer) in the index. ``key_changed``: the entry moved to another
    index key, which is a delete plus a put.
    """
    if old_entry_size is None and new_entry_size is None:
        return 0.0
    if old_entry_size is None or new_entry_size is None:
        return write_item_units(old_entry_size, new_entry_size, transactional=transactional)
    if key_changed:
        return write_units(old_entry_size, transactional=transactional) + write_units(
            new_entry_size, transactional=transactional
        )
    return write_item_units(old_entry_size, new_entry_size, transactional=transactional)


@dataclass(frozen=True, slots=True)
class ConsumedCapacity:
    """Capacity one request consumed on one table and its indexes."""

    table_name: str
    table_units: float = 0.0
    local_indexes: Mapping[str, float] = field(default_factory=dict)
    global_indexes: Mapping[str, float] = field(default_factory=dict)

    @property
    def total_units(self) -> float:
        return self.table_units + sum(self.local_indexes.values()) + sum(self.global_indexes.values())

    def plus(self, other: ConsumedCapacity) -> ConsumedCapacity:
        """Both consumptions together (e.g. every item of a batch on this table)."""
        assert other.table_name == self.table_name, (self.table_name, other.table_name)
        return ConsumedCapacity(
            self.table_name,
            self.table_units + other.table_units,
            _sum_maps(self.local_indexes, other.local_indexes),
            _sum_maps(self.global_indexes, other.global_indexes),
        )

    def to_json(self, mode: ReturnConsumedCapacity) -> dict[str, Any] | None:
        """The ``ConsumedCapacity`` response member for ``mode`` (None for NONE: the member is left out)."""
        if mode is ReturnConsumedCapacity.NONE:
            return None
        body: dict[str, Any] = {"TableName": self.table_name, "CapacityUnits": self.total_units}
        if mode is ReturnConsumedCapacity.INDEXES:
            body["Table"] = {"CapacityUnits": self.table_units}
            if self.local_indexes:
                body["LocalSecondaryIndexes"] = {
                    name: {"CapacityUnits": units} for name, units in self.local_indexes.items()
                }
            if self.global_indexes:
                body["GlobalSecondaryIndexes"] = {
                    name: {"CapacityUnits": units} for name, units in self.global_indexes.items()
                }
        return body


def _sum_maps(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    out = dict(a)
    for name, units in b.items():
        out[name] = out.get(name, 0.0) + units
    return out


def consumed_capacity_list(
    consumed: Iterable[ConsumedCapacity], mode: ReturnConsumedCapacity
) -> list[dict[str, Any]] | None:
    """The list form batch and transaction responses carry: one entry per table, in first-seen order."""
    if mode is ReturnConsumedCapacity.NONE:
        return None
    per_table: dict[str, ConsumedCapacity] = {}
    for one in consumed:
        seen = per_table.get(one.table_name)
        per_table[one.table_name] = one if seen is None else seen.plus(one)
    out: list[dict[str, Any]] = []
    for one in per_table.values():
        body = one.to_json(mode)
        assert body is not None
        out.append(body)
    return out
