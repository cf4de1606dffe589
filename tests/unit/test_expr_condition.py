"""ConditionExpression / FilterExpression: grammar, precedence, functions, semantics, limits, messages."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo.errors import SerializationException, ValidationException
from dynamo.expressions import (
    MAX_EXPRESSION_BYTES,
    MAX_IN_OPERANDS,
    MAX_PATH_DEPTH,
    ExpressionContext,
    evaluate,
    parse_condition,
)
from dynamo.expressions.reserved import RESERVED_WORDS


def S(x: str) -> dict[str, Any]:
    return {"S": x}


def N(x: str | int) -> dict[str, Any]:
    return {"N": str(x)}


def B(x: bytes) -> dict[str, Any]:
    return {"B": base64.b64encode(x).decode()}


ITEM: dict[str, Any] = {
    "id": S("k"),
    "s": S("hello"),
    "n": N(5),
    "b": B(b"\x01\x02\x03"),
    "ss": {"SS": ["x", "y"]},
    "ns": {"NS": ["1", "2.50"]},
    "bs": {"BS": [base64.b64encode(b"a").decode()]},
    "l": {"L": [S("a"), N(2), {"M": {"q": N(1)}}]},
    "m": {"M": {"a": {"M": {"b": {"L": [N(0), N(7)]}}}, "x y": S("sp")}},
    "t": {"BOOL": True},
    "z": {"NULL": True},
}


def check(text: str, values: dict[str, Any] | None = None, names: dict[str, str] | None = None, item: Any = ITEM) -> bool:
    ctx = ExpressionContext(names, values)
    condition = parse_condition(text, ctx)
    ctx.check_all_used()
    return evaluate(condition, item)


def error(text: str, values: dict[str, Any] | None = None, names: dict[str, str] | None = None, kind: str = "ConditionExpression") -> str:
    with pytest.raises(ValidationException) as info:
        ctx = ExpressionContext(names, values)
        parse_condition(text, ctx, kind=kind)
        ctx.check_all_used()
    return info.value.message


# ---- comparisons ----


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("n = :v", N(5), True),
        ("n = :v", N("5.0"), True),
        ("n = :v", S("5"), False),
        ("n <> :v", N(4), True),
        ("n <> :v", N(5), False),
        ("nope <> :v", N(5), True),
        ("nope = :v", N(5), False),
        ("n < :v", N(6), True),
        ("n < :v", N(5), False),
        ("n <= :v", N(5), True),
        ("n > :v", N(-1), True),
        ("n >= :v", N(6), False),
        ("n < :v", S("9"), False),
        ("s < :v", S("help"), True),
        ("s > :v", S("hello"), False),
        ("s >= :v", S("hello"), True),
        ("b < :v", B(b"\x01\x02\x04"), True),
        ("b > :v", B(b"\x01\x02"), True),
        ("nope < :v", N(1), False),
        ("ss = :v", {"SS": ["y", "x"]}, True),
        ("ns = :v", {"NS": ["2.5", "1"]}, True),
        ("l = :v", {"L": [S("a"), N("2.0"), {"M": {"q": N(1)}}]}, True),
        ("l = :v", {"L": [S("a"), N(2)]}, False),
        ("m.a.b[1] = :v", N(7), True),
        ("m.a.b[2] = :v", N(7), False),
        ("l[2].q = :v", N(1), True),
        ("t = :v", {"BOOL": True}, True),
        ("z = :v", {"NULL": True}, True),
        (":v = n", N(5), True),
        (":v > n", N(6), True),
    ],
)
def test_comparisons(text: str, value: dict[str, Any], expected: bool) -> None:
    assert check(text, {":v": value}) is expected


def test_comparing_two_attributes() -> None:
    assert check("n < s") is False
    assert check("m.a.b[1] > n") is True
    assert check("l[1] < n") is True


@pytest.mark.parametrize(
    ("text", "operator", "first"),
    [
        ("n = n", "=", "[n]"),
        ("m.a.b[0] < m.a.b[0]", "<", "[m, a, b, [0]]"),
        ("#a <> #b", "<>", "[n]"),
        ("n BETWEEN :v AND n", "BETWEEN", "[n]"),
        ("n IN (:v, n)", "IN", "[n]"),
        ("contains(s, s)", "contains", "[s]"),
        ("begins_with(s, s)", "begins_with", "[s]"),
    ],
)
def test_operands_must_be_distinct(text: str, operator: str, first: str) -> None:
    values = {":v": N(1)} if ":v" in text else None
    names = {"#a": "n", "#b": "n"} if "#" in text else None
    assert error(text, values, names) == (
        "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this "
        f"operator or function; operator: {operator}, first operand: {first}"
    )


def test_unicode_strings_order_as_utf8_bytes() -> None:
    item = {"a": S("\uffff"), "c": S("\U0001f600")}
    assert check("a < c", item=item) is True


def test_between_and_in() -> None:
    assert check("n BETWEEN :lo AND :hi", {":lo": N(1), ":hi": N(5)}) is True
    assert check("n between :lo and :hi", {":lo": N(6), ":hi": N(9)}) is False
    assert check("s BETWEEN :lo AND :hi", {":lo": S("a"), ":hi": S("z")}) is True
    assert check("nope BETWEEN :lo AND :hi", {":lo": N(1), ":hi": N(9)}) is False
    assert check("s BETWEEN :lo AND :hi", {":lo": N(1), ":hi": N(9)}) is False
    assert check("n IN (:a, :b)", {":a": N(1), ":b": N(5)}) is True
    assert check("n in (:a)", {":a": N(1)}) is False
    assert check("nope IN (:a)", {":a": N(1)}) is False
    assert check("n IN (s, :a)", {":a": N(5)}) is True


# ---- functions ----


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("attribute_exists(s)", None, True),
        ("attribute_exists(nope)", None, False),
        ("attribute_exists(m.a.b[1])", None, True),
        ("attribute_exists(m.a.b[9])", None, False),
        ("attribute_not_exists(nope)", None, True),
        ("attribute_not_exists(s)", None, False),
        ("attribute_type(s, :t)", {":t": S("S")}, True),
        ("attribute_type(n, :t)", {":t": S("S")}, False),
        ("attribute_type(ns, :t)", {":t": S("NS")}, True),
        ("attribute_type(z, :t)", {":t": S("NULL")}, True),
        ("attribute_type(nope, :t)", {":t": S("S")}, False),
        ("begins_with(s, :p)", {":p": S("he")}, True),
        ("begins_with(s, :p)", {":p": S("lo")}, False),
        ("begins_with(b, :p)", {":p": B(b"\x01")}, True),
        ("begins_with(b, :p)", {":p": S("x")}, False),
        ("begins_with(n, :p)", {":p": S("5")}, False),
        ("contains(s, :p)", {":p": S("ell")}, True),
        ("contains(s, :p)", {":p": S("xyz")}, False),
        ("contains(ss, :p)", {":p": S("x")}, True),
        ("contains(ss, :p)", {":p": S("q")}, False),
        ("contains(ns, :p)", {":p": N("2.5")}, True),
        ("contains(ns, :p)", {":p": S("1")}, False),
        ("contains(bs, :p)", {":p": B(b"a")}, True),
        ("contains(b, :p)", {":p": B(b"\x02\x03")}, True),
        ("contains(b, :p)", {":p": B(b"\x03\x02")}, False),
        ("attribute_type(:p, :t)", {":p": N(1), ":t": S("N")}, True),
        ("contains(l, :p)", {":p": N(2)}, True),
        ("contains(l, :p)", {":p": {"M": {"q": N(1)}}}, True),
        ("contains(l, :p)", {":p": N(3)}, False),
        ("contains(n, :p)", {":p": N(5)}, False),
        ("contains(nope, :p)", {":p": S("a")}, False),
        ("size(s) = :n", {":n": N(5)}, True),
        ("size(b) = :n", {":n": N(3)}, True),
        ("size(ss) = :n", {":n": N(2)}, True),
        ("size(l) > :n", {":n": N(2)}, True),
        ("size(m) = :n", {":n": N(2)}, True),
        ("size(n) = :n", {":n": N(1)}, False),
        ("size(t) = :n", {":n": N(1)}, False),
        ("size(nope) < :n", {":n": N(1)}, False),
        ("size(s) = :n", {":n": S("5")}, False),
        ("size(s) = size(ss)", None, False),
        ("size(l[2]) = :n", {":n": N(1)}, True),
    ],
)
def test_functions(text: str, values: dict[str, Any] | None, expected: bool) -> None:
    assert check(text, values) is expected


def test_size_counts_utf8_bytes() -> None:
    assert check("size(a) = :n", {":n": N(4)}, item={"a": S("\u00e9\u00e9")}) is True


# ---- logic and precedence ----


def test_logic() -> None:
    t, f = "attribute_exists(s)", "attribute_exists(nope)"
    assert check(f"{t} AND {t}") is True
    assert check(f"{t} and {f}") is False
    assert check(f"{f} OR {t}") is True
    assert check(f"NOT {f}") is True
    assert check(f"not not {t}") is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # NOT binds tighter than AND, AND tighter than OR.
        ("$t OR $t AND $f", True),
        ("($t OR $t) AND $f", False),
        ("$f AND $f OR $t", True),
        ("$f AND ($f OR $t)", False),
        ("NOT $f AND $f", False),
        ("NOT ($f AND $f)", True),
        ("NOT $t OR $t", True),
        ("NOT ($t OR $t)", False),
        ("$t AND NOT $f AND $t", True),
    ],
)
def test_precedence(text: str, expected: bool) -> None:
    text = text.replace("$t", "attribute_exists(s)").replace("$f", "attribute_exists(q)")
    assert check(text) is expected


def test_comparison_binds_tighter_than_logic() -> None:
    assert check("n = :a OR n = :b AND s = :c", {":a": N(5), ":b": N(0), ":c": S("no")}) is True
    assert check("NOT n = :a", {":a": N(5)}) is False


def test_single_parentheses_are_fine_double_are_redundant() -> None:
    assert check("(n = :a)", {":a": N(5)}) is True
    assert check("(n = :a) AND ((n = :a) OR (n = :a))", {":a": N(5)}) is True
    assert error("((n = :a))", {":a": N(5)}) == "Invalid ConditionExpression: The expression has redundant parentheses;"
    assert "redundant parentheses" in error("n = :a AND ((n = :a))", {":a": N(5)})


def test_whitespace_and_case() -> None:
    assert check("  n=:a   AnD\tn<>:b\n", {":a": N(5), ":b": N(1)}) is True


def test_evaluate_on_nope_item() -> None:
    assert check("attribute_not_exists(id)", item=None) is True
    assert check("attribute_exists(id)", item=None) is False
    assert check("n <> :a", {":a": N(1)}, item=None) is True


def test_evaluate_does_not_mutate() -> None:
    import copy

    before = copy.deepcopy(ITEM)
    check("size(l) > :n AND contains(ss, :s) AND m.a.b[0] = :z", {":n": N(0), ":s": S("x"), ":z": N(0)})
    assert ITEM == before


# ---- placeholders ----


def test_name_placeholders_allow_reserved_and_odd_names() -> None:
    names = {"#n": "name", "#w": "x y", "#dot": "a.b"}
    item = {"name": S("v"), "m": {"M": {"x y": S("sp")}}, "a.b": S("lit")}
    assert check("#n = :v AND m.#w = :w AND #dot = :d", {":v": S("v"), ":w": S("sp"), ":d": S("lit")}, names, item)


def test_undefined_placeholders() -> None:
    assert (
        error("#x = :v", {":v": N(1)})
        == "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; "
        "attribute name: #x"
    )
    assert (
        error("a = :x", {":v": N(1)})
        == "Invalid ConditionExpression: An expression attribute value used in expression is not defined; "
        "attribute value: :x"
    )
    assert "attribute value: :x" in error("a = :x")


def test_unused_placeholders() -> None:
    assert (
        error("a = :v", {":v": N(1), ":w": N(2)})
        == "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}"
    )
    assert (
        error("a = :v", {":v": N(1)}, {"#a": "a", "#b": "b"})
        == "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}"
    )


def test_context_shared_by_two_expressions() -> None:
    ctx = ExpressionContext({"#a": "a"}, {":v": N(1), ":w": N(2)})
    parse_condition("#a = :v", ctx)
    with pytest.raises(ValidationException):
        ctx.check_all_used()
    parse_condition("b = :w", ctx, kind="FilterExpression")
    ctx.check_all_used()


@pytest.mark.parametrize(
    ("names", "values", "message"),
    [
        ({}, None, "ExpressionAttributeNames must not be empty"),
        (None, {}, "ExpressionAttributeValues must not be empty"),
        ({"a": "x"}, None, 'ExpressionAttributeNames contains invalid key: Syntax error; key: "a"'),
        (None, {"v": N(1)}, 'ExpressionAttributeValues contains invalid key: Syntax error; key: "v"'),
        (
            None,
            {":v": {"SS": []}},
            "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: "
            "An string set  may not be empty for key :v",
        ),
        (
            None,
            {":v": {"N": "x"}},
            "ExpressionAttributeValues contains invalid value: The parameter cannot be converted to a numeric value: x "
            "for key :v",
        ),
    ],
)
def test_context_validation(names: Any, values: Any, message: str) -> None:
    with pytest.raises(ValidationException) as info:
        ExpressionContext(names, values)
    assert info.value.message == message


def test_context_values_follow_the_shared_value_rules() -> None:
    """ExpressionAttributeValues go through dynamo.values: same messages, normal form, wire-type errors."""
    with pytest.raises(ValidationException) as info:
        ExpressionContext(None, {":v": {"BS": []}})
    assert info.value.message == (
        "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: "
        "Binary sets should not be empty for key :v"
    )
    with pytest.raises(SerializationException):
        ExpressionContext(None, {":v": {"N": 5}})
    with pytest.raises(SerializationException):  # read before anything is validated
        ExpressionContext(None, {":a": {"SS": []}, ":b": {"S": 5}})
    given = {":v": {"N": "1.50"}, ":w": {"S": "x"}}
    ctx = ExpressionContext(None, given)
    assert ctx.values == {":v": {"N": "1.5"}, ":w": {"S": "x"}}
    assert given[":v"] == {"N": "1.50"}  # the caller's mapping is not changed
    normal = {":v": {"N": "1.5"}}
    assert ExpressionContext(None, normal).values is normal


def test_reserved_words() -> None:
    assert len(RESERVED_WORDS) == 573
    assert (
        error("name = :v", {":v": N(1)})
        == "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: name"
    )
    assert "reserved keyword: Size" in error("a.Size = :v", {":v": N(1)})
    assert "reserved keyword: data" in error("attribute_exists(data)")
    # A function name is not an attribute name, even when it is a reserved word.
    assert check("size(s) = :n", {":n": N(5)}) is True


# ---- errors ----


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a = ", 'Syntax error; token: "<EOF>", near: "a ="'),
        ("a == :v", 'Syntax error; token: "=", near: "== :v"'),
        ("a != :v", 'Syntax error; token: "!", near: "a !="'),
        ("a = :v b", 'Syntax error; token: "b", near: ":v b"'),
        ("_a = :v", 'Syntax error; token: "_", near: "_a"'),
        ("a[:v] = :v", 'Syntax error; token: ":v", near: "[:v]"'),
        ("a[-1] = :v", 'Syntax error; token: "-", near: "[-1"'),
        ("a IN () ", 'Syntax error; token: ")", near: "()"'),
        ("a BETWEEN :v", 'Syntax error; token: "<EOF>", near: "BETWEEN :v"'),
        ("AND = :v", 'Syntax error; token: "AND", near: "AND ="'),
        ("(a = :v", 'Syntax error; token: "<EOF>", near: "= :v"'),
        ("a", 'Syntax error; token: "<EOF>", near: "a"'),
        ("a.= :v", 'Syntax error; token: "=", near: ".= :v"'),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    assert error(text, {":v": N(1)}) == "Invalid ConditionExpression: " + message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("size(a)", "The function is not allowed to be used this way in an expression; function: size"),
        ("attribute_exists(a) = :v", "The function is not allowed to be used this way in an expression; function: attribute_exists"),
        ("dog(a) = :v", "Invalid function name; function: dog"),
        ("dog(a)", "Invalid function name; function: dog"),
        ("BEGINS_WITH(a, :v)", "Invalid function name; function: BEGINS_WITH"),
        ("if_not_exists(a, a) = :v", "The function is not allowed in a condition expression; function: if_not_exists"),
        ("list_append(a, a) = :v", "The function is not allowed in a condition expression; function: list_append"),
        ("size(a, a) = :v", "Incorrect number of operands for operator or function; operator or function: size, number of operands: 2"),
        ("attribute_exists(a, a)", "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2"),
        ("begins_with(a)", "Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1"),
        ("attribute_exists(:v)", "Operator or function requires a document path; operator or function: attribute_exists"),
        ("attribute_not_exists(size(a))", "Operator or function requires a document path; operator or function: attribute_not_exists"),
        ("a < :m", "Incorrect operand type for operator or function; operator or function: <, operand type: M"),
        (":l >= a", "Incorrect operand type for operator or function; operator or function: >=, operand type: L"),
        ("a BETWEEN :t AND :v", "Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: BOOL"),
        ("begins_with(a, :v)", "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
        ("contains(:v, a)", "Incorrect operand type for operator or function; operator or function: contains, operand type: N"),
        ("size(:v) = :v", "Incorrect operand type for operator or function; operator or function: size, operand type: N"),
        ("attribute_type(a, :v)", "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N"),
        ("attribute_type(a, b)", "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: PATH"),
        ("attribute_type(a, :x)", "Invalid attribute type name found; type: X, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"),
        ("a BETWEEN :v AND :x", "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:X}"),
        ("a BETWEEN :nine AND :v", "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:9}, upper bound operand: AttributeValue: {N:1}"),
    ],
)
def test_semantic_errors(text: str, message: str) -> None:
    values = {":v": N(1), ":m": {"M": {}}, ":l": {"L": []}, ":t": {"BOOL": True}, ":x": S("X"), ":nine": N(9)}
    with pytest.raises(ValidationException) as info:
        parse_condition(text, ExpressionContext(None, values))
    assert info.value.message == "Invalid ConditionExpression: " + message


def test_filter_expression_kind_in_messages() -> None:
    assert error("a = ", kind="FilterExpression").startswith("Invalid FilterExpression: Syntax error")


def test_empty_expression() -> None:
    assert error("") == "Invalid ConditionExpression: The expression can not be empty;"
    assert error("   ") == "Invalid ConditionExpression: The expression can not be empty;"


# ---- limits: the boundary is accepted, one past it is refused ----


def test_expression_size_limit() -> None:
    body = "attribute_exists(a) OR "
    text = (body * 200)[: MAX_EXPRESSION_BYTES - len("attribute_exists(a)")]
    text = text[: text.rfind(" OR ") + 4] + "attribute_exists(a)"
    padded = text + " " * (MAX_EXPRESSION_BYTES - len(text))
    assert len(padded.encode()) == MAX_EXPRESSION_BYTES
    assert check(padded) is False
    assert (
        error(padded + " ")
        == f"Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: {MAX_EXPRESSION_BYTES + 1}"
    )


def test_expression_size_counts_utf8_bytes() -> None:
    names = {"#a": "a"}
    text = "#a = :v" + " " * (MAX_EXPRESSION_BYTES - 9)
    assert "Syntax error" in error(text + "\u00e9", {":v": N(1)}, names)
    assert "expression size: 4098" in error(text + "\u00e9\u00e9", {":v": N(1)}, names)


def test_in_operand_limit() -> None:
    # DynamoDB counts the left-hand operand: 99 choices pass, 100 do not.
    values = {f":v{i}": N(i) for i in range(MAX_IN_OPERANDS)}
    ok = "a IN (" + ", ".join(f":v{i}" for i in range(MAX_IN_OPERANDS - 1)) + ")"
    item = {"a": N(MAX_IN_OPERANDS - 2)}
    ctx = ExpressionContext(None, values)
    assert evaluate(parse_condition(ok, ctx), item) is True
    too_many = "a IN (" + ", ".join(values) + ")"
    assert (
        error(too_many, values)
        == "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101"
    )


def test_path_depth_limit() -> None:
    deep = "a" + ".b" * (MAX_PATH_DEPTH - 1)
    value: dict[str, Any] = N(1)
    for _ in range(MAX_PATH_DEPTH - 1):
        value = {"M": {"b": value}}
    assert check(f"{deep} = :v", {":v": N(1)}, item={"a": value}) is True
    mixed = "a" + "[0]" * (MAX_PATH_DEPTH - 1)
    assert check(f"attribute_exists({mixed})", item={"a": N(1)}) is False
    assert (
        error(f"{deep}.c = :v", {":v": N(1)})
        == "Invalid ConditionExpression: The document path has too many nesting levels; nesting levels: 33"
    )


def test_parse_is_cached_by_text() -> None:
    from dynamo.expressions.parser import parse_condition_text

    parse_condition_text.cache_clear()
    for value in ("1", "2", "3"):
        check("n = :v", {":v": N(value)}, item=ITEM)
    info = parse_condition_text.cache_info()
    assert info.misses == 1 and info.hits == 2


def test_only_ascii_whitespace_separates_tokens() -> None:
    assert check("n\t=\r\n:a", {":a": N(5)}) is True
    assert error("n\u00a0= :a", {":a": N(5)}).startswith('Invalid ConditionExpression: Syntax error; token: "\u00a0"')


# ---- properties against reference semantics ----

decimals = st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**12), max_value=10**12)


@settings(max_examples=200, deadline=None)
@given(decimals, decimals, st.sampled_from(["<", "<=", ">", ">=", "=", "<>"]))
def test_number_comparisons_match_decimal(x: Decimal, y: Decimal, op: str) -> None:
    expected = {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y, "=": x == y, "<>": x != y}[op]
    assert check(f"a {op} :v", {":v": N(str(y))}, item={"a": N(str(x))}) is expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=6), st.text(max_size=6))
def test_string_order_is_utf8_byte_order(x: str, y: str) -> None:
    assert check("a < :v", {":v": S(y)}, item={"a": S(x)}) is (x.encode() < y.encode())
    assert check("begins_with(a, :v)", {":v": S(y)}, item={"a": S(x)}) is x.startswith(y)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=6), st.binary(max_size=6))
def test_binary_order_is_unsigned_byte_order(x: bytes, y: bytes) -> None:
    assert check("a <= :v", {":v": B(y)}, item={"a": B(x)}) is (x <= y)
