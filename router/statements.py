"""ExecuteStatement and BatchExecuteStatement: PartiQL statements (``dynamo.partiql``) served as the
operations they are (Query, Scan, GetItem, PutItem, UpdateItem, DeleteItem) by the router's backend.

A SELECT's page is the Query's or Scan's page with the whole WHERE and the projection applied to its items;
its NextToken is the page's LastEvaluatedKey, sealed to the statement and its parameters so that a token
cannot resume another statement.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from dynamo import partiql, transactions
from dynamo.errors import (
    ConditionalCheckFailedException,
    DuplicateItemException,
    DynamoError,
    InternalServerError,
    ProvisionedThroughputExceededException,
    RequestLimitExceeded,
    ResourceNotFoundException,
    ServiceUnavailableException,
    ThrottlingException,
    TransactionCanceledException,
    ValidationException,
)
from dynamo.expressions import ExpressionContext, evaluate, parse_condition, parse_projection, project
from dynamo.items import KeySchema
from dynamo.requests import validate_request
from router.backend import Request, RequestContext, Response
from router.routing import TableRoute

Operation = Callable[[Request, RequestContext], Awaitable[Response]]
MSG_BAD_TOKEN = "The provided NextToken is not valid for this statement"
# BatchStatementError codes, by the exception a statement failed with.
_ERROR_CODES: tuple[tuple[type[DynamoError], str], ...] = (
    (ConditionalCheckFailedException, "ConditionalCheckFailed"),
    (DuplicateItemException, "DuplicateItem"),
    (ValidationException, "ValidationError"),
    (ResourceNotFoundException, "ResourceNotFound"),
    (ProvisionedThroughputExceededException, "ProvisionedThroughputExceeded"),
    (ThrottlingException, "ThrottlingError"),
    (RequestLimitExceeded, "RequestLimitExceeded"),
    (InternalServerError, "InternalServerError"),
    (ServiceUnavailableException, "InternalServerError"),
)


class StatementRunner:
    """Runs statements through the backend's own operations (looked up by name, as the front door does)."""

    def __init__(self, operation: Callable[[str], Operation], table: Callable[[str], Awaitable[TableRoute]]) -> None:
        self._operation = operation
        self._table = table

    async def _key(self, statement: partiql.Statement) -> KeySchema:
        route = await self._table(statement.table)
        if isinstance(statement, partiql.Select) and statement.index is not None:
            for index in route.indexes:
                if index.name == statement.index:
                    return index.key
            raise ValidationException(f"The table does not have the specified index: {statement.index}")
        return route.key

    async def _call(self, name: str, request: dict[str, Any], ctx: RequestContext) -> Response:
        return await self._operation(name)(validate_request(name, request), ctx)

    async def execute(self, request: Request, ctx: RequestContext) -> Response:
        statement = partiql.parse(request["Statement"], request.get("Parameters"))
        key = await self._key(statement)
        capacity = request.get("ReturnConsumedCapacity")
        if isinstance(statement, partiql.Select):
            return await self._select(statement, key, request, ctx)
        result = await self._write(statement, key, capacity, request.get("ReturnValuesOnConditionCheckFailure"), ctx)
        body: Response = {"Items": [result["Attributes"]] if "Attributes" in result else []}
        if "ConsumedCapacity" in result:
            body["ConsumedCapacity"] = result["ConsumedCapacity"]
        return body

    async def _write(self, statement: partiql.Insert | partiql.Update | partiql.Delete, key: KeySchema,
                     capacity: str | None, on_failure: str | None, ctx: RequestContext) -> Response:
        operation, write = partiql.plan_write(statement, key)
        if capacity is not None:
            write["ReturnConsumedCapacity"] = capacity
        if on_failure is not None:
            write["ReturnValuesOnConditionCheckFailure"] = on_failure
        try:
            return await self._call(operation, write, ctx)
        except ConditionalCheckFailedException:
            if operation == "PutItem":  # the key is taken: an INSERT's own error
                raise DuplicateItemException() from None
            raise

    async def _select(self, statement: partiql.Select, key: KeySchema, request: Request,
                      ctx: RequestContext) -> Response:
        operation, read, selection = partiql.plan_select(statement, key, bool(request.get("ConsistentRead")))
        seal = _seal(request)
        if request.get("Limit") is not None:
            read["Limit"] = request["Limit"]
        if request.get("NextToken") is not None:
            read["ExclusiveStartKey"] = _open_token(request["NextToken"], seal)
        if request.get("ReturnConsumedCapacity") is not None:
            read["ReturnConsumedCapacity"] = request["ReturnConsumedCapacity"]
        page = await self._call(operation, read, ctx)
        context = ExpressionContext(selection.names, selection.values)
        condition = parse_condition(selection.condition, context) if selection.condition else None
        projection = parse_projection(selection.projection, context) if selection.projection else None
        items = []
        for item in page["Items"]:
            if condition is not None and not evaluate(condition, item):
                continue
            items.append(project(item, projection) if projection is not None else item)
        body: Response = {"Items": items}
        if "LastEvaluatedKey" in page:
            body["NextToken"] = _make_token(page["LastEvaluatedKey"], seal)
            body["LastEvaluatedKey"] = page["LastEvaluatedKey"]
        if "ConsumedCapacity" in page:
            body["ConsumedCapacity"] = page["ConsumedCapacity"]
        return body

    async def execute_batch(self, request: Request, ctx: RequestContext) -> Response:
        """Each statement on its own (one may fail while the others succeed), all at once. A batch is all
        reads (SELECTs naming one item by its key: GetItems) or all writes."""
        entries = request["Statements"]
        parsed: list[partiql.Statement | DynamoError] = []
        for entry in entries:
            try:
                parsed.append(partiql.parse(entry["Statement"], entry.get("Parameters")))
            except DynamoError as exc:
                parsed.append(exc)
        kinds = {isinstance(one, partiql.Select) for one in parsed if not isinstance(one, DynamoError)}
        if len(kinds) > 1:
            raise ValidationException("Supports only read or write statements in one batch, not both")
        capacity = request.get("ReturnConsumedCapacity")
        answers = await asyncio.gather(*(self._one(one, entry, capacity, ctx) for one, entry in zip(parsed, entries,
                                                                                                   strict=True)))
        body: Response = {"Responses": [answer for answer, _ in answers]}
        consumed = [used for _, used in answers if used is not None]
        if consumed:
            body["ConsumedCapacity"] = consumed
        return body

    async def _one(self, statement: partiql.Statement | DynamoError, entry: dict[str, Any], capacity: str | None,
                   ctx: RequestContext) -> tuple[Response, Any]:
        if isinstance(statement, DynamoError):
            return {"Error": _error(statement)}, None
        answer: Response = {"TableName": statement.table}
        try:
            key = await self._key(statement)
            if isinstance(statement, partiql.Select):
                read = partiql.key_lookup(statement, key)
                if entry.get("ConsistentRead"):
                    read["ConsistentRead"] = True
                if capacity is not None:
                    read["ReturnConsumedCapacity"] = capacity
                result = await self._call("GetItem", read, ctx)
                if "Item" in result:
                    answer["Item"] = result["Item"]
            else:
                result = await self._write(statement, key, capacity, entry.get("ReturnValuesOnConditionCheckFailure"),
                                           ctx)
        except DynamoError as exc:
            answer["Error"] = _error(exc)
            return answer, None
        return answer, result.get("ConsumedCapacity")


_ACTION = {"PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}
# DynamoDB Local's words (EXISTS counts as a write's check)
MSG_MIXED = "ExecuteTransaction API does not support both read and write operations in the same request."
MSG_DUPLICATE = "Duplicate primary key exists in table"


class TransactionStatements:
    """ExecuteTransaction: its SELECTs are a TransactGetItems, its INSERT / UPDATE / DELETE and
    ``EXISTS(SELECT ...)`` checks a TransactWriteItems, run by the backend's own operations."""

    def __init__(self, runner: StatementRunner) -> None:
        self.runner = runner

    async def execute(self, request: Request, ctx: RequestContext) -> Response:
        parsed: list[tuple[partiql.Statement, bool, dict[str, Any]]] = []
        for entry in request["TransactStatements"]:
            inner = partiql.exists_inner(entry["Statement"])
            statement = partiql.parse(inner if inner is not None else entry["Statement"], entry.get("Parameters"))
            if inner is not None and not isinstance(statement, partiql.Select):
                raise ValidationException("EXISTS takes a SELECT statement")
            parsed.append((statement, inner is not None, entry))
        reads = [isinstance(statement, partiql.Select) and not exists for statement, exists, _ in parsed]
        if any(reads) and not all(reads):
            raise ValidationException(MSG_MIXED)
        capacity = {"ReturnConsumedCapacity": request["ReturnConsumedCapacity"]} if request.get(
            "ReturnConsumedCapacity") else {}
        if all(reads):
            gets = []
            for statement, _, _ in parsed:
                assert isinstance(statement, partiql.Select)
                gets.append({"Get": partiql.key_lookup(statement, await self.runner._key(statement))})
            answer = await self.runner._call("TransactGetItems", {"TransactItems": gets, **capacity}, ctx)
            return answer
        actions: list[dict[str, Any]] = []
        inserts: list[int] = []
        for position, (statement, exists, entry) in enumerate(parsed):
            key = await self.runner._key(statement)
            if exists:
                assert isinstance(statement, partiql.Select)
                kind, body = "ConditionCheck", partiql.exists_check(statement, key)
            else:
                assert not isinstance(statement, partiql.Select)
                operation, body = partiql.plan_write(statement, key)
                kind = _ACTION[operation]
                body.pop("ReturnValues", None)
                if operation == "PutItem":
                    inserts.append(position)
            if entry.get("ReturnValuesOnConditionCheckFailure") is not None:
                body["ReturnValuesOnConditionCheckFailure"] = entry["ReturnValuesOnConditionCheckFailure"]
            actions.append({kind: body})
        token = {"ClientRequestToken": request["ClientRequestToken"]} if request.get("ClientRequestToken") else {}
        try:
            return await self.runner._call("TransactWriteItems", {"TransactItems": actions, **capacity, **token}, ctx)
        except TransactionCanceledException as exc:
            reasons = exc.extra["CancellationReasons"]
            for position in inserts:  # an INSERT's failed condition is its key being taken (as DynamoDB Local says)
                if reasons[position]["Code"] == "ConditionalCheckFailed":
                    reasons[position] = {"Code": "ValidationError", "Message": MSG_DUPLICATE}
            raise transactions.canceled(reasons) from None


def _error(exc: DynamoError) -> dict[str, Any]:
    code = next((code for kind, code in _ERROR_CODES if isinstance(exc, kind)), "InternalServerError")
    error: dict[str, Any] = {"Code": code, "Message": exc.message}
    if "Item" in exc.extra:
        error["Item"] = exc.extra["Item"]
    return error


def _seal(request: Request) -> str:
    """What a NextToken is bound to: the statement and its parameters."""
    digest = hashlib.sha256(orjson.dumps([request["Statement"], request.get("Parameters")]))
    return digest.hexdigest()[:16]


def _make_token(last: dict[str, Any], seal: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"k": last, "s": seal})).decode("ascii")


def _open_token(token: str, seal: str) -> dict[str, Any]:
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, orjson.JSONDecodeError):
        raise ValidationException(MSG_BAD_TOKEN) from None
    if not isinstance(body, dict) or body.get("s") != seal or not isinstance(body.get("k"), dict):
        raise ValidationException(MSG_BAD_TOKEN)
    start: dict[str, Any] = body["k"]
    return start
