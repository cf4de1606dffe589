"""ExecuteStatement and BatchExecuteStatement (PartiQL) through the router's cluster backend, against three
real storage nodes over gRPC: the table of test_index_reads (four partitions, an LSI and two GSIs)."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo.errors import ConditionalCheckFailedException, DuplicateItemException, ValidationException
from dynamo.requests import validate_request
from tests.inproc.test_index_reads import ITEMS, ident, loaded  # noqa: F401 - the fixture
from tests.inproc.test_query_cluster import Router
from tests.inproc.test_router_cluster import ctx
from tests.inproc.test_storage_node import Cluster

pytestmark = pytest.mark.timeout(90)


async def statement(call: Router, text: str, *parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"Statement": text, **extra}
    if parameters:
        body["Parameters"] = list(parameters)
    result: dict[str, Any] = await call.backend.execute_statement(validate_request("ExecuteStatement", body),
                                                                  ctx("ExecuteStatement"))
    return result


async def every_page(call: Router, text: str, *parameters: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    for _ in range(200):
        page = await statement(call, text, *parameters, **extra, **({"NextToken": token} if token else {}))
        items += page["Items"]
        token = page.get("NextToken")
        if token is None:
            return items
    raise AssertionError("too many pages")


async def test_select_by_partition_key_pages_with_the_where_applied(loaded: tuple[Cluster, Router]) -> None:  # noqa: F811
    _, call = loaded
    found = await every_page(call, "SELECT sk, note FROM \"rows\" WHERE pk = ? AND sk >= 3 AND note <> 'n1'",
                             {"S": "p2"}, Limit=4)
    want = [i for i in ITEMS if i["pk"]["S"] == "p2" and int(i["sk"]["N"]) >= 3 and i["note"]["S"] != "n1"]
    assert found == [{"sk": i["sk"], "note": i["note"]} for i in want]  # in sort-key order
    backwards = await every_page(call, "SELECT sk FROM rows WHERE pk = 'p2' ORDER BY sk DESC")
    assert [int(i["sk"]["N"]) for i in backwards] == sorted((int(i["sk"]["N"]) for i in ITEMS if i["pk"]["S"] == "p2"),
                                                            reverse=True)


async def test_select_without_the_key_scans_and_on_an_index(loaded: tuple[Cluster, Router]) -> None:  # noqa: F811
    _, call = loaded
    found = await every_page(call, "SELECT * FROM rows WHERE grp = 'g1' AND (score < 3 OR score IS MISSING)", Limit=20)
    want = [i for i in ITEMS if i.get("grp") == {"S": "g1"} and ("score" not in i or int(i["score"]["N"]) < 3)]
    assert sorted(ident(i) for i in found) == sorted(ident(i) for i in want) and len(found) == len(want)
    on_index = await every_page(call, "SELECT pk, sk, score FROM rows.\"by_group\" WHERE grp = 'g0' ORDER BY score DESC")
    scores = [int(i["score"]["N"]) for i in on_index]
    assert scores == sorted(scores, reverse=True)
    assert len(on_index) == sum(1 for i in ITEMS if i.get("grp") == {"S": "g0"} and "score" in i)


async def test_token_is_bound_to_its_statement(loaded: tuple[Cluster, Router]) -> None:  # noqa: F811
    _, call = loaded
    page = await statement(call, "SELECT * FROM rows WHERE pk = 'p1'", Limit=2)
    assert page["NextToken"] and page["LastEvaluatedKey"]
    with pytest.raises(ValidationException, match="NextToken is not valid for this statement"):
        await statement(call, "SELECT * FROM rows WHERE pk = 'p2'", Limit=2, NextToken=page["NextToken"])
    with pytest.raises(ValidationException, match="NextToken is not valid"):
        await statement(call, "SELECT * FROM rows WHERE pk = 'p1'", NextToken="not a token")


async def test_insert_update_delete(loaded: tuple[Cluster, Router]) -> None:  # noqa: F811
    _, call = loaded
    assert await statement(call, "INSERT INTO rows VALUE {'pk': 'new', 'sk': 1, 'n': 5, 'tags': <<'a'>>}") == {"Items": []}
    with pytest.raises(DuplicateItemException, match="Duplicate primary key exists in table"):
        await statement(call, "INSERT INTO rows VALUE {'pk': 'new', 'sk': 1}")
    updated = await statement(call, "UPDATE rows SET n = n + 1 SET tags = ? REMOVE note WHERE pk = 'new' AND sk = 1 "
                              "AND n < 10 RETURNING ALL NEW *", {"SS": ["b", "c"]})
    assert updated["Items"] == [{"pk": {"S": "new"}, "sk": {"N": "1"}, "n": {"N": "6"}, "tags": {"SS": ["b", "c"]}}]
    with pytest.raises(ConditionalCheckFailedException):
        await statement(call, "UPDATE rows SET n = 0 WHERE pk = 'new' AND sk = 1 AND n > 100")
    with pytest.raises(ConditionalCheckFailedException):
        await statement(call, "UPDATE rows SET n = 0 WHERE pk = 'absent' AND sk = 1")  # never creates an item
    with pytest.raises(ConditionalCheckFailedException):
        await statement(call, "DELETE FROM rows WHERE pk = 'new' AND sk = 1 AND n = 7")
    assert await statement(call, "DELETE FROM rows WHERE pk = 'absent' AND sk = 1 AND n = 7") == {"Items": []}
    gone = await statement(call, "DELETE FROM rows WHERE pk = 'new' AND sk = 1 RETURNING ALL OLD *")
    assert gone["Items"][0]["n"] == {"N": "6"}
    assert await statement(call, "SELECT * FROM rows WHERE pk = 'new'", ConsistentRead=True) == {"Items": []}
    with pytest.raises(ValidationException, match="Where clause does not contain a mandatory equality"):
        await statement(call, "DELETE FROM rows WHERE pk = 'new'")
    with pytest.raises(ValidationException, match="The table does not have the specified index: nope"):
        await statement(call, "SELECT * FROM rows.nope")


async def test_batch_execute_statement(loaded: tuple[Cluster, Router]) -> None:  # noqa: F811
    _, call = loaded

    async def batch(*texts: str) -> list[dict[str, Any]]:
        body = {"Statements": [{"Statement": text} for text in texts]}
        result = await call.backend.batch_execute_statement(validate_request("BatchExecuteStatement", body),
                                                            ctx("BatchExecuteStatement"))
        responses: list[dict[str, Any]] = result["Responses"]
        return responses

    written = await batch("INSERT INTO rows VALUE {'pk': 'b1', 'sk': 1}", "INSERT INTO rows VALUE {'pk': 'p0', 'sk': 0}",
                          "UPDATE rows SET x = 1 WHERE pk = 'nobody' AND sk = 1", "DELETE FROM nothere WHERE pk = 'a'")
    assert written[0] == {"TableName": "rows"}
    assert written[1]["Error"] == {"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"}
    assert written[2]["Error"]["Code"] == "ConditionalCheckFailed"
    assert written[3]["Error"]["Code"] == "ResourceNotFound"
    read = await batch("SELECT * FROM rows WHERE pk = 'b1' AND sk = 1", "SELECT sk FROM rows WHERE pk = 'p3' AND sk = 5",
                       "SELECT * FROM rows WHERE pk = 'zz' AND sk = 1", "SELECT * FROM rows WHERE pk = 'p3'")
    assert read[0] == {"TableName": "rows", "Item": {"pk": {"S": "b1"}, "sk": {"N": "1"}}}
    assert read[1] == {"TableName": "rows", "Item": {"sk": {"N": "5"}}}
    assert read[2] == {"TableName": "rows"}
    assert read[3]["Error"]["Code"] == "ValidationError"
    with pytest.raises(ValidationException, match="read or write statements in one batch"):
        await batch("SELECT * FROM rows WHERE pk = 'b1' AND sk = 1", "DELETE FROM rows WHERE pk = 'b1' AND sk = 1")
