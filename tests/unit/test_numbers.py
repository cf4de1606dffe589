from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo import numbers
from dynamo.errors import ValidationException


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "0"), ("-0", "0"), ("0.000", "0"), ("01", "1"), ("+5", "5"), ("1.0", "1"), ("0.10", "0.1"),
        ("1e3", "1000"), ("1.5E-3", "0.0015"), ("-12.340", "-12.34"), (".5", "0.5"), ("5.", "5"),
        ("1E-130", "0." + "0" * 129 + "1"),
        ("9.9999999999999999999999999999999999999E+125", "99999999999999999999999999999999999999" + "0" * 88),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("1234567890123456789012345678901234567800000", "1234567890123456789012345678901234567800000"),
    ],
)
def test_normalises_as_dynamodb_returns(text: str, expected: str) -> None:
    assert numbers.normalize_number(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", numbers.MSG_NOT_A_NUMBER), ("", numbers.MSG_NOT_A_NUMBER), ("NaN", numbers.MSG_NOT_A_NUMBER),
        ("Infinity", numbers.MSG_NOT_A_NUMBER), (" 1", numbers.MSG_NOT_A_NUMBER), ("1_000", numbers.MSG_NOT_A_NUMBER),
        ("123456789012345678901234567890123456789", numbers.MSG_TOO_PRECISE),
        ("1E+126", numbers.MSG_OVERFLOW), ("-1E+126", numbers.MSG_OVERFLOW),
        ("9.9999999999999999999999999999999999999E-131", numbers.MSG_UNDERFLOW),
        ("1E-131", numbers.MSG_UNDERFLOW),
    ],
)
def test_rejects_one_past_each_limit(text: str, message: str) -> None:
    with pytest.raises(ValidationException) as err:
        numbers.parse_number(text)
    assert err.value.message == message


def test_arithmetic_is_exact_and_checked() -> None:
    assert numbers.format_number(numbers.add(Decimal("0.1"), Decimal("0.2"))) == "0.3"
    with pytest.raises(ValidationException):
        numbers.add(Decimal("1E+125"), Decimal("1E-130"))
    with pytest.raises(ValidationException):
        numbers.add(Decimal("9E+125"), Decimal("9E+125"))


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_round_trip_of_any_valid_number(value: Decimal) -> None:
    text = str(value)
    try:
        parsed = numbers.parse_number(text)
    except ValidationException:
        return
    assert Decimal(numbers.format_number(parsed)) == value
