"""dynamo.partiql: PartiQL statements parsed, and the DynamoDB requests they become."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo import partiql
from dynamo.errors import ValidationException
from dynamo.expressions import ExpressionContext, evaluate, parse_condition, parse_update
from dynamo.items import KeySchema
from dynamo.requests import validate_request

KEY = KeySchema("pk", "S", "sk", "N")


def test_values() -> None:
    statement = partiql.parse(
        "INSERT INTO \"Music\" VALUE {'pk': 'it''s', 'sk': -1.5e2, 'b': TRUE, 'n': NULL, 'l': [1, 'x', [FALSE]], "
        "'m': {'inner': 'y'}, 'ss': <<'a', 'b'>>, 'ns': <<1, 2>>, 'p': ?}", [{"B": "AAE="}])
    assert isinstance(statement, partiql.Insert) and statement.table == "Music"
    assert statement.item == {
        "pk": {"S": "it's"}, "sk": {"N": "-1.5e2"}, "b": {"BOOL": True}, "n": {"NULL": True},
        "l": {"L": [{"N": "1"}, {"S": "x"}, {"L": [{"BOOL": False}]}]}, "m": {"M": {"inner": {"S": "y"}}},
        "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "p": {"B": "AAE="}}


@pytest.mark.parametrize("text, message", [
    ("DROP TABLE x", "Statement wasn't well formed, can't be processed: Expected data manipulation"),
    ("SELECT * FROM", "Statement wasn't well formed, can't be processed: Expected a name but found 'the end of "
                      "the statement'"),
    ("SELECT * FROM t WHERE", "Statement wasn't well formed"),
    ("SELECT * FROM t extra", "Statement wasn't well formed, can't be processed: Unexpected token: 'extra'"),
    ("SELECT * FROM t WHERE a = ?", "Number of parameters in request and statement don't match."),
    ("INSERT INTO t VALUE 'x'", "Unsupported operation: Inserting a non-tuple value into a table"),
    ("INSERT INTO t VALUE {'a': <<'x', 1>>}", "A set's elements must all be strings"),
    ("UPDATE t WHERE pk = 'a'", "Statement wasn't well formed, can't be processed: Expected SET or REMOVE"),
    ("SELECT * FROM t WHERE a # 1", "Statement wasn't well formed, can't be processed: Unexpected character: '#'"),
])
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(ValidationException) as caught:
        partiql.parse(text)
    assert caught.value.message.startswith(message)


def test_too_many_parameters() -> None:
    with pytest.raises(ValidationException, match="Number of parameters in request and statement don't match"):
        partiql.parse("SELECT * FROM t WHERE a = ?", [{"S": "a"}, {"S": "b"}])


def run_selection(selection: partiql.Selection, item: dict[str, Any]) -> bool:
    assert selection.condition is not None
    return evaluate(parse_condition(selection.condition, ExpressionContext(selection.names, selection.values)), item)


def test_select_with_the_partition_key_is_a_query() -> None:
    statement = partiql.parse("SELECT a, m.b[1] FROM \"T\" WHERE pk = ? AND sk BETWEEN 1 AND 5 AND a <> 'x' "
                              "ORDER BY sk DESC", [{"S": "p"}])
    assert isinstance(statement, partiql.Select)
    operation, request, selection = partiql.plan_select(statement, KEY, consistent=True)
    assert operation == "Query"
    assert request["ScanIndexForward"] is False and request["ConsistentRead"] is True
    validated = validate_request("Query", request)  # the request DynamoDB's own validation accepts
    assert validated["KeyConditionExpression"] == "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2"
    assert request["ExpressionAttributeNames"] == {"#n0": "pk", "#n1": "sk"}
    item = {"pk": {"S": "p"}, "sk": {"N": "3"}, "a": {"S": "y"}}
    assert run_selection(selection, item)
    assert not run_selection(selection, {**item, "a": {"S": "x"}})
    assert selection.projection is not None and selection.projection.count(",") == 1


def test_select_without_the_partition_key_is_a_scan() -> None:
    statement = partiql.parse("SELECT * FROM t WHERE (a > 1 OR a IS MISSING) AND NOT begins_with(s, 'x') "
                              "AND c IN [1, 2] AND d IS NOT NULL AND size(l) >= 2")
    assert isinstance(statement, partiql.Select)
    operation, request, selection = partiql.plan_select(statement, KEY, consistent=False)
    assert operation == "Scan" and request == {"TableName": "t"}
    item = {"a": {"N": "2"}, "s": {"S": "yes"}, "c": {"N": "2"}, "d": {"S": "1"}, "l": {"L": [{"N": "1"}] * 2}}
    assert run_selection(selection, item)
    assert run_selection(selection, {**{k: v for k, v in item.items() if k != "a"}})  # a IS MISSING
    assert not run_selection(selection, {**item, "s": {"S": "xy"}})
    assert not run_selection(selection, {**item, "c": {"N": "3"}})
    assert not run_selection(selection, {**item, "d": {"NULL": True}})


def test_order_by_needs_the_sort_key_and_the_partition_key() -> None:
    for text in ("SELECT * FROM t ORDER BY sk", "SELECT * FROM t WHERE pk = 'a' ORDER BY other"):
        statement = partiql.parse(text)
        assert isinstance(statement, partiql.Select)
        with pytest.raises(ValidationException, match="ORDER BY is supported only on the sort key"):
            partiql.plan_select(statement, KEY, consistent=False)


def test_insert_update_delete_requests() -> None:
    insert = partiql.parse("INSERT INTO t VALUE {'pk': 'a', 'sk': 1, 'v': 2}")
    assert isinstance(insert, partiql.Insert)
    operation, request = partiql.plan_write(insert, KEY)
    assert operation == "PutItem" and request["ConditionExpression"] == "attribute_not_exists(#n0)"
    validate_request("PutItem", request)

    update = partiql.parse("UPDATE t SET v = v + 1, w = list_append(w, [1]) SET x = 'y' REMOVE z "
                           "WHERE pk = 'a' AND sk = 1 AND v < 10 RETURNING ALL NEW *")
    assert isinstance(update, partiql.Update)
    operation, request = partiql.plan_write(update, KEY)
    assert operation == "UpdateItem" and request["Key"] == {"pk": {"S": "a"}, "sk": {"N": "1"}}
    assert request["ReturnValues"] == "ALL_NEW"
    validated = validate_request("UpdateItem", request)
    context = ExpressionContext(validated["ExpressionAttributeNames"], validated["ExpressionAttributeValues"])
    parse_update(validated["UpdateExpression"], context)
    condition = parse_condition(validated["ConditionExpression"], context)
    assert evaluate(condition, {"pk": {"S": "a"}, "v": {"N": "3"}})
    assert not evaluate(condition, {"pk": {"S": "a"}, "v": {"N": "30"}})
    assert not evaluate(condition, {})  # an UPDATE never creates the item

    delete = partiql.parse("DELETE FROM t WHERE sk = 1 AND pk = 'a' AND v = 2 RETURNING ALL OLD *")
    assert isinstance(delete, partiql.Delete)
    operation, request = partiql.plan_write(delete, KEY)
    assert operation == "DeleteItem" and request["ReturnValues"] == "ALL_OLD"
    condition = parse_condition(request["ConditionExpression"],
                                ExpressionContext(request["ExpressionAttributeNames"], request["ExpressionAttributeValues"]))
    assert evaluate(condition, {})  # a missing item: the DELETE succeeds, deleting nothing
    assert evaluate(condition, {"pk": {"S": "a"}, "v": {"N": "2"}})
    assert not evaluate(condition, {"pk": {"S": "a"}, "v": {"N": "3"}})
    operation, request = partiql.plan_write(partiql.parse("DELETE FROM t WHERE pk = 'a' AND sk = 1"), KEY)
    assert "ConditionExpression" not in request


@pytest.mark.parametrize("text", [
    "UPDATE t SET v = 1 WHERE pk = 'a'",
    "DELETE FROM t WHERE pk = 'a' OR sk = 1",
    "DELETE FROM t WHERE pk > 'a' AND sk = 1",
])
def test_writes_name_one_item_by_its_whole_key(text: str) -> None:
    statement = partiql.parse(text)
    assert isinstance(statement, (partiql.Update, partiql.Delete))
    with pytest.raises(ValidationException, match="Where clause does not contain a mandatory equality on all key"):
        partiql.plan_write(statement, KEY)


def test_batch_reads_are_key_lookups() -> None:
    statement = partiql.parse("SELECT v FROM t WHERE pk = 'a' AND sk = 2")
    assert isinstance(statement, partiql.Select)
    request = partiql.key_lookup(statement, KEY)
    assert request["Key"] == {"pk": {"S": "a"}, "sk": {"N": "2"}}
    validate_request("GetItem", request)
    statement = partiql.parse("SELECT v FROM t WHERE pk = 'a' AND sk = 2 AND v = 1")
    assert isinstance(statement, partiql.Select)
    with pytest.raises(ValidationException, match="must name one item by its whole primary key"):
        partiql.key_lookup(statement, KEY)
