"""ExpressionAttributeNames and ExpressionAttributeValues of one request, and which of them were used.

A request may carry several expressions (e.g. UpdateExpression + ConditionExpression) sharing one set of
placeholders; each parse marks what it used, and :meth:`ExpressionContext.check_all_used` then raises
DynamoDB's "unused" errors for the request as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dynamo.errors import ValidationException
from dynamo.values import find_item_wire_error, validate_value

_NAME_KEY = re.compile(r"#[A-Za-z0-9_]+")
_VALUE_KEY = re.compile(r":[A-Za-z0-9_]+")


def check_expression_names(names: Mapping[str, Any]) -> None:
    """Raise DynamoDB's error unless ExpressionAttributeNames is a non-empty map of ``#name`` keys to
    non-empty attribute names."""
    if not isinstance(names, Mapping):
        raise ValidationException("ExpressionAttributeNames must be a map")
    if not names:
        raise ValidationException("ExpressionAttributeNames must not be empty")
    for key, name in names.items():
        if not isinstance(key, str) or _NAME_KEY.fullmatch(key) is None:
            raise ValidationException(f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}"')
        if not isinstance(name, str) or not name:
            raise ValidationException(
                f"ExpressionAttributeNames contains invalid value: Empty attribute name; for key {key}"
            )


def check_expression_value_keys(values: Mapping[str, Any]) -> None:
    """Raise DynamoDB's error unless ExpressionAttributeValues is a non-empty map with ``:name`` keys. Every
    key is checked before any value (dynalite's order, pinned against the service)."""
    if not isinstance(values, Mapping):
        raise ValidationException("ExpressionAttributeValues must be a map")
    if not values:
        raise ValidationException("ExpressionAttributeValues must not be empty")
    for key in values:
        if not isinstance(key, str) or _VALUE_KEY.fullmatch(key) is None:
            raise ValidationException(f'ExpressionAttributeValues contains invalid key: Syntax error; key: "{key}"')


def invalid_expression_value(key: str, exc: ValidationException) -> ValidationException:
    """A value's ValidationException as DynamoDB words it inside ExpressionAttributeValues."""
    return ValidationException(f"ExpressionAttributeValues contains invalid value: {exc.message} for key {key}")


def check_expression_values(values: Mapping[str, Any]) -> Mapping[str, dict[str, Any]]:
    """Validate ExpressionAttributeValues; answer them with every value in normal form (the same mapping
    when nothing changed). A SerializationException (a JSON type the wire cannot hold, in any value) wins
    over a ValidationException and is raised as it is."""
    check_expression_value_keys(values)
    normal: dict[str, dict[str, Any]] | None = None
    for key, value in values.items():
        try:
            checked = validate_value(value)
        except ValidationException as exc:
            # The whole request is read before anything is validated: a wire-type error in any value wins.
            wire = find_item_wire_error(dict(values))
            if wire is not None:
                raise wire from None
            raise invalid_expression_value(key, exc) from exc
        if checked is not value and normal is None:
            normal = dict(values)
        if normal is not None:
            normal[key] = checked
    return values if normal is None else normal


class ExpressionContext:
    """Placeholders of one request. Not thread-safe; one per request."""

    __slots__ = ("names", "values", "used_names", "used_values")

    def __init__(self, names: Mapping[str, Any] | None = None, values: Mapping[str, Any] | None = None) -> None:
        if names is not None:
            check_expression_names(names)
        if values is not None:
            values = check_expression_values(values)
        self.names: Mapping[str, str] = names or {}
        self.values: Mapping[str, dict[str, Any]] = values or {}
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()

    def name(self, ref: str, kind: str) -> str:
        try:
            name = self.names[ref]
        except KeyError:
            raise ValidationException(
                f"Invalid {kind}: An expression attribute name used in the document path is not defined; "
                f"attribute name: {ref}"
            ) from None
        self.used_names.add(ref)
        return name

    def value(self, ref: str, kind: str) -> dict[str, Any]:
        try:
            value = self.values[ref]
        except KeyError:
            raise ValidationException(
                f"Invalid {kind}: An expression attribute value used in expression is not defined; "
                f"attribute value: {ref}"
            ) from None
        self.used_values.add(ref)
        return value

    def check_all_used(self) -> None:
        """Raise DynamoDB's error for placeholders that no expression of the request used."""
        unused_names = sorted(set(self.names) - self.used_names)
        if unused_names:
            raise ValidationException(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {" + ", ".join(unused_names) + "}"
            )
        unused_values = sorted(set(self.values) - self.used_values)
        if unused_values:
            raise ValidationException(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {"
                + ", ".join(unused_values)
                + "}"
            )
