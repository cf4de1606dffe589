"""The DynamoDB JSON 1.0 protocol over HTTP: the front door's request handler.

In DynamoDB's order (as observed by dynalite against the real service): method and content type, JSON body,
``X-Amz-Target``, Authorization, then the request's types and constraints, then the operation. Every
answer carries ``x-amzn-RequestId`` (52 characters) and ``x-amz-crc32`` (CRC32 of the body, which boto3
verifies). Errors are ``{"__type": ..., "message": ...}`` with the error class's HTTP status; anything
unexpected is logged with its traceback and answered 500 InternalServerError.

``GET /`` is the load balancers' health check and answers ``healthy: dynamodb.<region>.amazonaws.com``.
"""

from __future__ import annotations

import base64
import itertools
import logging
import os
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from dynamo.errors import (
    DynamoError,
    InternalServerError,
    SerializationException,
    UnknownOperationException,
)
from dynamo.requests import is_operation, validate_request
from router.auth import AcceptAnyCredentials, Authenticator
from router.backend import Backend, OperationNotSupported, RequestContext, method_name
from router.http import HttpRequest, HttpResponse

log = logging.getLogger("ddb.router.front")

JSON_1_0 = "application/x-amz-json-1.0"
JSON = "application/json"
_CONTENT_TYPES = frozenset({JSON_1_0, JSON})
# Content-Type as SDKs send it -> its media type (the common spellings; others are parsed each time).
_MEDIA_TYPES = {JSON_1_0: JSON_1_0, JSON: JSON, f"{JSON_1_0}; charset=utf-8": JSON_1_0}
_UNKNOWN_OPERATION_XML = b"<UnknownOperationException/>\n"
_INTERNAL_ERROR = InternalServerError("Internal server error")


@dataclass(frozen=True, slots=True)
class FrontConfig:
    region: str = "us-east-1"
    # DescribeLimits: DynamoDB's default account and table quotas.
    account_max_read_capacity_units: int = 80_000
    account_max_write_capacity_units: int = 80_000
    table_max_read_capacity_units: int = 40_000
    table_max_write_capacity_units: int = 40_000
    # DescribeEndpoints: how long SDKs doing endpoint discovery may cache our answer.
    endpoint_cache_period_minutes: int = 1440

    def service_host(self) -> str:
        return f"dynamodb.{self.region}.amazonaws.com"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one request came to, for metrics."""

    operation: str  # "" when the request never named a known operation
    status: int
    error: str  # the DynamoDB error's short name, "" on success
    duration_s: float


def _random_id(length: int) -> str:
    return base64.b64encode(os.urandom(length)).decode().upper().replace("+", "0").replace("/", "0")[:length]


_ID_PREFIX = _random_id(32)  # per process: the ids of two routers never collide
_id_counter = itertools.count()


def new_request_id() -> str:
    """52 characters of [A-Z0-9], as DynamoDB's request ids look: a random per-process prefix and a counter
    (a system call for randomness per request cost more than the rest of the id)."""
    return f"{_ID_PREFIX}{next(_id_counter):020d}"


def crc32(body: bytes) -> str:
    return str(zlib.crc32(body) & 0xFFFFFFFF)


LocalHandler = Callable[[dict[str, Any], RequestContext, HttpRequest], Awaitable[dict[str, Any]]]


class FrontDoor:
    """``handle`` is an ``router.http.Handler``: ``HttpServer(FrontDoor(backend).handle)``."""

    def __init__(
        self,
        backend: Backend,
        config: FrontConfig | None = None,
        authenticator: Authenticator | None = None,
        request_ids: Callable[[], str] = new_request_id,
        observer: Callable[[Outcome], None] | None = None,
    ) -> None:
        """``observer`` is called once per answered request (metrics, access logs); it must not block."""
        self._backend = backend
        self._config = config or FrontConfig()
        self._authenticator: Authenticator = authenticator or AcceptAnyCredentials()
        self._request_ids = request_ids
        self._observer = observer
        self._health_body = f"healthy: {self._config.service_host()}".encode()
        self._methods: dict[str, Callable[[dict[str, Any], RequestContext], Awaitable[dict[str, Any]]]] = {}
        # Operations the router answers itself, without the cluster.
        self._local: dict[str, LocalHandler] = {
            "DescribeEndpoints": self._describe_endpoints,
            "DescribeLimits": self._describe_limits,
        }

    async def handle(self, request: HttpRequest) -> HttpResponse:
        observer = self._observer
        if observer is None:
            return (await self._answer(request))[0]
        started = time.perf_counter()
        response, operation, error = await self._answer(request)
        observer(Outcome(operation, response.status, error, time.perf_counter() - started))
        return response

    async def _answer(self, request: HttpRequest) -> tuple[HttpResponse, str, str]:
        """The response, the operation ("" before it is known) and the error's short name ("" on success)."""
        request_id = self._request_ids()
        content_type = request.headers.get("content-type", "")
        media_type = _MEDIA_TYPES.get(content_type)
        if media_type is None:
            media_type = content_type.partition(";")[0].strip().lower()
        if request.method != "POST" or (request.body and media_type not in _CONTENT_TYPES):
            if request.method == "GET" and request.path == "/":
                return self._health(request_id), "", ""
            # DynamoDB answers anything that is not a JSON POST with this bare 404.
            return self._raw(404, _UNKNOWN_OPERATION_XML, request_id, None), "", "UnknownOperationException"
        reply_type = JSON if media_type == JSON else JSON_1_0
        operation = ""
        try:
            body = self._parse(request.body)
            operation = self._operation(request.headers.get("x-amz-target", ""))
            identity = self._authenticator.authenticate(request)
            if body is None:
                raise SerializationException("")
            ctx = RequestContext(
                request_id, operation, identity.access_key_id, self._config.region, identity.region
            )
            validated = validate_request(operation, body)
            result = await self._dispatch(operation, validated, ctx, request)
        except DynamoError as error:
            if error.http_status >= 500:
                log.warning("request %s failed: %r", request_id, error)
            body = error.to_body()
            if isinstance(error, SerializationException) and "message" in body:
                # DynamoDB's deserializer words its errors with a capital "Message"; SDKs read either.
                body["Message"] = body.pop("message")
            response = self._json(error.http_status, body, request_id, reply_type)
            return response, operation, error.short_name
        except Exception:
            log.exception("request %s: unexpected error", request_id)
            response = self._json(500, _INTERNAL_ERROR.to_body(), request_id, reply_type)
            return response, operation, _INTERNAL_ERROR.short_name
        return self._json(200, result, request_id, reply_type), operation, ""

    # ---- steps -----------------------------------------------------------------------------------------

    @staticmethod
    def _parse(body: bytes) -> Any:
        if not body:
            return None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise SerializationException("") from None

    @staticmethod
    def _operation(target: str) -> str:
        api, dot, operation = target.partition(".")
        if not dot or not is_operation(operation, api):
            raise UnknownOperationException("")
        return operation

    async def _dispatch(
        self, operation: str, validated: dict[str, Any], ctx: RequestContext, request: HttpRequest
    ) -> dict[str, Any]:
        local = self._local.get(operation)
        if local is not None:
            return await local(validated, ctx, request)
        method = self._methods.get(operation)
        if method is None:
            method = getattr(self._backend, method_name(operation), None)
            if method is not None:
                self._methods[operation] = method
        if method is None:
            raise OperationNotSupported(operation)
        result: dict[str, Any] = await method(validated, ctx)
        return result

    async def _describe_endpoints(
        self, validated: dict[str, Any], ctx: RequestContext, request: HttpRequest
    ) -> dict[str, Any]:
        # DynamoDB names its regional endpoint; we name the address the client reached us on, so endpoint
        # discovery keeps talking to this cluster.
        address = request.headers.get("host") or self._config.service_host()
        return {
            "Endpoints": [
                {"Address": address, "CachePeriodInMinutes": self._config.endpoint_cache_period_minutes}
            ]
        }

    async def _describe_limits(
        self, validated: dict[str, Any], ctx: RequestContext, request: HttpRequest
    ) -> dict[str, Any]:
        config = self._config
        return {
            "AccountMaxReadCapacityUnits": config.account_max_read_capacity_units,
            "AccountMaxWriteCapacityUnits": config.account_max_write_capacity_units,
            "TableMaxReadCapacityUnits": config.table_max_read_capacity_units,
            "TableMaxWriteCapacityUnits": config.table_max_write_capacity_units,
        }

    # ---- answers ---------------------------------------------------------------------------------------

    def _health(self, request_id: str) -> HttpResponse:
        return self._raw(200, self._health_body, request_id, "text/plain")

    @staticmethod
    def _raw(status: int, body: bytes, request_id: str, content_type: str | None) -> HttpResponse:
        headers = [("x-amzn-RequestId", request_id), ("x-amz-crc32", crc32(body))]
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        return HttpResponse(status, body, tuple(headers))

    @staticmethod
    def _json(status: int, payload: dict[str, Any], request_id: str, content_type: str) -> HttpResponse:
        body = orjson.dumps(payload)
        return HttpResponse(
            status,
            body,
            (("x-amzn-RequestId", request_id), ("x-amz-crc32", crc32(body)), ("Content-Type", content_type)),
        )
