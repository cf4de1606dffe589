"""Legacy parameters: Expected, QueryFilter/ScanFilter, ConditionalOperator, AttributeUpdates, mixing."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo.errors import ValidationException
from dynamo.expressions import (
    apply_update,
    check_no_mixing,
    evaluate,
    legacy_attribute_updates,
    legacy_expected_to_condition,
    legacy_filter_to_condition,
)


def S(x: str) -> dict[str, Any]:
    return {"S": x}


def N(x: int | str) -> dict[str, Any]:
    return {"N": str(x)}


ITEM: dict[str, Any] = {
    "p": S("k"),
    "a": S("hello"),
    "n": N(3),
    "ns": {"NS": ["2", "4", "7"]},
    "l": {"L": [N(2), N(4)]},
    "b": {"B": "aGkgdGhlcmU="},  # "hi there"
}


def expected(spec: dict[str, Any], op: str | None = None, item: dict[str, Any] | None = ITEM) -> bool:
    return evaluate(legacy_expected_to_condition(spec, op), item)


def cmp(name: str, operator: str, *values: dict[str, Any]) -> bool:
    spec: dict[str, Any] = {"ComparisonOperator": operator}
    if values:
        spec["AttributeValueList"] = list(values)
    return expected({name: spec})


def test_value_and_exists() -> None:
    assert expected({"a": {"Value": S("hello")}}) is True
    assert expected({"a": {"Value": S("bye")}}) is False
    assert expected({"zz": {"Value": S("bye")}}) is False
    assert expected({"a": {"Exists": True, "Value": S("hello")}}) is True
    assert expected({"zz": {"Exists": False}}) is True
    assert expected({"a": {"Exists": False}}) is False
    assert expected({}) is True
    assert expected({"p": {"Exists": False}}, item=None) is True


@pytest.mark.parametrize(
    ("name", "operator", "values", "result"),
    [
        ("n", "EQ", [N(3)], True),
        ("n", "EQ", [S("3")], False),
        ("ns", "EQ", [{"NS": ["7", "2", "4"]}], True),
        ("n", "NE", [N(4)], True),
        ("zz", "NE", [N(4)], True),
        ("n", "LT", [N(4)], True),
        ("n", "LE", [N(3)], True),
        ("n", "GT", [N(3)], False),
        ("n", "GE", [N(3)], True),
        ("n", "GT", [S("a")], False),
        ("a", "NOT_NULL", [], True),
        ("zz", "NOT_NULL", [], False),
        ("zz", "NULL", [], True),
        ("a", "CONTAINS", [S("ell")], True),
        ("ns", "CONTAINS", [N(4)], True),
        ("l", "CONTAINS", [N(4)], True),
        ("a", "NOT_CONTAINS", [S("dog")], True),
        ("a", "NOT_CONTAINS", [S("ell")], False),
        ("ns", "NOT_CONTAINS", [N(1)], True),
        ("zz", "NOT_CONTAINS", [N(1)], False),
        ("b", "NOT_CONTAINS", [{"B": "ZG9n"}], True),
        ("a", "BEGINS_WITH", [S("hell")], True),
        ("n", "BEGINS_WITH", [S("3")], False),
        ("n", "IN", [N(2), N(3)], True),
        ("ns", "IN", [N(2)], False),
        ("n", "BETWEEN", [N(1), N(3)], True),
        ("n", "BETWEEN", [N(4), N(9)], False),
        ("zz", "BETWEEN", [N(0), N(100)], False),
    ],
)
def test_comparison_operators(name: str, operator: str, values: list[dict[str, Any]], result: bool) -> None:
    assert cmp(name, operator, *values) is result


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"a": {"ComparisonOperator": "EQ"}}, "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"),
        ({"a": {"ComparisonOperator": "NULL", "AttributeValueList": [S("x")]}}, "One or more parameter values were invalid: Invalid number of argument(s) for the NULL ComparisonOperator"),
        ({"a": {"ComparisonOperator": "IN", "AttributeValueList": []}}, "One or more parameter values were invalid: Invalid number of argument(s) for the IN ComparisonOperator"),
        ({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N(1), N(2), N(3)]}}, "One or more parameter values were invalid: Invalid number of argument(s) for the BETWEEN ComparisonOperator"),
        ({"a": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"L": [N(1)]}]}}, "One or more parameter values were invalid: ComparisonOperator NOT_CONTAINS is not valid for L AttributeValue type"),
        ({"a": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [N(3)]}}, "One or more parameter values were invalid: ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type"),
        ({"a": {"ComparisonOperator": "IN", "AttributeValueList": [N(3), S("dog")]}}, "One or more parameter values were invalid: AttributeValues inside AttributeValueList must be of same type"),
        ({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N(4), N(3)]}}, "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"),
        ({"a": {"ComparisonOperator": "LT", "AttributeValueList": [{"SS": ["a"]}]}}, "One or more parameter values were invalid: ComparisonOperator LT is not valid for SS AttributeValue type"),
        ({"a": {"ComparisonOperator": "XX", "AttributeValueList": [N(1)]}}, "1 validation error detected: Value 'XX' at 'expected.a.member.comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"),
        ({"a": {}}, "One or more parameter values were invalid: Value must be provided when Exists is null for Attribute: a"),
        ({"a": {"Exists": True}}, "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: a"),
        ({"a": {"Exists": False, "Value": S("x")}}, "One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: a"),
        ({"a": {"Value": S("x"), "AttributeValueList": [S("x")]}}, "One or more parameter values were invalid: Value and AttributeValueList cannot be used together for Attribute: a"),
        ({"a": {"AttributeValueList": [S("x")]}}, "One or more parameter values were invalid: AttributeValueList can only be used with a ComparisonOperator for Attribute: a"),
        ({"a": {"Exists": True, "ComparisonOperator": "EQ", "AttributeValueList": [S("x")]}}, "One or more parameter values were invalid: Exists and ComparisonOperator cannot be used together for Attribute: a"),
    ],
)
def test_expected_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationException) as info:
        legacy_expected_to_condition(spec, None)
    assert info.value.message == message


def test_conditional_operator() -> None:
    spec = {"a": {"Value": S("hello")}, "n": {"Value": N(99)}}
    assert expected(spec) is False
    assert expected(spec, "AND") is False
    assert expected(spec, "OR") is True
    with pytest.raises(ValidationException, match="enum value set: \\[OR, AND\\]"):
        legacy_expected_to_condition(spec, "XOR")
    with pytest.raises(ValidationException, match="ConditionalOperator can only be used when Filter or Expected has two or more elements"):
        legacy_expected_to_condition({"a": {"Value": S("hello")}}, "OR")


def test_filters() -> None:
    condition = legacy_filter_to_condition(
        {"n": {"ComparisonOperator": "GT", "AttributeValueList": [N(1)]}, "a": {"ComparisonOperator": "NULL"}}, "OR"
    )
    assert evaluate(condition, ITEM) is True
    assert evaluate(legacy_filter_to_condition({"a": {"ComparisonOperator": "NULL"}}), ITEM) is False
    with pytest.raises(ValidationException) as info:
        legacy_filter_to_condition({"a": {"AttributeValueList": [N(1)]}}, where="queryFilter")
    assert info.value.message == (
        "1 validation error detected: Value null at 'queryFilter.a.member.comparisonOperator' failed to satisfy "
        "constraint: Member must not be null"
    )


# ---- AttributeUpdates ----


def updated(spec: dict[str, Any], item: dict[str, Any] | None = ITEM) -> dict[str, Any]:
    return apply_update(item, legacy_attribute_updates(spec), {"p": S("k")})[0]


def test_attribute_updates() -> None:
    assert updated({"x": {"Value": N(1)}})["x"] == N(1)
    assert updated({"a": {"Action": "PUT", "Value": N(1)}})["a"] == N(1)
    assert "a" not in updated({"a": {"Action": "DELETE"}})
    assert updated({"n": {"Action": "ADD", "Value": N(2)}})["n"] == N(5)
    assert updated({"c": {"Action": "ADD", "Value": N(2)}})["c"] == N(2)
    assert updated({"ns": {"Action": "ADD", "Value": {"NS": ["1"]}}})["ns"] == {"NS": ["2", "4", "7", "1"]}
    assert updated({"l": {"Action": "ADD", "Value": {"L": [S("x")]}}})["l"] == {"L": [N(2), N(4), S("x")]}
    assert updated({"ns": {"Action": "DELETE", "Value": {"NS": ["2", "4"]}}})["ns"] == {"NS": ["7"]}
    assert "ns" not in updated({"ns": {"Action": "DELETE", "Value": {"NS": ["2", "4", "7"]}}})
    assert updated({}, None) == {"p": S("k")}
    assert updated({"x": {"Value": N(1)}}, None) == {"p": S("k"), "x": N(1)}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"a": {"Action": "PUT"}}, "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified"),
        ({"a": {"Action": "ADD"}}, "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified"),
        ({"a": {"Action": "ADD", "Value": S("x")}}, "One or more parameter values were invalid: ADD action is not supported for the type S"),
        ({"a": {"Action": "DELETE", "Value": S("x")}}, "One or more parameter values were invalid: DELETE action with value is not supported for the type S"),
        ({"a": {"Action": "ADD", "Value": N(1)}}, "One or more parameter values were invalid: Type mismatch for attribute to update"),
        ({"p": {"Action": "PUT", "Value": S("z")}}, "One or more parameter values were invalid: Cannot update attribute p. This attribute is part of the key"),
        ({"a": {"Action": "MOVE", "Value": S("z")}}, "1 validation error detected: Value 'MOVE' at 'attributeUpdates.a.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"),
        ({"a": {"Value": {"N": "abc"}}}, "The parameter cannot be converted to a numeric value: abc"),
    ],
)
def test_attribute_update_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationException) as info:
        updated(spec)
    assert info.value.message == message


# ---- mixing ----


def test_check_no_mixing() -> None:
    check_no_mixing({"Expected": {}, "Item": {}}, "PutItem")
    check_no_mixing({"ConditionExpression": "a = :v", "ExpressionAttributeValues": {":v": N(1)}}, "PutItem")
    with pytest.raises(ValidationException) as info:
        check_no_mixing({"Expected": {}, "ConditionExpression": "a = :v"}, "PutItem")
    assert info.value.message == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}"
    )
    with pytest.raises(ValidationException) as info:
        check_no_mixing({"AttributeUpdates": {}, "Expected": {}, "UpdateExpression": "SET a = :v", "ConditionExpression": "x"}, "UpdateItem")
    assert info.value.message.endswith(
        "Non-expression parameters: {AttributeUpdates, Expected} Expression parameters: {UpdateExpression, ConditionExpression}"
    )
    with pytest.raises(ValidationException, match="^ExpressionAttributeNames can only be specified when using expressions$"):
        check_no_mixing({"ExpressionAttributeNames": {"#a": "a"}}, "GetItem")
    with pytest.raises(ValidationException) as info:
        check_no_mixing({"ExpressionAttributeValues": {":a": N(1)}, "Expected": {}}, "PutItem")
    assert info.value.message == (
        "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null"
    )
    check_no_mixing({"KeyConditions": {}, "FilterExpression": "a = :v"}, "Query")  # not mixing, as DynamoDB


def test_top_level_names() -> None:
    from dynamo.expressions import (
        ExpressionContext,
        parse_condition,
        parse_projection,
        parse_update,
        top_level_names,
    )

    ctx = ExpressionContext({"#n": "name"}, {":v": N(1), ":l": {"L": []}})
    condition = parse_condition("a.b = :v OR (NOT c BETWEEN :v AND d) AND size(#n) IN (:v, e[0]) AND contains(f, :v)", ctx)
    assert top_level_names(condition) == {"a", "c", "d", "name", "e", "f"}
    assert top_level_names(parse_projection("x.y, z[1]", ctx)) == {"x", "z"}
    update = parse_update("SET p = q + :v, r = list_append(if_not_exists(s, :l), :l) REMOVE t.u", ctx)
    assert top_level_names(update) == {"p", "q", "r", "s", "t"}
    assert top_level_names(legacy_expected_to_condition({"k": {"Exists": False}}, None)) == {"k"}
