"""KeyConditionExpression and legacy KeyConditions."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo.errors import ValidationException
from dynamo.expressions import (
    ExpressionContext,
    KeyCondition,
    RangeOp,
    legacy_key_conditions,
    parse_key_condition,
)
from dynamo.keycodec import KeyOp


def S(x: str) -> dict[str, Any]:
    return {"S": x}


def N(x: int) -> dict[str, Any]:
    return {"N": str(x)}


VALUES = {":p": S("x"), ":c": N(3), ":d": N(7), ":s": S("ab")}


def test_range_op_is_the_key_codec_operator() -> None:
    # A parsed key condition's operator goes straight to keycodec.sort_key_range.
    assert RangeOp is KeyOp
    assert kc("p = :p AND c BETWEEN :c AND :d").range_op is KeyOp.BETWEEN


def kc(text: str, values: dict[str, Any] | None = None, names: dict[str, str] | None = None, **types: str) -> KeyCondition:
    ctx = ExpressionContext(names, values if values is not None else {k: v for k, v in VALUES.items() if k in text} or None)
    result = parse_key_condition(text, ctx, "p", "c", **types)
    ctx.check_all_used()
    return result


def error(text: str, values: dict[str, Any] | None = None, names: dict[str, str] | None = None, range_name: str | None = "c", **types: str) -> str:
    with pytest.raises(ValidationException) as info:
        ctx = ExpressionContext(names, values if values is not None else {k: v for k, v in VALUES.items() if k in text} or None)
        parse_key_condition(text, ctx, "p", range_name, **types)
        ctx.check_all_used()
    return info.value.message


def test_hash_only() -> None:
    result = kc("p = :p")
    assert result.hash_value == S("x") and result.range_op is None and result.range_values == ()
    assert kc("  p=:p ").hash_value == S("x")
    assert kc(":p = p").hash_value == S("x")
    assert kc("#k = :p", names={"#k": "p"}).hash_value == S("x")


@pytest.mark.parametrize(
    ("text", "op", "values"),
    [
        ("p = :p AND c = :c", RangeOp.EQ, (N(3),)),
        ("p = :p AND c < :c", RangeOp.LT, (N(3),)),
        ("p = :p AND c <= :c", RangeOp.LE, (N(3),)),
        ("p = :p AND c > :c", RangeOp.GT, (N(3),)),
        ("p = :p AND c >= :c", RangeOp.GE, (N(3),)),
        ("p = :p AND :c < c", RangeOp.GT, (N(3),)),
        ("p = :p AND :c >= c", RangeOp.LE, (N(3),)),
        ("p = :p AND c BETWEEN :c AND :d", RangeOp.BETWEEN, (N(3), N(7))),
        ("p=:p AnD c BeTwEeN :c aNd :d", RangeOp.BETWEEN, (N(3), N(7))),
        ("p = :p AND begins_with(c, :s)", RangeOp.BEGINS_WITH, (S("ab"),)),
        ("c = :c AND p = :p", RangeOp.EQ, (N(3),)),
        ("((c = :c) AND (p = :p))", RangeOp.EQ, (N(3),)),
    ],
)
def test_range_conditions(text: str, op: RangeOp, values: tuple[dict[str, Any], ...]) -> None:
    result = kc(text)
    assert result.hash_value == S("x")
    assert result.range_op is op and result.range_values == values


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p = :p AND p = :p", "Invalid KeyConditionExpression: KeyConditionExpressions must only contain one condition per key"),
        ("p = :p AND c >= :c AND c <= :d", "Conditions can be of length 1 or 2 only"),
        ("p < :p", "Query key condition not supported"),
        ("c = :c", "Query condition missed key schema element: p"),
        ("p = :p AND a < :c", "Query condition missed key schema element: c"),
        ("p = :p AND a.b < :c", "Invalid KeyConditionExpression: KeyConditionExpressions cannot have conditions on nested attributes"),
        ("p = :p AND c <> :c", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: <>"),
        ("p = :p AND c IN (:c)", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: IN"),
        ("c = :c OR p = :p", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: OR"),
        ("NOT c = :c AND p = :p", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: NOT"),
        ("p = :p AND attribute_exists(c)", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: attribute_exists"),
        ("p = :p AND dog(c, :c)", "Invalid KeyConditionExpression: Invalid function name; function: dog"),
        ("p = :p AND BEGINS_WITH(c, :s)", "Invalid KeyConditionExpression: Invalid function name; function: BEGINS_WITH"),
        ("p = :p AND begins_with(c, :c)", "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
        ("p = :p AND c BETWEEN :d AND :c", "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:7}, upper bound operand: AttributeValue: {N:3}"),
        ("p = c", "Query key condition not supported"),
        (":p = :c", "Query key condition not supported"),
        ("p = :p AND c != :c", 'Invalid KeyConditionExpression: Syntax error; token: "!", near: "c !="'),
        ("p", 'Invalid KeyConditionExpression: Syntax error; token: "<EOF>", near: "p"'),
        ("", "Invalid KeyConditionExpression: The expression can not be empty;"),
        ("p = :p AND ((c = :c))", "Invalid KeyConditionExpression: The expression has redundant parentheses;"),
    ],
)
def test_errors(text: str, message: str) -> None:
    assert error(text) == message


def test_placeholder_errors() -> None:
    assert "attribute value: :p" in error("p = :p", values={":c": N(1)})
    assert "keys: {:qq}" in error("p = :p", values={":p": S("x"), ":qq": N(3)})
    assert "attribute name: #b" in error("#a = :p AND #b = :c", names={"#a": "p"})


def test_types_checked_when_given() -> None:
    assert kc("p = :p AND c = :c", hash_type="S", range_type="N").range_values == (N(3),)
    message = "One or more parameter values were invalid: Condition parameter type does not match schema type"
    assert error("p = :c", hash_type="S") == message
    assert error("p = :p AND c = :s", hash_type="S", range_type="N") == message


def test_hash_only_table_refuses_a_range_condition() -> None:
    assert error("p = :p AND c = :c", range_name=None) == "Query condition missed key schema element: c"


def test_legacy_key_conditions() -> None:
    result = legacy_key_conditions(
        {"p": {"AttributeValueList": [S("x")], "ComparisonOperator": "EQ"},
         "c": {"AttributeValueList": [N(1), N(2)], "ComparisonOperator": "BETWEEN"}},
        "p",
        "c",
    )  # fmt: skip
    assert result.hash_value == S("x") and result.range_op is RangeOp.BETWEEN and result.range_values == (N(1), N(2))
    begins = legacy_key_conditions(
        {"p": {"AttributeValueList": [S("x")], "ComparisonOperator": "EQ"},
         "c": {"AttributeValueList": [S("a")], "ComparisonOperator": "BEGINS_WITH"}},
        "p",
        "c",
    )  # fmt: skip
    assert begins.range_op is RangeOp.BEGINS_WITH


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"c": {"AttributeValueList": [N(1)], "ComparisonOperator": "EQ"}}, "Query condition missed key schema element: p"),
        ({"p": {"AttributeValueList": [S("x")], "ComparisonOperator": "GT"}}, "Query key condition not supported"),
        ({"p": {"AttributeValueList": [S("x")], "ComparisonOperator": "NE"}}, "Attempted conditional constraint is not an indexable operation"),
        ({"p": {"AttributeValueList": [], "ComparisonOperator": "EQ"}}, "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"),
        ({"p": {"AttributeValueList": [{"SS": ["a"]}], "ComparisonOperator": "EQ"}}, "One or more parameter values were invalid: ComparisonOperator EQ is not valid for SS AttributeValue type"),
        (
            {"p": {"AttributeValueList": [S("x")], "ComparisonOperator": "EQ"},
             "c": {"AttributeValueList": [N(1)], "ComparisonOperator": "BEGINS_WITH"}},
            "One or more parameter values were invalid: ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type",
        ),  # fmt: skip
        (
            {"p": {"AttributeValueList": [S("x")], "ComparisonOperator": "EQ"},
             "c": {"AttributeValueList": [N(1)], "ComparisonOperator": "EQ"},
             "d": {"AttributeValueList": [N(1)], "ComparisonOperator": "EQ"}},
            "Conditions can be of length 1 or 2 only",
        ),  # fmt: skip
        # Legacy wording for a reversed BETWEEN, not the expression's (dynalite's query tests).
        (
            {"p": {"AttributeValueList": [S("x")], "ComparisonOperator": "EQ"},
             "c": {"AttributeValueList": [S("b"), S("a")], "ComparisonOperator": "BETWEEN"}},
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
        ),  # fmt: skip
        (
            {"p": {"AttributeValueList": [S("b"), N(1)], "ComparisonOperator": "IN"}},
            "One or more parameter values were invalid: AttributeValues inside AttributeValueList must be of same type",
        ),
    ],
)
def test_legacy_key_condition_errors(conditions: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationException) as info:
        legacy_key_conditions(conditions, "p", "c")
    assert info.value.message == message
