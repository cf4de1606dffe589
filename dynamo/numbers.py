"""DynamoDB numbers: 38 significant digits, magnitudes from 1E-130 to below 1E+126.

Numbers travel as strings. We parse them exactly with ``Decimal`` (never float), check DynamoDB's limits and
hand back the normalised text DynamoDB itself returns: plain notation, no leading or trailing zeros, no
``+`` sign, ``-0`` as ``0``.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation

from dynamo.errors import ValidationException

MAX_SIGNIFICANT_DIGITS = 38
# |x| must lie in [1E-130, 1E+126): the largest is 9.9999999999999999999999999999999999999E+125.
MIN_EXPONENT = -130
MAX_EXPONENT_EXCLUSIVE = 126

_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# Exact arithmetic room for any two valid numbers: their digits span at most 126 + 130 + 38 places.
_EXACT = Context(prec=400, Emax=10_000, Emin=-10_000)

MSG_NOT_A_NUMBER = "A value provided cannot be converted into a number"
MSG_TOO_PRECISE = "Attempting to store more than 38 significant digits in a Number"
MSG_OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"
MSG_UNDERFLOW = "Number underflow. Attempting to store a number with magnitude smaller than supported range"


def check_decimal(value: Decimal) -> Decimal:
    """Raise DynamoDB's ValidationException unless ``value`` is a storable number; return it unchanged."""
    if not value.is_finite():
        raise ValidationException(MSG_NOT_A_NUMBER)
    if value.is_zero():
        return value
    sign, digits, exponent = value.normalize(_EXACT).as_tuple()
    assert isinstance(exponent, int)
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        raise ValidationException(MSG_TOO_PRECISE)
    # adjusted() is the exponent of the most significant digit: 1.5E+3 -> 3.
    adjusted = value.adjusted()
    if adjusted >= MAX_EXPONENT_EXCLUSIVE:
        raise ValidationException(MSG_OVERFLOW)
    if adjusted < MIN_EXPONENT:
        raise ValidationException(MSG_UNDERFLOW)
    return value


def parse_number(text: str) -> Decimal:
    """Parse a DynamoDB number string exactly, raising ValidationException as DynamoDB does."""
    if not isinstance(text, str) or _NUMBER_RE.fullmatch(text) is None:
        raise ValidationException(MSG_NOT_A_NUMBER)
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid literals
        raise ValidationException(MSG_NOT_A_NUMBER) from exc
    return check_decimal(value)


def format_number(value: Decimal) -> str:
    """The text DynamoDB returns for a number: plain notation, trailing zeros dropped."""
    if value.is_zero():
        return "0"
    normal = value.normalize(_EXACT)
    sign, digits, exponent = normal.as_tuple()
    assert isinstance(exponent, int)
    digit_text = "".join(map(str, digits))
    if exponent >= 0:
        body = digit_text + "0" * exponent
    else:
        point = len(digit_text) + exponent
        if point > 0:
            body = digit_text[:point] + "." + digit_text[point:]
        else:
            body = "0." + "0" * (-point) + digit_text
    return ("-" if sign else "") + body


def normalize_number(text: str) -> str:
    """Validate a number string and return DynamoDB's normalised text for it."""
    return format_number(parse_number(text))


def add(a: Decimal, b: Decimal) -> Decimal:
    """Exact a + b, validated as a storable number (UpdateExpression ``+`` and ADD)."""
    return check_decimal(_EXACT.add(a, b))


def subtract(a: Decimal, b: Decimal) -> Decimal:
    """Exact a - b, validated as a storable number (UpdateExpression ``-``)."""
    return check_decimal(_EXACT.subtract(a, b))
