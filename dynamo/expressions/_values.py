"""Private helpers on attribute values: type, equality, order, size, and a structural check.

Kept inside the package on purpose (the shared value helpers live elsewhere); numbers go through
``dynamo.numbers`` so comparisons are exact, binaries are compared as decoded bytes.
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from typing import Any

from dynamo.errors import ValidationException
from dynamo.numbers import MSG_NOT_A_NUMBER, parse_number

TYPES = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
SET_TYPES = frozenset({"SS", "NS", "BS"})
# DynamoDB's long names, used by the ADD and DELETE messages.
LONG_NAMES = {
    "S": "STRING",
    "N": "NUMBER",
    "B": "BINARY",
    "SS": "STRING SET",
    "NS": "NUMBER SET",
    "BS": "BINARY SET",
    "M": "MAP",
    "L": "LIST",
    "NULL": "NULL",
    "BOOL": "BOOLEAN",
}
MAX_VALUE_DEPTH = 32
_EMPTY = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
_MANY = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"


def type_of(value: dict[str, Any]) -> str:
    for key in value:
        return key
    raise AssertionError("an attribute value without a type reached evaluation")


def decode_binary(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValidationException("Invalid Base64 value")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationException("Invalid Base64 value") from exc


# Values reaching comparison were validated already (ExpressionContext, or the item's own validation), so
# numbers are read with a bare Decimal(): parse_number's checks would triple the cost of a comparison.
def number(value: dict[str, Any]) -> Decimal:
    return Decimal(value["N"])


def set_key(kind: str, element: Any) -> Any:
    if kind == "NS":
        return Decimal(element)
    if kind == "BS":
        return decode_binary(element)
    return element


def equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    kind = type_of(a)
    if kind != type_of(b):
        return False
    x, y = a[kind], b[kind]
    if kind in ("S", "BOOL", "NULL"):
        return bool(x == y)
    if kind == "N":
        return x == y or Decimal(x) == Decimal(y)
    if kind == "B":
        return x == y or decode_binary(x) == decode_binary(y)
    if kind in SET_TYPES:
        return len(x) == len(y) and {set_key(kind, e) for e in x} == {set_key(kind, e) for e in y}
    if kind == "L":
        return len(x) == len(y) and all(equal(p, q) for p, q in zip(x, y, strict=True))
    assert kind == "M", kind
    return x.keys() == y.keys() and all(equal(x[k], y[k]) for k in x)


def order_key(value: dict[str, Any]) -> tuple[str, Any] | None:
    """A key that orders values of the same scalar type (S by code point = UTF-8 order); None if unordered."""
    kind = type_of(value)
    if kind == "N":
        return kind, Decimal(value["N"])
    if kind == "S":
        return kind, value["S"]
    if kind == "B":
        return kind, decode_binary(value["B"])
    return None


def size(value: dict[str, Any]) -> int | None:
    """DynamoDB's size(): bytes of S and B, elements of sets, L and M; None for N, BOOL and NULL."""
    kind = type_of(value)
    x = value[kind]
    if kind == "S":
        return len(x.encode("utf-8"))
    if kind == "B":
        return len(decode_binary(x))
    if kind in SET_TYPES or kind in ("L", "M"):
        return len(x)
    return None


def set_contains(kind: str, elements: list[Any], element: dict[str, Any]) -> bool:
    """Whether a set of type ``kind`` holds the scalar ``element``."""
    want = {"SS": "S", "NS": "N", "BS": "B"}[kind]
    if type_of(element) != want:
        return False
    key = set_key(kind, element[want])
    return any(set_key(kind, e) == key for e in elements)


def describe(value: dict[str, Any]) -> str:
    """The ``AttributeValue: {N:5}`` form of DynamoDB's BETWEEN messages."""
    kind = type_of(value)
    return f"AttributeValue: {{{kind}:{value[kind]}}}"


def check_value(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not a well-formed attribute value (a DynamoDB message), or None if it is."""
    if not isinstance(value, dict) or not value:
        return _EMPTY
    if len(value) != 1:
        return _MANY
    if depth > MAX_VALUE_DEPTH:
        return "Nesting Levels have exceeded supported limits"
    kind, x = next(iter(value.items()))
    try:
        if kind == "S":
            return None if isinstance(x, str) else _EMPTY
        if kind == "N":
            if not isinstance(x, str):
                return MSG_NOT_A_NUMBER
            parse_number(x)
            return None
        if kind == "B":
            decode_binary(x)
            return None
        if kind == "BOOL":
            return None if isinstance(x, bool) else _EMPTY
        if kind == "NULL":
            return None if x is True else "One or more parameter values were invalid: Null attribute value types must have the value of true"
        if kind in SET_TYPES:
            if not isinstance(x, list):
                return _EMPTY
            if not x:
                name = {"SS": "string", "NS": "number", "BS": "binary"}[kind]
                return f"One or more parameter values were invalid: An {name} set  may not be empty"
            keys = []
            for element in x:
                if kind == "SS" and not isinstance(element, str):
                    return _EMPTY
                keys.append(parse_number(element) if kind == "NS" else set_key(kind, element))
            if len(set(keys)) != len(keys):
                return "One or more parameter values were invalid: Input collection contains duplicates"
            return None
        if kind == "L":
            if not isinstance(x, list):
                return _EMPTY
            for element in x:
                why = check_value(element, depth + 1)
                if why is not None:
                    return why
            return None
        if kind == "M":
            if not isinstance(x, dict):
                return _EMPTY
            for element in x.values():
                why = check_value(element, depth + 1)
                if why is not None:
                    return why
            return None
    except ValidationException as exc:
        return exc.message
    return _EMPTY
