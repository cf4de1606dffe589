"""UpdateExpression: SET (+, -, if_not_exists, list_append), REMOVE, ADD, DELETE, paths, types, messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dynamo.errors import ValidationException
from dynamo.expressions import ExpressionContext, apply_update, parse_update


def S(x: str) -> dict[str, Any]:
    return {"S": x}


def N(x: str | int) -> dict[str, Any]:
    return {"N": str(x)}


def L(*xs: dict[str, Any]) -> dict[str, Any]:
    return {"L": list(xs)}


def M(**xs: dict[str, Any]) -> dict[str, Any]:
    return {"M": dict(xs)}


KEY = {"p": S("k")}


def run(
    text: str,
    item: dict[str, Any] | None,
    values: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
    key: dict[str, Any] = KEY,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    ctx = ExpressionContext(names, values)
    update = parse_update(text, ctx)
    ctx.check_all_used()
    before = copy.deepcopy(item)
    result = apply_update(item, update, key)
    assert item == before, "apply_update mutated its input"
    return result


def new(text: str, item: dict[str, Any] | None, values: dict[str, Any] | None = None, names: dict[str, str] | None = None) -> dict[str, Any]:
    return run(text, item, values, names)[0]


def error(text: str, item: dict[str, Any] | None = None, values: dict[str, Any] | None = None, names: dict[str, str] | None = None) -> str:
    with pytest.raises(ValidationException) as info:
        run(text, item, values, names)
    return info.value.message


BASE = {"p": S("k"), "a": N(3), "s": S("hi")}


# ---- SET ----


def test_set_creates_the_item_with_its_key() -> None:
    assert new("SET a = :v", None, {":v": N(4)}) == {"p": S("k"), "a": N(4)}


def test_set_several_and_case_and_whitespace() -> None:
    assert new("  set x = :v,y=:v ", BASE, {":v": N(1)}) == {**BASE, "x": N(1), "y": N(1)}
    assert new("sEt a = :v", BASE, {":v": S("z")})["a"] == S("z")


def test_set_copies_reads_before_writes() -> None:
    assert new("SET b = a", BASE) == {**BASE, "b": N(3)}
    assert new("SET a = s, s = a", BASE) == {**BASE, "a": S("hi"), "s": N(3)}
    assert new("REMOVE a SET b = a", BASE) == {"p": S("k"), "s": S("hi"), "b": N(3)}


def test_set_from_missing_attribute() -> None:
    message = "The provided expression refers to an attribute that does not exist in the item"
    assert error("SET c = z", BASE) == message
    assert error("SET c = z", None) == message
    assert error("SET x = :v, y = x", BASE, {":v": N(1)}) == message


def test_plus_and_minus() -> None:
    assert new("SET a = a + :v", BASE, {":v": N(2)})["a"] == N(5)
    assert new("SET a = :v - a", BASE, {":v": N("0.5")})["a"] == N("-2.5")
    assert new("SET b = :v + :v", BASE, {":v": N("1E+2")})["b"] == N(200)
    assert new("SET b = if_not_exists(b, :z) + :v", BASE, {":z": N(0), ":v": N(1)})["b"] == N(1)


def test_plus_type_errors() -> None:
    assert (
        error("SET b = :v + :w", BASE, {":v": S("dog"), ":w": N(3)})
        == "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S"
    )
    assert "operator or function: -, operand type: L" in error("SET b = :w - :v", BASE, {":v": L(), ":w": N(3)})
    assert error("SET b = s + :w", BASE, {":w": N(3)}) == "An operand in the update expression has an incorrect data type"
    assert 'token: "+"' in error("SET b = :w + :w + :w", BASE, {":w": N(3)})
    assert 'token: "+"' in error("SET c = if_not_exists(c, :w + :w)", BASE, {":w": N(3)})


def test_plus_overflow_uses_number_limits() -> None:
    big = N("9E+125")
    assert "Number overflow" in error("SET b = :v + :v", BASE, {":v": big})


def test_list_append() -> None:
    item = {**BASE, "l": L(S("x"))}
    assert new("SET l = list_append(l, :v)", item, {":v": L(N(1))})["l"] == L(S("x"), N(1))
    assert new("SET l = list_append(:v, l)", item, {":v": L(N(1))})["l"] == L(N(1), S("x"))
    assert new("SET n = list_append(if_not_exists(n, :e), :v)", item, {":e": L(), ":v": L(N(1))})["n"] == L(N(1))
    assert (
        error("SET l = list_append(l, :v)", item, {":v": S("x")})
        == "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: S"
    )
    assert error("SET l = list_append(s, :v)", item, {":v": L()}) == "An operand in the update expression has an incorrect data type"
    assert "does not exist" in error("SET l = list_append(zz, :v)", item, {":v": L()})
    assert (
        error("SET l = list_append(:v)", item, {":v": L()})
        == "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1"
    )
    assert "function: list_append" in error("SET l = list_append(list_append(:v, :v), :v)", item, {":v": L()})
    assert "Invalid function name; function: LIST_APPEND" in error("SET l = LIST_APPEND(:v, :v)", item, {":v": L()})


def test_if_not_exists() -> None:
    assert new("SET a = if_not_exists(a, :v)", BASE, {":v": N(9)})["a"] == N(3)
    assert new("SET b = if_not_exists(a, :v)", BASE, {":v": N(9)})["b"] == N(3)
    assert new("SET b = if_not_exists(c, :v)", BASE, {":v": N(9)})["b"] == N(9)
    assert (
        error("SET b = if_not_exists(:v, :v)", BASE, {":v": N(9)})
        == "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists"
    )
    assert "attribute value: :w" in error("SET b = if_not_exists(:w, :v)", BASE, {":v": N(9)})
    assert "Invalid function name; function: f" in error("SET a = f(b, c)", BASE)
    assert 'token: "_"' in error("SET a = _f(b)", BASE)
    assert "function: size" in error("SET a = size(s)", BASE)


def test_set_nested() -> None:
    item = {**BASE, "m": M(b=N(3), c=L(S("hi"), M(x=M(y=L(N(3), N(5), N(7)))))), "d": N(5)}
    out = new("SET m.c[1].#n.y[1] = :v, m.z = :w", item, {":v": N(9), ":w": S("new")}, {"#n": "x"})
    assert out["m"] == M(b=N(3), c=L(S("hi"), M(x=M(y=L(N(3), N(9), N(7))))), z=S("new"))
    assert item["m"]["M"]["c"]["L"][1]["M"]["x"]["M"]["y"]["L"][1] == N(5)
    assert new("SET q = m.c[1].x.y[2]", item)["q"] == N(7)


def test_set_list_index_past_the_end_appends_in_index_order() -> None:
    item = {**BASE, "l": L(S("one"), S("two"), S("three"))}
    assert new("SET l[7] = :v", item, {":v": S("x")})["l"] == L(S("one"), S("two"), S("three"), S("x"))
    out = new("SET l[84] = :a, l[37] = :b, l[17] = :c, l[50] = :d", item, {":a": S("a1"), ":b": S("a2"), ":c": S("a3"), ":d": S("a4")})
    assert out["l"]["L"][3:] == [S("a3"), S("a2"), S("a4"), S("a1")]


def test_set_bad_paths() -> None:
    message = "The document path provided in the update expression is invalid for update"
    item = {**BASE, "l": L(S("x"))}
    for text in ("SET s.c = :v", "SET l.c = :v", "SET c.c = :v", "SET s[0] = :v", "SET c[0] = :v", "SET a.b.c = :v"):
        assert error(text, item, {":v": N(1)}) == message, text
    assert error("SET c.c = :v", None, {":v": N(1)}) == message


# ---- REMOVE ----


def test_remove() -> None:
    assert new("REMOVE a", BASE) == {"p": S("k"), "s": S("hi")}
    assert new("REMOVE nothere", BASE) == BASE
    item = {**BASE, "m": M(b=N(3), c=L(S("hi"), M(x=M(y=L(N(3), N(5), N(7))), q=N(2))))}
    out = new("REMOVE m.c[1].x.y[1], m.c[1].q", item)
    assert out["m"] == M(b=N(3), c=L(S("hi"), M(x=M(y=L(N(3), N(7))))))
    assert new("REMOVE m.b", {**BASE, "m": M(b=N(1))})["m"] == M()
    assert new("REMOVE l[0]", {**BASE, "l": L(N(1))})["l"] == L()
    assert new("REMOVE l[17]", {**BASE, "l": L(N(1))})["l"] == L(N(1))


def test_remove_indexes_refer_to_the_old_list() -> None:
    item = {**BASE, "l": L(*(N(i) for i in range(2, 8)))}
    expected = L(N(2), N(4), N(17), N(6), N(7))
    assert new("REMOVE l[1] SET l[3] = :v", item, {":v": N(17)})["l"] == expected
    assert new("SET l[3] = :v REMOVE l[1]", item, {":v": N(17)})["l"] == expected
    assert new("REMOVE l[1], l[3]", item)["l"] == L(N(2), N(4), N(6), N(7))
    assert new("REMOVE l[3], l[1]", item)["l"] == L(N(2), N(4), N(6), N(7))


def test_remove_bad_paths() -> None:
    message = "The document path provided in the update expression is invalid for update"
    for text in ("REMOVE s.c", "REMOVE c.c", "REMOVE s[0]", "REMOVE c[0]"):
        assert error(text, BASE) == message, text
    # DynamoDB ignores a nested REMOVE when the item does not exist at all.
    assert new("REMOVE x.y, z[0]", None) == KEY


# ---- ADD and DELETE ----


def test_add_numbers() -> None:
    assert new("ADD a :v", BASE, {":v": N(4)})["a"] == N(7)
    assert new("ADD b :v", BASE, {":v": N(4)})["b"] == N(4)
    assert new("ADD b :v", None, {":v": N(8)}) == {"p": S("k"), "b": N(8)}
    assert error("ADD s :v", BASE, {":v": N(1)}) == "An operand in the update expression has an incorrect data type"
    assert (
        error("ADD a :v", BASE, {":v": S("x")})
        == "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING"
    )
    assert "operator: ADD, operand type: LIST" in error("ADD a :v", BASE, {":v": L(N(1))})
    assert 'token: "a"' in error("ADD a a", BASE)


def test_add_sets() -> None:
    item = {**BASE, "ss": {"SS": ["dog", "cat"]}, "ns": {"NS": ["1", "2"]}}
    assert new("ADD ss :v", item, {":v": {"SS": ["cat", "pig"]}})["ss"] == {"SS": ["dog", "cat", "pig"]}
    assert new("ADD ns :v", item, {":v": {"NS": ["2.0", "3"]}})["ns"] == {"NS": ["1", "2", "3"]}
    assert new("ADD nw :v", item, {":v": {"SS": ["x"]}})["nw"] == {"SS": ["x"]}
    assert error("ADD ss :v", item, {":v": {"NS": ["1"]}}) == "An operand in the update expression has an incorrect data type"
    assert error("ADD a :v", item, {":v": {"NS": ["1"]}}) == "An operand in the update expression has an incorrect data type"


def test_add_nested() -> None:
    item = {**BASE, "m": M(c=N(1))}
    assert new("ADD m.c :v, m.d :v", item, {":v": N(2)})["m"] == M(c=N(3), d=N(2))


def test_delete_sets() -> None:
    item = {**BASE, "ss": {"SS": ["dog", "cat", "mouse"]}}
    assert new("DELETE ss :v", item, {":v": {"SS": ["cat", "mouse"]}})["ss"] == {"SS": ["dog"]}
    assert new("DELETE ss :v", item, {":v": {"SS": ["pig"]}})["ss"] == item["ss"]
    assert "ss" not in new("DELETE ss :v", item, {":v": {"SS": ["dog", "cat", "mouse"]}})
    assert new("DELETE nope :v", item, {":v": {"SS": ["dog"]}}) == item
    assert new("DELETE nope :v", None, {":v": {"SS": ["dog"]}}) == KEY
    assert (
        error("DELETE ss :v", item, {":v": S("dog")})
        == "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: STRING"
    )
    assert "operator: DELETE, operand type: NUMBER" in error("DELETE ss :v", item, {":v": N(1)})
    assert error("DELETE ss :v", item, {":v": {"NS": ["1"]}}) == "An operand in the update expression has an incorrect data type"
    assert error("DELETE s :v", item, {":v": {"SS": ["h"]}}) == "An operand in the update expression has an incorrect data type"


# ---- structure errors ----


@pytest.mark.parametrize(
    "text",
    [
        "SET a = :v, a.b = :v",
        "SET a.b = :v, a = :v",
        "SET a.b = :v, a.b.c = :v",
        "SET a[1] = :v, a[1][1] = :v",
        "SET a[1][1][1][1] = :v, a[1][1] = :v",
        "SET a = :v REMOVE a",
        "REMOVE a SET a = :v",
        "SET #a1 = :v, #a2 = :v",
        "ADD a :v DELETE a.b :s",
    ],
)
def test_overlapping_paths(text: str) -> None:
    values = {":v": N(1), ":s": {"SS": ["x"]}} if ":s" in text else {":v": N(1)}
    names = {"#a1": "a", "#a2": "a"} if "#" in text else None
    assert "Two document paths overlap with each other" in error(text, BASE, values, names)


def test_overlap_and_conflict_messages() -> None:
    assert (
        error("SET a = :v, a.b = :v", None, {":v": N(1)})
        == "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these "
        "paths; path one: [a], path two: [a, b]"
    )
    assert (
        error("SET a.b = :v, a[1] = :v", None, {":v": N(1)})
        == "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these "
        "paths; path one: [a, b], path two: [a, [1]]"
    )
    assert "conflict" in error("SET a.b.c = :v, a.b[2] = :v", None, {":v": N(1)})


def test_non_overlapping_nested_updates() -> None:
    item = {**BASE, "a": M(x=N(3), y=N(4), c=M(y=N(3))), "b": M(x=N(1), y=N(2))}
    out = new("SET a.b = :v1, a.c.d = :v2, b.x = :v3 REMOVE a.x, b.y", item, {":v1": N(10), ":v2": S("dog"), ":v3": N(17)})
    assert out == {**BASE, "a": M(y=N(4), b=N(10), c=M(y=N(3), d=S("dog"))), "b": M(x=N(17))}


def test_clauses_only_once() -> None:
    assert (
        error("SET a = :v SET b = :v", BASE, {":v": N(1)})
        == 'Invalid UpdateExpression: The "SET" section can only be used once in an update expression;'
    )
    assert '"REMOVE" section' in error("REMOVE a SET b = :v REMOVE c", BASE, {":v": N(1)})


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("HELLO b = :v", "HELLO"),
        ("SET :a = :v", ":a"),
        ("SET 123 = :v", "123"),
        ("SET hi-there = :v", "-"),
        ("SET a[:v] = :v", ":v"),
        ("SET a[#n] = :v", "#n"),
        ("SET a = :", ":"),
        ("SET # = :v", "#"),
        ("SET a :v", ":v"),
        ("REMOVE", "<EOF>"),
        ("SET a = :v,", "<EOF>"),
    ],
)
def test_update_syntax_errors(text: str, token: str) -> None:
    message = error(text, BASE, {":v": N(1)}, {"#n": "n"} if "#n" in text else None)
    assert message.startswith(f'Invalid UpdateExpression: Syntax error; token: "{token}", near: ')


def test_reserved_words_and_placeholders() -> None:
    assert error("SET size = :v", BASE, {":v": N(1)}) == (
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: size"
    )
    assert new("SET #s = :v", BASE, {":v": N(1)}, {"#s": "size"})["size"] == N(1)
    assert new("SET #a = :v", BASE, {":v": N(3)}, {"#a": "a.b"})["a.b"] == N(3)
    assert "unused in expressions: keys: {#z}" in error("SET #a = :v", BASE, {":v": N(1)}, {"#a": "a", "#z": "z"})
    assert "unused in expressions: keys: {:w}" in error("SET a = :v", BASE, {":v": N(1), ":w": N(2)})


def test_cannot_update_key() -> None:
    key = {"p": S("k"), "c": N(1)}
    for text in ("SET p = :v", "SET c = :v", "REMOVE p", "ADD c :v", "DELETE p :s"):
        ctx = ExpressionContext(None, {":v": N(4), ":s": {"SS": ["x"]}} if ":" in text else None)
        with pytest.raises(ValidationException) as info:
            apply_update({**key}, parse_update(text, ctx), key)
        name = text.split()[1]
        assert info.value.message == (
            f"One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
        )


def test_set_key_value_into_other_attribute() -> None:
    key = {"p": S("k"), "c": N(7)}
    ctx = ExpressionContext({"#n": "n", "#p": "p", "#c": "c"})
    out, _, _ = apply_update(dict(key), parse_update("SET #n = #p, nn = #c + #c", ctx), key)
    assert out == {**key, "n": S("k"), "nn": N(14)}


def test_empty_update_expression() -> None:
    assert error("", BASE) == "Invalid UpdateExpression: The expression can not be empty;"


# ---- UPDATED_OLD / UPDATED_NEW ----


def test_updated_old_and_new_are_projections_of_touched_paths() -> None:
    item = {"p": S("k"), "a": M(b=S("dog"), c=L(N(1), N(2), N(3))), "d": S("cat")}
    _, old, updated = run("SET a.b = :v", item, {":v": S("hi")})
    assert old == {"a": M(b=S("dog"))} and updated == {"a": M(b=S("hi"))}
    _, old, updated = run("SET a.c[1] = :v, a.b = :w", item, {":v": N(8), ":w": S("x")})
    assert old == {"a": M(b=S("dog"), c=L(N(2)))} and updated == {"a": M(b=S("x"), c=L(N(8)))}
    _, old, updated = run("REMOVE a.c[1], a.c[3]", item)
    assert old == {"a": M(c=L(N(2)))} and updated == {"a": M(c=L(N(3)))}
    _, old, updated = run("SET a.x1 = :v", item, {":v": N(8)})
    assert old == {} and updated == {"a": M(x1=N(8))}
    _, old, updated = run("SET a.c[100] = :v", item, {":v": N(70)})
    assert updated == {}
    _, old, updated = run("SET z = :v", None, {":v": N(1)})
    assert old == {} and updated == {"z": N(1)}


def test_path_depth_limit_in_updates() -> None:
    assert "nesting levels: 33" in error("SET a" + ".b" * 32 + " = :v", BASE, {":v": N(1)})


def test_operator_limit() -> None:
    from dynamo.expressions.parser import MAX_UPDATE_OPERATORS

    ok = "SET " + ", ".join(f"a{i} = :v" for i in range(MAX_UPDATE_OPERATORS))
    assert len(new(ok, BASE, {":v": N(1)})) == len(BASE) + MAX_UPDATE_OPERATORS
    assert (
        error("SET z = :v + :v, " + ok[4:], BASE, {":v": N(1)})
        == "Invalid UpdateExpression: The expression contains too many operators; operator count: 302"
    )
    assert "operator count: 301" in error(ok + " REMOVE q", BASE, {":v": N(1)})
