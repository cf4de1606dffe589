"""Reading a secondary index (LSI or GSI): which items it holds, where each one sits in its order, what it
projects, where a page resumes. Pure: the router plans with it, the storage nodes read with it.

ddb keeps no second copy of an index. An index entry is a function of its item (its index key, and the
attributes the index projects), so a Query or Scan on an index reads the table's items and derives their
entries as it goes. Nothing can drift from the table, splits and repairs carry indexes along for free,
and a GSI's entries (which live under other partition keys than their items) need no write path across
partitions. The price is read work: an LSI Query reads its whole item collection, a GSI Query reads every
partition of the table. docs/design.md ("Secondary indexes are derived when read") has the trade.

An entry's *position* orders the index: ``entry key · item's stored key``, where the entry key is laid out
as a stored key of a pseudo-table 0 (``keycodec.item_key(0, hash(index pk), index pk, index sk)``). Both
parts are prefix-free encodings, so positions sort by index key, then by the item's primary key, as the
pages of one Query must (DynamoDB leaves the order of equal index keys open, not its stability).

* ``IndexRead.from_schema`` / ``to_wire`` / ``from_wire``: the index as a read request carries it.
* ``IndexRead.entry_key(item)``: None when the item is not in the (sparse) index.
* ``IndexRead.project(item)``: the index entry's attributes (ALL, KEYS_ONLY, INCLUDE).
* ``IndexRead.start_key(item)``: the LastEvaluatedKey of an entry: the table's and the index's keys.
* ``index_query_start`` / ``index_scan_start``: an ExclusiveStartKey checked as DynamoDB checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynamo import keycodec
from dynamo.capacity import index_write_units
from dynamo.errors import ValidationException
from dynamo.expressions import KeyCondition, Projection, top_level_names
from dynamo.hashing import partition_hash
from dynamo.items import IndexSchema, KeySchema, validate_key
from dynamo.keycodec import KeyRange
from dynamo.queries import ReadPlan, query_range, stored_key
from dynamo.size import item_size

ENTRY_TABLE_ID = 0  # entry keys are laid out as stored keys of this pseudo-table
MSG_START_KEY_INVALID = "The provided starting key is invalid"
MSG_CONSISTENT_GSI = "Consistent reads are not supported on global secondary indexes"

Item = dict[str, Any]


@dataclass(frozen=True, slots=True)
class IndexRead:
    """One index of one table, with everything a read of it needs."""

    name: str
    key: KeySchema
    table_key: KeySchema
    is_global: bool
    projection: str = "ALL"  # ALL, KEYS_ONLY or INCLUDE
    non_key: tuple[str, ...] = ()  # INCLUDE's NonKeyAttributes

    @staticmethod
    def from_schema(index: IndexSchema, table_key: KeySchema) -> IndexRead:
        return IndexRead(index.name, index.key, table_key, index.is_global, index.projection, index.non_key)

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "key": _key_wire(self.key), "table_key": _key_wire(self.table_key),
                "global": self.is_global, "projection": self.projection, "non_key": list(self.non_key)}

    @staticmethod
    def from_wire(raw: dict[str, Any]) -> IndexRead:
        return IndexRead(str(raw["name"]), _key_from_wire(raw["key"]), _key_from_wire(raw["table_key"]),
                         bool(raw["global"]), str(raw["projection"]), tuple(raw["non_key"]))

    @property
    def key_names(self) -> tuple[str, ...]:
        """The attributes of an entry's LastEvaluatedKey: the table's key, then the index's."""
        names = list(self.table_key.names)
        names.extend(name for name in self.key.names if name not in names)
        return tuple(names)

    @property
    def projects_all(self) -> bool:
        return self.projection == "ALL"

    def entry_key(self, item: Item) -> bytes | None:
        """Where the item's entry sorts by index key; None when it has no entry (an index key attribute is
        missing, or, never for items written through ddb's checks, of another type)."""
        key = self.key
        hash_av = item.get(key.hash_name)
        if hash_av is None:
            return None
        pk = hash_av.get(key.hash_type)
        if pk is None:
            return None
        hash64 = partition_hash(key.hash_type, pk)
        if key.range_name is None or key.range_type is None:
            return keycodec.item_key(ENTRY_TABLE_ID, hash64, key.hash_type, pk)
        range_av = item.get(key.range_name)
        if range_av is None:
            return None
        sk = range_av.get(key.range_type)
        if sk is None:
            return None
        return keycodec.item_key(ENTRY_TABLE_ID, hash64, key.hash_type, pk, key.range_type, sk)

    def project(self, item: Item) -> Item:
        """The attributes the index holds of ``item``."""
        if self.projection == "ALL":
            return item
        wanted = self.key_names + self.non_key
        return {name: item[name] for name in wanted if name in item}

    def start_key(self, item: Item) -> Item:
        """The LastEvaluatedKey naming ``item``'s entry."""
        return {name: item[name] for name in self.key_names}

    def entry_range(self, condition: KeyCondition) -> KeyRange:
        """The entry keys a Query's key condition selects (one index partition-key value)."""
        return query_range(ENTRY_TABLE_ID, self.key, condition)[1]


def indexes_of(spec: dict[str, Any]) -> tuple[IndexSchema, ...]:
    """The secondary indexes a table's spec (its validated CreateTable request, as updated) declares."""
    definitions = spec["AttributeDefinitions"]
    found: list[IndexSchema] = []
    for field, is_global in (("LocalSecondaryIndexes", False), ("GlobalSecondaryIndexes", True)):
        for index in spec.get(field) or ():
            projection = index.get("Projection") or {}
            found.append(IndexSchema(index["IndexName"], KeySchema.from_wire(index["KeySchema"], definitions),
                                     is_global, str(projection.get("ProjectionType", "ALL")),
                                     tuple(projection.get("NonKeyAttributes") or ())))
    return tuple(found)


def _key_wire(key: KeySchema) -> list[Any]:
    return [key.hash_name, key.hash_type, key.range_name, key.range_type]


def _key_from_wire(raw: list[Any]) -> KeySchema:
    return KeySchema(raw[0], raw[1], raw[2], raw[3])


def check_index_read(index: IndexRead, request: dict[str, Any]) -> None:
    """What a Query or Scan on an index may not ask, in DynamoDB's order."""
    if index.is_global and request.get("ConsistentRead"):
        raise ValidationException(MSG_CONSISTENT_GSI)


def check_select(index: IndexRead, request: dict[str, Any]) -> None:
    """Select ALL_ATTRIBUTES on a GSI needs the whole item in it (an LSI fetches it from the table)."""
    if index.is_global and request.get("Select") == "ALL_ATTRIBUTES" and not index.projects_all:
        raise ValidationException(
            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global "
            f"secondary index {index.name} because its projection type is not ALL")


def check_projected(index: IndexRead, plan: ReadPlan) -> None:
    """A GSI cannot fetch from the table what it does not project: a ProjectionExpression (or
    AttributesToGet) or a filter naming such an attribute is refused, in DynamoDB's words. An LSI fetches."""
    if not index.is_global or index.projects_all:
        return
    held = set(index.key_names) | set(index.non_key)
    if plan.projection is not None:
        missing = _in_order(plan.projection, held)
        if missing:
            raise ValidationException(
                f"One or more parameter values were invalid: Global secondary index {index.name} does not project "
                f"[{', '.join(missing)}]")
    if plan.filter is not None:
        missing = sorted(top_level_names(plan.filter) - held)
        if missing:
            raise ValidationException(
                f"One or more parameter values were invalid: Secondary index {index.name} does not project one or "
                f"more filter attributes: [{', '.join(missing)}]")


def _in_order(projection: Projection, held: set[str]) -> list[str]:
    """The top-level names a projection asks for that ``held`` lacks, in the order asked, once each."""
    missing: list[str] = []
    for path in projection.paths:
        name = path.elements[0]
        assert isinstance(name, str)
        if name not in held and name not in missing:
            missing.append(name)
    return missing


def fetches_item(index: IndexRead, request: dict[str, Any]) -> bool:
    """Whether the answer's items come from the table rather than from the entry: an LSI asked for
    ALL_ATTRIBUTES or for attributes by name (DynamoDB fetches them; a GSI cannot)."""
    if index.is_global or index.projects_all:
        return False
    return (request.get("Select") == "ALL_ATTRIBUTES" or request.get("ProjectionExpression") is not None
            or request.get("AttributesToGet") is not None)


def _split_start(index: IndexRead, start: Item) -> Item:
    """The ExclusiveStartKey's shape (exactly the table's and the index's key attributes) and types; its
    table part, checked as a table key."""
    names = index.key_names
    if len(start) != len(names) or any(name not in start for name in names):
        raise ValidationException(MSG_START_KEY_INVALID)
    for name, expected, _ in index.key.attributes():
        if expected not in start[name]:
            raise ValidationException(f"{MSG_START_KEY_INVALID}: The provided key element does not match the schema")
    table_part = {name: start[name] for name in index.table_key.names}
    try:
        return validate_key(table_part, index.table_key)
    except ValidationException as exc:
        raise ValidationException(f"{MSG_START_KEY_INVALID}: {exc}") from None


def index_query_start(index: IndexRead, table_id: int, condition: KeyCondition, start: Item) -> tuple[bytes, bytes]:
    """The position a Query on ``index`` resumes strictly after (in its direction), as (entry key, item's
    stored key)."""
    table_part = _split_start(index, start)
    key = index.key
    same_pk = start[key.hash_name] == condition.hash_value
    if condition.range_op is not None:
        assert key.range_name is not None
        probe = index.entry_key({**start, key.hash_name: condition.hash_value})
        assert probe is not None
        if probe not in index.entry_range(condition):
            raise ValidationException("The provided starting key does not match the range key predicate")
        if not same_pk:
            raise ValidationException("The query can return at most one row and cannot be restarted")
    elif not same_pk:
        raise ValidationException(
            "The provided starting key is outside query boundaries based on provided conditions")
    entry = index.entry_key(start)
    assert entry is not None
    return entry, stored_key(table_id, index.table_key, table_part)[1]


def index_scan_start(index: IndexRead, start: Item) -> Item:
    """The table key a Scan on ``index`` resumes after (the scan reads in the table's order)."""
    return _split_start(index, start)


def index_write_charges(indexes: tuple[IndexSchema, ...], table_key: KeySchema, old: Item | None,
                        new: Item | None) -> tuple[dict[str, float], dict[str, float]]:
    """The write units one item write consumes on each index, (local, global), as DynamoDB reports them:
    nothing for an index whose entry neither appears, goes nor changes (its key and projected attributes
    unchanged); a delete plus a put when the entry moves to another index key."""
    local: dict[str, float] = {}
    global_: dict[str, float] = {}
    for schema in indexes:
        index = IndexRead.from_schema(schema, table_key)
        old_entry = index.entry_key(old) if old is not None else None
        new_entry = index.entry_key(new) if new is not None else None
        old_view = index.project(old) if old is not None and old_entry is not None else None
        new_view = index.project(new) if new is not None and new_entry is not None else None
        if old_view == new_view:
            continue
        units = index_write_units(None if old_view is None else item_size(old_view),
                                  None if new_view is None else item_size(new_view),
                                  key_changed=old_entry is not None and new_entry is not None and old_entry != new_entry)
        (global_ if index.is_global else local)[index.name] = units
    return local, global_
