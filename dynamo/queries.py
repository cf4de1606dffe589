"""Query, Scan and BatchGetItem reads: parsing their expressions once, the key ranges they read, and what
each item read becomes in the answer. Pure: the router and the storage nodes both use it.

* ``parse_query(request, key) -> (KeyCondition, ReadPlan)``, ``parse_scan(request) -> ReadPlan``,
  ``parse_batch_get(entry) -> ReadPlan``: every expression of the request parsed in one context, so unused
  placeholders and filters on key attributes get DynamoDB's errors.
* ``query_range(table_id, key, condition)``: the stored-key range a Query reads (one partition-key value);
  ``scan_range(segment, total_segments)``: the hash range a Scan reads;
  ``query_start(...)`` / ``scan_start(...)``: where an ExclusiveStartKey resumes.
* ``ReadPlan.apply(raw)``: one stored item through the filter and the projection, as answer bytes.
* ``last_evaluated_key(stored_key, key)``: the primary key a stored key encodes, for LastEvaluatedKey.

Page budgets: a page stops after ``Limit`` items or once the items read reach ``MAX_PAGE_BYTES`` (counted
before the filter, as DynamoDB counts them). Sizes are the stored bytes, which are a little larger than
DynamoDB's item size, so a page may end a little earlier than DynamoDB's would: a valid page all the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from dynamo import keycodec
from dynamo.errors import ValidationException
from dynamo.expressions import (
    Condition,
    ExpressionContext,
    KeyCondition,
    Projection,
    attributes_to_get_projection,
    evaluate,
    legacy_filter_to_condition,
    legacy_key_conditions,
    parse_condition,
    parse_key_condition,
    parse_projection,
    project,
    top_level_names,
)
from dynamo.hashing import HASH_SPACE, partition_hash, segment_range
from dynamo.items import KeySchema, validate_key
from dynamo.keycodec import KeyRange

MAX_PAGE_BYTES = 1024 * 1024  # a Query or Scan page reads at most 1 MB (before the filter)
MAX_BATCH_GET_RESPONSE_BYTES = 16 * 1024 * 1024

MSG_START_KEY_SCHEMA = "The provided starting key is invalid: The provided key element does not match the schema"
MSG_START_KEY_PREDICATE = "The provided starting key does not match the range key predicate"
MSG_START_KEY_ONE_ROW = "The query can return at most one row and cannot be restarted"
MSG_START_KEY_OUTSIDE = "The provided starting key is outside query boundaries based on provided conditions"
MSG_START_KEY_SEGMENT = ("The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey "
                         "with correct Segment.")


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """What happens to each item a read returns: the filter, the projection, or only counting."""

    filter: Condition | None = None
    projection: Projection | None = None
    count_only: bool = False

    @property
    def verbatim(self) -> bool:
        """Items go out as stored: no decoding at all."""
        return self.filter is None and self.projection is None

    def apply(self, raw: bytes) -> bytes | None:
        """The item's answer bytes, or None if the filter drops it (``b""`` when only counting)."""
        if self.verbatim:
            return b"" if self.count_only else raw
        item: dict[str, Any] = orjson.loads(raw)
        if self.filter is not None and not evaluate(self.filter, item):
            return None
        if self.count_only:
            return b""
        if self.projection is not None:
            return orjson.dumps(project(item, self.projection))
        return raw


def _projection(request: dict[str, Any], ctx: ExpressionContext) -> Projection | None:
    if request.get("ProjectionExpression") is not None:
        return parse_projection(request["ProjectionExpression"], ctx)
    if request.get("AttributesToGet") is not None:
        return attributes_to_get_projection(request["AttributesToGet"])
    return None


def _filter(request: dict[str, Any], ctx: ExpressionContext, legacy_name: str, where: str) -> Condition | None:
    if request.get("FilterExpression") is not None:
        return parse_condition(request["FilterExpression"], ctx, kind="FilterExpression")
    if request.get(legacy_name):
        return legacy_filter_to_condition(request[legacy_name], request.get("ConditionalOperator"), where=where)
    return None


def parse_query(request: dict[str, Any], key: KeySchema) -> tuple[KeyCondition, ReadPlan]:
    """Parse a (validated) Query request against the table's key schema."""
    ctx = ExpressionContext(request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues"))
    if request.get("KeyConditionExpression") is not None:
        condition = parse_key_condition(request["KeyConditionExpression"], ctx, key.hash_name, key.range_name,
                                        hash_type=key.hash_type, range_type=key.range_type)
    else:
        condition = legacy_key_conditions(request.get("KeyConditions") or {}, key.hash_name, key.range_name,
                                          hash_type=key.hash_type, range_type=key.range_type)
    filter_ = _filter(request, ctx, "QueryFilter", "queryFilter")
    if filter_ is not None:
        keys = top_level_names(filter_) & set(key.names)
        if keys:
            what = "Filter Expression" if request.get("FilterExpression") is not None else "QueryFilter"
            raise ValidationException(
                f"{what} can only contain non-primary key attributes: Primary key attribute: {sorted(keys)[0]}")
    projection = _projection(request, ctx)
    ctx.check_all_used()
    validate_key({key.hash_name: condition.hash_value}, KeySchema(key.hash_name, key.hash_type))
    return condition, ReadPlan(filter_, projection, request.get("Select") == "COUNT")


def parse_scan(request: dict[str, Any]) -> ReadPlan:
    ctx = ExpressionContext(request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues"))
    filter_ = _filter(request, ctx, "ScanFilter", "scanFilter")
    projection = _projection(request, ctx)
    ctx.check_all_used()
    return ReadPlan(filter_, projection, request.get("Select") == "COUNT")


def parse_batch_get(entry: dict[str, Any]) -> ReadPlan:
    """One table's KeysAndAttributes of a BatchGetItem."""
    ctx = ExpressionContext(entry.get("ExpressionAttributeNames"), None)
    projection = _projection(entry, ctx)
    ctx.check_all_used()
    return ReadPlan(None, projection, False)


# ---- key ranges ------------------------------------------------------------------------------------------


def _value(av: dict[str, Any]) -> Any:
    return next(iter(av.values()))


def query_range(table_id: int, key: KeySchema, condition: KeyCondition) -> tuple[int, KeyRange]:
    """(partition hash, stored-key range) of the item collection a Query reads."""
    pk = _value(condition.hash_value)
    hash64 = partition_hash(key.hash_type, pk)
    values = tuple(_value(v) for v in condition.range_values)
    rng = keycodec.sort_key_range(table_id, hash64, (key.hash_type, pk), key.range_type, condition.range_op, values)
    return hash64, rng


def stored_key(table_id: int, key: KeySchema, item_key: dict[str, Any]) -> tuple[int, bytes]:
    """(partition hash, stored key) of a validated primary key."""
    pk = _value(item_key[key.hash_name])
    hash64 = partition_hash(key.hash_type, pk)
    if key.range_name is None:
        return hash64, keycodec.item_key(table_id, hash64, key.hash_type, pk)
    sk = _value(item_key[key.range_name])
    return hash64, keycodec.item_key(table_id, hash64, key.hash_type, pk, key.range_type, sk)


def _start_key(start: dict[str, Any], key: KeySchema) -> dict[str, Any]:
    try:
        return validate_key(start, key)
    except ValidationException as exc:
        if str(exc) == "The provided key element does not match the schema":
            raise ValidationException(MSG_START_KEY_SCHEMA) from None
        raise


def query_start(table_id: int, key: KeySchema, condition: KeyCondition, rng: KeyRange, start: dict[str, Any],
                reverse: bool) -> KeyRange:
    """What is left of ``rng`` after the ExclusiveStartKey ``start`` (strictly after it, in read order)."""
    start = _start_key(start, key)
    same_pk = start[key.hash_name] == condition.hash_value
    # DynamoDB's order of checks (dynalite's query tests, pinned against the service): a sort-key condition
    # the start key breaks first, then a start key in another item collection.
    if condition.range_op is not None:
        _, at = stored_key(table_id, key, {**start, key.hash_name: condition.hash_value})
        if at not in rng:
            raise ValidationException(MSG_START_KEY_PREDICATE)
        if not same_pk:
            raise ValidationException(MSG_START_KEY_ONE_ROW)
    elif not same_pk:
        raise ValidationException(MSG_START_KEY_OUTSIDE)
    _, at = stored_key(table_id, key, start)
    return rng.resume(at, reverse)


def scan_range(segment: int | None, total_segments: int | None) -> tuple[int, int]:
    """The hash range ``[lo, hi)`` a Scan reads: its segment's slice, or the whole hash space."""
    if total_segments is None or segment is None:
        return 0, HASH_SPACE
    return segment_range(segment, total_segments)


def scan_start(table_id: int, key: KeySchema, start: dict[str, Any], segment: int | None = None,
               total_segments: int | None = None) -> tuple[int, bytes]:
    """(hash, stored key) a Scan resumes strictly after; the key must lie in the scan's segment."""
    start = _start_key(start, key)
    hash64, at = stored_key(table_id, key, start)
    lo, hi = scan_range(segment, total_segments)
    if not lo <= hash64 < hi:
        raise ValidationException(
            f"{MSG_START_KEY_SEGMENT} TotalSegments: {total_segments} Segment: {segment}")
    return hash64, at


def last_evaluated_key(stored: bytes, key: KeySchema) -> dict[str, Any]:
    """The primary key (wire form) a stored key encodes."""
    decoded = keycodec.decode_item_key(stored, key.hash_type, key.range_type)
    out: dict[str, Any] = {key.hash_name: {key.hash_type: decoded.pk}}
    if key.range_name is not None and key.range_type is not None:
        out[key.range_name] = {key.range_type: decoded.sk}
    return out
