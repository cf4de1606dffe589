"""ProjectionExpression and AttributesToGet."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo.errors import ValidationException
from dynamo.expressions import ExpressionContext, attributes_to_get_projection, parse_projection, project


def S(x: str) -> dict[str, Any]:
    return {"S": x}


ITEM: dict[str, Any] = {
    "p": S("k"),
    "a": {"M": {"b": S("1"), "c": S("2"), "d": {"M": {"e": S("3")}}}},
    "l": {"L": [S("x"), S("y"), S("z")]},
    "o": S("other"),
    "name": S("n"),
}


def pick(text: str, names: dict[str, str] | None = None, item: dict[str, Any] | None = ITEM) -> dict[str, Any]:
    ctx = ExpressionContext(names)
    projection = parse_projection(text, ctx)
    ctx.check_all_used()
    before = copy.deepcopy(item)
    result = project(item, projection)
    assert item == before
    return result


def error(text: str, names: dict[str, str] | None = None) -> str:
    with pytest.raises(ValidationException) as info:
        ctx = ExpressionContext(names)
        parse_projection(text, ctx)
        ctx.check_all_used()
    return info.value.message


def test_top_level() -> None:
    assert pick("o") == {"o": S("other")}
    assert pick("o, p") == {"o": S("other"), "p": S("k")}
    assert pick("nope") == {}
    assert pick("o", item=None) == {}


def test_nested_and_list_elements() -> None:
    assert pick("a.c, l[2], l[0], #o", {"#o": "o"}) == {
        "a": {"M": {"c": S("2")}},
        "l": {"L": [S("x"), S("z")]},
        "o": S("other"),
    }
    assert pick("a.d.e") == {"a": {"M": {"d": {"M": {"e": S("3")}}}}}
    for text in ("a.nope", "l[7]", "o.x", "l.x", "a[0]", "o[0]"):
        assert pick(text) == {}, text
    assert pick("a.b, a.nope") == {"a": {"M": {"b": S("1")}}}


def test_reserved_and_placeholders() -> None:
    assert error("name") == "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: name"
    assert pick("#n", {"#n": "name"}) == {"name": S("n")}
    assert "keys: {#x}" in error("o", {"#x": "x"})
    assert "attribute name: #y" in error("#y")


def test_overlap_and_conflict() -> None:
    assert (
        error("a, a.b")
        == "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of "
        "these paths; path one: [a], path two: [a, b]"
    )
    assert "overlap" in error("o, o")
    assert "overlap" in error("#a, #b", {"#a": "o", "#b": "o"})
    assert (
        error("a.b, a[0]")
        == "Invalid ProjectionExpression: Two document paths conflict with each other; must remove or rewrite one of "
        "these paths; path one: [a, b], path two: [a, [0]]"
    )


@pytest.mark.parametrize("text", ["a,", ", a", "a b", "size(a)", "a = :v", "a.[0]", "a..b", ":v"])
def test_syntax_errors(text: str) -> None:
    assert error(text).startswith("Invalid ProjectionExpression: Syntax error; token: ")


def test_depth_limit() -> None:
    ok = "a" + "[0]" * 31
    assert pick(ok) == {}
    assert error(ok + "[0]") == (
        "Invalid ProjectionExpression: The document path has too many nesting levels; nesting levels: 33"
    )


def test_attributes_to_get() -> None:
    projection = attributes_to_get_projection(["o", "name", "a.b"])
    assert project({**ITEM, "a.b": S("lit")}, projection) == {"o": S("other"), "name": S("n"), "a.b": S("lit")}
    with pytest.raises(ValidationException):
        attributes_to_get_projection([])
    with pytest.raises(ValidationException, match="Duplicate value in attribute name: o"):
        attributes_to_get_projection(["o", "o"])


def _naive_bad_pair(paths: list[tuple[str | int, ...]]) -> bool:
    for i, one in enumerate(paths):
        for two in paths[:i]:
            shared = 0
            for x, y in zip(one, two, strict=False):
                if x != y or type(x) is not type(y):
                    break
                shared += 1
            if shared == min(len(one), len(two)) or type(one[shared]) is not type(two[shared]):
                return True
    return False


path_elements = st.lists(st.one_of(st.sampled_from(["a", "b"]), st.integers(0, 1)), max_size=3)
path_lists = st.lists(st.tuples(st.sampled_from(["a", "b"]), path_elements).map(lambda t: (t[0], *t[1])), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(path_lists)
def test_overlap_check_matches_the_pairwise_definition(paths: list[tuple[str | int, ...]]) -> None:
    text = ", ".join(p[0] + "".join(f"[{e}]" if isinstance(e, int) else f".{e}" for e in p[1:]) for p in paths)
    try:
        parse_projection(text, ExpressionContext())
        refused = False
    except ValidationException as exc:
        assert "overlap" in exc.message or "conflict" in exc.message
        refused = True
    assert refused == _naive_bad_pair(paths)


def test_many_paths_are_checked_quickly() -> None:
    import time

    text = ", ".join(f"a{i}" for i in range(700))
    start = time.perf_counter()
    projection = parse_projection(text, ExpressionContext())
    assert len(projection.paths) == 700
    assert time.perf_counter() - start < 0.5
