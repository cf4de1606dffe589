"""DynamoDB numbers: 38 significant digits, magnitudes from 1E-130 to below 1E+126.

Numbers travel as strings. We parse them exactly with ``Decimal`` (never float), check DynamoDB's limits and
hand back the normalised text DynamoDB itself returns: plain notation, no leading or trailing zeros, no
``+`` sign, ``-0`` as ``0``.

The messages and their order are DynamoDB's (pinned by dynalite's tests, which run against the real
service): magnitude is checked before precision, and a string that is not a number is echoed back.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation

from dynamo.errors import ValidationException

MAX_SIGNIFICANT_DIGITS = 38
# |x| must lie in [1E-130, 1E+126): the largest is 9.9999999999999999999999999999999999999E+125.
MIN_EXPONENT = -130
MAX_EXPONENT_EXCLUSIVE = 126
# DynamoDB parses numbers as Java BigDecimal does: an exponent that does not fit a 32-bit int is no number.
_MAX_JAVA_EXPONENT = 2**31 - 1

_NUMBER_RE = re.compile(r"([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?")
# Exact arithmetic room for any two valid numbers: their digits span at most 126 + 130 + 38 places.
_EXACT = Context(prec=400, Emax=10_000, Emin=-10_000)

# Followed by ": <the text>" when the text is not empty, as DynamoDB answers.
MSG_NOT_A_NUMBER = "The parameter cannot be converted to a numeric value"
MSG_TOO_PRECISE = "Attempting to store more than 38 significant digits in a Number"
MSG_OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"
MSG_UNDERFLOW = "Number underflow. Attempting to store a number with magnitude smaller than supported range"


def not_a_number(text: object) -> ValidationException:
    """DynamoDB's error for a string that is no number: the text is echoed unless it is empty."""
    if isinstance(text, str) and text:
        return ValidationException(f"{MSG_NOT_A_NUMBER}: {text}")
    return ValidationException(MSG_NOT_A_NUMBER)


def check_decimal(value: Decimal) -> Decimal:
    """Raise DynamoDB's ValidationException unless ``value`` is a storable number; return it unchanged."""
    if not value.is_finite():
        raise ValidationException(MSG_NOT_A_NUMBER)
    if value.is_zero():
        return value
    # adjusted() is the exponent of the most significant digit: 1.5E+3 -> 3.
    adjusted = value.adjusted()
    if adjusted >= MAX_EXPONENT_EXCLUSIVE:
        raise ValidationException(MSG_OVERFLOW)
    if adjusted < MIN_EXPONENT:
        raise ValidationException(MSG_UNDERFLOW)
    digits = value.normalize(_EXACT).as_tuple().digits
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        raise ValidationException(MSG_TOO_PRECISE)
    return value


def parse_number(text: str) -> Decimal:
    """Parse a DynamoDB number string exactly, raising ValidationException as DynamoDB does."""
    if not isinstance(text, str):
        raise not_a_number(text)
    match = _NUMBER_RE.fullmatch(text)
    if match is None:
        raise not_a_number(text)
    exponent = match.group(3)
    if exponent is not None and len(exponent) > 9 and abs(int(exponent)) > _MAX_JAVA_EXPONENT:
        raise not_a_number(text)
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid literals
        raise not_a_number(text) from exc
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


def is_normalized(text: str) -> bool:
    """True if ``text`` is already DynamoDB's normal form of a valid number (the cheap, common case).

    Only plain numbers with at most 38 digits in all are recognised; anything else (exponents, zeros to
    strip, a ``+``) answers False and goes the exact way. A False answer never means "invalid".
    """
    body = text[1:] if text[:1] == "-" else text
    if not body.isascii():
        return False
    whole, dot, fraction = body.partition(".")
    if not whole.isdigit() or (whole[0] == "0" and len(whole) > 1):
        return False
    if dot:
        if not fraction.isdigit() or fraction[-1] == "0":
            return False
    elif whole == "0" and body is not text:
        return False  # "-0" is written "0"
    return len(whole) + len(fraction) <= MAX_SIGNIFICANT_DIGITS


def normalize_number(text: str) -> str:
    """Validate a number string and return DynamoDB's normalised text for it."""
    if isinstance(text, str) and is_normalized(text):
        return text
    return format_number(parse_number(text))


def _check_result(value: Decimal) -> Decimal:
    # DynamoDB reports a sum that needs more than 38 digits (1E+50 + 1) as an overflow, not as a
    # precision error (observed against the service; see ScyllaDB's test_update_expression_plus_imprecise).
    try:
        return check_decimal(value)
    except ValidationException as exc:
        if exc.message == MSG_TOO_PRECISE:
            raise ValidationException(MSG_OVERFLOW) from None
        raise


def add(a: Decimal, b: Decimal) -> Decimal:
    """Exact a + b, validated as a storable number (UpdateExpression ``+`` and ADD)."""
    return _check_result(_EXACT.add(a, b))


def subtract(a: Decimal, b: Decimal) -> Decimal:
    """Exact a - b, validated as a storable number (UpdateExpression ``-``)."""
    return _check_result(_EXACT.subtract(a, b))
