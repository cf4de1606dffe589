from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo import numbers
from dynamo.errors import ValidationException


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "0"),
        ("-0", "0"),
        ("0.000", "0"),
        ("01", "1"),
        ("+5", "5"),
        ("1.0", "1"),
        ("0.10", "0.1"),
        ("1e3", "1000"),
        ("1.5E-3", "0.0015"),
        ("-12.340", "-12.34"),
        (".5", "0.5"),
        ("5.", "5"),
        ("0e1000", "0"),
        ("1e+5", "100000"),
        ("0001.23", "1.23"),
        ("-17.4E37", "-174" + "0" * 36),
        ("1E-130", "0." + "0" * 129 + "1"),
        ("9.9999999999999999999999999999999999999E+125", "99999999999999999999999999999999999999" + "0" * 88),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("1234567890123456789012345678901234567800000", "1234567890123456789012345678901234567800000"),
        # dynalite's "should put really long numbers", checked against DynamoDB
        ("0000012345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("-00001.23456789012345678901234567890123456780000", "-1.2345678901234567890123456789012345678"),
        ("-0001.000e-130", "-0." + "0" * 129 + "1"),
    ],
)
def test_normalises_as_dynamodb_returns(text: str, expected: str) -> None:
    assert numbers.normalize_number(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", numbers.MSG_NOT_A_NUMBER + ": abc"),
        ("", numbers.MSG_NOT_A_NUMBER),
        ("NaN", numbers.MSG_NOT_A_NUMBER + ": NaN"),
        ("Infinity", numbers.MSG_NOT_A_NUMBER + ": Infinity"),
        ("-Infinity", numbers.MSG_NOT_A_NUMBER + ": -Infinity"),
        (" 1", numbers.MSG_NOT_A_NUMBER + ":  1"),
        ("1 ", numbers.MSG_NOT_A_NUMBER + ": 1 "),
        ("1_000", numbers.MSG_NOT_A_NUMBER + ": 1_000"),
        ("0x10", numbers.MSG_NOT_A_NUMBER + ": 0x10"),
        ("١", numbers.MSG_NOT_A_NUMBER + ": ١"),  # a non-ASCII digit
        ("123456789012345678901234567890123456789", numbers.MSG_TOO_PRECISE),
        ("-1.23456789012345678901234567890123456789", numbers.MSG_TOO_PRECISE),
        ("1E+126", numbers.MSG_OVERFLOW),
        ("-1E+126", numbers.MSG_OVERFLOW),
        ("11e125", numbers.MSG_OVERFLOW),
        ("9.9999999999999999999999999999999999999E-131", numbers.MSG_UNDERFLOW),
        ("1E-131", numbers.MSG_UNDERFLOW),
        ("-1e-131", numbers.MSG_UNDERFLOW),
        ("0.9e-130", numbers.MSG_UNDERFLOW),
        # Java's BigDecimal cannot hold an exponent past 32 bits: DynamoDB calls that no number at all.
        ("1e99999999999", numbers.MSG_NOT_A_NUMBER + ": 1e99999999999"),
        ("1e-2147483648", numbers.MSG_NOT_A_NUMBER + ": 1e-2147483648"),
        ("1e2147483647", numbers.MSG_OVERFLOW),
        # magnitude is checked before precision
        ("1234567890123456789012345678901234567891e200", numbers.MSG_OVERFLOW),
    ],
)
def test_rejects_one_past_each_limit(text: str, message: str) -> None:
    with pytest.raises(ValidationException) as err:
        numbers.normalize_number(text)
    assert err.value.message == message


def test_not_a_string_is_not_a_number() -> None:
    with pytest.raises(ValidationException) as err:
        numbers.parse_number(5)  # type: ignore[arg-type]
    assert err.value.message == numbers.MSG_NOT_A_NUMBER


def test_arithmetic_is_exact_and_checked() -> None:
    assert numbers.format_number(numbers.add(Decimal("0.1"), Decimal("0.2"))) == "0.3"
    assert numbers.format_number(numbers.subtract(Decimal("1E+22"), Decimal("1"))) == "9" * 22
    for a, b in [("1E+125", "1E-130"), ("9E+125", "9E+125"), ("1E+50", "1")]:
        with pytest.raises(ValidationException) as err:
            numbers.add(Decimal(a), Decimal(b))
        # DynamoDB reports an unrepresentable sum as an overflow even when it is a precision problem.
        assert err.value.message == numbers.MSG_OVERFLOW
    with pytest.raises(ValidationException) as err:
        numbers.subtract(Decimal("1E-130"), Decimal("1.5E-130"))
    assert err.value.message == numbers.MSG_UNDERFLOW


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("0", True),
        ("-0", False),
        ("1", True),
        ("-1", True),
        ("10", True),
        ("1.5", True),
        ("1.50", False),
        ("0.5", True),
        ("00.5", False),
        ("01", False),
        ("+1", False),
        ("1e3", False),
        (".5", False),
        ("5.", False),
        ("", False),
        ("-", False),
        ("1" * 38, True),
        ("1" * 39, False),
        ("0." + "0" * 36 + "1", True),
    ],
)
def test_is_normalized_recognises_the_cheap_case(text: str, normal: bool) -> None:
    assert numbers.is_normalized(text) is normal


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_round_trip_of_any_valid_number(value: Decimal) -> None:
    text = str(value)
    try:
        parsed = numbers.parse_number(text)
    except ValidationException:
        return
    normal = numbers.format_number(parsed)
    assert Decimal(normal) == value
    assert numbers.is_normalized(normal) or len(normal.lstrip("-").replace(".", "")) > 38
    assert numbers.normalize_number(normal) == normal


@given(st.text(alphabet="0123456789.-+eE", max_size=12))
def test_fast_path_agrees_with_the_exact_path(text: str) -> None:
    if numbers.is_normalized(text):
        assert numbers.format_number(numbers.parse_number(text)) == text
