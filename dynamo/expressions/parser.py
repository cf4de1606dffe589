"""Recursive-descent parsers: text in, raw AST out (placeholders unresolved), cached by text.

Grammar (keywords case-insensitive, function names case-sensitive):

    condition  := or
    or         := and (OR and)*
    and        := not (AND not)*
    not        := NOT not | primary
    primary    := '(' condition ')'
                | operand comparator operand
                | operand BETWEEN operand AND operand
                | operand IN '(' operand (',' operand)* ')'
                | NAME '(' args ')'                       -- a boolean function
    operand    := path | VALUE_REF | NAME '(' args ')'
    path       := (NAME | NAME_REF) ('.' (NAME | NAME_REF) | '[' NUMBER ']')*

    update     := (SET set (',' set)* | REMOVE path (',' path)* | ADD path VALUE_REF (',' ...)*
                   | DELETE path VALUE_REF (',' ...)*)+
    set        := path '=' operand (('+' | '-') operand)?

    projection := path (',' path)*

Errors that need only the text (syntax, reserved words, function names and arity, redundant parentheses,
limits) are raised here, so they are cached with the tree; the first syntax error wins, then the first
other error in reading order.
"""

from __future__ import annotations

from functools import lru_cache

from dynamo.errors import ValidationException
from dynamo.expressions.lexer import Tok, Token, syntax_error, tokenize
from dynamo.expressions.nodes import (
    Action,
    ActionKind,
    And,
    Arith,
    Between,
    BoolFunc,
    Call,
    Compare,
    CompareOp,
    Condition,
    Function,
    In,
    Not,
    Operand,
    Or,
    Path,
    PathElement,
    Projection,
    Update,
    Value,
)
from dynamo.expressions.reserved import RESERVED_WORDS

MAX_EXPRESSION_BYTES = 4096
MAX_PATH_DEPTH = 32
MAX_IN_OPERANDS = 100
MAX_UPDATE_OPERATORS = 300
PARSE_CACHE_SIZE = 4096

_COMPARATORS = {op.value: op for op in CompareOp}
_CONDITION_KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})
_UPDATE_CLAUSES = {kind.value: kind for kind in ActionKind}
_BOOL_FUNCS = {f.value: f for f in BoolFunc}
_ARITY = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
    "size": 1,
    "if_not_exists": 2,
    "list_append": 2,
}
_UPDATE_FUNCS = frozenset({"if_not_exists", "list_append"})
# attribute_type's first operand may be a value too (DynamoDB accepts ``attribute_type(:v, :t)``).
_NEEDS_PATH = frozenset({"attribute_exists", "attribute_not_exists"})


def check_text(text: object, kind: str) -> str:
    if not isinstance(text, str):
        raise ValidationException(f"Invalid {kind}: The expression must be a string")
    if not text.strip(" \t\r\n"):
        raise ValidationException(f"Invalid {kind}: The expression can not be empty;")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_EXPRESSION_BYTES:
        raise ValidationException(
            f"Invalid {kind}: Expression size has exceeded the maximum allowed size; expression size: {size}"
        )
    return text


class _Parser:
    def __init__(self, text: str, kind: str) -> None:
        self.text = text
        self.kind = kind
        self.tokens = tokenize(text)
        self.pos = 0
        # The first non-syntax error; raised only if the whole text parses.
        self.deferred: ValidationException | None = None
        self.last_group: object = None

    # ---- token helpers ----

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def peek_at(self, offset: int) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind is not Tok.EOF:
            self.pos += 1
        return token

    def syntax(self) -> ValidationException:
        return syntax_error(self.kind, self.text, self.tokens, self.pos)

    def defer(self, message: str) -> None:
        if self.deferred is None:
            self.deferred = ValidationException(f"Invalid {self.kind}: {message}")

    def is_punct(self, text: str) -> bool:
        token = self.tokens[self.pos]
        return token.kind is Tok.PUNCT and token.text == text

    def is_keyword(self, word: str) -> bool:
        token = self.tokens[self.pos]
        return token.kind is Tok.NAME and token.text.upper() == word

    def expect_punct(self, text: str) -> None:
        if not self.is_punct(text):
            raise self.syntax()
        self.pos += 1

    def finish(self) -> None:
        if self.peek().kind is not Tok.EOF:
            raise self.syntax()
        if self.deferred is not None:
            raise self.deferred

    # ---- paths and operands ----

    def path_name(self) -> str:
        token = self.peek()
        if token.kind is Tok.NAME:
            if token.text.upper() in RESERVED_WORDS:
                self.defer(f"Attribute name is a reserved keyword; reserved keyword: {token.text}")
        elif token.kind is not Tok.NAME_REF:
            raise self.syntax()
        self.pos += 1
        return token.text

    def path(self) -> Path:
        elements: list[PathElement] = [self.path_name()]
        while True:
            if self.is_punct("."):
                self.pos += 1
                elements.append(self.path_name())
            elif self.is_punct("["):
                self.pos += 1
                token = self.peek()
                if token.kind is not Tok.NUMBER:
                    raise self.syntax()
                self.pos += 1
                self.expect_punct("]")
                elements.append(int(token.text))
            else:
                break
        if len(elements) > MAX_PATH_DEPTH:
            self.defer(f"The document path has too many nesting levels; nesting levels: {len(elements)}")
        return Path(tuple(elements))

    def call(self) -> Call:
        name = self.advance().text
        self.expect_punct("(")
        args: list[Operand] = []
        if not self.is_punct(")"):
            args.append(self.operand())
            while self.is_punct(","):
                self.pos += 1
                args.append(self.operand())
        self.expect_punct(")")
        return Call(name, tuple(args))

    def operand(self) -> Operand:
        token = self.peek()
        if token.kind is Tok.VALUE_REF:
            self.pos += 1
            return Value(token.text)
        if token.kind is Tok.NAME:
            if self.peek_at(1).kind is Tok.PUNCT and self.peek_at(1).text == "(":
                return self.call()
            if self.kind != "UpdateExpression" and token.text.upper() in _CONDITION_KEYWORDS:
                raise self.syntax()
            return self.path()
        if token.kind is Tok.NAME_REF:
            return self.path()
        raise self.syntax()

    # ---- conditions ----

    def condition(self) -> Condition:
        left = self.conjunction()
        while self.is_keyword("OR"):
            self.pos += 1
            left = Or(left, self.conjunction())
        return left

    def conjunction(self) -> Condition:
        left = self.negation()
        while self.is_keyword("AND"):
            self.pos += 1
            left = And(left, self.negation())
        return left

    def negation(self) -> Condition:
        if self.is_keyword("NOT"):
            self.pos += 1
            return Not(self.negation())
        return self.primary()

    def primary(self) -> Condition:
        if self.is_punct("("):
            self.pos += 1
            inner = self.condition()
            self.expect_punct(")")
            if inner is self.last_group:
                self.defer("The expression has redundant parentheses;")
            self.last_group = inner
            return inner
        left = self.operand()
        token = self.peek()
        if token.kind is Tok.PUNCT and token.text in _COMPARATORS:
            self.pos += 1
            return Compare(_COMPARATORS[token.text], left, self.operand())
        if self.is_keyword("BETWEEN"):
            self.pos += 1
            low = self.operand()
            if not self.is_keyword("AND"):
                raise self.syntax()
            self.pos += 1
            return Between(left, low, self.operand())
        if self.is_keyword("IN"):
            self.pos += 1
            self.expect_punct("(")
            choices = [self.operand()]
            while self.is_punct(","):
                self.pos += 1
                choices.append(self.operand())
            self.expect_punct(")")
            # DynamoDB counts the left-hand operand too: at most 99 choices.
            operands = len(choices) + 1
            if operands > MAX_IN_OPERANDS:
                self.defer(f"The IN operator is provided with too many operands; number of operands: {operands}")
            return In(left, tuple(choices))
        if isinstance(left, Call):
            return Function(left.name, left.args)
        raise self.syntax()

    # ---- updates ----

    def update(self) -> Update:
        actions: list[Action] = []
        seen: set[ActionKind] = set()
        while True:
            token = self.peek()
            clause = _UPDATE_CLAUSES.get(token.text.upper()) if token.kind is Tok.NAME else None
            if clause is None:
                raise self.syntax()
            self.pos += 1
            if clause in seen:
                self.defer(f'The "{clause.value}" section can only be used once in an update expression;')
            seen.add(clause)
            actions.append(self.action(clause))
            while self.is_punct(","):
                self.pos += 1
                actions.append(self.action(clause))
            if self.peek().kind is Tok.EOF:
                return Update(tuple(actions))

    def action(self, clause: ActionKind) -> Action:
        path = self.path()
        if clause is ActionKind.REMOVE:
            return Action(clause, path)
        if clause is ActionKind.SET:
            self.expect_punct("=")
            left = self.operand()
            if self.is_punct("+") or self.is_punct("-"):
                op = self.advance().text
                return Action(clause, path, Arith(op, left, self.operand()))
            return Action(clause, path, left)
        token = self.peek()
        if token.kind is not Tok.VALUE_REF:
            raise self.syntax()
        self.pos += 1
        return Action(clause, path, Value(token.text))

    # ---- projections ----

    def projection(self) -> Projection:
        paths = [self.path()]
        while self.is_punct(","):
            self.pos += 1
            paths.append(self.path())
        return Projection(tuple(paths))


# ---- text-only semantic checks ----


def _check_condition_operand(operand: Operand, kind: str, errors: list[str]) -> None:
    if isinstance(operand, Call):
        name = operand.name
        if name in _BOOL_FUNCS:
            errors.append(f"The function is not allowed to be used this way in an expression; function: {name}")
        elif name in _UPDATE_FUNCS:
            errors.append(f"The function is not allowed in a condition expression; function: {name}")
        elif name != "size":
            errors.append(f"Invalid function name; function: {name}")
        elif len(operand.args) != 1:
            errors.append(
                f"Incorrect number of operands for operator or function; operator or function: size, "
                f"number of operands: {len(operand.args)}"
            )
        for arg in operand.args:
            _check_condition_operand(arg, kind, errors)


def _check_condition(node: Condition, kind: str, errors: list[str]) -> None:
    if isinstance(node, (And, Or)):
        _check_condition(node.left, kind, errors)
        _check_condition(node.right, kind, errors)
    elif isinstance(node, Not):
        _check_condition(node.operand, kind, errors)
    elif isinstance(node, Compare):
        _check_condition_operand(node.left, kind, errors)
        _check_condition_operand(node.right, kind, errors)
    elif isinstance(node, Between):
        for operand in (node.operand, node.low, node.high):
            _check_condition_operand(operand, kind, errors)
    elif isinstance(node, In):
        for operand in (node.operand, *node.choices):
            _check_condition_operand(operand, kind, errors)
    elif isinstance(node, Function):
        name = node.name
        if name == "size":
            errors.append("The function is not allowed to be used this way in an expression; function: size")
        elif name in _UPDATE_FUNCS:
            errors.append(f"The function is not allowed in a condition expression; function: {name}")
        elif name not in _BOOL_FUNCS:
            errors.append(f"Invalid function name; function: {name}")
        elif len(node.args) != _ARITY[name]:
            errors.append(
                f"Incorrect number of operands for operator or function; operator or function: {name}, "
                f"number of operands: {len(node.args)}"
            )
        elif name in _NEEDS_PATH and not isinstance(node.args[0], Path):
            errors.append(f"Operator or function requires a document path; operator or function: {name}")
        for arg in node.args:
            _check_condition_operand(arg, kind, errors)


def _check_update_operand(operand: Operand, errors: list[str], inside: str | None = None) -> None:
    if isinstance(operand, Arith):
        _check_update_operand(operand.left, errors)
        _check_update_operand(operand.right, errors)
        return
    if not isinstance(operand, Call):
        return
    name = operand.name
    if name in _BOOL_FUNCS or name == "size":
        errors.append(f"The function is not allowed in an update expression; function: {name}")
    elif name not in _UPDATE_FUNCS:
        errors.append(f"Invalid function name; function: {name}")
    elif len(operand.args) != _ARITY[name]:
        errors.append(
            f"Incorrect number of operands for operator or function; operator or function: {name}, "
            f"number of operands: {len(operand.args)}"
        )
    elif name == inside:
        errors.append(f"The function is not allowed to be used this way in an expression; function: {name}")
    for arg in operand.args:
        _check_update_operand(arg, errors, name)


def _raise_first(errors: list[str], kind: str) -> None:
    if errors:
        raise ValidationException(f"Invalid {kind}: {errors[0]}")


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_condition_text(text: str, kind: str = "ConditionExpression") -> Condition:
    """The raw condition tree of ``text`` (also Filter and KeyCondition expressions)."""
    parser = _Parser(check_text(text, kind), kind)
    tree = parser.condition()
    parser.finish()
    errors: list[str] = []
    _check_condition(tree, kind, errors)
    _raise_first(errors, kind)
    return tree


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_update_text(text: str) -> Update:
    kind = "UpdateExpression"
    parser = _Parser(check_text(text, kind), kind)
    tree = parser.update()
    parser.finish()
    errors: list[str] = []
    operators = len(tree.actions)
    for action in tree.actions:
        if action.value is not None:
            _check_update_operand(action.value, errors)
            operators += _count_operators(action.value)
    if operators > MAX_UPDATE_OPERATORS:
        errors.insert(0, f"The expression contains too many operators; operator count: {operators}")
    _raise_first(errors, kind)
    return tree


def _count_operators(operand: Operand) -> int:
    """Functions and + / - inside one SET value (each action counts one more)."""
    if isinstance(operand, Arith):
        return 1 + _count_operators(operand.left) + _count_operators(operand.right)
    if isinstance(operand, Call):
        return 1 + sum(_count_operators(arg) for arg in operand.args)
    return 0


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_projection_text(text: str) -> Projection:
    kind = "ProjectionExpression"
    parser = _Parser(check_text(text, kind), kind)
    tree = parser.projection()
    parser.finish()
    return tree
