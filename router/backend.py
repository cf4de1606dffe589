"""What the front door calls once a request is parsed, authenticated and validated.

One async method per DynamoDB operation, named in snake case (``PutItem`` -> ``put_item``): it takes the
validated request dict (DynamoDB JSON, as ``dynamo.requests.validate_request`` returns it) and the request's
context, and returns the response dict (serialised as is) or raises a ``DynamoError``. Any other exception
is a bug: the client gets a 500 InternalServerError and the traceback is logged.

``BaseBackend`` answers every operation with ``OperationNotSupported``; a backend subclasses it and
overrides what it implements, so a new operation is never an AttributeError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from dynamo.errors import ValidationException

Request = dict[str, Any]
Response = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    operation: str
    access_key_id: str
    # The cluster's region (ARNs are built from it), and the one the client signed its request for.
    region: str
    signing_region: str


class OperationNotSupported(ValidationException):
    """A DynamoDB operation ddb recognises but does not implement (yet)."""

    def __init__(self, operation: str) -> None:
        super().__init__(f"ddb does not support the {operation} operation yet")


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def method_name(operation: str) -> str:
    """``TransactWriteItems`` -> ``transact_write_items``."""
    return _CAMEL.sub("_", operation).lower()


class Backend(Protocol):
    async def create_table(self, request: Request, ctx: RequestContext) -> Response: ...
    async def describe_table(self, request: Request, ctx: RequestContext) -> Response: ...
    async def list_tables(self, request: Request, ctx: RequestContext) -> Response: ...
    async def delete_table(self, request: Request, ctx: RequestContext) -> Response: ...
    async def update_table(self, request: Request, ctx: RequestContext) -> Response: ...
    async def put_item(self, request: Request, ctx: RequestContext) -> Response: ...
    async def get_item(self, request: Request, ctx: RequestContext) -> Response: ...
    async def update_item(self, request: Request, ctx: RequestContext) -> Response: ...
    async def delete_item(self, request: Request, ctx: RequestContext) -> Response: ...
    async def query(self, request: Request, ctx: RequestContext) -> Response: ...
    async def scan(self, request: Request, ctx: RequestContext) -> Response: ...
    async def batch_get_item(self, request: Request, ctx: RequestContext) -> Response: ...
    async def batch_write_item(self, request: Request, ctx: RequestContext) -> Response: ...
    async def transact_get_items(self, request: Request, ctx: RequestContext) -> Response: ...
    async def transact_write_items(self, request: Request, ctx: RequestContext) -> Response: ...
    async def tag_resource(self, request: Request, ctx: RequestContext) -> Response: ...
    async def untag_resource(self, request: Request, ctx: RequestContext) -> Response: ...
    async def list_tags_of_resource(self, request: Request, ctx: RequestContext) -> Response: ...
    async def describe_time_to_live(self, request: Request, ctx: RequestContext) -> Response: ...
    async def update_time_to_live(self, request: Request, ctx: RequestContext) -> Response: ...
    async def describe_continuous_backups(self, request: Request, ctx: RequestContext) -> Response: ...
    async def update_continuous_backups(self, request: Request, ctx: RequestContext) -> Response: ...
    async def execute_statement(self, request: Request, ctx: RequestContext) -> Response: ...
    async def batch_execute_statement(self, request: Request, ctx: RequestContext) -> Response: ...
    async def execute_transaction(self, request: Request, ctx: RequestContext) -> Response: ...


class BaseBackend:
    """Every operation of ``Backend`` answered with OperationNotSupported; subclass and override."""

    async def _unsupported(self, ctx: RequestContext) -> Response:
        raise OperationNotSupported(ctx.operation)

    async def create_table(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def describe_table(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def list_tables(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def delete_table(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def update_table(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def put_item(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def get_item(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def update_item(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def delete_item(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def query(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def scan(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def batch_get_item(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def batch_write_item(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def transact_get_items(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def transact_write_items(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def tag_resource(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def untag_resource(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def list_tags_of_resource(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def describe_time_to_live(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def update_time_to_live(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def describe_continuous_backups(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def update_continuous_backups(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def execute_statement(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def batch_execute_statement(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)

    async def execute_transaction(self, request: Request, ctx: RequestContext) -> Response:
        return await self._unsupported(ctx)
