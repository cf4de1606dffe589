"""Random input never breaks the expression code: every parser, evaluator and translator either returns a
result or raises ValidationException, and never mutates its input item."""

from __future__ import annotations

import base64
import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamo.errors import SerializationException, ValidationException
from dynamo.expressions import (
    ExpressionContext,
    apply_update,
    attributes_to_get_projection,
    check_no_mixing,
    evaluate,
    legacy_attribute_updates,
    legacy_expected_to_condition,
    legacy_filter_to_condition,
    legacy_key_conditions,
    parse_condition,
    parse_key_condition,
    parse_projection,
    parse_update,
    project,
)
from dynamo.values import validate_value

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKENS = [
    "a", "b", "c", "p", "x", "#n", "#m", "#zz", ":v", ":w", ":zz", "(", ")", "[", "]", "0", "1", "7", ",", ".",
    "=", "<>", "<", "<=", ">", ">=", "+", "-", "AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD",
    "DELETE", "size", "contains", "begins_with", "attribute_exists", "attribute_not_exists", "attribute_type",
    "if_not_exists", "list_append", "name", "!", "_", "@", "\u00e9",
]  # fmt: skip

expression_text = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(TOKENS), max_size=24).map(" ".join),
    st.lists(st.sampled_from(TOKENS), max_size=24).map("".join),
)

numbers = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**9), max_value=10**9).map(str),
)
binaries = st.binary(max_size=8).map(lambda b: base64.b64encode(b).decode())
scalars = st.one_of(
    st.text(max_size=6).map(lambda s: {"S": s}),
    numbers.map(lambda n: {"N": n}),
    binaries.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.lists(st.text(max_size=4), min_size=1, max_size=4, unique=True).map(lambda x: {"SS": x}),
    st.lists(st.integers(-50, 50), min_size=1, max_size=4, unique=True).map(lambda x: {"NS": [str(i) for i in x]}),
    st.lists(st.binary(max_size=3), min_size=1, max_size=3, unique=True).map(
        lambda x: {"BS": [base64.b64encode(b).decode() for b in x]}
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda x: {"L": x}),
        st.dictionaries(st.sampled_from(["a", "b", "c", "x"]), inner, max_size=4).map(lambda x: {"M": x}),
    ),
    max_leaves=12,
)
items = st.dictionaries(st.sampled_from(["a", "b", "c", "x", "name"]), values, max_size=5).map(
    lambda d: {**d, "p": {"S": "k"}}
)
json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=10,
)


def context(v: Any, w: Any) -> ExpressionContext:
    return ExpressionContext({"#n": "a", "#m": "x"}, {":v": v, ":w": w})


@FUZZ
@given(expression_text, values, values, st.one_of(st.none(), items))
def test_conditions(text: str, v: Any, w: Any, item: Any) -> None:
    before = copy.deepcopy(item)
    try:
        condition = parse_condition(text, context(v, w))
    except ValidationException:
        return
    assert evaluate(condition, item) in (True, False)
    assert item == before


@FUZZ
@given(expression_text, values, values, st.one_of(st.none(), items))
def test_updates(text: str, v: Any, w: Any, item: Any) -> None:
    before = copy.deepcopy(item)
    try:
        update = parse_update(text, context(v, w))
        new_item, old, new = apply_update(item, update, {"p": {"S": "k"}})
    except ValidationException:
        return
    finally:
        assert item == before
    assert new_item["p"] == {"S": "k"}
    assert isinstance(old, dict) and isinstance(new, dict)


@FUZZ
@given(expression_text, items)
def test_projections(text: str, item: Any) -> None:
    before = copy.deepcopy(item)
    try:
        projection = parse_projection(text, ExpressionContext({"#n": "a"}))
    except ValidationException:
        return
    result = project(item, projection)
    assert set(result) <= set(item)
    assert item == before


@FUZZ
@given(expression_text, values, values)
def test_key_conditions(text: str, v: Any, w: Any) -> None:
    try:
        parse_key_condition(text, context(v, w), "p", "c")
    except ValidationException:
        pass


@FUZZ
@given(json, json, json)
def test_random_json_everywhere(a: Any, b: Any, c: Any) -> None:
    calls = [
        lambda: ExpressionContext(a, b),
        lambda: parse_condition(a, ExpressionContext(None, None)),
        lambda: parse_update(a, ExpressionContext(None, None)),
        lambda: parse_projection(a, ExpressionContext(None, None)),
        lambda: parse_key_condition(a, ExpressionContext(None, None), "p", None),
        lambda: legacy_expected_to_condition(a, b),
        lambda: legacy_filter_to_condition(a, b),
        lambda: legacy_key_conditions(a, "p", "c"),
        lambda: legacy_attribute_updates(a),
        lambda: attributes_to_get_projection(a),
        lambda: check_no_mixing({"Expected": a, "ConditionExpression": b, "ExpressionAttributeNames": c}, "PutItem"),
    ]
    for call in calls:
        try:
            call()
        except (ValidationException, SerializationException):
            # A value of a JSON type the wire cannot hold ({"S": 5}) is DynamoDB's SerializationException.
            pass


legacy_specs = st.dictionaries(
    st.sampled_from(["a", "b", "x"]),
    st.fixed_dictionaries(
        {},
        optional={
            "ComparisonOperator": st.sampled_from(
                ["EQ", "NE", "LT", "LE", "GT", "GE", "NULL", "NOT_NULL", "CONTAINS", "NOT_CONTAINS", "BEGINS_WITH", "IN", "BETWEEN", "XX"]
            ),
            "AttributeValueList": st.lists(values, max_size=3),
            "Value": values,
            "Exists": st.booleans(),
        },
    ),
    max_size=3,
)


@FUZZ
@given(legacy_specs, st.sampled_from([None, "AND", "OR"]), st.one_of(st.none(), items))
def test_legacy_conditions_evaluate(spec: Any, op: Any, item: Any) -> None:
    for translate in (legacy_expected_to_condition, legacy_filter_to_condition):
        try:
            condition = translate(spec, op)
        except ValidationException:
            continue
        assert evaluate(condition, item) in (True, False)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "x", "p"]),
        st.fixed_dictionaries({}, optional={"Action": st.sampled_from(["PUT", "ADD", "DELETE"]), "Value": values}),
        max_size=3,
    ),
    st.one_of(st.none(), items),
)
def test_legacy_updates_apply(spec: Any, item: Any) -> None:
    before = copy.deepcopy(item)
    try:
        apply_update(item, legacy_attribute_updates(spec), {"p": {"S": "k"}})
    except ValidationException:
        pass
    assert item == before


# ---- grammar-shaped input, to get past the parser and exercise evaluation and updates ----

paths = st.sampled_from(["a", "b", "x", "#n", "#m", "a.b", "a[0]", "a[1].c", "x.a[2]", "#n.x", "b[0][1]"])
operands = st.one_of(paths, st.sampled_from([":v", ":w"]), paths.map(lambda p: f"size({p})"))
leaves = st.one_of(
    st.tuples(operands, st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), operands).map(" ".join),
    st.tuples(operands, operands, operands).map(lambda t: f"{t[0]} BETWEEN {t[1]} AND {t[2]}"),
    st.tuples(operands, st.lists(operands, min_size=1, max_size=3)).map(lambda t: f"{t[0]} IN ({', '.join(t[1])})"),
    paths.map(lambda p: f"attribute_exists({p})"),
    paths.map(lambda p: f"attribute_not_exists({p})"),
    paths.map(lambda p: f"attribute_type({p}, :v)"),
    st.tuples(operands, operands).map(lambda t: f"begins_with({t[0]}, {t[1]})"),
    st.tuples(operands, operands).map(lambda t: f"contains({t[0]}, {t[1]})"),
)
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: f"({t[0]}) AND ({t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]} OR {t[1]}"),
        inner.map(lambda c: f"NOT ({c})"),
    ),
    max_leaves=6,
)
set_values = st.one_of(
    operands.filter(lambda o: not o.startswith("size")),
    st.tuples(st.sampled_from(["a", ":v", ":w", "x.a[2]"]), st.sampled_from(["+", "-"]), st.sampled_from(["b", ":v", ":w"])).map(" ".join),
    st.tuples(paths, st.sampled_from([":v", ":w"])).map(lambda t: f"if_not_exists({t[0]}, {t[1]})"),
    st.tuples(st.sampled_from(["a", ":v", "b[0]"]), st.sampled_from([":w", "x"])).map(lambda t: f"list_append({t[0]}, {t[1]})"),
)
clauses = st.one_of(
    st.lists(st.tuples(paths, set_values).map(lambda t: f"{t[0]} = {t[1]}"), min_size=1, max_size=3).map(lambda x: "SET " + ", ".join(x)),
    st.lists(paths, min_size=1, max_size=3).map(lambda x: "REMOVE " + ", ".join(x)),
    st.lists(paths, min_size=1, max_size=2).map(lambda x: "ADD " + ", ".join(f"{p} :v" for p in x)),
    st.lists(paths, min_size=1, max_size=2).map(lambda x: "DELETE " + ", ".join(f"{p} :w" for p in x)),
)
updates = st.lists(clauses, min_size=1, max_size=3).map(" ".join)


@FUZZ
@given(conditions, values, values, st.one_of(st.none(), items))
def test_grammar_conditions(text: str, v: Any, w: Any, item: Any) -> None:
    before = copy.deepcopy(item)
    try:
        condition = parse_condition(text, ExpressionContext({"#n": "a", "#m": "x"}, {":v": v, ":w": w}))
    except ValidationException:
        return
    assert evaluate(condition, item) in (True, False)
    assert evaluate(condition, item) is not evaluate(parse_condition(f"NOT ({text})", context(v, w)), item)
    assert item == before


@FUZZ
@given(updates, values, values, st.one_of(st.none(), items))
def test_grammar_updates(text: str, v: Any, w: Any, item: Any) -> None:
    before = copy.deepcopy(item)
    try:
        update = parse_update(text, ExpressionContext({"#n": "a", "#m": "x"}, {":v": v, ":w": w}))
        new_item, _, _ = apply_update(item, update, {"p": {"S": "k"}})
    except ValidationException:
        return
    finally:
        assert item == before
    assert new_item["p"] == {"S": "k"}
    for value in new_item.values():
        validate_value(value)  # raises if an update built a malformed value
