"""Item sizes as DynamoDB counts them, pinned by the boundary cases dynalite checks against the service."""

from __future__ import annotations

import base64
from decimal import Context, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo import size
from dynamo.errors import SerializationException, ValidationException
from dynamo.numbers import format_number, normalize_number
from dynamo.values import validate_item, validate_value

MAX = 409600


def reference_number_size(value: Decimal) -> int:
    """DynamoDB Local's encodeBigDecimal, transcribed: the byte length of the stored number."""
    if value == 0:
        return 1
    sign, digits, exponent = value.copy_abs().normalize(Context(prec=200)).as_tuple()
    assert isinstance(exponent, int)
    point = len(digits) + exponent  # digits before the decimal point ("precision - scale")
    append_zero = 1 if point % 2 else 0
    digit_bytes = (len(digits) + append_zero + 1) // 2
    return 1 + digit_bytes + (1 if value < 0 and digit_bytes < 20 else 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 1),
        ("1", 2),
        ("9", 2),
        ("10", 2),
        ("11", 2),
        ("99", 2),
        ("100", 2),
        ("101", 3),
        ("1.5", 3),
        ("15", 2),
        ("0.5", 2),
        ("0.05", 2),
        ("0.15", 2),
        ("12.3456", 4),
        ("-1", 3),
        ("-12.3456", 5),
        # dynalite's "item is too big with ... number attribute" cases, true against DynamoDB
        ("1" * 38 + "0" * 88, 20),
        ("1" + "0" * 125, 2),
        ("11" + "0" * 124, 2),
        ("11111" + "0" * 121, 4),
        ("111111" + "0" * 120, 4),
        ("1111111" + "0" * 119, 5),
        # a negative number has a terminator byte, unless its digits fill all 20 digit bytes
        ("-1" + "1" * 37 + "0" * 88, 21),
        ("-" + "1" * 38, 21),
        ("-1." + "1" * 36, 21),
        ("1." + "1" * 37, 21),
        ("-1." + "1" * 37, 21),
        ("-0." + "0" * 129 + "1", 3),
    ],
)
def test_number_size(text: str, expected: int) -> None:
    assert size.number_size(text) == expected
    assert reference_number_size(Decimal(text)) == expected


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_number_size_matches_dynamodb_locals_encoder(value: Decimal) -> None:
    try:
        text = normalize_number(str(value))
    except ValidationException:
        return
    assert size.number_size(text) == reference_number_size(Decimal(text))


@pytest.mark.parametrize(
    ("av", "expected"),
    [
        ({"S": ""}, 0),
        ({"S": "abc"}, 3),
        ({"S": "é"}, 2),
        ({"S": "☃"}, 3),
        ({"S": "𝄞"}, 4),
        ({"B": ""}, 0),
        ({"B": "AQI="}, 2),
        ({"B": "AQ=="}, 1),
        ({"B": "AQID"}, 3),
        ({"BOOL": False}, 1),
        ({"NULL": True}, 1),
        ({"SS": ["a", "bc"]}, 3),
        ({"NS": ["1", "-1"]}, 5),
        ({"BS": ["AQI=", "Ag==", "AQ=="]}, 4),
        ({"L": []}, 3),
        ({"M": {}}, 3),
        ({"L": [{"S": "ab"}, {"N": "1"}]}, 3 + 1 + 2 + 1 + 2),
        ({"M": {"ab": {"S": "c"}, "d": {"NULL": True}}}, 3 + (1 + 2 + 1) + (1 + 1 + 1)),
        ({"M": {"x": {"L": [{"M": {}}]}}}, 3 + 1 + 1 + (3 + 1 + 3)),
    ],
)
def test_value_size(av: dict[str, Any], expected: int) -> None:
    assert size.value_size(av) == expected


def test_item_size_counts_names_in_utf8() -> None:
    assert size.item_size({"a": {"S": "xyz"}, "☃": {"N": "1"}}) == 1 + 3 + 3 + 2
    assert size.item_size({}) == 0
    assert size.item_size(None) == 0


def test_the_400_kb_limit_is_inclusive() -> None:
    key = "abcdefgh"
    at_limit = {"a": {"S": key}, "b": {"S": "x" * (MAX - len(key) - 2)}}
    assert size.check_item_size(at_limit) == MAX
    past = {"a": {"S": key}, "b": {"S": "x" * (MAX - len(key) - 1)}}
    with pytest.raises(ValidationException) as err:
        size.check_item_size(past)
    assert err.value.message == "Item size has exceeded the maximum allowed size"
    with pytest.raises(ValidationException) as err:
        size.check_item_size(past, update=True)
    assert err.value.message == "Item size to update has exceeded the maximum allowed size"


BIG_N = {"N": "1111111" + "0" * 120}


@pytest.mark.parametrize(
    ("name", "extra", "others", "fits"),
    [
        # dynalite's boundary pairs (one byte past is refused, the limit itself accepted), true on DynamoDB
        ("b", 1, {}, False),
        ("b", 2, {}, True),
        ("b" * 27, 27, {}, False),
        ("b" * 27, 28, {}, True),
        ("bb", 7, {"ccc": {"S": "cc"}}, False),
        ("bb", 8, {"ccc": {"S": "cc"}}, True),
        ("b", 1 + 1 + 5 + 1 + 5, {"c": BIG_N, "d": BIG_N}, False),
        ("b", 1 + 1 + 5 + 1 + 6, {"c": BIG_N, "d": BIG_N}, True),
    ],
)
def test_dynalite_boundaries(name: str, extra: int, others: dict[str, Any], fits: bool) -> None:
    key = "0123456789"
    item = {"a": {"S": key}, name: {"S": "a" * (MAX - len(key) - extra)}, **others}
    assert size.item_size(item) == (MAX if fits else MAX + 1)


def test_binary_is_counted_raw_not_as_base64() -> None:
    raw = bytes(range(256)) * 4
    assert size.value_size({"B": base64.b64encode(raw).decode()}) == 1024


json_values = st.recursive(
    st.one_of(
        st.text(max_size=8).map(lambda s: {"S": s}),
        st.decimals(allow_nan=False, allow_infinity=False, places=4).map(lambda d: {"N": str(d)}),
        st.binary(max_size=8).map(lambda b: {"B": base64.b64encode(b).decode()}),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        st.sets(st.text(max_size=4), min_size=1, max_size=3).map(lambda s: {"SS": sorted(s)}),
    ),
    lambda children: (
        st.lists(children, max_size=3).map(lambda xs: {"L": xs})
        | st.dictionaries(st.text(max_size=3), children, max_size=3).map(lambda m: {"M": m})
    ),
    max_leaves=12,
)


def encoded_size(av: dict[str, Any]) -> int:
    """An independent size: encode every piece and count the bytes."""
    ((tag, v),) = av.items()
    if tag == "S":
        return len(v.encode())
    if tag == "N":
        return reference_number_size(Decimal(v))
    if tag == "B":
        return len(base64.b64decode(v))
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(x.encode()) for x in v)
    if tag == "L":
        return 3 + sum(1 + encoded_size(x) for x in v)
    return 3 + sum(1 + len(k.encode()) + encoded_size(x) for k, x in v.items())


@given(st.dictionaries(st.text(min_size=1, max_size=4), json_values, max_size=4))
def test_item_size_matches_an_independent_count(item: dict[str, Any]) -> None:
    try:
        item = validate_item(item)
    except ValidationException:
        return
    expected = sum(len(k.encode()) + encoded_size(v) for k, v in item.items())
    assert size.item_size(item) == expected


def test_sizes_of_normalised_numbers_do_not_depend_on_how_they_were_written() -> None:
    for written in ["1.50", "+1.5", "15e-1", "0001.5000"]:
        av = validate_value({"N": written})
        assert size.value_size(av) == 3
    assert format_number(Decimal("15e-1")) == "1.5"


random_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(alphabet="AQI=0.1e-é", max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"]), children, max_size=2
        )
    ),
    max_leaves=12,
)


@given(random_json)
def test_every_value_validation_accepts_has_a_size(av: Any) -> None:
    try:
        out = validate_value(av)
    except (ValidationException, SerializationException):
        return
    assert size.value_size(out) >= 0
