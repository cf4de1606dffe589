"""dynamo.queries: Query key ranges and paging by ExclusiveStartKey, Scan start keys, what each item read
becomes (filter, projection, COUNT), and DynamoDB's errors."""

from __future__ import annotations

import bisect
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo.errors import ValidationException
from dynamo.hashing import HASH_SPACE, segment_range
from dynamo.items import KeySchema
from dynamo.queries import (
    MSG_START_KEY_ONE_ROW,
    MSG_START_KEY_OUTSIDE,
    MSG_START_KEY_PREDICATE,
    MSG_START_KEY_SCHEMA,
    ReadPlan,
    last_evaluated_key,
    parse_batch_get,
    parse_query,
    parse_scan,
    query_range,
    query_start,
    scan_range,
    scan_start,
    stored_key,
)

TABLE_ID = 9
RANGE_KEY = KeySchema("pk", "S", "sk", "N")
HASH_KEY = KeySchema("pk", "S")


def query(expression: str, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"TableName": "t", "KeyConditionExpression": expression, "ExpressionAttributeValues": values, **extra}


# ---- paging a Query over an in-memory partition ---------------------------------------------------------

CONDITIONS = {
    "none": ("pk = :p", lambda sk, a, b: True),
    "eq": ("pk = :p AND sk = :a", lambda sk, a, b: sk == a),
    "lt": ("pk = :p AND sk < :a", lambda sk, a, b: sk < a),
    "le": ("pk = :p AND sk <= :a", lambda sk, a, b: sk <= a),
    "gt": ("pk = :p AND sk > :a", lambda sk, a, b: sk > a),
    "ge": ("pk = :p AND :a <= sk", lambda sk, a, b: sk >= a),
    "between": ("pk = :p AND sk BETWEEN :a AND :b", lambda sk, a, b: a <= sk <= b),
}
numbers = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    sks=st.sets(numbers, max_size=40),
    other=st.sets(numbers, max_size=10),
    kind=st.sampled_from(sorted(CONDITIONS)),
    bounds=st.tuples(numbers, numbers).map(sorted),
    limit=st.integers(1, 7),
    forward=st.booleans(),
)
def test_paging_a_query_yields_each_matching_item_once_in_order(
        sks: set[Decimal], other: set[Decimal], kind: str, bounds: list[Decimal], limit: int, forward: bool) -> None:
    store = sorted([stored_key(TABLE_ID, RANGE_KEY, {"pk": {"S": "a"}, "sk": {"N": str(sk)}})[1] for sk in sks]
                   + [stored_key(TABLE_ID, RANGE_KEY, {"pk": {"S": "b"}, "sk": {"N": str(sk)}})[1] for sk in other])
    expression, holds = CONDITIONS[kind]
    low, high = bounds
    values = {":p": {"S": "a"}, ":a": {"N": str(low)}, ":b": {"N": str(high)}}
    used = {k: v for k, v in values.items() if k in expression}
    condition, _ = parse_query(query(expression, used), RANGE_KEY)
    _, full = query_range(TABLE_ID, RANGE_KEY, condition)
    seen: list[Decimal] = []
    start: dict[str, Any] | None = None
    for _ in range(100):
        rng = full if start is None else query_start(TABLE_ID, RANGE_KEY, condition, full, start, not forward)
        rows = store[bisect.bisect_left(store, rng.start):bisect.bisect_left(store, rng.end)]
        page = (rows if forward else rows[::-1])[:limit]
        seen += [Decimal(last_evaluated_key(k, RANGE_KEY)["sk"]["N"]) for k in page]
        if len(page) < limit:
            break
        start = last_evaluated_key(page[-1], RANGE_KEY)
    else:
        raise AssertionError("paging did not end")
    expected = sorted(sk for sk in sks if holds(sk, low, high))
    assert seen == (expected if forward else expected[::-1])


def test_stored_keys_decode_back_to_the_primary_key() -> None:
    key = {"pk": {"S": "é\x00x"}, "sk": {"N": "-1.5"}}
    hash64, stored = stored_key(TABLE_ID, RANGE_KEY, key)
    assert last_evaluated_key(stored, RANGE_KEY) == key
    assert last_evaluated_key(stored_key(TABLE_ID, HASH_KEY, {"pk": {"S": "x"}})[1], HASH_KEY) == {"pk": {"S": "x"}}
    assert 0 <= hash64 < HASH_SPACE


# ---- ExclusiveStartKey --------------------------------------------------------------------------------


def test_query_start_key_must_fit_the_schema_and_the_key_condition() -> None:
    condition, _ = parse_query(query("pk = :p AND sk > :a", {":p": {"S": "a"}, ":a": {"N": "5"}}), RANGE_KEY)
    _, rng = query_range(TABLE_ID, RANGE_KEY, condition)
    cases = [
        ({"pk": {"S": "a"}}, MSG_START_KEY_SCHEMA),
        ({"pk": {"S": "a"}, "sk": {"S": "5"}}, MSG_START_KEY_SCHEMA),
        ({"pk": {"S": "b"}, "sk": {"N": "5"}}, MSG_START_KEY_PREDICATE),  # the sort-key check comes first
        ({"pk": {"S": "a"}, "sk": {"N": "5"}}, MSG_START_KEY_PREDICATE),  # outside "sk > 5"
        ({"pk": {"S": "b"}, "sk": {"N": "7"}}, MSG_START_KEY_ONE_ROW),  # as DynamoDB words it
    ]
    for start, message in cases:
        with pytest.raises(ValidationException) as failed:
            query_start(TABLE_ID, RANGE_KEY, condition, rng, start, False)
        assert str(failed.value) == message, start
    resumed = query_start(TABLE_ID, RANGE_KEY, condition, rng, {"pk": {"S": "a"}, "sk": {"N": "7"}}, False)
    assert resumed.start > stored_key(TABLE_ID, RANGE_KEY, {"pk": {"S": "a"}, "sk": {"N": "7"}})[1]
    assert resumed.end == rng.end


def test_a_query_without_sort_key_condition_cannot_start_in_another_collection() -> None:
    condition, _ = parse_query(query("pk = :p", {":p": {"S": "a"}}), HASH_KEY)
    _, rng = query_range(TABLE_ID, HASH_KEY, condition)
    with pytest.raises(ValidationException, match=MSG_START_KEY_OUTSIDE):
        query_start(TABLE_ID, HASH_KEY, condition, rng, {"pk": {"S": "b"}}, False)
    ranged, _ = parse_query(query("pk = :p", {":p": {"S": "a"}}), RANGE_KEY)
    _, whole = query_range(TABLE_ID, RANGE_KEY, ranged)
    with pytest.raises(ValidationException, match=MSG_START_KEY_OUTSIDE):
        query_start(TABLE_ID, RANGE_KEY, ranged, whole, {"pk": {"S": "b"}, "sk": {"N": "1"}}, False)
    resumed = query_start(TABLE_ID, HASH_KEY, condition, rng, {"pk": {"S": "a"}}, False)
    assert stored_key(TABLE_ID, HASH_KEY, {"pk": {"S": "a"}})[1] not in resumed  # the one row is behind


def test_scan_start_key_must_lie_in_the_segment() -> None:
    key = {"pk": {"S": "a"}, "sk": {"N": "1"}}
    hash64, stored = stored_key(TABLE_ID, RANGE_KEY, key)
    assert scan_start(TABLE_ID, RANGE_KEY, key) == (hash64, stored)
    total = 16
    inside = next(s for s in range(total) if segment_range(s, total)[0] <= hash64 < segment_range(s, total)[1])
    assert scan_range(inside, total) == segment_range(inside, total) and scan_range(None, None) == (0, HASH_SPACE)
    assert scan_start(TABLE_ID, RANGE_KEY, key, inside, total)[1] == stored
    other = (inside + 1) % total
    with pytest.raises(ValidationException) as failed:
        scan_start(TABLE_ID, RANGE_KEY, key, other, total)
    assert str(failed.value) == (
        "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with "
        f"correct Segment. TotalSegments: {total} Segment: {other}")
    with pytest.raises(ValidationException, match=MSG_START_KEY_SCHEMA):
        scan_start(TABLE_ID, RANGE_KEY, {"pk": {"S": "a"}})


# ---- what each item becomes ---------------------------------------------------------------------------

ITEM = {"pk": {"S": "a"}, "sk": {"N": "1"}, "n": {"N": "3"}, "m": {"M": {"x": {"S": "y"}, "z": {"N": "1"}}}}
RAW = orjson.dumps(ITEM)


def test_read_plans() -> None:
    assert ReadPlan().apply(RAW) is RAW  # verbatim: the stored bytes, not re-encoded
    assert ReadPlan(count_only=True).apply(RAW) == b""
    keep = parse_scan({"FilterExpression": "n > :v", "ExpressionAttributeValues": {":v": {"N": "2"}}})
    drop = parse_scan({"FilterExpression": "n > :v", "ExpressionAttributeValues": {":v": {"N": "3"}}})
    assert keep.apply(RAW) == RAW and drop.apply(RAW) is None
    projected = parse_scan({"ProjectionExpression": "sk, m.x"})
    assert orjson.loads(projected.apply(RAW) or b"") == {"sk": {"N": "1"}, "m": {"M": {"x": {"S": "y"}}}}
    legacy = parse_scan({"ScanFilter": {"n": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "3"}]}},
                         "AttributesToGet": ["pk"], "Select": "SPECIFIC_ATTRIBUTES"})
    assert orjson.loads(legacy.apply(RAW) or b"") == {"pk": {"S": "a"}}
    counted = parse_scan({"Select": "COUNT", "FilterExpression": "attribute_exists(m)"})
    assert counted.apply(RAW) == b""
    batch = parse_batch_get({"Keys": [], "ProjectionExpression": "#n", "ExpressionAttributeNames": {"#n": "n"}})
    assert orjson.loads(batch.apply(RAW) or b"") == {"n": {"N": "3"}}


def test_query_errors() -> None:
    cases = [
        (query("pk = :p", {":p": {"S": "a"}}, FilterExpression="sk > :p"),
         "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk"),
        (query("pk = :p", {":p": {"S": "a"}, ":n": {"N": "1"}}, FilterExpression="attribute_exists(x) AND pk[1] = :n"),
         "Filter Expression can only contain non-primary key attributes: Primary key attribute: pk"),
        ({"TableName": "t", "KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}},
          "QueryFilter": {"pk": {"ComparisonOperator": "NOT_NULL"}}},
         "QueryFilter can only contain non-primary key attributes: Primary key attribute: pk"),
        (query("pk = :p", {":p": {"S": "a"}, ":unused": {"S": "b"}}), "unused"),
        (query("pk = :p", {":p": {"S": ""}}), "cannot contain an empty string value"),
        (query("pk = :p", {":p": {"N": "1"}}), "Condition parameter type does not match schema type"),
        (query("sk = :p", {":p": {"N": "1"}}), "Query condition missed key schema element: pk"),
    ]
    for request, message in cases:
        with pytest.raises(ValidationException) as failed:
            parse_query(request, RANGE_KEY)
        assert message in str(failed.value), (request, str(failed.value))
