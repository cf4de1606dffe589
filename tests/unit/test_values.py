"""Attribute values: every rule with DynamoDB's exact message, the boundaries, and what is returned.

The messages are DynamoDB's as pinned by tests that run against the real service: dynalite's test suite
(putItem.js, batchWriteItem.js and helpers.js' wire-type table), ScyllaDB alternator's test_item.py and
test_number.py, and conformance suites pinned against AWS for the nesting limit.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo import values
from dynamo.errors import SerializationException, ValidationException
from dynamo.numbers import MSG_NOT_A_NUMBER, MSG_OVERFLOW, MSG_TOO_PRECISE, MSG_UNDERFLOW

INVALID = "One or more parameter values were invalid: "


def deep(levels: int, leaf: dict[str, Any] | None = None) -> dict[str, Any]:
    """``levels`` single-key maps wrapped around a leaf."""
    value: dict[str, Any] = leaf if leaf is not None else {"S": "leaf"}
    for _ in range(levels):
        value = {"M": {"n": value}}
    return value


def validation_message(av: Any) -> str:
    with pytest.raises(ValidationException) as err:
        values.validate_value(av)
    return err.value.message


def serialization_message(av: Any) -> str:
    with pytest.raises(SerializationException) as err:
        values.validate_value(av)
    return err.value.message


# ------------------------------------------------------------------------------------ accepted values


@pytest.mark.parametrize(
    "av",
    [
        {"S": "a"},
        {"S": ""},
        {"S": "naïve ☃ 𝄞"},
        {"S": "a\x00b"},
        {"N": "-56.789"},
        {"N": "0"},
        {"B": "Yg=="},
        {"B": ""},
        {"B": "AQI="},
        {"BOOL": True},
        {"BOOL": False},
        {"NULL": True},
        {"SS": ["a"]},
        {"SS": ["", "a"]},
        {"NS": ["-56.789", "1"]},
        {"BS": ["Yg==", ""]},
        {"L": []},
        {"M": {}},
        {"M": {"": {"S": "empty name inside a map"}}},
        {
            "L": [
                {"S": "a"},
                {"N": "1"},
                {"B": "Yg=="},
                {"BOOL": True},
                {"NULL": True},
                {"SS": ["a"]},
                {"NS": ["1"]},
                {"BS": ["Yg=="]},
                {"L": []},
                {"M": {}},
            ]
        },
        {"M": {"a": {"M": {"b": {"L": [{"M": {}}]}}}}},
    ],
)
def test_valid_values_come_back_as_the_same_object(av: dict[str, Any]) -> None:
    assert values.validate_value(av) is av


def test_numbers_are_normalised_and_only_the_changed_path_is_copied() -> None:
    untouched = {"S": "x"}
    av = {"M": {"n": {"N": "1.50"}, "s": untouched, "l": {"L": [{"N": "+7"}, untouched]}}}
    out = values.validate_value(av)
    assert out == {"M": {"n": {"N": "1.5"}, "s": {"S": "x"}, "l": {"L": [{"N": "7"}, {"S": "x"}]}}}
    assert out["M"]["s"] is untouched and out["M"]["l"]["L"][1] is untouched
    assert av["M"]["n"] == {"N": "1.50"}  # the input is never modified


def test_number_sets_are_normalised_in_their_given_order() -> None:
    assert values.validate_value({"NS": ["10", "1.0", "-0"]}) == {"NS": ["10", "1", "0"]}
    same = {"NS": ["3", "1", "2"]}
    assert values.validate_value(same) is same


@pytest.mark.parametrize(("text", "flag"), [("true", True), ("FALSE", False), ("yes", True), ("no", False)])
def test_boolean_text_is_read_as_a_boolean(text: str, flag: bool) -> None:
    assert values.validate_value({"BOOL": text}) == {"BOOL": flag}


def test_unknown_and_null_members_are_ignored_as_the_reader_does() -> None:
    assert values.validate_value({"S": "a", "X": 1}) == {"S": "a"}
    assert values.validate_value({"S": None, "N": "01"}) == {"N": "1"}


# ------------------------------------------------------------------------------- validation messages


@pytest.mark.parametrize(
    ("av", "message"),
    [
        ({}, values.MSG_EMPTY_VALUE),
        ({"a": ""}, values.MSG_EMPTY_VALUE),
        ({"S": None}, values.MSG_EMPTY_VALUE),
        (None, values.MSG_EMPTY_VALUE),
        ({"M": {"a": {}}}, values.MSG_EMPTY_VALUE),
        ({"L": [{}]}, values.MSG_EMPTY_VALUE),
        ({"L": [{"a": {}}]}, values.MSG_EMPTY_VALUE),
        ({"S": "a", "N": "1"}, values.MSG_MANY_TYPES),
        ({"S": "a", "BOOL": True}, values.MSG_MANY_TYPES),
        # each member is validated before the count is: dynalite pins these against DynamoDB
        ({"S": "", "N": ""}, MSG_NOT_A_NUMBER),
        ({"S": "a", "N": "b"}, MSG_NOT_A_NUMBER + ": b"),
        ({"NULL": False}, INVALID + "Null attribute value types must have the value of true"),
        ({"NULL": "no"}, INVALID + "Null attribute value types must have the value of true"),
        ({"SS": []}, INVALID + "An string set  may not be empty"),
        ({"NS": []}, INVALID + "An number set  may not be empty"),
        ({"BS": []}, INVALID + "Binary sets should not be empty"),
        ({"SS": ["a", "a"]}, INVALID + "Input collection [a, a] contains duplicates."),
        ({"SS": ["0", "1", "0"]}, INVALID + "Input collection [0, 1, 0] contains duplicates."),
        ({"BS": ["Yg==", "Yg=="]}, INVALID + "Input collection [Yg==, Yg==]of type BS contains duplicates."),
        ({"NS": ["1", "1"]}, "Input collection contains duplicates"),
        ({"NS": ["1", "1.0"]}, "Input collection contains duplicates"),
        ({"NS": ["1e2", "100"]}, "Input collection contains duplicates"),
        ({"NS": ["1", ""]}, MSG_NOT_A_NUMBER),
        ({"NS": ["1", "b", "a"]}, MSG_NOT_A_NUMBER + ": b"),
        ({"NS": ["1", None]}, MSG_NOT_A_NUMBER),
        ({"N": ""}, MSG_NOT_A_NUMBER),
        ({"N": "b"}, MSG_NOT_A_NUMBER + ": b"),
        ({"N": "123456789012345678901234567890123456789"}, MSG_TOO_PRECISE),
        ({"N": "-1.23456789012345678901234567890123456789"}, MSG_TOO_PRECISE),
        ({"N": "1e126"}, MSG_OVERFLOW),
        ({"N": "-1e126"}, MSG_OVERFLOW),
        ({"N": "1e-131"}, MSG_UNDERFLOW),
        ({"N": "-1e-131"}, MSG_UNDERFLOW),
        ({"SS": ["a", None]}, values.MSG_SS_NULL_MEMBER),
        ({"BS": ["Yg==", None]}, values.MSG_BS_NULL_MEMBER),
        ({"L": [None]}, values.MSG_EMPTY_VALUE),
        ({"M": {"a": None}}, values.MSG_EMPTY_VALUE),
    ],
)
def test_validation_errors_carry_dynamodbs_message(av: Any, message: str) -> None:
    assert validation_message(av) == message


def test_nesting_limit_is_32_levels_counting_the_attribute() -> None:
    # 31 maps around a leaf put the leaf at level 32: accepted. 32 maps: rejected (pinned against AWS).
    assert values.validate_value(deep(31)) == deep(31)
    assert validation_message(deep(32)) == values.MSG_NESTING
    assert validation_message(deep(100)) == values.MSG_NESTING
    as_lists: dict[str, Any] = {"S": "leaf"}
    for _ in range(31):
        as_lists = {"L": [as_lists]}
    values.validate_value(as_lists)
    assert validation_message({"L": [as_lists]}) == values.MSG_NESTING
    # A value nested inside another starts deeper: the caller says where.
    values.validate_value(deep(1), depth=31)
    with pytest.raises(ValidationException):
        values.validate_value(deep(1), depth=32)


def test_the_first_problem_in_document_order_wins() -> None:
    assert validation_message({"M": {"d": deep(40), "bad": {"N": "abc"}}}) == values.MSG_NESTING
    assert validation_message({"M": {"bad": {"N": "abc"}, "d": deep(40)}}) == MSG_NOT_A_NUMBER + ": abc"
    assert validation_message(deep(40, {"N": "abc"})) == values.MSG_NESTING


def test_error_path_names_where_the_problem_is() -> None:
    with pytest.raises(ValidationException) as err:
        values.validate_value({"M": {"a": {"L": [{"S": "x"}, {"N": "z"}]}}}, path="attr")
    assert err.value.path == "attr.a[1]"  # type: ignore[attr-defined]
    assert err.value.message == MSG_NOT_A_NUMBER + ": z"


# ------------------------------------------------------------------------------------ wire types


@pytest.mark.parametrize(
    ("av", "message"),
    [
        # the value itself (helpers.js' ValueStruct)
        ("23", "Unexpected value type in payload"),
        (True, "Unexpected value type in payload"),
        (23, "Unexpected value type in payload"),
        (34.56, "Unexpected value type in payload"),
        ([], "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"),
        # S and N (String)
        ({"S": True}, "TRUE_VALUE cannot be converted to String"),
        ({"S": False}, "FALSE_VALUE cannot be converted to String"),
        ({"S": 23}, "NUMBER_VALUE cannot be converted to String"),
        ({"N": 2147483648}, "NUMBER_VALUE cannot be converted to String"),
        ({"N": 34.56}, "DECIMAL_VALUE cannot be converted to String"),
        ({"S": []}, "Unrecognized collection type class java.lang.String"),
        ({"N": {}}, "Start of structure or map found where not expected"),
        # B (Blob)
        ({"B": True}, "only base-64-encoded strings are convertible to bytes"),
        ({"B": 23}, "only base-64-encoded strings are convertible to bytes"),
        ({"B": []}, "Unrecognized collection type class java.nio.ByteBuffer"),
        ({"B": {}}, "Start of structure or map found where not expected"),
        ({"B": "23456"}, "Base64 encoded length is expected a multiple of 4 bytes but found: 5"),
        ({"B": "=+/="}, "Invalid last non-pad Base64 character dectected"),
        ({"B": "+/+="}, "Invalid last non-pad Base64 character dectected"),
        ({"B": "Yh=="}, "Invalid last non-pad Base64 character dectected"),
        ({"B": "ab#="}, "Invalid Base64 character: '#'"),
        # BOOL and NULL (Boolean)
        ({"BOOL": "23"}, "Unexpected token received from parser"),
        ({"NULL": 23}, "NUMBER_VALUE cannot be converted to Boolean"),
        ({"BOOL": 34.56}, "DECIMAL_VALUE cannot be converted to Boolean"),
        ({"BOOL": []}, "Unrecognized collection type class java.lang.Boolean"),
        ({"NULL": {}}, "Start of structure or map found where not expected"),
        # SS, NS, BS, L (List) and their members
        ({"SS": "23"}, "Unexpected field type"),
        ({"NS": True}, "Unexpected field type"),
        ({"L": 23}, "Unexpected field type"),
        ({"BS": {}}, "Start of structure or map found where not expected"),
        ({"SS": [23]}, "NUMBER_VALUE cannot be converted to String"),
        ({"NS": [True]}, "TRUE_VALUE cannot be converted to String"),
        ({"BS": [23]}, "only base-64-encoded strings are convertible to bytes"),
        ({"BS": ["abc"]}, "Base64 encoded length is expected a multiple of 4 bytes but found: 3"),
        ({"L": ["23"]}, "Unexpected value type in payload"),
        ({"L": [{"BS": [{}]}]}, "Start of structure or map found where not expected"),
        # M (Map)
        ({"M": "23"}, "Unexpected field type"),
        ({"M": 23}, "Unexpected field type"),
        (
            {"M": []},
            "Unrecognized collection type java.util.Map<java.lang.String, "
            "com.amazonaws.dynamodb.v20120810.AttributeValue>",
        ),
        ({"M": {"a": 23}}, "Unexpected value type in payload"),
        ({"M": {"a": {"BS": [True]}}}, "only base-64-encoded strings are convertible to bytes"),
    ],
)
def test_wire_type_errors_are_serialization_exceptions(av: Any, message: str) -> None:
    assert serialization_message(av) == message
    assert values.find_wire_error(av) is not None


def test_a_wire_error_anywhere_wins_over_a_validation_error_met_first() -> None:
    av = {"M": {"a": {"N": "not a number"}, "z": {"S": 5}}}
    assert serialization_message(av) == "NUMBER_VALUE cannot be converted to String"
    item = {"a": {"SS": []}, "b": {"B": "x"}}
    with pytest.raises(SerializationException):
        values.validate_item(item)


def test_find_wire_error_is_none_for_wire_valid_values() -> None:
    assert values.find_wire_error({"N": "abc", "S": "x", "Q": 5}) is None
    assert values.find_item_wire_error({"a": {"SS": []}}) is None
    assert values.find_item_wire_error([]) is not None


# ------------------------------------------------------------------------------------------ items


def test_items_are_validated_and_normalised() -> None:
    item = {"id": {"S": "a"}, "n": {"N": "0010"}}
    assert values.validate_item(item) == {"id": {"S": "a"}, "n": {"N": "10"}}
    same = {"id": {"S": "a"}}
    assert values.validate_item(same) is same
    assert values.validate_item({}) == {}


def test_attribute_names_have_limits() -> None:
    with pytest.raises(ValidationException) as err:
        values.validate_item({"": {"S": "a"}})
    assert err.value.message == values.MSG_EMPTY_NAME
    longest = "x" * 65535
    assert values.validate_item({longest: {"S": "a"}})
    with pytest.raises(ValidationException) as err:
        values.validate_item({longest + "x": {"S": "a"}})
    assert err.value.message == values.MSG_NAME_TOO_LONG
    # the limit is in UTF-8 bytes: 21845 three-byte characters fit, one more does not
    values.validate_item({"☃" * 21845: {"S": "a"}})
    with pytest.raises(ValidationException):
        values.validate_item({"☃" * 21846: {"S": "a"}})


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("23", "Unexpected field type"),
        (23, "Unexpected field type"),
        (
            [],
            "Unrecognized collection type java.util.Map<java.lang.String, "
            "com.amazonaws.dynamodb.v20120810.AttributeValue>",
        ),
        ({"a": "23"}, "Unexpected value type in payload"),
    ],
)
def test_an_item_of_the_wrong_wire_type(item: Any, message: str) -> None:
    with pytest.raises(SerializationException) as err:
        values.validate_item(item)
    assert err.value.message == message


# ------------------------------------------------------------------------------ random JSON


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
)
tags = st.sampled_from([*values.TYPES, "X"])
random_json = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(tags | st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=400)
@given(random_json)
def test_random_json_yields_a_value_or_a_dynamodb_error(av: Any) -> None:
    try:
        out = values.validate_value(av)
    except (ValidationException, SerializationException):
        return
    # what is accepted is stable: validating the normal form changes nothing
    assert values.validate_value(out) is out


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=4), random_json, max_size=4))
def test_random_items_yield_an_item_or_a_dynamodb_error(item: Any) -> None:
    try:
        values.validate_item(item)
    except (ValidationException, SerializationException):
        return


# ------------------------------------------------------------------------- comparing and equality


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ({"S": "a"}, {"S": "b"}, -1),
        ({"S": "b"}, {"S": "a"}, 1),
        ({"S": "a"}, {"S": "a"}, 0),
        ({"S": "Z"}, {"S": "a"}, -1),
        ({"S": "é"}, {"S": "z"}, 1),
        ({"S": "\uffff"}, {"S": "𝄞"}, -1),
        ({"N": "10"}, {"N": "9"}, 1),
        ({"N": "-10"}, {"N": "-9"}, -1),
        ({"N": "1"}, {"N": "1.0"}, 0),
        ({"B": b64(b"\x01")}, {"B": b64(b"\xff")}, -1),
        ({"B": ""}, {"B": b64(b"\x00")}, -1),
        ({"S": "1"}, {"N": "1"}, None),
        ({"SS": ["a"]}, {"SS": ["a"]}, None),
        ({"BOOL": True}, {"BOOL": True}, None),
    ],
)
def test_compare_values_orders_as_dynamodb(a: dict[str, Any], b: dict[str, Any], order: int | None) -> None:
    assert values.compare_values(a, b) == order


@given(st.text(max_size=5), st.text(max_size=5))
def test_string_order_is_utf8_byte_order(x: str, y: str) -> None:
    try:
        bx, by = x.encode(), y.encode()
    except UnicodeEncodeError:
        return
    assert values.compare_values({"S": x}, {"S": y}) == (bx > by) - (bx < by)


@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)
def test_number_order_is_numeric(x: Decimal, y: Decimal) -> None:
    try:
        a = values.validate_value({"N": str(x)})
        b = values.validate_value({"N": str(y)})
    except ValidationException:
        return
    assert values.compare_values(a, b) == (x > y) - (x < y)
    assert values.values_equal(a, b) == (x == y)


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"SS": ["a", "b"]}, {"SS": ["b", "a"]}, True),
        ({"SS": ["a"]}, {"SS": ["a", "b"]}, False),
        ({"NS": ["1", "2"]}, {"NS": ["2.0", "1"]}, True),
        ({"BS": ["AQ==", "Ag=="]}, {"BS": ["Ag==", "AQ=="]}, True),
        ({"L": [{"N": "1"}, {"S": "x"}]}, {"L": [{"N": "1.0"}, {"S": "x"}]}, True),
        ({"L": [{"N": "1"}, {"S": "x"}]}, {"L": [{"S": "x"}, {"N": "1"}]}, False),
        ({"M": {"a": {"N": "1"}}}, {"M": {"a": {"N": "1"}}}, True),
        ({"M": {"a": {"N": "1"}}}, {"M": {}}, False),
        ({"M": {"a": {"N": "1"}}}, {"M": {"b": {"N": "1"}}}, False),
        ({"NULL": True}, {"NULL": True}, True),
        ({"BOOL": True}, {"BOOL": False}, False),
        ({"S": "1"}, {"N": "1"}, False),
        ({"B": "AQ=="}, {"B": "AQ=="}, True),
    ],
)
def test_values_equal(a: dict[str, Any], b: dict[str, Any], equal: bool) -> None:
    assert values.values_equal(a, b) is equal
    assert values.values_equal(b, a) is equal


def test_reading_helpers() -> None:
    assert values.value_type({"NS": ["1"]}) == "NS"
    assert values.number_value({"N": "1.5"}) == Decimal("1.5")
    assert values.b64decode_value("AQI=") == b"\x01\x02"
    assert values.sort_key({"B": "AQI="}) == b"\x01\x02"
    assert values.sort_key({"N": "-2"}) == Decimal(-2)
    assert values.sort_key({"S": "x"}) == "x"
    with pytest.raises(AssertionError):
        values.sort_key({"BOOL": True})
    assert values.set_member_key("NS", "1.50") == values.set_member_key("NS", "1.5")
    assert values.set_member_key("SS", "a") == "a"
    assert values.describe_value({"N": "5"}) == "AttributeValue: {N:5}"
    # Numbers need not be in normal form to compare (items built before validation, legacy callers).
    assert values.compare_values({"N": "1.0"}, {"N": "1"}) == 0
    assert values.values_equal({"NS": ["1.0", "2"]}, {"NS": ["2", "1"]})


@pytest.mark.parametrize(
    ("value", "java_type", "message"),
    [
        (1.0, "String", "DECIMAL_VALUE cannot be converted to String"),
        (7, "Long", "NUMBER_VALUE cannot be converted to Long"),
        (True, "Integer", "TRUE_VALUE cannot be converted to Integer"),
        ([], "Boolean", "Unrecognized collection type class java.lang.Boolean"),
        ({}, "String", "Start of structure or map found where not expected"),
    ],
)
def test_wire_type_error(value: object, java_type: str, message: str) -> None:
    error = values.wire_type_error(value, java_type)
    assert isinstance(error, SerializationException)
    assert error.message == message


@given(st.binary(max_size=20))
def test_base64_length_without_decoding(raw: bytes) -> None:
    text = b64(raw)
    assert values.b64_length(text) == len(raw)
    assert values.validate_value({"B": text}) == {"B": text}
    assert values.b64decode_value(text) == raw
