"""Primary and index keys: each rule at its boundary, with DynamoDB's exact message.

Messages as pinned against the service by dynalite's putItem/batchWriteItem tests, ScyllaDB alternator's
test_item.py/test_limits.py, and AWS error reports for the empty-key and index-key cases.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo import items
from dynamo.errors import ValidationException
from dynamo.items import IndexSchema, KeySchema

INVALID = "One or more parameter values were invalid: "
HASH = KeySchema("a", "S")
RANGE = KeySchema("a", "S", "b", "S")
BINARY = KeySchema("p", "B", "c", "B")
NUMERIC = KeySchema("n", "N", "m", "N")
INDEXES = [
    IndexSchema("index4", KeySchema("a", "S", "c", "S"), is_global=False),
    IndexSchema("gsi", KeySchema("g", "N", "h", "B"), is_global=True),
]


def message(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ValidationException) as err:
        call(*args, **kwargs)
    return err.value.message


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_key_schema_model() -> None:
    assert HASH.names == ("a",)
    assert RANGE.names == ("a", "b")
    assert RANGE.attributes() == (("a", "S", True), ("b", "S", False))
    assert (
        KeySchema.from_wire(
            [{"AttributeName": "b", "KeyType": "RANGE"}, {"AttributeName": "a", "KeyType": "HASH"}],
            [{"AttributeName": "a", "AttributeType": "S"}, {"AttributeName": "b", "AttributeType": "S"}],
        )
        == RANGE
    )
    assert (
        KeySchema.from_wire(
            [{"AttributeName": "a", "KeyType": "HASH"}], [{"AttributeName": "a", "AttributeType": "S"}]
        )
        == HASH
    )
    for bad in [("a", "X"), ("a", "S", "b", None), ("a", "S", "a", "S"), ("a", "S", "b", "SS")]:
        with pytest.raises(AssertionError):
            KeySchema(*bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- extract_key


def test_extract_key_answers_the_key_attributes() -> None:
    item = {"a": {"S": "x"}, "b": {"S": "y"}, "c": {"N": "1"}}
    assert items.extract_key(item, RANGE) == {"a": {"S": "x"}, "b": {"S": "y"}}
    assert items.extract_key(item, HASH) == {"a": {"S": "x"}}


@pytest.mark.parametrize(
    ("item", "schema", "expected"),
    [
        ({}, HASH, INVALID + "Missing the key a in the item"),
        ({"b": {"S": "a"}}, HASH, INVALID + "Missing the key a in the item"),
        ({"a": {"S": "a"}}, RANGE, INVALID + "Missing the key b in the item"),
        ({"a": {"B": "abcd"}}, HASH, INVALID + "Type mismatch for key a expected: S actual: B"),
        ({"a": {"N": "1"}}, HASH, INVALID + "Type mismatch for key a expected: S actual: N"),
        ({"a": {"SS": ["a"]}}, HASH, INVALID + "Type mismatch for key a expected: S actual: SS"),
        ({"a": {"NS": ["1"]}}, HASH, INVALID + "Type mismatch for key a expected: S actual: NS"),
        ({"a": {"BS": ["aaaa"]}}, HASH, INVALID + "Type mismatch for key a expected: S actual: BS"),
        (
            {"a": {"S": "x"}, "b": {"N": "1"}},
            RANGE,
            INVALID + "Type mismatch for key b expected: S actual: N",
        ),
        (
            {"a": {"S": ""}},
            HASH,
            "One or more parameter values are not valid. "
            "The AttributeValue for a key attribute cannot contain an empty string value. Key: a",
        ),
        (
            {"a": {"S": "x"}, "b": {"S": ""}},
            RANGE,
            "One or more parameter values are not valid. "
            "The AttributeValue for a key attribute cannot contain an empty string value. Key: b",
        ),
        (
            {"p": {"B": ""}, "c": {"B": "AQ=="}},
            BINARY,
            "One or more parameter values are not valid. "
            "The AttributeValue for a key attribute cannot contain an empty binary value. Key: p",
        ),
    ],
)
def test_extract_key_errors(item: dict[str, Any], schema: KeySchema, expected: str) -> None:
    assert message(items.extract_key, item, schema) == expected


@pytest.mark.parametrize(
    "item",
    [
        {},
        {"b": {"S": "a"}},
        {"a": {"B": "abcd"}},
        {"a": {"N": "1"}},
        {"a": {"BOOL": True}},
        {"a": {"NULL": True}},
        {"a": {"M": {}}},
        {"a": {"L": []}},
        {"a": {"SS": ["a"]}},
    ],
)
def test_batch_write_reports_key_problems_as_a_schema_mismatch(item: dict[str, Any]) -> None:
    assert message(items.extract_key, item, HASH, batch_write=True) == items.MSG_KEY_SCHEMA_MISMATCH


def test_key_size_limits_are_inclusive_and_count_utf8_bytes() -> None:
    items.extract_key({"a": {"S": "x" * 2048}}, HASH)
    assert message(items.extract_key, {"a": {"S": "x" * 2049}}, HASH) == (
        INVALID + "Size of hashkey has exceeded the maximum size limit of2048 bytes"
    )
    items.extract_key({"a": {"S": "é" * 1024}}, HASH)  # 2048 bytes
    assert message(items.extract_key, {"a": {"S": "é" * 1024 + "x"}}, HASH) == items.MSG_HASH_KEY_TOO_LARGE
    items.extract_key({"a": {"S": "x"}, "b": {"S": "y" * 1024}}, RANGE)
    assert message(items.extract_key, {"a": {"S": "x"}, "b": {"S": "y" * 1025}}, RANGE) == (
        INVALID + "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
    )
    assert (
        message(items.extract_key, {"a": {"S": "x"}, "b": {"S": "☃" * 342}}, RANGE)
        == items.MSG_RANGE_KEY_TOO_LARGE
    )


def test_binary_key_limits_count_raw_bytes_not_base64() -> None:
    items.extract_key({"p": {"B": b64(b"x" * 2048)}, "c": {"B": b64(b"y" * 1024)}}, BINARY)
    assert message(items.extract_key, {"p": {"B": b64(b"x" * 2049)}, "c": {"B": "AQ=="}}, BINARY) == (
        items.MSG_HASH_KEY_TOO_LARGE
    )
    assert message(items.extract_key, {"p": {"B": "AQ=="}, "c": {"B": b64(b"y" * 1025)}}, BINARY) == (
        items.MSG_RANGE_KEY_TOO_LARGE
    )


# ------------------------------------------------------------------------------------ validate_key


@pytest.mark.parametrize(
    ("key", "schema"),
    [
        ({"a": {"S": "x"}}, RANGE),  # missing range key
        ({"b": {"S": "x"}}, RANGE),
        ({"a": {"S": "x"}, "b": {"S": "y"}, "c": {"S": "z"}}, RANGE),  # spurious attribute
        ({"a": {"S": "x"}, "b": {"S": "y"}}, HASH),
        ({"a": {"S": "x"}, "c": {"S": "y"}}, RANGE),
        ({"a": {"N": "1"}}, HASH),
        ({"a": {"S": "x"}, "b": {"B": "AQ=="}}, RANGE),
        ({"a": {"SS": ["x"]}}, HASH),
        ({}, HASH),
    ],
)
def test_validate_key_schema_mismatch(key: dict[str, Any], schema: KeySchema) -> None:
    assert message(items.validate_key, key, schema) == "The provided key element does not match the schema"


def test_validate_key_checks_empty_values_and_sizes_too() -> None:
    key = {"a": {"S": "x"}, "b": {"S": "y"}}
    assert items.validate_key(key, RANGE) is key
    assert message(items.validate_key, {"a": {"S": ""}}, HASH).endswith(
        "cannot contain an empty string value. Key: a"
    )
    assert message(items.validate_key, {"a": {"S": "x" * 2049}}, HASH) == items.MSG_HASH_KEY_TOO_LARGE
    assert message(items.validate_key, {"a": {"S": "x"}, "b": {"S": "y" * 1025}}, RANGE) == (
        items.MSG_RANGE_KEY_TOO_LARGE
    )
    items.validate_key({"n": {"N": "-1"}, "m": {"N": "0"}}, NUMERIC)


# ------------------------------------------------------------------------------------ index keys


def test_index_key_type_must_match() -> None:
    item = {"a": {"S": "a"}, "b": {"S": "a"}, "c": {"N": "1"}}
    assert message(items.check_index_keys, item, INDEXES) == (
        INVALID + "Type mismatch for Index Key c Expected: S Actual: N IndexName: index4"
    )
    item = {"a": {"S": "a"}, "g": {"N": "1"}, "h": {"BOOL": True}}
    assert message(items.check_index_keys, item, INDEXES) == (
        INVALID + "Type mismatch for Index Key h Expected: B Actual: BOOL IndexName: gsi"
    )


def test_index_keys_may_be_absent_but_not_empty() -> None:
    items.check_index_keys({"a": {"S": "a"}}, INDEXES)
    items.check_index_keys({"a": {"S": "a"}, "c": {"S": "c"}, "g": {"N": "0"}, "h": {"B": "AQ=="}}, INDEXES)
    assert message(items.check_index_keys, {"a": {"S": "a"}, "c": {"S": ""}}, INDEXES) == (
        "One or more parameter values are not valid. A value specified for a secondary index key is not "
        "supported. The AttributeValue for a key attribute cannot contain an empty string value. "
        "IndexName: index4, IndexKey: c"
    )
    assert message(items.check_index_keys, {"h": {"B": ""}}, INDEXES) == (
        "One or more parameter values are not valid. A value specified for a secondary index key is not "
        "supported. The AttributeValue for a key attribute cannot contain an empty binary value. "
        "IndexName: gsi, IndexKey: h"
    )


def test_index_types_are_checked_before_emptiness_and_indexes_in_name_order() -> None:
    indexes = [
        IndexSchema("zeta", KeySchema("a", "S", "x", "S"), is_global=False),
        IndexSchema("alpha", KeySchema("x", "S"), is_global=True),
        IndexSchema("mid", KeySchema("y", "N"), is_global=True),
    ]
    assert message(items.check_index_keys, {"x": {"N": "1"}}, indexes) == (
        INVALID + "Type mismatch for Index Key x Expected: S Actual: N IndexName: alpha"
    )
    assert message(items.check_index_keys, {"x": {"S": ""}, "y": {"S": "1"}}, indexes) == (
        INVALID + "Type mismatch for Index Key y Expected: N Actual: S IndexName: mid"
    )
    assert message(items.check_index_keys, {"x": {"S": ""}}, indexes).endswith(
        "IndexName: alpha, IndexKey: x"
    )
    assert message(items.check_index_keys, {"x": {"S": ""}}, indexes, update_expression=True) == (
        "One or more parameter values are not valid. The update expression attempted to update a secondary "
        "index key to a value that is not supported. The AttributeValue for a key attribute cannot contain an "
        "empty string value."
    )


def test_key_helpers() -> None:
    item = {"a": {"S": "x"}, "b": {"S": "y"}, "c": {"S": "z"}}
    assert items.key_of(item, RANGE) == {"a": {"S": "x"}, "b": {"S": "y"}}
    assert items.index_key_of(item, INDEXES[0]) == {"a": {"S": "x"}, "c": {"S": "z"}}
    assert items.index_key_of(item, INDEXES[1]) is None
    assert items.key_identity({"a": {"S": "x"}, "b": {"S": "y"}}, RANGE) == ("x", "y")
    assert items.key_value_bytes({"N": "-12.5"}) == 5


@given(st.text(min_size=1, max_size=700))
def test_hash_key_limit_is_exactly_2048_utf8_bytes(text: str) -> None:
    try:
        length = len(text.encode())
    except UnicodeEncodeError:
        return
    repeated = text * (2048 // length + 1)
    for candidate in (repeated[:2048], repeated[:2049], text):
        size = len(candidate.encode())
        if size <= 2048:
            items.extract_key({"a": {"S": candidate}}, HASH)
        else:
            assert message(items.extract_key, {"a": {"S": candidate}}, HASH) == items.MSG_HASH_KEY_TOO_LARGE
