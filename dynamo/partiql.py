"""PartiQL for DynamoDB: ExecuteStatement's and BatchExecuteStatement's statements, parsed and turned into
requests of DynamoDB's own operations, which the router serves as it serves those. Pure.

The statements (DynamoDB's subset of PartiQL, its developer guide's "ql-reference" pages):

    SELECT * | path [, path ...] FROM table[."index"] [WHERE condition] [ORDER BY sortkey [ASC | DESC]]
    INSERT INTO table VALUE {'name': value, ...}
    UPDATE table (SET path = value [, ...] | REMOVE path [, ...]) ... WHERE condition
        [RETURNING (ALL | MODIFIED) (OLD | NEW) *]
    DELETE FROM table WHERE condition [RETURNING ALL OLD *]

Values are PartiQL literals ('text', numbers, TRUE, FALSE, NULL, <<set>>, [list], {'struct': ...}) or ``?``
(the request's Parameters, in order). Conditions: = <> != < <= > >=, BETWEEN, IN [..], IS [NOT] MISSING,
IS [NOT] NULL, begins_with, contains, attribute_type, size(path), AND, OR, NOT and parentheses.

How each becomes a request (``plan``):
- SELECT reads a Query when the WHERE pins the partition key with ``=`` (its sort-key condition, if one,
  joins the key condition), else a Scan; the whole WHERE and the projection are then applied to each item
  read (``Selection``), so a page holds at most Limit items *evaluated*, as DynamoDB's does.
- INSERT is a PutItem on condition that no item has its key (else DuplicateItemException).
- UPDATE and DELETE must name one item by ``=`` on every key attribute; the rest of the WHERE is their
  ConditionExpression. UPDATE needs the item to exist; DELETE of a missing item succeeds.

Conditions are rendered into DynamoDB's expression language (names and values as placeholders), so the
one expression parser and evaluator in ``dynamo.expressions`` serves both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dynamo.errors import ValidationException
from dynamo.items import KeySchema

MAX_IN_VALUES = 100  # a condition's IN takes at most 100 values, as DynamoDB's expressions do

AttributeValue = dict[str, Any]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")*")
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<op><<|>>|<=|>=|<>|!=|[=<>(),.\[\]{}:?*+\-])
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
""", re.VERBOSE)


def malformed(detail: str) -> ValidationException:
    return ValidationException(f"Statement wasn't well formed, can't be processed: {detail}")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # string, quoted, number, op, word, end
    text: str

    def word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise malformed(f"Unexpected character: {text[at]!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            out.append(Token(kind, match.group()))
        at = match.end()
    out.append(Token("end", ""))
    return out


# ---- the tree ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Path:
    elements: tuple[str | int, ...]

    @property
    def top(self) -> str:
        first = self.elements[0]
        assert isinstance(first, str)
        return first


@dataclass(frozen=True, slots=True)
class Value:
    value: AttributeValue


@dataclass(frozen=True, slots=True)
class Size:
    path: Path


Operand = Path | Value | Size


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # = <> < <= > >=
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
class Is:
    path: Path
    what: str  # MISSING or NULL
    negated: bool


@dataclass(frozen=True, slots=True)
class Function:
    name: str  # begins_with, contains, attribute_type
    path: Path
    argument: Operand


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


Condition = Compare | Between | In | Is | Function | And | Or | Not


@dataclass(frozen=True, slots=True)
class Arithmetic:
    op: str  # + or -
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class ListAppend:
    first: Operand
    second: Operand


Assigned = Operand | Arithmetic | ListAppend


@dataclass(frozen=True, slots=True)
class Select:
    table: str
    index: str | None
    projection: tuple[Path, ...] | None  # None: *
    where: Condition | None
    order_descending: bool | None  # None: no ORDER BY
    order_by: Path | None


@dataclass(frozen=True, slots=True)
class Insert:
    table: str
    item: AttributeValue  # the item's attributes (an M's content)


@dataclass(frozen=True, slots=True)
class Update:
    table: str
    sets: tuple[tuple[Path, Assigned], ...]
    removes: tuple[Path, ...]
    where: Condition
    returning: str | None  # ReturnValues: ALL_OLD, UPDATED_NEW, ...


@dataclass(frozen=True, slots=True)
class Delete:
    table: str
    where: Condition
    returning: str | None


Statement = Select | Insert | Update | Delete


# ---- the parser -------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, parameters: list[AttributeValue]) -> None:
        self.tokens = tokenize(text)
        self.at = 0
        self.parameters = parameters
        self.used = 0

    # -- tokens
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.at += 1
        return token

    def accept_op(self, text: str) -> bool:
        token = self.peek()
        if token.kind == "op" and token.text == text:
            self.at += 1
            return True
        return False

    def expect_op(self, text: str) -> None:
        if not self.accept_op(text):
            raise malformed(f"Expected {text!r} but found {self.peek().text or 'the end of the statement'!r}")

    def accept_word(self, *words: str) -> str | None:
        token = self.peek()
        if token.word(*words):
            self.at += 1
            return token.text.upper()
        return None

    def expect_word(self, *words: str) -> str:
        found = self.accept_word(*words)
        if found is None:
            raise malformed(f"Expected {' or '.join(words)} but found {self.peek().text or 'the end of the statement'!r}")
        return found

    def end(self) -> None:
        if self.peek().kind != "end":
            raise malformed(f"Unexpected token: {self.peek().text!r}")

    # -- statements
    def statement(self) -> Statement:
        verb = self.peek()
        if verb.word("SELECT"):
            found: Statement = self.select()
        elif verb.word("INSERT"):
            found = self.insert()
        elif verb.word("UPDATE"):
            found = self.update()
        elif verb.word("DELETE"):
            found = self.delete()
        else:
            raise malformed("Expected data manipulation")
        self.end()
        if self.used != len(self.parameters):
            raise ValidationException("Number of parameters in request and statement don't match.")
        return found

    def select(self) -> Select:
        self.expect_word("SELECT")
        projection: tuple[Path, ...] | None = None
        if not self.accept_op("*"):
            paths = [self.path()]
            while self.accept_op(","):
                paths.append(self.path())
            projection = tuple(paths)
        self.expect_word("FROM")
        table = self.name()
        index = self.name() if self.accept_op(".") else None
        where = self.condition() if self.accept_word("WHERE") else None
        order_by: Path | None = None
        descending: bool | None = None
        if self.accept_word("ORDER"):
            self.expect_word("BY")
            order_by = self.path()
            descending = self.accept_word("ASC", "DESC") == "DESC"
        return Select(table, index, projection, where, descending, order_by)

    def insert(self) -> Insert:
        self.expect_word("INSERT")
        self.expect_word("INTO")
        table = self.name()
        self.expect_word("VALUE")
        value = self.value()
        if "M" not in value:
            raise ValidationException("Unsupported operation: Inserting a non-tuple value into a table")
        return Insert(table, value["M"])

    def update(self) -> Update:
        self.expect_word("UPDATE")
        table = self.name()
        sets: list[tuple[Path, Assigned]] = []
        removes: list[Path] = []
        while True:
            clause = self.accept_word("SET", "REMOVE")
            if clause is None:
                break
            while True:
                if clause == "SET":
                    target = self.path()
                    self.expect_op("=")
                    sets.append((target, self.assigned()))
                else:
                    removes.append(self.path())
                if not self.accept_op(","):
                    break
        if not sets and not removes:
            raise malformed("Expected SET or REMOVE")
        self.expect_word("WHERE")
        where = self.condition()
        returning = None
        if self.accept_word("RETURNING"):
            which = self.expect_word("ALL", "MODIFIED")
            when = self.expect_word("OLD", "NEW")
            self.expect_op("*")
            returning = {"ALL": "ALL", "MODIFIED": "UPDATED"}[which] + "_" + when
        return Update(table, tuple(sets), tuple(removes), where, returning)

    def delete(self) -> Delete:
        self.expect_word("DELETE")
        self.expect_word("FROM")
        table = self.name()
        self.expect_word("WHERE")
        where = self.condition()
        returning = None
        if self.accept_word("RETURNING"):
            self.expect_word("ALL")
            self.expect_word("OLD")
            self.expect_op("*")
            returning = "ALL_OLD"
        return Delete(table, where, returning)

    # -- names and paths
    def name(self) -> str:
        token = self.take()
        if token.kind == "quoted":
            return token.text[1:-1].replace('""', '"')
        if token.kind == "word":
            return token.text
        raise malformed(f"Expected a name but found {token.text or 'the end of the statement'!r}")

    def path(self) -> Path:
        elements: list[str | int] = [self.name()]
        while True:
            if self.peek().kind == "op" and self.peek().text == "." and self.peek(1).kind in ("word", "quoted"):
                self.at += 1
                elements.append(self.name())
            elif self.accept_op("["):
                token = self.take()
                if token.kind != "number" or not token.text.isdigit():
                    raise malformed(f"Expected a list index but found {token.text!r}")
                elements.append(int(token.text))
                self.expect_op("]")
            else:
                return Path(tuple(elements))

    # -- values
    def value(self) -> AttributeValue:
        token = self.peek()
        if token.kind == "string":
            self.at += 1
            return {"S": token.text[1:-1].replace("''", "'")}
        if token.kind == "number" or (token.kind == "op" and token.text == "-" and self.peek(1).kind == "number"):
            negative = self.accept_op("-")
            return {"N": ("-" if negative else "") + self.take().text}
        if self.accept_op("?"):
            if self.used >= len(self.parameters):
                raise ValidationException("Number of parameters in request and statement don't match.")
            self.used += 1
            return self.parameters[self.used - 1]
        word = self.accept_word("TRUE", "FALSE", "NULL")
        if word is not None:
            return {"NULL": True} if word == "NULL" else {"BOOL": word == "TRUE"}
        if self.accept_op("["):
            items: list[AttributeValue] = []
            if not self.accept_op("]"):
                items.append(self.value())
                while self.accept_op(","):
                    items.append(self.value())
                self.expect_op("]")
            return {"L": items}
        if self.accept_op("{"):
            members: dict[str, AttributeValue] = {}
            if not self.accept_op("}"):
                while True:
                    key = self.take()
                    if key.kind != "string":
                        raise malformed(f"Expected a quoted attribute name but found {key.text!r}")
                    self.expect_op(":")
                    members[key.text[1:-1].replace("''", "'")] = self.value()
                    if not self.accept_op(","):
                        break
                self.expect_op("}")
            return {"M": members}
        if self.accept_op("<<"):
            elements = [self.value()]
            while self.accept_op(","):
                elements.append(self.value())
            self.expect_op(">>")
            return _set_of(elements)
        raise malformed(f"Expected a value but found {token.text or 'the end of the statement'!r}")

    def is_value_start(self) -> bool:
        token = self.peek()
        if token.kind in ("string", "number"):
            return True
        if token.kind == "op":
            return token.text in ("?", "[", "{", "<<") or (token.text == "-" and self.peek(1).kind == "number")
        return token.word("TRUE", "FALSE", "NULL")

    def operand(self) -> Operand:
        if self.is_value_start():
            return Value(self.value())
        if self.peek().word("SIZE") and self.peek(1).text == "(":
            self.at += 2
            path = self.path()
            self.expect_op(")")
            return Size(path)
        return self.path()

    def assigned(self) -> Assigned:
        if self.peek().word("LIST_APPEND") and self.peek(1).text == "(":
            self.at += 2
            first = self.operand()
            self.expect_op(",")
            second = self.operand()
            self.expect_op(")")
            return ListAppend(first, second)
        left = self.operand()
        token = self.peek()
        if token.kind == "op" and token.text in ("+", "-"):
            self.at += 1
            return Arithmetic(token.text, left, self.operand())
        return left

    # -- conditions
    def condition(self) -> Condition:
        left = self.conjunction()
        while self.accept_word("OR"):
            left = Or(left, self.conjunction())
        return left

    def conjunction(self) -> Condition:
        left = self.negation()
        while self.accept_word("AND"):
            left = And(left, self.negation())
        return left

    def negation(self) -> Condition:
        if self.accept_word("NOT"):
            return Not(self.negation())
        return self.predicate()

    def predicate(self) -> Condition:
        if self.accept_op("("):
            inner = self.condition()
            self.expect_op(")")
            return inner
        token = self.peek()
        if token.word("BEGINS_WITH", "CONTAINS", "ATTRIBUTE_TYPE") and self.peek(1).text == "(":
            self.at += 2
            path = self.path()
            self.expect_op(",")
            argument = self.operand()
            self.expect_op(")")
            return Function(token.text.lower(), path, argument)
        left = self.operand()
        token = self.peek()
        if token.kind == "op" and token.text in ("=", "<>", "!=", "<", "<=", ">", ">="):
            self.at += 1
            return Compare("<>" if token.text == "!=" else token.text, left, self.operand())
        if self.accept_word("BETWEEN"):
            low = self.operand()
            self.expect_word("AND")
            return Between(left, low, self.operand())
        if self.accept_word("IN"):
            closing = "]" if self.accept_op("[") else ")"
            if closing == ")":
                self.expect_op("(")
            choices = [self.operand()]
            while self.accept_op(","):
                choices.append(self.operand())
            self.expect_op(closing)
            if len(choices) > MAX_IN_VALUES:
                raise ValidationException(f"The IN operator takes at most {MAX_IN_VALUES} values")
            return In(left, tuple(choices))
        if self.accept_word("IS"):
            negated = self.accept_word("NOT") is not None
            what = self.expect_word("MISSING", "NULL")
            if not isinstance(left, Path):
                raise malformed(f"IS {what} needs an attribute path")
            return Is(left, what, negated)
        raise malformed(f"Expected a condition but found {token.text or 'the end of the statement'!r}")


def _set_of(elements: list[AttributeValue]) -> AttributeValue:
    kinds = {next(iter(one)) for one in elements}
    if kinds == {"S"}:
        return {"SS": [one["S"] for one in elements]}
    if kinds == {"N"}:
        return {"NS": [one["N"] for one in elements]}
    if kinds == {"B"}:
        return {"BS": [one["B"] for one in elements]}
    raise ValidationException("A set's elements must all be strings, all numbers or all binaries")


def parse(text: str, parameters: list[AttributeValue] | None = None) -> Statement:
    """Parse one statement; ``?`` takes the parameters in order."""
    return _Parser(text, list(parameters or ())).statement()


# ---- rendering into DynamoDB's expression language ------------------------------------------------------------


@dataclass
class Expression:
    """Names and values of the expressions of one request, as placeholders."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, AttributeValue] = field(default_factory=dict)
    _by_name: dict[str, str] = field(default_factory=dict)

    def name(self, name: str) -> str:
        placeholder = self._by_name.get(name)
        if placeholder is None:
            placeholder = self._by_name[name] = f"#n{len(self._by_name)}"
            self.names[placeholder] = name
        return placeholder

    def value(self, value: AttributeValue) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def path(self, path: Path) -> str:
        out = ""
        for element in path.elements:
            if isinstance(element, int):
                out += f"[{element}]"
            else:
                out += ("." if out else "") + self.name(element)
        return out

    def operand(self, operand: Operand | Arithmetic | ListAppend) -> str:
        if isinstance(operand, Path):
            return self.path(operand)
        if isinstance(operand, Value):
            return self.value(operand.value)
        if isinstance(operand, Size):
            return f"size({self.path(operand.path)})"
        if isinstance(operand, Arithmetic):
            return f"{self.operand(operand.left)} {operand.op} {self.operand(operand.right)}"
        return f"list_append({self.operand(operand.first)}, {self.operand(operand.second)})"

    def condition(self, node: Condition) -> str:
        if isinstance(node, And):
            return f"({self.condition(node.left)}) AND ({self.condition(node.right)})"
        if isinstance(node, Or):
            return f"({self.condition(node.left)}) OR ({self.condition(node.right)})"
        if isinstance(node, Not):
            return f"NOT ({self.condition(node.operand)})"
        if isinstance(node, Compare):
            return f"{self.operand(node.left)} {node.op} {self.operand(node.right)}"
        if isinstance(node, Between):
            return f"{self.operand(node.operand)} BETWEEN {self.operand(node.low)} AND {self.operand(node.high)}"
        if isinstance(node, In):
            return f"{self.operand(node.operand)} IN ({', '.join(self.operand(one) for one in node.choices)})"
        if isinstance(node, Function):
            return f"{node.name}({self.path(node.path)}, {self.operand(node.argument)})"
        assert isinstance(node, Is)
        path = self.path(node.path)
        if node.what == "MISSING":
            return f"attribute_exists({path})" if node.negated else f"attribute_not_exists({path})"
        test = f"attribute_type({path}, {self.value({'S': 'NULL'})})"
        return f"NOT {test}" if node.negated else test

    def attach(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.names:
            request["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            request["ExpressionAttributeValues"] = dict(self.values)
        return request


def conjuncts(node: Condition | None) -> Iterator[Condition]:
    """The terms of a condition's top-level AND."""
    if node is None:
        return
    if isinstance(node, And):
        yield from conjuncts(node.left)
        yield from conjuncts(node.right)
    else:
        yield node


def _key_equality(node: Condition, name: str) -> AttributeValue | None:
    """The value ``node`` pins the top-level attribute ``name`` to with ``=``, if it does."""
    if not isinstance(node, Compare) or node.op != "=":
        return None
    for one, other in ((node.left, node.right), (node.right, node.left)):
        if isinstance(one, Path) and one.elements == (name,) and isinstance(other, Value):
            return other.value
    return None


def _is_sort_condition(node: Condition, name: str) -> bool:
    """Whether ``node`` is a condition a Query's key condition may put on the sort key ``name``."""
    if isinstance(node, Compare) and node.op != "<>":
        return isinstance(node.left, Path) and node.left.elements == (name,) and isinstance(node.right, Value)
    if isinstance(node, Between):
        return (isinstance(node.operand, Path) and node.operand.elements == (name,)
                and isinstance(node.low, Value) and isinstance(node.high, Value))
    if isinstance(node, Function) and node.name == "begins_with":
        return node.path.elements == (name,) and isinstance(node.argument, Value)
    return False


def key_of(where: Condition, key: KeySchema) -> dict[str, AttributeValue]:
    """The primary key an UPDATE's or DELETE's WHERE pins with ``=`` on every key attribute."""
    found: dict[str, AttributeValue] = {}
    for node in conjuncts(where):
        for name in key.names:
            value = _key_equality(node, name)
            if value is not None and name not in found:
                found[name] = value
    if len(found) != len(key.names):
        raise ValidationException("Where clause does not contain a mandatory equality on all key attributes")
    return found


def without_key(where: Condition, key: dict[str, AttributeValue]) -> Condition | None:
    """The WHERE minus the key equalities that ``key_of`` took (the item's condition)."""
    rest: list[Condition] = []
    left = dict(key)
    for node in conjuncts(where):
        taken = next((name for name in left if _key_equality(node, name) == left[name]), None)
        if taken is not None:
            del left[taken]
            continue
        rest.append(node)
    if not rest:
        return None
    combined = rest[0]
    for node in rest[1:]:
        combined = And(combined, node)
    return combined


@dataclass(frozen=True, slots=True)
class Selection:
    """What a SELECT applies to each item its Query or Scan reads: the whole WHERE (its parts are also in
    the key condition, which is harmless), then the projection."""

    condition: str | None
    projection: str | None
    names: dict[str, str]
    values: dict[str, AttributeValue]


def plan_select(statement: Select, key: KeySchema, consistent: bool) -> tuple[str, dict[str, Any], Selection]:
    """The Query or Scan a SELECT reads (``key``: the table's key, or the index's), and what it then keeps."""
    request: dict[str, Any] = {"TableName": statement.table}
    if statement.index is not None:
        request["IndexName"] = statement.index
    if consistent:
        request["ConsistentRead"] = True
    terms = list(conjuncts(statement.where))
    hash_value = next((value for value in (_key_equality(node, key.hash_name) for node in terms)
                       if value is not None), None)
    if statement.order_by is not None and (hash_value is None or statement.order_by.elements != (key.range_name,)):
        raise ValidationException("ORDER BY is supported only on the sort key, with the partition key given by "
                                  "an equality in the WHERE clause")
    operation = "Scan"
    if hash_value is not None:
        operation = "Query"
        keyed = Expression()
        parts = [f"{keyed.name(key.hash_name)} = {keyed.value(hash_value)}"]
        if key.range_name is not None:
            sort = next((node for node in terms if _is_sort_condition(node, key.range_name)), None)
            if sort is not None:
                parts.append(keyed.condition(sort))
        request["KeyConditionExpression"] = " AND ".join(parts)
        keyed.attach(request)
        if statement.order_descending:
            request["ScanIndexForward"] = False
    kept = Expression()
    condition = kept.condition(statement.where) if statement.where is not None else None
    projection = ", ".join(kept.path(path) for path in statement.projection) if statement.projection else None
    return operation, request, Selection(condition, projection, kept.names, kept.values)


def plan_write(statement: Insert | Update | Delete, key: KeySchema) -> tuple[str, dict[str, Any]]:
    """The PutItem, UpdateItem or DeleteItem a write statement is."""
    expression = Expression()
    if isinstance(statement, Insert):
        request: dict[str, Any] = {
            "TableName": statement.table, "Item": statement.item,
            "ConditionExpression": f"attribute_not_exists({expression.name(key.hash_name)})",
        }
        return "PutItem", expression.attach(request)
    item_key = key_of(statement.where, key)
    rest = without_key(statement.where, item_key)
    request = {"TableName": statement.table, "Key": item_key}
    if isinstance(statement, Update):
        clauses = []
        if statement.sets:
            clauses.append("SET " + ", ".join(f"{expression.path(path)} = {expression.operand(value)}"
                                              for path, value in statement.sets))
        if statement.removes:
            clauses.append("REMOVE " + ", ".join(expression.path(path) for path in statement.removes))
        request["UpdateExpression"] = " ".join(clauses)
        # An UPDATE changes an item that exists; it never creates one.
        exists = f"attribute_exists({expression.name(key.hash_name)})"
        request["ConditionExpression"] = exists if rest is None else f"{exists} AND ({expression.condition(rest)})"
        if statement.returning is not None:
            request["ReturnValues"] = statement.returning
        return "UpdateItem", expression.attach(request)
    if rest is not None:
        # A DELETE of an item that is not there succeeds; one that is there must meet the rest of the WHERE.
        missing = f"attribute_not_exists({expression.name(key.hash_name)})"
        request["ConditionExpression"] = f"{missing} OR ({expression.condition(rest)})"
    if statement.returning is not None:
        request["ReturnValues"] = statement.returning
    return "DeleteItem", expression.attach(request)


def key_lookup(statement: Select, key: KeySchema) -> dict[str, Any]:
    """A BatchExecuteStatement's SELECT: a GetItem of the one item its WHERE names by its whole key."""
    if statement.where is None or statement.index is not None:
        raise ValidationException("Batch read statements must name one item by its whole primary key")
    item_key = key_of(statement.where, key)
    if without_key(statement.where, item_key) is not None:
        raise ValidationException("Batch read statements must name one item by its whole primary key")
    request: dict[str, Any] = {"TableName": statement.table, "Key": item_key}
    if statement.projection:
        expression = Expression()
        request["ProjectionExpression"] = ", ".join(expression.path(path) for path in statement.projection)
        expression.attach(request)
    return request


def exists_check(statement: Select, key: KeySchema) -> dict[str, Any]:
    """An ExecuteTransaction's ``EXISTS(SELECT ...)``: the ConditionCheck that the item its WHERE names by
    its whole key exists and meets the rest of the WHERE."""
    if statement.where is None or statement.index is not None:
        raise ValidationException("Where clause does not contain a mandatory equality on all key attributes")
    item_key = key_of(statement.where, key)
    rest = without_key(statement.where, item_key)
    expression = Expression()
    exists = f"attribute_exists({expression.name(key.hash_name)})"
    request: dict[str, Any] = {
        "TableName": statement.table, "Key": item_key,
        "ConditionExpression": exists if rest is None else f"{exists} AND ({expression.condition(rest)})",
    }
    return expression.attach(request)


_EXISTS = re.compile(r"\s*EXISTS\s*\((.*)\)\s*", re.IGNORECASE | re.DOTALL)


def exists_inner(text: str) -> str | None:
    """The SELECT inside ``EXISTS( ... )``, or None for any other statement."""
    found = _EXISTS.fullmatch(text)
    return found.group(1) if found else None
