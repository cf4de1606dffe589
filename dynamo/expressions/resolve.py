"""Resolve a raw tree against one request's placeholders and check what needs the values.

Name placeholders become attribute names, value placeholders get their values (recording use in the
context), and the checks DynamoDB makes on constant operands before touching any item run here: operand
types of comparisons and functions, BETWEEN bounds, ADD/DELETE operand types, and overlapping or
conflicting document paths.
"""

from __future__ import annotations

from collections.abc import Iterable

from dynamo.errors import ValidationException
from dynamo.expressions.context import ExpressionContext
from dynamo.expressions.nodes import (
    Action,
    ActionKind,
    And,
    Arith,
    Between,
    Call,
    Compare,
    CompareOp,
    Condition,
    Function,
    In,
    Literal,
    Not,
    Operand,
    Or,
    Path,
    PathElement,
    Projection,
    Update,
    Value,
)
from dynamo.values import SET_TYPES, TYPES, compare_values, describe_value, value_type

VALID_TYPE_NAMES = "{B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
_ORDERED = frozenset({"N", "S", "B"})
_ORDERING_OPS = frozenset({CompareOp.LT, CompareOp.LE, CompareOp.GT, CompareOp.GE})
# DynamoDB's long type names, in the ADD and DELETE operand messages.
_LONG_TYPE_NAMES = {
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


class _Resolver:
    def __init__(self, ctx: ExpressionContext, kind: str) -> None:
        self.ctx = ctx
        self.kind = kind

    def fail(self, message: str) -> ValidationException:
        return ValidationException(f"Invalid {self.kind}: {message}")

    def bad_operand(self, function: str, type_name: str) -> ValidationException:
        return self.fail(
            f"Incorrect operand type for operator or function; operator or function: {function}, "
            f"operand type: {type_name}"
        )

    def path(self, path: Path) -> Path:
        if not any(isinstance(e, str) and e.startswith("#") for e in path.elements):
            return path
        return Path(
            tuple(self.ctx.name(e, self.kind) if isinstance(e, str) and e.startswith("#") else e for e in path.elements)
        )

    def operand(self, operand: Operand) -> Operand:
        if isinstance(operand, Path):
            return self.path(operand)
        if isinstance(operand, Value):
            return Value(operand.ref, self.ctx.value(operand.ref, self.kind))
        if isinstance(operand, Call):
            call = Call(operand.name, tuple(self.operand(a) for a in operand.args))
            self.check_call(call)
            return call
        return Arith(operand.op, self.operand(operand.left), self.operand(operand.right))

    def check_call(self, call: Call) -> None:
        if call.name == "size" and call.args and isinstance(call.args[0], Value):
            assert call.args[0].value is not None
            kind = value_type(call.args[0].value)
            if kind in ("N", "BOOL", "NULL"):
                raise self.bad_operand("size", kind)

    def check_distinct(self, operator: str, first: Operand, rest: tuple[Operand, ...]) -> None:
        if isinstance(first, Path) and any(isinstance(o, Path) and o == first for o in rest):
            raise self.fail(
                "The first operand must be distinct from the remaining operands for this operator or function; "
                f"operator: {operator}, first operand: {first.describe()}"
            )

    def constant_type(self, operand: Operand) -> str | None:
        if isinstance(operand, Value):
            assert operand.value is not None
            return value_type(operand.value)
        return None

    # ---- conditions ----

    def condition(self, node: Condition) -> Condition:
        if isinstance(node, And):
            return And(self.condition(node.left), self.condition(node.right))
        if isinstance(node, Or):
            return Or(self.condition(node.left), self.condition(node.right))
        if isinstance(node, Not):
            return Not(self.condition(node.operand))
        if isinstance(node, Compare):
            compare = Compare(node.op, self.operand(node.left), self.operand(node.right))
            self.check_distinct(node.op.value, compare.left, (compare.right,))
            if node.op in _ORDERING_OPS:
                for side in (compare.left, compare.right):
                    kind = self.constant_type(side)
                    if kind is not None and kind not in _ORDERED:
                        raise self.bad_operand(node.op.value, kind)
            return compare
        if isinstance(node, Between):
            between = Between(self.operand(node.operand), self.operand(node.low), self.operand(node.high))
            self.check_distinct("BETWEEN", between.operand, (between.low, between.high))
            self.check_between(between)
            return between
        if isinstance(node, In):
            choices = In(self.operand(node.operand), tuple(self.operand(c) for c in node.choices))
            self.check_distinct("IN", choices.operand, choices.choices)
            return choices
        if isinstance(node, Function):
            function = Function(node.name, tuple(self.operand(a) for a in node.args))
            if node.name in ("begins_with", "contains"):
                self.check_distinct(node.name, function.args[0], function.args[1:])
            self.check_function(function)
            return function
        assert isinstance(node, Literal)
        return node

    def check_between(self, node: Between) -> None:
        for side in (node.operand, node.low, node.high):
            kind = self.constant_type(side)
            if kind is not None and kind not in _ORDERED:
                raise self.bad_operand("BETWEEN", kind)
        if isinstance(node.low, Value) and isinstance(node.high, Value):
            low, high = node.low.value, node.high.value
            assert low is not None and high is not None
            bounds = f"lower bound operand: {describe_value(low)}, upper bound operand: {describe_value(high)}"
            order = compare_values(low, high)
            if order is None:
                raise self.fail(f"The BETWEEN operator requires same data type for lower and upper bounds; {bounds}")
            if order > 0:
                raise self.fail(
                    f"The BETWEEN operator requires upper bound to be greater than or equal to lower bound; {bounds}"
                )

    def check_function(self, node: Function) -> None:
        name = node.name
        if name == "attribute_type":
            kind_operand = node.args[1]
            if not isinstance(kind_operand, Value):
                raise self.bad_operand(name, "PATH" if isinstance(kind_operand, Path) else "FUNCTION")
            assert kind_operand.value is not None
            kind = value_type(kind_operand.value)
            if kind != "S":
                raise self.bad_operand(name, kind)
            type_name = kind_operand.value["S"]
            if type_name not in TYPES:
                raise self.fail(f"Invalid attribute type name found; type: {type_name}, valid types: {VALID_TYPE_NAMES}")
        elif name == "begins_with":
            for arg in node.args:
                arg_kind = self.constant_type(arg)
                if arg_kind is not None and arg_kind not in ("S", "B"):
                    raise self.bad_operand(name, arg_kind)
        elif name == "contains":
            first_kind = self.constant_type(node.args[0])
            if first_kind is not None and first_kind not in ("S", "B", "SS", "NS", "BS", "L"):
                raise self.bad_operand(name, first_kind)

    # ---- updates ----

    def action(self, action: Action) -> Action:
        path = self.path(action.path)
        if action.value is None:
            return Action(action.kind, path, None, action.legacy)
        value = self.operand(action.value)
        if action.kind is ActionKind.SET and not action.legacy:
            self.check_set_value(value)
        elif action.kind in (ActionKind.ADD, ActionKind.DELETE) and not action.legacy:
            kind = self.constant_type(value)
            assert kind is not None
            allowed = SET_TYPES if action.kind is ActionKind.DELETE else SET_TYPES | {"N"}
            if kind not in allowed:
                raise self.fail(
                    f"Incorrect operand type for operator or function; operator: {action.kind.value}, "
                    f"operand type: {_LONG_TYPE_NAMES[kind]}"
                )
        return Action(action.kind, path, value, action.legacy)

    def check_set_value(self, value: Operand) -> None:
        if isinstance(value, Arith):
            for side in (value.left, value.right):
                kind = self.constant_type(side)
                if kind is not None and kind != "N":
                    raise self.bad_operand(value.op, kind)
                self.check_set_value(side)
        elif isinstance(value, Call):
            # Checked after resolving, as DynamoDB looks the placeholders up first.
            if value.name == "if_not_exists" and not isinstance(value.args[0], Path):
                raise self.fail("Operator or function requires a document path; operator or function: if_not_exists")
            if value.name == "list_append":
                for arg in value.args:
                    kind = self.constant_type(arg)
                    if kind is not None and kind != "L":
                        raise self.bad_operand("list_append", kind)
            for arg in value.args:
                self.check_set_value(arg)


class _Node:
    __slots__ = ("first", "terminal", "children")

    def __init__(self, first: Path) -> None:
        self.first = first  # the first path through this node, for messages
        self.terminal: Path | None = None  # the path that ends here
        self.children: dict[PathElement, _Node] = {}


def _elements_overlap(kind: str, paths: Iterable[Path]) -> None:
    """DynamoDB refuses two paths where one is a prefix of the other (overlap) or where they first
    differ by a name in one and an index in the other (conflict). A trie keeps this linear."""
    root: dict[str, _Node] = {}

    def refuse(what: str, one: Path, two: Path) -> ValidationException:
        return ValidationException(
            f"Invalid {kind}: Two document paths {what} with each other; must remove or rewrite one of these paths; "
            f"path one: {one.describe()}, path two: {two.describe()}"
        )

    for path in paths:
        top = path.elements[0]
        assert isinstance(top, str)
        node = root.get(top)
        if node is None:
            node = root[top] = _Node(path)
        for element in path.elements[1:]:
            if node.terminal is not None:
                raise refuse("overlap", node.terminal, path)
            if node.children:
                sibling = next(iter(node.children))
                if isinstance(sibling, int) is not isinstance(element, int):
                    raise refuse("conflict", node.children[sibling].first, path)
            child = node.children.get(element)
            if child is None:
                child = node.children[element] = _Node(path)
            node = child
        if node.terminal is not None or node.children:
            raise refuse("overlap", node.terminal or node.first, path)
        node.terminal = path


def resolve_condition(tree: Condition, ctx: ExpressionContext, kind: str) -> Condition:
    return _Resolver(ctx, kind).condition(tree)


def resolve_update(tree: Update, ctx: ExpressionContext) -> Update:
    resolver = _Resolver(ctx, "UpdateExpression")
    update = Update(tuple(resolver.action(a) for a in tree.actions))
    _elements_overlap("UpdateExpression", (a.path for a in update.actions))
    return update


def resolve_projection(tree: Projection, ctx: ExpressionContext) -> Projection:
    resolver = _Resolver(ctx, "ProjectionExpression")
    projection = Projection(tuple(resolver.path(p) for p in tree.paths))
    _elements_overlap("ProjectionExpression", projection.paths)
    return projection
