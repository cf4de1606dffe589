"""Evaluate a resolved condition against an item (or None for a missing item). Never mutates the item.

Semantics (DynamoDB's): an operand that names a missing attribute, or comparing values of different
types, makes a comparison false rather than an error; ``<>`` is true unless both sides exist and are
equal; ordering comparisons apply only to N, S and B.
"""

from __future__ import annotations

from typing import Any

from dynamo.expressions.nodes import (
    And,
    Between,
    Call,
    Compare,
    CompareOp,
    Condition,
    Function,
    In,
    Item,
    Literal,
    Not,
    Operand,
    Or,
    Path,
    PathElement,
    Value,
)
from dynamo.size import value_size
from dynamo.values import SET_TYPES, b64decode_value, compare_values, set_member_key, value_type, values_equal


def get_path(item: Item | None, elements: tuple[PathElement, ...]) -> dict[str, Any] | None:
    """The value at a document path, or None if any step is missing or of the wrong type."""
    if item is None:
        return None
    first = elements[0]
    assert isinstance(first, str)
    value = item.get(first)
    for element in elements[1:]:
        if value is None:
            return None
        if isinstance(element, str):
            inner = value.get("M")
            value = inner.get(element) if inner is not None else None
        else:
            inner = value.get("L")
            value = inner[element] if inner is not None and element < len(inner) else None
    return value


def operand_value(operand: Operand, item: Item | None) -> dict[str, Any] | None:
    if isinstance(operand, Path):
        return get_path(item, operand.elements)
    if isinstance(operand, Value):
        return operand.value
    if isinstance(operand, Call) and operand.name == "size":
        inner = operand_value(operand.args[0], item)
        if inner is None:
            return None
        size = size_function(inner)
        return None if size is None else {"N": str(size)}
    raise AssertionError(f"operand not allowed in a condition: {operand!r}")


def size_function(value: dict[str, Any]) -> int | None:
    """DynamoDB's size(): bytes of S and B (as the item size counts them), elements of sets, L and M; None
    for N, BOOL and NULL."""
    kind = value_type(value)
    if kind == "S" or kind == "B":
        return value_size(value)
    if kind in SET_TYPES or kind == "L" or kind == "M":
        return len(value[kind])
    return None


def _ordered(op: CompareOp, a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    if a is None or b is None:
        return False
    order = compare_values(a, b)
    if order is None:
        return False
    if op is CompareOp.LT:
        return order < 0
    if op is CompareOp.LE:
        return order <= 0
    if op is CompareOp.GT:
        return order > 0
    return order >= 0


def _function(node: Function, item: Item | None) -> bool:
    name = node.name
    if name == "attribute_exists":
        return operand_value(node.args[0], item) is not None
    if name == "attribute_not_exists":
        return operand_value(node.args[0], item) is None
    first = operand_value(node.args[0], item)
    second = operand_value(node.args[1], item)
    if first is None or second is None:
        return False
    if name == "attribute_type":
        return value_type(first) == second.get("S")
    kind = value_type(first)
    if name == "begins_with":
        if kind != value_type(second):
            return False
        if kind == "S":
            return bool(first["S"].startswith(second["S"]))
        if kind == "B":
            return b64decode_value(first["B"]).startswith(b64decode_value(second["B"]))
        return False
    assert name == "contains", name
    if kind == "S":
        return value_type(second) == "S" and second["S"] in first["S"]
    if kind == "B":
        return value_type(second) == "B" and b64decode_value(second["B"]) in b64decode_value(first["B"])
    if kind in SET_TYPES:
        # A set holds only scalars of its own type: SS holds S, NS holds N, BS holds B.
        member_type = kind[0]
        if value_type(second) != member_type:
            return False
        if kind != "NS":
            return bool(second[member_type] in first[kind])  # canonical base64: equal bytes, equal text
        wanted = set_member_key(kind, second[member_type])
        return any(set_member_key(kind, member) == wanted for member in first[kind])
    if kind == "L":
        return any(values_equal(element, second) for element in first["L"])
    return False


def evaluate(condition: Condition, item: Item | None) -> bool:
    """Whether ``item`` satisfies ``condition``; ``item`` None means the item does not exist."""
    if isinstance(condition, Compare):
        left = operand_value(condition.left, item)
        right = operand_value(condition.right, item)
        op = condition.op
        if op is CompareOp.EQ:
            return left is not None and right is not None and values_equal(left, right)
        if op is CompareOp.NE:
            return left is None or right is None or not values_equal(left, right)
        return _ordered(op, left, right)
    if isinstance(condition, And):
        return evaluate(condition.left, item) and evaluate(condition.right, item)
    if isinstance(condition, Or):
        return evaluate(condition.left, item) or evaluate(condition.right, item)
    if isinstance(condition, Not):
        return not evaluate(condition.operand, item)
    if isinstance(condition, Function):
        return _function(condition, item)
    if isinstance(condition, Between):
        value = operand_value(condition.operand, item)
        return _ordered(CompareOp.GE, value, operand_value(condition.low, item)) and _ordered(
            CompareOp.LE, value, operand_value(condition.high, item)
        )
    if isinstance(condition, In):
        value = operand_value(condition.operand, item)
        if value is None:
            return False
        for choice in condition.choices:
            other = operand_value(choice, item)
            if other is not None and values_equal(value, other):
                return True
        return False
    assert isinstance(condition, Literal)
    return condition.value
