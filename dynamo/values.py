"""DynamoDB attribute values: validation and normal form, comparison and equality.

An attribute value is DynamoDB JSON as orjson parses it: a dict with exactly one type key (``S``, ``N``,
``B``, ``BOOL``, ``NULL``, ``M``, ``L``, ``SS``, ``NS``, ``BS``). Validation answers the value in its stored
form (numbers normalised, everything else as given) and raises the error DynamoDB raises, with its exact
message:

* a JSON type the wire format cannot hold (``{"S": 5}``) is a ``SerializationException``, raised while the
  request is read, so it wins over any ``ValidationException`` anywhere in the same value;
* everything else is a ``ValidationException``, the first one met in document order.

Validation is on the hot path of every write, so a value that needs no normalising is returned as the very
same object, and containers are rebuilt only when a child changed.

Sources for the messages: dynalite's tests (they run against the real service), DynamoDB Local, and ScyllaDB
alternator's tests; see tests/unit/test_values.py.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from dynamo.errors import INVALID_PARAMETERS, DynamoError, SerializationException, ValidationException
from dynamo.numbers import is_normalized, normalize_number, not_a_number

TYPES = ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS")
_TYPES = frozenset(TYPES)
SCALAR_TYPES = frozenset(("S", "N", "B"))
SET_TYPES = frozenset(("SS", "NS", "BS"))

# DynamoDB nests documents 32 levels deep, the attribute itself being level 1: a map or list may sit at
# level 31 at most, so its elements reach level 32 (pinned against the service: 31 wrappers around a
# leaf pass, 32 fail).
MAX_NESTING_DEPTH = 32
MAX_ATTRIBUTE_NAME_BYTES = 65535

MSG_EMPTY_VALUE = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
MSG_MANY_TYPES = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
MSG_NULL_FALSE = INVALID_PARAMETERS + "Null attribute value types must have the value of true"
MSG_EMPTY_SS = INVALID_PARAMETERS + "An string set  may not be empty"  # sic: two spaces
MSG_EMPTY_NS = INVALID_PARAMETERS + "An number set  may not be empty"
MSG_EMPTY_BS = INVALID_PARAMETERS + "Binary sets should not be empty"
MSG_NS_DUPLICATES = "Input collection contains duplicates"
MSG_NESTING = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit"
MSG_EMPTY_NAME = "Empty attribute name"
MSG_NAME_TOO_LONG = "Attribute name is too large, must be less than 65536 bytes"
# A null inside a set: DynamoDB's wording for these is not pinned by any public test.
MSG_SS_NULL_MEMBER = INVALID_PARAMETERS + "An string set may not have a empty string as a member"
MSG_BS_NULL_MEMBER = INVALID_PARAMETERS + "Binary sets may not contain null or empty values"

# Wire-type (deserialisation) messages, as Coral's JSON reader words them.
_AV_CLASS = "com.amazonaws.dynamodb.v20120810.AttributeValue"
MSG_UNEXPECTED_VALUE = "Unexpected value type in payload"
MSG_UNEXPECTED_FIELD = "Unexpected field type"
MSG_STRUCT_NOT_EXPECTED = "Start of structure or map found where not expected"
MSG_AV_LIST = "Unrecognized collection type class " + _AV_CLASS
MSG_MAP_LIST = "Unrecognized collection type java.util.Map<java.lang.String, " + _AV_CLASS + ">"
MSG_NOT_BASE64 = "only base-64-encoded strings are convertible to bytes"
MSG_BAD_LAST_BASE64 = "Invalid last non-pad Base64 character dectected"  # sic
MSG_BAD_BOOLEAN_TEXT = "Unexpected token received from parser"

_BOOLEAN_TEXT = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}
_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


# ----------------------------------------------------------------------------------------------- errors


def _scalar_name(value: object) -> str:
    """The Jackson token name DynamoDB puts in a wire-type error for a JSON scalar."""
    if value is True:
        return "TRUE_VALUE"
    if value is False:
        return "FALSE_VALUE"
    if isinstance(value, int):
        return "NUMBER_VALUE"
    if isinstance(value, float):
        return "DECIMAL_VALUE"
    return "STRING_VALUE"


def wire_type_error(value: object, java_type: str) -> SerializationException:
    """The reader's error for a JSON value where a ``java.lang.<java_type>`` scalar (``"String"``,
    ``"Long"``, ``"Boolean"``...) is expected. Every JSON decimal (even ``1.0``) is a DECIMAL_VALUE token."""
    if isinstance(value, list):
        return SerializationException(f"Unrecognized collection type class java.lang.{java_type}")
    if isinstance(value, dict):
        return SerializationException(MSG_STRUCT_NOT_EXPECTED)
    return SerializationException(f"{_scalar_name(value)} cannot be converted to {java_type}")


def _wrong_string(value: object) -> SerializationException:
    return wire_type_error(value, "String")


def _wrong_blob(value: object) -> SerializationException:
    if isinstance(value, list):
        return SerializationException("Unrecognized collection type class java.nio.ByteBuffer")
    if isinstance(value, dict):
        return SerializationException(MSG_STRUCT_NOT_EXPECTED)
    return SerializationException(MSG_NOT_BASE64)


def _wrong_boolean(value: object) -> SerializationException:
    if isinstance(value, str):
        return SerializationException(MSG_BAD_BOOLEAN_TEXT)
    return wire_type_error(value, "Boolean")


def _wrong_list(value: object) -> SerializationException:
    if isinstance(value, dict):
        return SerializationException(MSG_STRUCT_NOT_EXPECTED)
    return SerializationException(MSG_UNEXPECTED_FIELD)


def _wrong_map(value: object) -> SerializationException:
    if isinstance(value, list):
        return SerializationException(MSG_MAP_LIST)
    return SerializationException(MSG_UNEXPECTED_FIELD)


def _wrong_value(value: object) -> SerializationException:
    if isinstance(value, list):
        return SerializationException(MSG_AV_LIST)
    return SerializationException(MSG_UNEXPECTED_VALUE)


def _absent_or(v: object, wrong: Callable[[object], SerializationException]) -> DynamoError:
    """A member given as JSON null is no member at all (the value is empty); any other JSON type that does
    not fit is the reader's error."""
    if v is None:
        return ValidationException(MSG_EMPTY_VALUE)
    return wrong(v)


def _at(err: DynamoError, step: str) -> DynamoError:
    """Prefix ``step`` to the error's ``path`` (where in the value it was found, for logs)."""
    inner = getattr(err, "path", "")
    err.path = step + inner if not inner or inner[0] == "[" else f"{step}.{inner}"  # type: ignore[attr-defined]
    return err


# ------------------------------------------------------------------------------------------- base64


def b64_length(text: str) -> int:
    """The number of bytes ``text`` (valid, padded base64) decodes to, without decoding it."""
    n = len(text)
    if n == 0:
        return 0
    return n // 4 * 3 - (text[-1] == "=") - (text[-2] == "=")


def _check_base64(text: str) -> None:
    """Raise DynamoDB's SerializationException unless ``text`` is canonical, padded base64."""
    if len(text) % 4:
        raise SerializationException(
            f"Base64 encoded length is expected a multiple of 4 bytes but found: {len(text)}"
        )
    if not text:
        return
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        for char in text:
            if char not in _BASE64_CHARS:
                raise SerializationException(f"Invalid Base64 character: '{char}'") from None
        # Only the padding is misplaced ("=+/="): DynamoDB words that as a bad last character.
        raise SerializationException(MSG_BAD_LAST_BASE64) from None
    # Non-zero bits after the last full byte ("Yh==") decode but are not canonical: DynamoDB refuses them.
    if binascii.b2a_base64(raw, newline=False) != text.encode("ascii"):
        raise SerializationException(MSG_BAD_LAST_BASE64)


def b64decode_value(text: str) -> bytes:
    """The raw bytes of a B value (or a BS member) that has been validated."""
    return binascii.a2b_base64(text)


# ---------------------------------------------------------------------------------------- validation


def validate_value(av: Any, *, path: str = "", depth: int = 1) -> dict[str, Any]:
    """Validate one attribute value; answer its normalised form (the same object when nothing changes).

    ``depth`` is the nesting level ``av`` sits at (a top-level attribute is 1). ``path`` names where the
    value came from; it is prefixed to the error's ``path`` attribute for logs, never to its message.
    Raises ``ValidationException`` or ``SerializationException`` exactly as DynamoDB does.
    """
    try:
        return _value(av, depth)
    except ValidationException as exc:
        # A wire-type problem anywhere in the value is found while reading the request, before any
        # validation: it wins over the validation error we met first.
        _find_wire_error(av)
        if path:
            _at(exc, path)
        raise
    except SerializationException as exc:
        if path:
            _at(exc, path)
        raise


def validate_item(item: Any) -> dict[str, dict[str, Any]]:
    """Validate a whole item (attribute name -> value); answer its normalised form.

    The item's size is not checked here: see ``dynamo.size.check_item_size``.
    """
    try:
        return _item(item)
    except ValidationException:
        _find_item_wire_error(item)
        raise


def _item(item: Any) -> dict[str, dict[str, Any]]:
    if type(item) is not dict:
        raise _wrong_map(item)
    out: dict[str, dict[str, Any]] | None = None
    for name, av in item.items():
        if not name:
            raise ValidationException(MSG_EMPTY_NAME)
        if len(name) > MAX_ATTRIBUTE_NAME_BYTES // 4 and len(name.encode("utf-8", "surrogatepass")) > (
            MAX_ATTRIBUTE_NAME_BYTES
        ):
            raise ValidationException(MSG_NAME_TOO_LONG)
        try:
            new = _value(av, 1)
        except DynamoError as exc:
            raise _at(exc, name) from None
        if new is not av and out is None:
            out = dict(item)
        if out is not None:
            out[name] = new
    return item if out is None else out


def _value(av: Any, depth: int) -> dict[str, Any]:
    if type(av) is not dict:
        if av is None:
            raise ValidationException(MSG_EMPTY_VALUE)
        raise _wrong_value(av)
    if len(av) != 1:
        return _odd_value(av, depth)
    ((tag, v),) = av.items()
    if tag == "S":
        if type(v) is str:
            return av
        raise _absent_or(v, _wrong_string)
    if tag == "N":
        if type(v) is str:
            if is_normalized(v):
                return av
            return {"N": normalize_number(v)}
        raise _absent_or(v, _wrong_string)
    if tag == "M":
        if type(v) is dict:
            if depth >= MAX_NESTING_DEPTH:
                raise ValidationException(MSG_NESTING)
            new_map = _map(v, depth + 1)
            return av if new_map is v else {"M": new_map}
        raise _absent_or(v, _wrong_map)
    if tag == "L":
        if type(v) is list:
            if depth >= MAX_NESTING_DEPTH:
                raise ValidationException(MSG_NESTING)
            new_list = _list(v, depth + 1)
            return av if new_list is v else {"L": new_list}
        raise _absent_or(v, _wrong_list)
    if tag == "BOOL":
        if type(v) is bool:
            return av
        return {"BOOL": _boolean(v)}
    if tag == "NULL":
        if v is True:
            return av
        if _boolean(v):
            return {"NULL": True}
        raise ValidationException(MSG_NULL_FALSE)
    if tag == "B":
        if type(v) is str:
            _check_base64(v)
            return av
        raise _absent_or(v, _wrong_blob)
    if tag == "SS":
        return _string_set(av, v)
    if tag == "NS":
        return _number_set(av, v)
    if tag == "BS":
        return _binary_set(av, v)
    # An unknown member is ignored by the reader: the value has no type at all.
    raise ValidationException(MSG_EMPTY_VALUE)


def _boolean(v: Any) -> bool:
    if type(v) is bool:
        return v
    if v is None:
        raise ValidationException(MSG_EMPTY_VALUE)
    if isinstance(v, str):
        parsed = _BOOLEAN_TEXT.get(v.lower())
        if parsed is not None:
            return parsed
    raise _wrong_boolean(v)


def _odd_value(av: dict[str, Any], depth: int) -> dict[str, Any]:
    """A value with zero or several members: unknown and null members are dropped as the reader does."""
    known = [(tag, v) for tag, v in av.items() if tag in _TYPES and v is not None]
    if not known:
        raise ValidationException(MSG_EMPTY_VALUE)
    # DynamoDB validates each member it holds before it notices there are several (dynalite pins
    # {"S": "a", "N": "b"} as a number error).
    checked = [_value({tag: v}, depth) for tag, v in known]
    if len(checked) > 1:
        raise ValidationException(MSG_MANY_TYPES)
    return checked[0]


def _map(m: dict[str, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] | None = None
    for name, child in m.items():
        try:
            new = _value(child, depth)
        except DynamoError as exc:
            raise _at(exc, name) from None
        if new is not child and out is None:
            out = dict(m)
        if out is not None:
            out[name] = new
    return m if out is None else out


def _list(items: list[Any], depth: int) -> list[Any]:
    out: list[Any] | None = None
    for index, child in enumerate(items):
        try:
            new = _value(child, depth)
        except DynamoError as exc:
            raise _at(exc, f"[{index}]") from None
        if new is not child and out is None:
            out = list(items)
        if out is not None:
            out[index] = new
    return items if out is None else out


def _set_members(v: Any) -> list[Any]:
    if type(v) is list:
        return v
    raise _absent_or(v, _wrong_list)


def _collection_text(members: list[str]) -> str:
    return "[" + ", ".join(members) + "]"


def _string_set(av: dict[str, Any], v: Any) -> dict[str, Any]:
    members = _set_members(v)
    for member in members:
        if type(member) is not str:
            if member is None:
                raise ValidationException(MSG_SS_NULL_MEMBER)
            raise _wrong_string(member)
    if not members:
        raise ValidationException(MSG_EMPTY_SS)
    if len(set(members)) != len(members):
        raise ValidationException(
            f"{INVALID_PARAMETERS}Input collection {_collection_text(members)} contains duplicates."
        )
    return av


def _number_set(av: dict[str, Any], v: Any) -> dict[str, Any]:
    members = _set_members(v)
    for member in members:
        if type(member) is not str and member is not None:
            raise _wrong_string(member)
    if not members:
        raise ValidationException(MSG_EMPTY_NS)
    normal: list[str] | None = None
    for index, member in enumerate(members):
        if member is None:
            raise not_a_number("")
        if is_normalized(member):
            continue
        if normal is None:
            normal = list(members)
        normal[index] = normalize_number(member)
    result = members if normal is None else normal
    # Normal forms are unique, so "1" and "1.0" collide here as they do in DynamoDB.
    if len(set(result)) != len(result):
        raise ValidationException(MSG_NS_DUPLICATES)
    return av if normal is None else {"NS": normal}


def _binary_set(av: dict[str, Any], v: Any) -> dict[str, Any]:
    members = _set_members(v)
    for member in members:
        if type(member) is not str:
            if member is None:
                raise ValidationException(MSG_BS_NULL_MEMBER)
            raise _wrong_blob(member)
        _check_base64(member)
    if not members:
        raise ValidationException(MSG_EMPTY_BS)
    # Canonical base64 (checked above) makes equal bytes equal text.
    if len(set(members)) != len(members):
        raise ValidationException(
            f"{INVALID_PARAMETERS}Input collection {_collection_text(members)}of type BS contains duplicates."  # sic
        )
    return av


# ------------------------------------------------------------------------- wire types (slow path)


def find_wire_error(av: Any) -> SerializationException | None:
    """The SerializationException DynamoDB's reader would raise for this attribute value, if any.

    Request validation calls this for every value of a request before reporting a ValidationException,
    since the whole request is read (and wire types checked) before anything is validated.
    """
    try:
        _find_wire_error(av)
    except SerializationException as exc:
        return exc
    return None


def find_item_wire_error(item: Any) -> SerializationException | None:
    """``find_wire_error`` for a whole item (attribute name -> value)."""
    try:
        _find_item_wire_error(item)
    except SerializationException as exc:
        return exc
    return None


def _find_item_wire_error(item: Any) -> None:
    if type(item) is not dict:
        raise _wrong_map(item)
    for child in item.values():
        _find_wire_error(child)


def _find_wire_error(av: Any) -> None:
    if av is None:
        return
    if type(av) is not dict:
        raise _wrong_value(av)
    for tag, v in av.items():
        if v is None:
            continue
        if tag in ("S", "N"):
            if type(v) is not str:
                raise _wrong_string(v)
        elif tag == "B":
            if type(v) is not str:
                raise _wrong_blob(v)
            _check_base64(v)
        elif tag in ("BOOL", "NULL"):
            if type(v) is not bool and not (isinstance(v, str) and v.lower() in _BOOLEAN_TEXT):
                raise _wrong_boolean(v)
        elif tag == "M":
            _find_item_wire_error(v)
        elif tag in ("L", "SS", "NS", "BS"):
            if type(v) is not list:
                raise _wrong_list(v)
            for member in v:
                if tag == "L":
                    _find_wire_error(member)
                elif member is not None and tag != "BS" and type(member) is not str:
                    raise _wrong_string(member)
                elif member is not None and tag == "BS":
                    if type(member) is not str:
                        raise _wrong_blob(member)
                    _check_base64(member)


# ------------------------------------------------------------------------------ reading values
#
# Everything below takes values that were validated (by ``validate_value``, or stored after it): numbers
# are read with a bare ``Decimal()`` (parse_number's checks would triple the cost of a comparison on the
# hot path of conditions), and a binary's canonical base64 text stands for its bytes, so equal bytes are
# equal text. Numbers need not be in normal form: "1.0" and "1" compare equal.


def value_type(av: dict[str, Any]) -> str:
    """The type key of a validated value: ``"S"``, ``"N"``, ..., ``"BS"``."""
    for tag in av:
        return tag
    raise AssertionError("an attribute value with no type")


def number_value(av: dict[str, Any]) -> Decimal:
    """The exact number held by a validated N value."""
    return Decimal(av["N"])


def set_member_key(set_type: str, member: str) -> str | Decimal:
    """What makes two members of a validated set the same member: an NS member's number, else its text."""
    return Decimal(member) if set_type == "NS" else member


def sort_key(av: dict[str, Any]) -> str | Decimal | bytes:
    """A Python key that orders S, N or B values as DynamoDB orders them (S and B by bytes, N by value).

    For S, code-point order is UTF-8 byte order, so the string itself is the key.
    """
    tag = value_type(av)
    if tag == "S":
        return str(av["S"])
    if tag == "N":
        return Decimal(av["N"])
    assert tag == "B", f"{tag} values have no order"
    return b64decode_value(av["B"])


def compare_values(a: dict[str, Any], b: dict[str, Any]) -> int | None:
    """-1, 0 or 1 as DynamoDB orders two values; None when they are not comparable.

    Only two values of the same scalar type (S, N or B) compare: any other pair answers None (a condition
    such as ``a < b`` on them is simply false).
    """
    ta = value_type(a)
    if ta != value_type(b) or ta not in SCALAR_TYPES:
        return None
    va, vb = a[ta], b[ta]
    if va == vb:
        return 0
    if ta == "S":
        return -1 if va < vb else 1
    if ta == "N":
        da, db = Decimal(va), Decimal(vb)
        return (da > db) - (da < db)
    ba, bb = b64decode_value(va), b64decode_value(vb)
    return (ba > bb) - (ba < bb)


def values_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """DynamoDB equality of two validated values: same type, N by value, sets unordered, L and M deep."""
    ta = value_type(a)
    if ta != value_type(b):
        return False
    va, vb = a[ta], b[ta]
    if ta in ("S", "B", "BOOL", "NULL"):
        return bool(va == vb)
    if ta == "N":
        return va == vb or Decimal(va) == Decimal(vb)
    if ta == "SS" or ta == "BS":
        return len(va) == len(vb) and set(va) == set(vb)
    if ta == "NS":
        return len(va) == len(vb) and {Decimal(x) for x in va} == {Decimal(x) for x in vb}
    if ta == "L":
        return len(va) == len(vb) and all(values_equal(x, y) for x, y in zip(va, vb, strict=True))
    assert ta == "M", ta
    return va.keys() == vb.keys() and all(values_equal(va[k], vb[k]) for k in va)


def describe_value(av: dict[str, Any]) -> str:
    """A scalar value as DynamoDB's messages show it: ``AttributeValue: {N:5}``."""
    tag = value_type(av)
    return f"AttributeValue: {{{tag}:{av[tag]}}}"
