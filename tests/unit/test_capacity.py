"""Capacity units as DynamoDB bills them: the cases ScyllaDB's test_returnconsumedcapacity.py and dynalite's
putItem tests check against the service, plus each rule at its rounding boundary."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo import capacity
from dynamo.capacity import ConsumedCapacity, ReturnConsumedCapacity
from dynamo.size import item_size

KB = 1024


@pytest.mark.parametrize(
    ("size", "strong", "eventual", "transactional"),
    [
        (0, 1.0, 0.5, 2.0),
        (1, 1.0, 0.5, 2.0),
        (4 * KB, 1.0, 0.5, 2.0),
        (4 * KB + 1, 2.0, 1.0, 4.0),
        (8 * KB, 2.0, 1.0, 4.0),
        (10 * KB, 3.0, 1.5, 6.0),
    ],
)
def test_read_units_round_up_to_4kb(size: int, strong: float, eventual: float, transactional: float) -> None:
    assert capacity.read_units(size, consistent=True) == strong
    assert capacity.read_units(size, consistent=False) == eventual
    assert capacity.read_units(size, consistent=False, transactional=True) == transactional


@pytest.mark.parametrize(("size", "units"), [(0, 1.0), (1, 1.0), (KB, 1.0), (KB + 1, 2.0), (2 * KB + 1, 3.0)])
def test_write_units_round_up_to_1kb(size: int, units: float) -> None:
    assert capacity.write_units(size) == units
    assert capacity.write_units(size, transactional=True) == 2 * units


def test_get_item_of_a_missing_item_costs_the_minimum() -> None:
    assert capacity.get_item_units(None, consistent=True) == 1.0
    assert capacity.get_item_units(None, consistent=False) == 0.5


def test_a_4kb_item_is_one_unit_and_one_byte_more_is_two() -> None:
    # ScyllaDB's test_long_get: names and values both count
    names = "pcattanother"
    p, c, att = "p" * 10, "c" * 10, "v" * 10
    filler = "a" * (4 * KB - len(p) - len(c) - len(att) - len(names))
    item = {"p": {"S": p}, "c": {"S": c}, "att": {"S": att}, "another": {"S": filler}}
    assert item_size(item) == 4 * KB
    assert capacity.get_item_units(item_size(item), consistent=True) == 1.0
    item["another"] = {"S": filler + "a"}
    assert capacity.get_item_units(item_size(item), consistent=True) == 2.0
    assert capacity.get_item_units(item_size(item), consistent=False) == 1.0


def test_query_sums_sizes_then_rounds_once() -> None:
    assert capacity.query_units([100] * 40, consistent=True) == 1.0  # 4000 bytes
    assert capacity.query_units([100] * 41, consistent=True) == 2.0
    assert capacity.query_units([], consistent=False) == 0.5
    assert capacity.scan_units([5000, 5000], consistent=False) == 1.5


def test_batch_get_rounds_each_item() -> None:
    # the developer guide's example: 1.5 KB and 6.5 KB are billed as 4 KB + 8 KB
    assert capacity.batch_get_units([1536, 6656], consistent=True) == 3.0
    assert capacity.batch_get_units([10] * 5, consistent=True) == 5.0
    assert capacity.batch_get_units([10] * 3, consistent=False) == 1.5
    assert capacity.batch_get_units([None, 10], consistent=True) == 2.0


def test_writes_bill_the_larger_of_before_and_after() -> None:
    assert capacity.write_item_units(None, 100) == 1.0
    assert capacity.write_item_units(2 * KB + 20, 30) == 3.0  # a short put over a long item
    assert capacity.write_item_units(2 * KB + 1, None) == 3.0  # deleting a long item
    assert capacity.write_item_units(None, None) == 1.0  # deleting a missing item
    assert capacity.batch_write_units([(None, 10), (None, 10), (None, 10), (None, KB + 5)]) == 5.0


def test_dynalite_consumed_capacity_items() -> None:
    # dynalite's "should return ConsumedCapacity for small item" / "larger item", against DynamoDB
    a = "0123456789"
    small = {
        "a": {"S": a},
        "b": {"S": "b" * (1009 - len(a))},
        "c": {"N": "12.3456"},
        "d": {"B": "AQI="},
        "e": {"BS": ["AQI=", "Ag==", "AQ=="]},
    }
    assert item_size(small) == 1024
    assert capacity.write_item_units(None, item_size(small)) == 1.0
    larger = {
        "a": {"S": a},
        "b": {"S": "b" * (1011 - len(a))},
        "c": {"N": "12.3456"},
        "d": {"B": "AQI="},
        "e": {"BS": ["AQI=", "Ag=="]},
    }
    assert item_size(larger) == 1025
    assert capacity.write_item_units(None, item_size(larger)) == 2.0
    # putting just the key over it still bills the old item, then the next put bills the small one
    key_only = {"a": {"S": a}}
    assert capacity.write_item_units(item_size(larger), item_size(key_only)) == 2.0
    assert capacity.write_item_units(item_size(key_only), item_size(key_only)) == 1.0


def test_index_writes() -> None:
    assert capacity.index_write_units(None, None, key_changed=False) == 0.0
    assert capacity.index_write_units(None, 100, key_changed=False) == 1.0
    assert capacity.index_write_units(100, None, key_changed=False) == 1.0
    assert capacity.index_write_units(100, 100, key_changed=True) == 2.0
    assert capacity.index_write_units(2 * KB, 100, key_changed=False) == 2.0
    assert capacity.index_write_units(100, 100, key_changed=True, transactional=True) == 4.0


def test_transactions_double() -> None:
    assert capacity.transact_get_units([100, 5000]) == 2.0 + 4.0
    assert capacity.write_item_units(None, 100, transactional=True) == 2.0


def test_consumed_capacity_shapes() -> None:
    consumed = ConsumedCapacity("t", 2.0, {"lsi": 1.0}, {"gsi": 1.0, "gsi2": 0.5})
    assert consumed.to_json(ReturnConsumedCapacity.NONE) is None
    assert consumed.to_json(ReturnConsumedCapacity.TOTAL) == {"TableName": "t", "CapacityUnits": 4.5}
    assert consumed.to_json(ReturnConsumedCapacity.INDEXES) == {
        "TableName": "t",
        "CapacityUnits": 4.5,
        "Table": {"CapacityUnits": 2.0},
        "LocalSecondaryIndexes": {"lsi": {"CapacityUnits": 1.0}},
        "GlobalSecondaryIndexes": {"gsi": {"CapacityUnits": 1.0}, "gsi2": {"CapacityUnits": 0.5}},
    }
    plain = ConsumedCapacity("t", 1.0)
    assert plain.to_json(ReturnConsumedCapacity.INDEXES) == {
        "TableName": "t",
        "CapacityUnits": 1.0,
        "Table": {"CapacityUnits": 1.0},
    }


def test_batch_capacity_is_one_entry_per_table() -> None:
    consumed = [
        ConsumedCapacity("a", 1.0),
        ConsumedCapacity("b", 0.5, global_indexes={"g": 1.0}),
        ConsumedCapacity("a", 1.0),
        ConsumedCapacity("b", 0.5, global_indexes={"g": 1.0, "h": 1.0}),
    ]
    assert capacity.consumed_capacity_list(consumed, ReturnConsumedCapacity.TOTAL) == [
        {"TableName": "a", "CapacityUnits": 2.0},
        {"TableName": "b", "CapacityUnits": 4.0},
    ]
    assert capacity.consumed_capacity_list(consumed, ReturnConsumedCapacity.NONE) is None
    with pytest.raises(AssertionError):
        ConsumedCapacity("a").plus(ConsumedCapacity("b"))


@given(st.lists(st.integers(0, 500_000), max_size=20))
def test_batches_cost_at_least_a_query_and_eventual_reads_half(sizes: list[int]) -> None:
    for consistent in (True, False):
        batched = capacity.batch_get_units(sizes, consistent=consistent)
        queried = capacity.query_units(sizes, consistent=consistent)
        assert batched >= queried or not sizes
    assert capacity.query_units(sizes, consistent=False) * 2 == capacity.query_units(sizes, consistent=True)
