"""Every request body the benchmark formats is valid DynamoDB, as ddb's own request validation sees it,
and says what the workload means (keys, values, limits, consistency)."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.bench.bodies import Bodies, value_pool
from deploy.bench.keys import key_name
from dynamo.requests import validate_request

records = st.integers(0, 10**12)
groups = st.sampled_from([1, 10, 100])
values = st.text("abcXYZ0189", min_size=1, max_size=500)


@settings(max_examples=80, deadline=None)
@given(record=records, items_per_key=groups, value=values, consistent=st.booleans(),
       limit=st.none() | st.integers(1, 100), from_record=st.booleans())
def test_bodies_pass_ddb_request_validation(record: int, items_per_key: int, value: str, consistent: bool,
                                            limit: int | None, from_record: bool) -> None:
    bodies = Bodies("ddb_bench", items_per_key, consistent)
    pk, sk = bodies.position(record)
    assert (pk, sk) == (key_name(record // items_per_key), record % items_per_key)
    key = {"pk": {"S": pk}, "sk": {"N": str(sk)}}

    get = validate_request("GetItem", orjson.loads(bodies.get_item(record)))
    assert get["Key"] == key and get["ConsistentRead"] is consistent

    put = validate_request("PutItem", orjson.loads(bodies.put_item(record, value)))
    assert put["Item"] == {**key, "v": {"S": value}}

    update = validate_request("UpdateItem", orjson.loads(bodies.update_item(record, value)))
    assert update["Key"] == key and update["ExpressionAttributeValues"] == {":v": {"S": value}}

    query = validate_request("Query", orjson.loads(bodies.query(record, limit, from_record)))
    assert query["ExpressionAttributeValues"][":p"] == {"S": pk} and query.get("Limit") == limit
    assert (":s" in query["ExpressionAttributeValues"]) is from_record
    assert query["ConsistentRead"] is consistent

    other = record + 1
    transact = validate_request("TransactWriteItems", orjson.loads(bodies.transact_put(record, other, value)))
    assert [one["Put"]["Item"] for one in transact["TransactItems"]] == [
        {**key, "v": {"S": value}}, orjson.loads(bodies.put_item(other, value))["Item"]]


@settings(max_examples=30, deadline=None)
@given(start=st.integers(0, 10**9), count=st.integers(1, 25), items_per_key=groups)
def test_batch_writes_pass_validation_and_carry_each_record_once(start: int, count: int, items_per_key: int) -> None:
    bodies = Bodies("ddb_bench", items_per_key)
    pool = value_pool(random.Random(start), 20, size=7)
    batch = validate_request("BatchWriteItem", orjson.loads(bodies.batch_write(range(start, start + count), pool)))
    items = [write["PutRequest"]["Item"] for write in batch["RequestItems"]["ddb_bench"]]
    assert len(items) == count
    for record, item in zip(range(start, start + count), items, strict=True):
        pk, sk = bodies.position(record)
        assert item == {"pk": {"S": pk}, "sk": {"N": str(sk)}, "v": {"S": pool[record % len(pool)]}}


def test_table_bodies_pass_validation() -> None:
    bodies = Bodies("ddb_bench")
    create = validate_request("CreateTable", orjson.loads(bodies.create_table()))
    assert create["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["KeyType"] for k in create["KeySchema"]] == ["HASH", "RANGE"]
    validate_request("DescribeTable", orjson.loads(bodies.table_only()))
    validate_request("DeleteTable", orjson.loads(bodies.table_only()))


def test_unprocessed_items_are_sent_again_and_nothing_else() -> None:
    left = {"t": [{"PutRequest": {"Item": {"pk": {"S": "a"}}}}]}
    assert orjson.loads(Bodies.unprocessed({"UnprocessedItems": left}) or b"") == {"RequestItems": left}
    assert Bodies.unprocessed({"UnprocessedItems": {}}) is None
    assert Bodies.unprocessed({"UnprocessedItems": {"t": []}}) is None
    assert Bodies.unprocessed({}) is None


def test_value_pool_and_item_size() -> None:
    pool = value_pool(random.Random(1), 170)
    assert len(pool) == 256 and {len(v) for v in pool} == {170} and all(v.isalnum() for v in pool)
    assert Bodies("ddb_bench").item_size_bytes(0, pool[0]) == 200


@pytest.mark.parametrize("name", ["ab", "bad name", "x" * 256, 'quote"'])
def test_table_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="table name"):
        Bodies(name)
