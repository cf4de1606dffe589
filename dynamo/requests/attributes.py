"""The call point for attribute-value validation inside requests.

Request validation (this package) checks the SHAPE of a request; what an AttributeValue holds (number
limits, base64, empty sets, duplicates, nesting depth, item size) belongs to the shared value validator
(``dynamo.values`` / ``dynamo.items``). Every operation validator calls only the three functions below, so
wiring the shared validator in at merge is a change to this file alone.

Until then these do the minimum a front door needs: every value is an object with exactly one known type.
"""

from __future__ import annotations

from typing import Any

from dynamo.errors import ValidationException

VALUE_TYPES = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})

MSG_EMPTY = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
MSG_SEVERAL = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"


def validate_value(value: Any) -> None:
    """One AttributeValue, e.g. an ExpressionAttributeValues entry. MERGE: call dynamo.values.validate_value."""
    if not isinstance(value, dict):
        raise ValidationException(MSG_EMPTY)
    present = [key for key in value if key in VALUE_TYPES and value[key] is not None]
    if not present:
        raise ValidationException(MSG_EMPTY)
    if len(present) > 1:
        raise ValidationException(MSG_SEVERAL)
    kind = present[0]
    if kind == "M":
        for member in value["M"].values() if isinstance(value["M"], dict) else ():
            validate_value(member)
    elif kind == "L":
        for member in value["L"] if isinstance(value["L"], list) else ():
            validate_value(member)


def validate_item(item: dict[str, Any]) -> None:
    """A whole item (PutItem's Item). MERGE: call dynamo.items.validate_item (adds the 400 KB size limit)."""
    for value in item.values():
        validate_value(value)


def validate_key(key: dict[str, Any]) -> None:
    """A primary key (GetItem's Key, ExclusiveStartKey). Matching it to the table's schema needs the table,
    so the backend does that; here only the values. MERGE: call dynamo.values.validate_value."""
    for value in key.values():
        validate_value(value)
