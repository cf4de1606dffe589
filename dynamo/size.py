"""Item size, byte for byte as DynamoDB counts it: for the 400 KB item limit and for capacity units.

The rules (DynamoDB developer guide, "Item sizes and formats", made exact by the tests in dynalite's suite
that run against the service and by DynamoDB Local's encoder):

* an attribute costs its name's UTF-8 bytes plus its value;
* S: UTF-8 bytes; B: raw bytes (not the base64 text); BOOL and NULL: 1 byte;
* N: the length of DynamoDB's base-100 encoding: 1 exponent byte, one byte per pair of significant digits
  (pairs aligned on the decimal point, so 1.5 takes two and 15 one), and one terminator byte for a
  negative number that has fewer than 20 digit bytes; zero is 1 byte;
* SS, NS, BS: the sum of their members (no overhead);
* L and M: 3 bytes, plus 1 byte per element, plus the elements (for M, each with its name).

Values must be validated (``dynamo.values``) first: numbers in normal form, binaries canonical base64.
"""

from __future__ import annotations

from typing import Any

from dynamo.errors import ValidationException
from dynamo.values import b64_length

MAX_ITEM_BYTES = 400 * 1024  # 409,600: an item of exactly this size is accepted
MSG_ITEM_TOO_LARGE = "Item size has exceeded the maximum allowed size"
MSG_UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"

_DOCUMENT_OVERHEAD = 3
_ELEMENT_OVERHEAD = 1
_MAX_NUMBER_DIGIT_BYTES = 20


def utf8_length(text: str) -> int:
    """UTF-8 byte length of ``text``, without encoding it when it is ASCII."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def number_size(text: str) -> int:
    """Bytes DynamoDB stores for a number given in normal form (``dynamo.numbers.normalize_number``)."""
    if text == "0":
        return 1
    if len(text) < 3 and text.isdigit():
        return 2  # one or two digits on the integer side of the point: one digit byte
    negative = text[0] == "-"
    body = text[1:] if negative else text
    whole, _, fraction = body.partition(".")
    if whole == "0":
        digits = fraction.lstrip("0")
        # 0.00123: the first significant digit is at 10^-3.
        adjusted = len(digits) - len(fraction) - 1
    else:
        digits = (whole + fraction).rstrip("0")
        adjusted = len(whole) - 1
    # Digits are paired from the decimal point: an even exponent leaves the first digit alone in its byte.
    digit_bytes = (len(digits) + (adjusted % 2 == 0) + 1) // 2
    terminator = negative and digit_bytes < _MAX_NUMBER_DIGIT_BYTES
    return 1 + digit_bytes + terminator


def value_size(av: dict[str, Any]) -> int:
    """Bytes of one validated attribute value (without its name)."""
    ((tag, v),) = av.items()
    if tag == "S":
        return len(v) if v.isascii() else utf8_length(v)
    if tag == "N":
        return number_size(v)
    if tag == "M":
        total = _DOCUMENT_OVERHEAD
        for name, child in v.items():
            total += (
                _ELEMENT_OVERHEAD + (len(name) if name.isascii() else utf8_length(name)) + value_size(child)
            )
        return total
    if tag == "L":
        total = _DOCUMENT_OVERHEAD
        for child in v:
            total += _ELEMENT_OVERHEAD + value_size(child)
        return total
    if tag == "BOOL" or tag == "NULL":
        return 1
    if tag == "B":
        return b64_length(v)
    total = 0
    if tag == "SS":
        for member in v:
            total += len(member) if member.isascii() else utf8_length(member)
    elif tag == "NS":
        for member in v:
            total += number_size(member)
    else:
        assert tag == "BS", f"not an attribute value type: {tag}"
        for member in v:
            total += b64_length(member)
    return total


def item_size(item: dict[str, dict[str, Any]] | None) -> int:
    """Bytes of a validated item: every attribute's name and value. An absent item weighs 0."""
    total = 0
    if item:
        for name, av in item.items():
            total += (len(name) if name.isascii() else utf8_length(name)) + value_size(av)
    return total


def check_item_size(item: dict[str, dict[str, Any]], *, update: bool = False) -> int:
    """Answer the item's size; raise DynamoDB's ValidationException past 400 KB.

    ``update`` picks the message UpdateItem uses for the item it would produce.
    """
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise ValidationException(MSG_UPDATE_TOO_LARGE if update else MSG_ITEM_TOO_LARGE)
    return size
