"""The legacy (pre-expression) parameters, translated into the expression AST.

Expected, QueryFilter and ScanFilter become a :data:`Condition`; KeyConditions a :class:`KeyCondition`;
AttributeUpdates an :class:`Update`; AttributesToGet a :class:`Projection`. Attribute names here are
literal top-level names (no paths, no placeholders, no reserved words).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dynamo.errors import INVALID_PARAMETERS, ValidationException
from dynamo.expressions.keycond import key_condition_from_parts
from dynamo.expressions.nodes import (
    Action,
    ActionKind,
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
    Projection,
    RangeOp,
    Update,
    Value,
)
from dynamo.values import SCALAR_TYPES, SET_TYPES, compare_values, validate_value, value_type

COMPARISON_OPERATORS = (
    "IN",
    "NULL",
    "BETWEEN",
    "LT",
    "NOT_CONTAINS",
    "EQ",
    "GT",
    "NOT_NULL",
    "NE",
    "LE",
    "BEGINS_WITH",
    "GE",
    "CONTAINS",
)
_ARITY = {"NULL": 0, "NOT_NULL": 0, "BETWEEN": 2}
_SCALAR_ONLY = frozenset({"LT", "LE", "GT", "GE", "CONTAINS", "NOT_CONTAINS", "BEGINS_WITH", "IN", "BETWEEN"})
_COMPARE = {"EQ": CompareOp.EQ, "NE": CompareOp.NE, "LT": CompareOp.LT, "LE": CompareOp.LE, "GT": CompareOp.GT, "GE": CompareOp.GE}
_KEY_OPS = {"EQ": RangeOp.EQ, "LT": RangeOp.LT, "LE": RangeOp.LE, "GT": RangeOp.GT, "GE": RangeOp.GE,
            "BETWEEN": RangeOp.BETWEEN, "BEGINS_WITH": RangeOp.BEGINS_WITH}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ParameterStyles:
    """The expression parameters an operation takes and the legacy ones they replace, each in the order
    DynamoDB lists them in its messages (dynalite's validations, pinned against the service)."""

    expressions: tuple[str, ...]
    legacy: tuple[str, ...] = ()


_CONDITIONAL = ParameterStyles(("ConditionExpression",), ("Expected", "ConditionalOperator"))
PARAMETER_STYLES: dict[str, ParameterStyles] = {
    "PutItem": _CONDITIONAL,
    "DeleteItem": _CONDITIONAL,
    "UpdateItem": ParameterStyles(
        ("UpdateExpression", "ConditionExpression"), ("AttributeUpdates", "Expected", "ConditionalOperator")
    ),
    "GetItem": ParameterStyles(("ProjectionExpression",), ("AttributesToGet",)),
    "BatchGetItem": ParameterStyles(("ProjectionExpression",), ("AttributesToGet",)),
    "Query": ParameterStyles(
        ("ProjectionExpression", "FilterExpression", "KeyConditionExpression"),
        ("AttributesToGet", "QueryFilter", "ConditionalOperator", "KeyConditions"),
    ),
    "Scan": ParameterStyles(
        ("ProjectionExpression", "FilterExpression"), ("AttributesToGet", "ScanFilter", "ConditionalOperator")
    ),
    # TransactWriteItems' actions take expressions only.
    "ConditionCheck": ParameterStyles(("ConditionExpression",)),
    "Put": ParameterStyles(("ConditionExpression",)),
    "Delete": ParameterStyles(("ConditionExpression",)),
    "Update": ParameterStyles(("UpdateExpression", "ConditionExpression")),
}
LEGACY_PARAMETERS = tuple(sorted({p for styles in PARAMETER_STYLES.values() for p in styles.legacy}))
EXPRESSION_PARAMETERS = tuple(sorted({p for styles in PARAMETER_STYLES.values() for p in styles.expressions}))


def _enum_error(value: object, where: str, allowed: str) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{allowed}]"
    )


def _check_operator(operator: Any, where: str, name: str) -> None:
    if operator not in COMPARISON_OPERATORS:
        raise _enum_error(operator, f"{where}.{name}.member.comparisonOperator", ", ".join(COMPARISON_OPERATORS))


def _value_list(values: Any, name: str) -> list[Any]:
    if not isinstance(values, list):
        raise ValidationException(f"{INVALID_PARAMETERS}AttributeValueList must be a list for Attribute: {name}")
    return values


def _check_scalar_operands(operator: str, kinds: list[str]) -> None:
    """Ordering, containment and range operators take S, N or B values (BEGINS_WITH: S or B)."""
    for kind in kinds:
        if kind not in SCALAR_TYPES or (operator == "BEGINS_WITH" and kind == "N"):
            raise ValidationException(
                f"{INVALID_PARAMETERS}ComparisonOperator {operator} is not valid for {kind} AttributeValue type"
            )


def _checked_operands(name: str, operator: Any, values: list[Any], where: str) -> list[dict[str, Any]]:
    """The operands of one legacy condition (Expected, QueryFilter, ScanFilter or KeyConditions entry),
    validated as DynamoDB validates every such condition."""
    _check_operator(operator, where, name)
    arity = _ARITY.get(operator, 1)
    if (operator == "IN" and not values) or (operator != "IN" and len(values) != arity):
        raise ValidationException(f"{INVALID_PARAMETERS}Invalid number of argument(s) for the {operator} ComparisonOperator")
    checked = [validate_value(v) for v in values]
    if operator in _SCALAR_ONLY:
        kinds = [value_type(v) for v in checked]
        _check_scalar_operands(operator, kinds)
        if len(set(kinds)) > 1:
            raise ValidationException(f"{INVALID_PARAMETERS}AttributeValues inside AttributeValueList must be of same type")
    if operator == "BETWEEN":
        order = compare_values(checked[0], checked[1])
        assert order is not None  # both of one scalar type, checked above
        if order > 0:
            raise ValidationException(
                "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
            )
    return checked


def _operator_condition(name: str, operator: Any, values: list[Any], where: str) -> Condition:
    checked = _checked_operands(name, operator, values, where)
    path = Path((name,))
    operands = tuple(Value(f":{operator}", v) for v in checked)
    if operator == "NULL":
        return Function("attribute_not_exists", (path,))
    if operator == "NOT_NULL":
        return Function("attribute_exists", (path,))
    if operator in _COMPARE:
        return Compare(_COMPARE[operator], path, operands[0])
    if operator == "CONTAINS":
        return Function("contains", (path, operands[0]))
    if operator == "NOT_CONTAINS":
        # Legacy NOT_CONTAINS is false on a missing attribute, unlike NOT contains(...).
        return And(Function("attribute_exists", (path,)), Not(Function("contains", (path, operands[0]))))
    if operator == "BEGINS_WITH":
        return Function("begins_with", (path, operands[0]))
    if operator == "IN":
        return In(path, operands)
    assert operator == "BETWEEN"
    return Between(path, operands[0], operands[1])


def _combine(conditions: list[Condition], conditional_operator: Any, count: int) -> Condition:
    if conditional_operator is not None:
        if conditional_operator not in ("AND", "OR"):
            raise _enum_error(conditional_operator, "conditionalOperator", "OR, AND")
        if count < 2:
            raise ValidationException(
                f"{INVALID_PARAMETERS}ConditionalOperator can only be used when Filter or Expected has two or more elements"
            )
    if not conditions:
        return Literal(True)
    joined = conditions[0]
    for condition in conditions[1:]:
        joined = Or(joined, condition) if conditional_operator == "OR" else And(joined, condition)
    return joined


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationException(f"1 validation error detected: Value at '{where}' failed to satisfy constraint: Member must be a map")
    return value


def legacy_expected_to_condition(expected: Mapping[str, Any] | None, conditional_operator: str | None = None) -> Condition:
    """Translate ``Expected`` (with ``ConditionalOperator``) into a condition."""
    expected = _mapping(expected or {}, "expected")
    conditions: list[Condition] = []
    for name, spec in expected.items():
        spec = _mapping(spec, f"expected.{name}.member")
        operator = spec.get("ComparisonOperator")
        has_value, has_list = "Value" in spec, "AttributeValueList" in spec
        exists = spec.get("Exists")
        if has_value and has_list:
            raise ValidationException(f"{INVALID_PARAMETERS}Value and AttributeValueList cannot be used together for Attribute: {name}")
        if operator is None:
            if has_list:
                raise ValidationException(
                    f"{INVALID_PARAMETERS}AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
                )
            if exists is False:
                if has_value:
                    raise ValidationException(f"{INVALID_PARAMETERS}Value cannot be used when Exists is false for Attribute: {name}")
                conditions.append(Function("attribute_not_exists", (Path((name,)),)))
            else:
                if not has_value:
                    state = "null" if exists is None else "true"
                    raise ValidationException(f"{INVALID_PARAMETERS}Value must be provided when Exists is {state} for Attribute: {name}")
                conditions.append(Compare(CompareOp.EQ, Path((name,)), Value(":Value", validate_value(spec["Value"]))))
            continue
        if exists is not None:
            raise ValidationException(f"{INVALID_PARAMETERS}Exists and ComparisonOperator cannot be used together for Attribute: {name}")
        values = [spec["Value"]] if has_value else _value_list(spec.get("AttributeValueList") or [], name)
        conditions.append(_operator_condition(name, operator, values, "expected"))
    return _combine(conditions, conditional_operator, len(expected))


def legacy_filter_to_condition(
    query_or_scan_filter: Mapping[str, Any] | None, conditional_operator: str | None = None, *, where: str = "scanFilter"
) -> Condition:
    """Translate ``QueryFilter`` or ``ScanFilter`` (``where`` names it in messages) into a condition."""
    filters = _mapping(query_or_scan_filter or {}, where)
    conditions: list[Condition] = []
    for name, spec in filters.items():
        spec = _mapping(spec, f"{where}.{name}.member")
        operator = spec.get("ComparisonOperator")
        if operator is None:
            raise ValidationException(
                f"1 validation error detected: Value null at '{where}.{name}.member.comparisonOperator' "
                "failed to satisfy constraint: Member must not be null"
            )
        values = _value_list(spec.get("AttributeValueList") or [], name)
        conditions.append(_operator_condition(name, operator, values, where))
    return _combine(conditions, conditional_operator, len(filters))


def legacy_key_conditions(
    key_conditions: Mapping[str, Any],
    hash_name: str,
    range_name: str | None,
    *,
    hash_type: str | None = None,
    range_type: str | None = None,
) -> KeyCondition:
    """Translate ``KeyConditions`` into the same :class:`KeyCondition` a KeyConditionExpression gives."""
    key_conditions = _mapping(key_conditions, "keyConditions")
    parts: list[tuple[str, RangeOp, tuple[dict[str, Any], ...]]] = []
    for name, spec in key_conditions.items():
        spec = _mapping(spec, f"keyConditions.{name}.member")
        operator = spec.get("ComparisonOperator")
        values = _value_list(spec.get("AttributeValueList") or [], name)
        # Every condition's operands first (dynalite's query tests: a reversed BETWEEN gets the legacy
        # message), then what only a key condition asks.
        checked = tuple(_checked_operands(name, operator, values, "keyConditions"))
        if operator not in _KEY_OPS:
            raise ValidationException("Attempted conditional constraint is not an indexable operation")
        _check_scalar_operands(operator, [value_type(value) for value in checked])
        parts.append((name, _KEY_OPS[operator], checked))
    return key_condition_from_parts(parts, hash_name, range_name, hash_type, range_type)


def legacy_attribute_updates(attribute_updates: Mapping[str, Any] | None) -> Update:
    """Translate ``AttributeUpdates`` into an update (apply it with ``apply_update``)."""
    updates = _mapping(attribute_updates or {}, "attributeUpdates")
    actions: list[Action] = []
    for name, spec in updates.items():
        spec = _mapping(spec, f"attributeUpdates.{name}.member")
        action = spec.get("Action", "PUT")
        if action not in ("ADD", "PUT", "DELETE"):
            raise _enum_error(action, f"attributeUpdates.{name}.member.action", "ADD, PUT, DELETE")
        path = Path((name,))
        if "Value" not in spec:
            if action != "DELETE":
                raise ValidationException(f"{INVALID_PARAMETERS}Only DELETE action is allowed when no attribute value is specified")
            actions.append(Action(ActionKind.REMOVE, path, None, legacy=True))
            continue
        value = validate_value(spec["Value"])
        kind = value_type(value)
        if action == "PUT":
            actions.append(Action(ActionKind.SET, path, Value(":Value", value), legacy=True))
        elif action == "ADD":
            if kind not in ("N", "L") and kind not in SET_TYPES:
                raise ValidationException(f"{INVALID_PARAMETERS}ADD action is not supported for the type {kind}")
            actions.append(Action(ActionKind.ADD, path, Value(":Value", value), legacy=True))
        else:
            if kind not in SET_TYPES:
                raise ValidationException(f"{INVALID_PARAMETERS}DELETE action with value is not supported for the type {kind}")
            actions.append(Action(ActionKind.DELETE, path, Value(":Value", value), legacy=True))
    return Update(tuple(actions))


def attributes_to_get_projection(names: Any) -> Projection:
    """``AttributesToGet`` as a projection of top-level attributes."""
    if not isinstance(names, list) or not names:
        raise ValidationException(
            "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    if not all(isinstance(n, str) and n for n in names):
        raise ValidationException(f"{INVALID_PARAMETERS}AttributesToGet must contain non-empty attribute names")
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ValidationException(f"{INVALID_PARAMETERS}Duplicate value in attribute name: {duplicate}")
    return Projection(tuple(Path((n,)) for n in names))


def check_no_mixing(request: Mapping[str, Any], op: str) -> None:
    """Refuse a request of operation ``op`` (or of a TransactWriteItems action: ``"Put"``, ...) that mixes
    legacy and expression parameters, or that gives placeholders without an expression to use them."""
    styles = PARAMETER_STYLES[op]
    expressions = [p for p in styles.expressions if request.get(p) is not None]
    if expressions:
        legacy = [p for p in styles.legacy if request.get(p) is not None]
        # KeyConditions with a FilterExpression but no KeyConditionExpression is not mixing (as DynamoDB).
        if "KeyConditions" in legacy and request.get("KeyConditionExpression") is None:
            legacy.remove("KeyConditions")
        if legacy:
            raise ValidationException(
                "Can not use both expression and non-expression parameters in the same request: "
                f"Non-expression parameters: {{{', '.join(legacy)}}} "
                f"Expression parameters: {{{', '.join(expressions)}}}"
            )
    elif request.get("ExpressionAttributeNames") is not None:
        raise ValidationException("ExpressionAttributeNames can only be specified when using expressions")
    # Values can serve every expression but a projection; the message names those that are missing.
    takes_values = [p for p in styles.expressions if p != "ProjectionExpression"]
    if (
        takes_values
        and request.get("ExpressionAttributeValues") is not None
        and all(request.get(p) is None for p in takes_values)
    ):
        verb = "are" if len(takes_values) > 1 else "is"
        raise ValidationException(
            "ExpressionAttributeValues can only be specified when using expressions: "
            f"{' and '.join(takes_values)} {verb} null"
        )
