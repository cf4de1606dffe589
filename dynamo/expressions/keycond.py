"""KeyConditionExpression: parsed with the condition grammar (as DynamoDB does), then narrowed to what
Query can serve: ``hash = :v`` and at most one sort-key condition."""

from __future__ import annotations

from typing import Any

from dynamo.errors import INVALID_PARAMETERS, ValidationException
from dynamo.expressions.context import ExpressionContext
from dynamo.expressions.nodes import (
    And,
    Between,
    Compare,
    CompareOp,
    Condition,
    Function,
    In,
    KeyCondition,
    Literal,
    Not,
    Or,
    Path,
    RangeOp,
    Value,
)
from dynamo.expressions.parser import parse_condition_text
from dynamo.expressions.resolve import resolve_condition
from dynamo.values import value_type

KIND = "KeyConditionExpression"
MAX_KEY_CONDITIONS = 2
_RANGE_OPS = {
    CompareOp.EQ: RangeOp.EQ,
    CompareOp.LT: RangeOp.LT,
    CompareOp.LE: RangeOp.LE,
    CompareOp.GT: RangeOp.GT,
    CompareOp.GE: RangeOp.GE,
}
# ``:v < k`` means ``k > :v``.
_FLIPPED = {
    CompareOp.EQ: CompareOp.EQ,
    CompareOp.LT: CompareOp.GT,
    CompareOp.LE: CompareOp.GE,
    CompareOp.GT: CompareOp.LT,
    CompareOp.GE: CompareOp.LE,
}
MSG_NOT_SUPPORTED = "Query key condition not supported"
MSG_TYPE = INVALID_PARAMETERS + "Condition parameter type does not match schema type"


def _fail(message: str) -> ValidationException:
    return ValidationException(f"Invalid {KIND}: {message}")


def _flatten(node: Condition, out: list[Condition]) -> None:
    if isinstance(node, And):
        _flatten(node.left, out)
        _flatten(node.right, out)
    else:
        out.append(node)


def _key_name(path: Path) -> str:
    if len(path.elements) != 1:
        raise _fail("KeyConditionExpressions cannot have conditions on nested attributes")
    name = path.elements[0]
    assert isinstance(name, str)
    return name


def _one(node: Condition) -> tuple[str, RangeOp, tuple[dict[str, Any], ...]]:
    """One primitive key condition as (attribute, operator, values)."""
    if isinstance(node, Or):
        raise _fail("Invalid operator used in KeyConditionExpression: OR")
    if isinstance(node, Not):
        raise _fail("Invalid operator used in KeyConditionExpression: NOT")
    if isinstance(node, In):
        raise _fail("Invalid operator used in KeyConditionExpression: IN")
    if isinstance(node, Compare):
        if node.op is CompareOp.NE:
            raise _fail("Invalid operator used in KeyConditionExpression: <>")
        left, right = node.left, node.right
        op: CompareOp = node.op
        if isinstance(left, Value) and isinstance(right, Path):
            left, right, op = right, left, _FLIPPED[op]
        if not isinstance(left, Path) or not isinstance(right, Value):
            raise ValidationException(MSG_NOT_SUPPORTED)
        assert right.value is not None
        return _key_name(left), _RANGE_OPS[op], (right.value,)
    if isinstance(node, Between):
        if not isinstance(node.operand, Path) or not isinstance(node.low, Value) or not isinstance(node.high, Value):
            raise ValidationException(MSG_NOT_SUPPORTED)
        assert node.low.value is not None and node.high.value is not None
        return _key_name(node.operand), RangeOp.BETWEEN, (node.low.value, node.high.value)
    if isinstance(node, Function):
        if node.name != "begins_with":
            raise _fail(f"Invalid operator used in KeyConditionExpression: {node.name}")
        path, prefix = node.args
        if not isinstance(path, Path) or not isinstance(prefix, Value):
            raise ValidationException(MSG_NOT_SUPPORTED)
        assert prefix.value is not None
        return _key_name(path), RangeOp.BEGINS_WITH, (prefix.value,)
    assert isinstance(node, Literal)
    raise ValidationException(MSG_NOT_SUPPORTED)


def key_condition_from_parts(
    parts: list[tuple[str, RangeOp, tuple[dict[str, Any], ...]]],
    hash_name: str,
    range_name: str | None,
    hash_type: str | None = None,
    range_type: str | None = None,
) -> KeyCondition:
    """Check the (attribute, operator, values) conditions against the key schema. Shared with KeyConditions."""
    if len(parts) > MAX_KEY_CONDITIONS:
        raise ValidationException("Conditions can be of length 1 or 2 only")
    names = [name for name, _, _ in parts]
    if len(set(names)) != len(names):
        raise _fail("KeyConditionExpressions must only contain one condition per key")
    by_name = {name: (op, values) for name, op, values in parts}
    if hash_name not in by_name:
        raise ValidationException(f"Query condition missed key schema element: {hash_name}")
    hash_op, hash_values = by_name.pop(hash_name)
    if hash_op is not RangeOp.EQ:
        raise ValidationException(MSG_NOT_SUPPORTED)
    if hash_type is not None and value_type(hash_values[0]) != hash_type:
        raise ValidationException(MSG_TYPE)
    if not by_name:
        return KeyCondition(hash_values[0])
    ((other, (range_op, range_values)),) = by_name.items()
    if range_name is None or other != range_name:
        raise ValidationException(f"Query condition missed key schema element: {range_name or other}")
    for value in range_values:
        kind = value_type(value)
        if range_type is not None and kind != range_type:
            raise ValidationException(MSG_TYPE)
    return KeyCondition(hash_values[0], range_op, range_values)


def parse_key_condition(
    text: str,
    ctx: ExpressionContext,
    hash_name: str,
    range_name: str | None,
    *,
    hash_type: str | None = None,
    range_type: str | None = None,
) -> KeyCondition:
    """Parse a KeyConditionExpression for a table or index whose key is (hash_name, range_name).

    ``hash_type``/``range_type`` (``"S"``, ``"N"`` or ``"B"``), when given, also check the values' types.
    """
    if not isinstance(text, str):
        raise ValidationException(f"Invalid {KIND}: The expression must be a string")
    tree = resolve_condition(parse_condition_text(text, KIND), ctx, KIND)
    primitives: list[Condition] = []
    _flatten(tree, primitives)
    parts = [_one(node) for node in primitives]
    return key_condition_from_parts(parts, hash_name, range_name, hash_type, range_type)
