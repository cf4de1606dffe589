"""dynamo.indexes: which items an index holds, the order of its entries, its projections and its start keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo import keycodec
from dynamo.errors import ValidationException
from dynamo.expressions import ExpressionContext, parse_key_condition
from dynamo.hashing import partition_hash
from dynamo.indexes import (
    IndexRead,
    check_index_read,
    check_projected,
    check_select,
    fetches_item,
    index_query_start,
)
from dynamo.items import IndexSchema, KeySchema

TABLE = KeySchema("pk", "S", "sk", "N")
GSI = IndexRead("by_group", KeySchema("grp", "S", "score", "N"), TABLE, True, "INCLUDE", ("note",))
LSI = IndexRead("by_score", KeySchema("pk", "S", "score", "N"), TABLE, False, "KEYS_ONLY")


def item(pk: str, sk: int, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"pk": {"S": pk}, "sk": {"N": str(sk)}}
    for name, value in more.items():
        out[name] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    return out


def stored(one: dict[str, Any]) -> bytes:
    pk = one["pk"]["S"]
    return keycodec.item_key(5, partition_hash("S", pk), "S", pk, "N", one["sk"]["N"])


def condition(index: IndexRead, text: str, values: dict[str, Any]) -> Any:
    key = index.key
    return parse_key_condition(text, ExpressionContext(None, values), key.hash_name, key.range_name,
                               hash_type=key.hash_type, range_type=key.range_type)


def test_wire_round_trip_and_schema() -> None:
    assert IndexRead.from_wire(GSI.to_wire()) == GSI
    schema = IndexSchema("by_group", GSI.key, True, "INCLUDE", ("note",))
    assert IndexRead.from_schema(schema, TABLE) == GSI
    assert GSI.key_names == ("pk", "sk", "grp", "score")
    assert LSI.key_names == ("pk", "sk", "score")


def test_sparse_membership() -> None:
    assert GSI.entry_key(item("a", 1, grp="g", score=3)) is not None
    assert GSI.entry_key(item("a", 1, grp="g")) is None  # no range attribute: not in the index
    assert GSI.entry_key(item("a", 1, score=3)) is None
    assert GSI.entry_key({**item("a", 1, score=3), "grp": {"N": "1"}}) is None  # another type: not a member


def test_projections() -> None:
    full = item("a", 1, grp="g", score=3, note="n", other="o")
    assert GSI.project(full) == item("a", 1, grp="g", score=3, note="n")
    assert LSI.project(full) == item("a", 1, score=3)
    everything = IndexRead("all", GSI.key, TABLE, True)
    assert everything.project(full) is full
    assert GSI.start_key(full) == item("a", 1, grp="g", score=3)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=4), st.integers(-50, 50), st.integers(-5, 5)),
                min_size=2, max_size=30, unique_by=lambda t: (t[0], t[1])))
def test_positions_sort_by_index_key_then_table_key(rows: list[tuple[str, int, int]]) -> None:
    items = [item(pk, sk, grp="g", score=score) for pk, sk, score in rows]
    positions = {}
    for one in items:
        entry = GSI.entry_key(one)
        assert entry is not None
        positions[(one["pk"]["S"], one["sk"]["N"])] = entry + stored(one)
    by_position = sorted(items, key=lambda one: positions[(one["pk"]["S"], one["sk"]["N"])])
    by_value = sorted(items, key=lambda one: (Decimal(one["score"]["N"]), stored(one)))
    assert by_position == by_value


def test_entry_range_selects_the_key_condition() -> None:
    cond = condition(GSI, "grp = :g AND score BETWEEN :a AND :b", {":g": {"S": "g"}, ":a": {"N": "2"}, ":b": {"N": "4"}})
    entries = GSI.entry_range(cond)
    inside = [s for s in range(-3, 9) if GSI.entry_key(item("x", 1, grp="g", score=s)) in entries]
    assert inside == [2, 3, 4]
    assert GSI.entry_key(item("x", 1, grp="h", score=3)) not in entries


def test_query_start_resumes_after_the_entry() -> None:
    cond = condition(GSI, "grp = :g AND score > :s", {":g": {"S": "g"}, ":s": {"N": "1"}})
    start = item("a", 1, grp="g", score=3)
    position = index_query_start(GSI, 5, cond, start)
    entry = GSI.entry_key(start)
    assert entry is not None
    assert position == (entry, stored(start))


@pytest.mark.parametrize("start, message", [
    (item("a", 1, grp="g"), "The provided starting key is invalid"),
    ({**item("a", 1, grp="g", score=3), "x": {"S": "1"}}, "The provided starting key is invalid"),
    ({**item("a", 1, score=3), "grp": {"N": "1"}},
     "The provided starting key is invalid: The provided key element does not match the schema"),
    ({**item("a", 1, grp="g", score=3), "sk": {"S": "1"}},
     "The provided starting key is invalid: The provided key element does not match the schema"),
    (item("a", 1, grp="g", score=0), "The provided starting key does not match the range key predicate"),
    (item("a", 1, grp="h", score=3), "The query can return at most one row and cannot be restarted"),
])
def test_query_start_errors(start: dict[str, Any], message: str) -> None:
    cond = condition(GSI, "grp = :g AND score > :s", {":g": {"S": "g"}, ":s": {"N": "1"}})
    with pytest.raises(ValidationException) as caught:
        index_query_start(GSI, 5, cond, start)
    assert caught.value.message == message


def test_start_outside_the_partition_key_without_a_range_condition() -> None:
    cond = condition(GSI, "grp = :g", {":g": {"S": "g"}})
    with pytest.raises(ValidationException, match="outside query boundaries"):
        index_query_start(GSI, 5, cond, item("a", 1, grp="h", score=3))


def test_what_an_index_read_may_not_ask() -> None:
    with pytest.raises(ValidationException, match="Consistent reads are not supported"):
        check_index_read(GSI, {"ConsistentRead": True})
    check_index_read(LSI, {"ConsistentRead": True})
    with pytest.raises(ValidationException, match="Select type ALL_ATTRIBUTES is not supported for global"):
        check_select(GSI, {"Select": "ALL_ATTRIBUTES"})
    check_select(LSI, {"Select": "ALL_ATTRIBUTES"})
    assert fetches_item(LSI, {"Select": "ALL_ATTRIBUTES"})
    assert fetches_item(LSI, {"ProjectionExpression": "other"})
    assert not fetches_item(LSI, {})
    assert not fetches_item(GSI, {"ProjectionExpression": "other"})


def test_a_gsi_refuses_what_it_does_not_project() -> None:
    from dynamo.queries import parse_scan

    def plan(**request: Any) -> Any:
        return parse_scan(request)

    check_projected(GSI, plan(ProjectionExpression="pk, note, grp"))  # all projected (INCLUDE note)
    with pytest.raises(ValidationException, match=r"Global secondary index by_group does not project \[a, b\]$"):
        check_projected(GSI, plan(ProjectionExpression="a, note, b.c, b.d"))
    with pytest.raises(ValidationException, match=r"does not project one or more filter attributes: \[x, y\]$"):
        check_projected(GSI, plan(FilterExpression="y = :v AND x = :v AND note = :v",
                                  ExpressionAttributeValues={":v": {"S": "1"}}))
    check_projected(GSI, plan(AttributesToGet=["pk", "note"]))
    check_projected(LSI, plan(ProjectionExpression="anything"))  # an LSI fetches it
    check_projected(IndexRead("all", GSI.key, TABLE, True), plan(ProjectionExpression="anything"))


def test_index_write_charges() -> None:
    from dynamo.indexes import index_write_charges

    schemas = (IndexSchema("by_group", GSI.key, True, "INCLUDE", ("note",)),
               IndexSchema("by_score", LSI.key, False, "KEYS_ONLY"))
    new = item("a", 1, grp="g", score=3, note="n", other="o")
    assert index_write_charges(schemas, TABLE, None, new) == ({"by_score": 1.0}, {"by_group": 1.0})
    # "other" is projected by neither: no index write at all.
    assert index_write_charges(schemas, TABLE, new, {**new, "other": {"S": "p"}}) == ({}, {})
    # "note" is in the GSI's projection only.
    assert index_write_charges(schemas, TABLE, new, {**new, "note": {"S": "m"}}) == ({}, {"by_group": 1.0})
    # The index keys move: a delete and a put on each index.
    assert index_write_charges(schemas, TABLE, new, {**new, "score": {"N": "4"}}) == (
        {"by_score": 2.0}, {"by_group": 2.0})
    # The item leaves the GSI (no grp) and is deleted from both by a DeleteItem.
    assert index_write_charges(schemas, TABLE, new, item("a", 1, score=3)) == ({}, {"by_group": 1.0})
    assert index_write_charges(schemas, TABLE, new, None) == ({"by_score": 1.0}, {"by_group": 1.0})
