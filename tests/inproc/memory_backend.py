"""A test-only in-memory Backend, to drive the front door with real clients. Never shipped in the product.

Tables and items live in dicts; it honours only what the front-door tests need (key lookup, no conditions or
expressions).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from dynamo.errors import ResourceInUseException, ResourceNotFoundException, ValidationException
from dynamo.requests.tables import table_description
from router.backend import BaseBackend, Request, RequestContext, Response


@dataclass
class _Table:
    request: dict[str, Any]
    table_id: str
    created_at: float
    items: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)

    @property
    def key_names(self) -> list[str]:
        return [element["AttributeName"] for element in self.request["KeySchema"]]

    def describe(self, region: str, status: str = "ACTIVE") -> dict[str, Any]:
        return table_description(
            self.request,
            region=region,
            table_id=self.table_id,
            creation_date_time=self.created_at,
            status=status,
            item_count=len(self.items),
        )


def _not_found() -> ResourceNotFoundException:
    return ResourceNotFoundException("Requested resource not found")


class MemoryBackend(BaseBackend):
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.tables: dict[str, _Table] = {}
        self._now = now

    def _table(self, name: str) -> _Table:
        table = self.tables.get(name)
        if table is None:
            raise _not_found()
        return table

    def _key(self, table: _Table, key: dict[str, Any]) -> tuple[str, ...]:
        names = table.key_names
        if set(key) != set(names):
            raise ValidationException("The provided key element does not match the schema")
        return tuple(repr(key[name]) for name in names)

    async def create_table(self, request: Request, ctx: RequestContext) -> Response:
        name = request["TableName"]
        if name in self.tables:
            raise ResourceInUseException(f"Table already exists: {name}")
        table = _Table(request, str(uuid.UUID(int=len(self.tables) + 1)), self._now)
        self.tables[name] = table
        return {"TableDescription": table.describe(ctx.region, "CREATING")}

    async def describe_table(self, request: Request, ctx: RequestContext) -> Response:
        name = request["TableName"]
        table = self.tables.get(name)
        if table is None:
            raise ResourceNotFoundException(f"Requested resource not found: Table: {name} not found")
        return {"Table": table.describe(ctx.region)}

    async def list_tables(self, request: Request, ctx: RequestContext) -> Response:
        names = sorted(self.tables)
        start = request.get("ExclusiveStartTableName")
        if start is not None:
            names = [name for name in names if name > start]
        limit = request.get("Limit", 100)
        page = names[:limit]
        response: Response = {"TableNames": page}
        if len(names) > limit:
            response["LastEvaluatedTableName"] = page[-1]
        return response

    async def delete_table(self, request: Request, ctx: RequestContext) -> Response:
        table = self._table(request["TableName"])
        del self.tables[request["TableName"]]
        return {"TableDescription": table.describe(ctx.region, "DELETING")}

    async def put_item(self, request: Request, ctx: RequestContext) -> Response:
        table = self._table(request["TableName"])
        item = request["Item"]
        key = self._key(table, {name: item[name] for name in table.key_names if name in item})
        old = table.items.get(key)
        table.items[key] = item
        if request.get("ReturnValues") == "ALL_OLD" and old is not None:
            return {"Attributes": old}
        return {}

    async def get_item(self, request: Request, ctx: RequestContext) -> Response:
        table = self._table(request["TableName"])
        found = table.items.get(self._key(table, request["Key"]))
        return {} if found is None else {"Item": found}

    async def delete_item(self, request: Request, ctx: RequestContext) -> Response:
        table = self._table(request["TableName"])
        old = table.items.pop(self._key(table, request["Key"]), None)
        if request.get("ReturnValues") == "ALL_OLD" and old is not None:
            return {"Attributes": old}
        return {}
