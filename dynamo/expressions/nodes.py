"""The expression AST: small frozen dataclasses, shared by every expression language.

The parser builds a *raw* tree from the text alone (so it can be cached by text): a path element may
still be a ``#name`` placeholder and a :class:`Value` carries only its ``:ref``. Resolving against an
:class:`~dynamo.expressions.context.ExpressionContext` builds the same node types with names replaced
and values filled in; only resolved trees are evaluated.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeAlias

from dynamo.keycodec import KeyOp

AttributeValue: TypeAlias = dict[str, Any]
Item: TypeAlias = dict[str, AttributeValue]
PathElement: TypeAlias = str | int


class CompareOp(enum.Enum):
    EQ = "="
    NE = "<>"
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class BoolFunc(enum.Enum):
    """Functions that are conditions by themselves."""

    ATTRIBUTE_EXISTS = "attribute_exists"
    ATTRIBUTE_NOT_EXISTS = "attribute_not_exists"
    ATTRIBUTE_TYPE = "attribute_type"
    BEGINS_WITH = "begins_with"
    CONTAINS = "contains"


@dataclass(frozen=True, slots=True)
class Path:
    """A document path: attribute names (str) and list indexes (int), top-level first."""

    elements: tuple[PathElement, ...]

    def describe(self) -> str:
        """The form DynamoDB's messages use: ``[a, b, [3]]``."""
        return "[" + ", ".join(f"[{e}]" if isinstance(e, int) else e for e in self.elements) + "]"


@dataclass(frozen=True, slots=True, eq=False)
class Value:
    """A ``:ref`` placeholder; ``value`` is filled in when resolved."""

    ref: str
    value: AttributeValue | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """A function used as an operand: size, if_not_exists, list_append (or a misused one, for errors)."""

    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Arith:
    """``left + right`` or ``left - right`` on the right-hand side of a SET action."""

    op: str
    left: Operand
    right: Operand


Operand: TypeAlias = Path | Value | Call | Arith


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOp
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Between:
    operand: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True, slots=True)
class In:
    operand: Operand
    choices: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Function:
    """A boolean function; before resolution ``name`` may be any identifier (checked while resolving)."""

    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Or:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant condition; legacy translation uses ``Literal(True)`` for an empty Expected."""

    value: bool


Condition: TypeAlias = Compare | Between | In | Function | And | Or | Not | Literal


# ---- ProjectionExpression ----


@dataclass(frozen=True, slots=True)
class Projection:
    paths: tuple[Path, ...]


# ---- UpdateExpression ----


class ActionKind(enum.Enum):
    SET = "SET"
    REMOVE = "REMOVE"
    ADD = "ADD"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class Action:
    """One action; ``value`` is None for REMOVE. Legacy AttributeUpdates set ``legacy``."""

    kind: ActionKind
    path: Path
    value: Operand | None = None
    legacy: bool = False


@dataclass(frozen=True, slots=True)
class Update:
    actions: tuple[Action, ...]


# ---- KeyConditionExpression ----


# The sort-key operators are the storage side's (a Query is a key range): one enum, under its old name here.
RangeOp: TypeAlias = KeyOp


@dataclass(frozen=True, slots=True, eq=False)
class KeyCondition:
    """What Query needs: the partition key's value and an optional sort-key range."""

    hash_value: AttributeValue
    range_op: RangeOp | None = None
    range_values: tuple[AttributeValue, ...] = ()


def _operand_names(operand: Operand, out: set[str]) -> None:
    if isinstance(operand, Path):
        first = operand.elements[0]
        assert isinstance(first, str)
        out.add(first)
    elif isinstance(operand, Call):
        for arg in operand.args:
            _operand_names(arg, out)
    elif isinstance(operand, Arith):
        _operand_names(operand.left, out)
        _operand_names(operand.right, out)


def top_level_names(node: Condition | Projection | Update) -> frozenset[str]:
    """The top-level attribute names a resolved tree reads or writes (e.g. to refuse key attributes in a
    Query's FilterExpression)."""
    out: set[str] = set()
    stack: list[Condition | Projection | Update] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (And, Or)):
            stack.extend((current.left, current.right))
        elif isinstance(current, Not):
            stack.append(current.operand)
        elif isinstance(current, Compare):
            _operand_names(current.left, out)
            _operand_names(current.right, out)
        elif isinstance(current, Between):
            for operand in (current.operand, current.low, current.high):
                _operand_names(operand, out)
        elif isinstance(current, In):
            for operand in (current.operand, *current.choices):
                _operand_names(operand, out)
        elif isinstance(current, Function):
            for operand in current.args:
                _operand_names(operand, out)
        elif isinstance(current, Projection):
            for path in current.paths:
                _operand_names(path, out)
        elif isinstance(current, Update):
            for action in current.actions:
                _operand_names(action.path, out)
                if action.value is not None:
                    _operand_names(action.value, out)
    return frozenset(out)
