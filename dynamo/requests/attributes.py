"""The call point for attribute-value validation inside requests.

Request validation (this package) checks the SHAPE of a request; what an AttributeValue holds (number
limits, base64, empty sets, duplicates, nesting depth) is checked by the shared value validator
(``dynamo.values``). Values are normalised *in place* (numbers to DynamoDB's canonical text), so every later
stage (routing, hashing, storing) sees the canonical form without copying the request.
"""

from __future__ import annotations

from typing import Any

from dynamo import values
from dynamo.expressions.context import check_expression_values


def _replace(target: dict[str, Any], normalised: dict[str, Any]) -> None:
    if normalised is not target:
        target.clear()
        target.update(normalised)


def validate_value(value: Any) -> None:
    """One AttributeValue (an ExpressionAttributeValues entry, a legacy comparison value)."""
    _replace(value, values.validate_value(value))


def validate_item(item: dict[str, Any]) -> None:
    """A whole item (PutItem's Item). The 400 KB limit is checked where the item is routed."""
    _replace(item, values.validate_item(item))


def validate_key(key: dict[str, Any]) -> None:
    """A primary key's values (GetItem's Key, ExclusiveStartKey); matching the schema needs the table."""
    _replace(key, values.validate_item(key))


def validate_expression_values(expression_values: dict[str, Any]) -> None:
    """ExpressionAttributeValues, with DynamoDB's wording naming the placeholder; normalised in place."""
    normalised = check_expression_values(expression_values)
    if normalised is not expression_values:
        expression_values.update(normalised)
