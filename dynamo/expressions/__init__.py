"""DynamoDB's expression languages and their legacy parameters. Pure code.

Every call that parses takes the request's :class:`ExpressionContext` (its ExpressionAttributeNames and
ExpressionAttributeValues); parsing records which placeholders were used, and after parsing every
expression of the request the caller runs ``ctx.check_all_used()``. Errors are
:class:`dynamo.errors.ValidationException` with DynamoDB's messages.

Typical use (UpdateItem)::

    check_no_mixing(request, "UpdateItem")
    ctx = ExpressionContext(request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues"))
    update = parse_update(request["UpdateExpression"], ctx)
    condition = parse_condition(request["ConditionExpression"], ctx)       # if present
    ctx.check_all_used()
    ...                                                                      # at the leader, on the latest item
    if not evaluate(condition, old_item): raise ConditionalCheckFailedException()
    new_item, updated_old, updated_new = apply_update(old_item, update, key)

Public API:

* ``ExpressionContext(names, values)``; ``ctx.check_all_used()``.
* ``parse_condition(text, ctx, *, kind="ConditionExpression") -> Condition`` (``kind="FilterExpression"``
  for filters; ``parse_condition(text, names, values)`` also works and builds a context).
* ``evaluate(condition, item | None) -> bool``.
* ``parse_projection(text, ctx) -> Projection``; ``project(item, projection) -> item``.
* ``parse_update(text, ctx) -> Update``;
  ``apply_update(item | None, update, key) -> (new_item, updated_old, updated_new)``.
* ``parse_key_condition(text, ctx, hash_name, range_name, *, hash_type=None, range_type=None) -> KeyCondition``.
* Legacy: ``legacy_expected_to_condition(expected, conditional_operator)``,
  ``legacy_filter_to_condition(filter, conditional_operator, *, where="scanFilter"|"queryFilter")``,
  ``legacy_key_conditions(key_conditions, hash_name, range_name)``,
  ``legacy_attribute_updates(attribute_updates)``, ``attributes_to_get_projection(names)``,
  ``check_no_mixing(request, op)`` (``op`` a key of ``legacy.PARAMETER_STYLES``: an operation, or a
  TransactWriteItems action such as ``"Put"``).
* ``top_level_names(condition | projection | update) -> frozenset[str]``: the top-level attributes a
  resolved tree reads or writes (e.g. to refuse key attributes in a Query filter).

Parsing is cached by text (``functools.lru_cache``, bounded); placeholders are resolved per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynamo.errors import ValidationException
from dynamo.expressions.context import ExpressionContext
from dynamo.expressions.evaluate import evaluate
from dynamo.expressions.keycond import parse_key_condition
from dynamo.expressions.legacy import (
    attributes_to_get_projection,
    check_no_mixing,
    legacy_attribute_updates,
    legacy_expected_to_condition,
    legacy_filter_to_condition,
    legacy_key_conditions,
)
from dynamo.expressions.nodes import Condition, KeyCondition, Projection, RangeOp, Update, top_level_names
from dynamo.expressions.parser import (
    MAX_EXPRESSION_BYTES,
    MAX_IN_OPERANDS,
    MAX_PATH_DEPTH,
    parse_condition_text,
    parse_projection_text,
    parse_update_text,
)
from dynamo.expressions.project import project
from dynamo.expressions.resolve import resolve_condition, resolve_projection, resolve_update
from dynamo.expressions.update import apply_update

CONDITION_KINDS = frozenset({"ConditionExpression", "FilterExpression"})


def _require_text(text: object, kind: str) -> str:
    if not isinstance(text, str):
        raise ValidationException(f"Invalid {kind}: The expression must be a string")
    return text


def parse_condition(
    text: str,
    ctx: ExpressionContext | Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
    *,
    kind: str = "ConditionExpression",
) -> Condition:
    """Parse and resolve a ConditionExpression (or, with ``kind="FilterExpression"``, a filter)."""
    assert kind in CONDITION_KINDS, kind
    if not isinstance(ctx, ExpressionContext):
        ctx = ExpressionContext(ctx, values)
    return resolve_condition(parse_condition_text(_require_text(text, kind), kind), ctx, kind)


def parse_projection(text: str, ctx: ExpressionContext) -> Projection:
    kind = "ProjectionExpression"
    return resolve_projection(parse_projection_text(_require_text(text, kind)), ctx)


def parse_update(text: str, ctx: ExpressionContext) -> Update:
    kind = "UpdateExpression"
    return resolve_update(parse_update_text(_require_text(text, kind)), ctx)


__all__ = [
    "MAX_EXPRESSION_BYTES",
    "MAX_IN_OPERANDS",
    "MAX_PATH_DEPTH",
    "Condition",
    "ExpressionContext",
    "KeyCondition",
    "Projection",
    "RangeOp",
    "Update",
    "apply_update",
    "attributes_to_get_projection",
    "check_no_mixing",
    "evaluate",
    "legacy_attribute_updates",
    "legacy_expected_to_condition",
    "legacy_filter_to_condition",
    "legacy_key_conditions",
    "parse_condition",
    "parse_key_condition",
    "parse_projection",
    "parse_update",
    "project",
    "top_level_names",
]
