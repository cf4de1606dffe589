"""The benchmark's clients: a light keep-alive HTTP/1.1 client on an asyncio Protocol, and boto3.

``HttpClient`` holds one connection and one request in flight (a benchmark client is one connection, as
one SDK client thread is); responses are parsed by httptools (llhttp), so chunked and Content-Length
bodies both work. Each request costs a SigV4 signature and one ``transport.write``; nothing else is
allocated per request but the message bytes and a future.

``BotoClient`` has the same ``call`` and runs boto3's low-level client in a thread pool, which is what a
boto3 user's program sees (botocore's serialisation, signing, urllib3, retries) with the GIL shared.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import httptools
import orjson

from deploy.bench.sigv4 import CONTENT_TYPE, TARGET_PREFIX, Signer

DEFAULT_TIMEOUT_S = 10.0


class BenchClientError(Exception):
    """The server could not be reached, did not answer in time, or answered something that is not HTTP.

    ``kind`` is a short fixed name for counting these like DynamoDB's error names.
    """

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str
    host: str
    port: int

    @staticmethod
    def parse(url: str) -> Endpoint:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint {url!r}: expected http://host:port")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return Endpoint(parts.scheme, parts.hostname, port)

    @property
    def host_header(self) -> str:
        """Host as sent and signed: the port is left out when it is the scheme's default (as botocore does)."""
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}"


class Client(Protocol):
    async def call(self, target: str, body: bytes) -> tuple[int, bytes]:
        """Send ``DynamoDB_20120810.<target>`` with ``body``; the HTTP status and the response body."""
        ...

    async def close(self) -> None: ...


_ERROR_TYPE = re.compile(rb'"__type"\s*:\s*"([^"]*)"')


def error_name(status: int, body: bytes) -> str:
    """DynamoDB's short error name (``ConditionalCheckFailedException``) from an error reply."""
    found = _ERROR_TYPE.search(body)
    if found:
        return found.group(1).decode(errors="replace").rpartition("#")[2] or f"HTTP {status}"
    return f"HTTP {status}"


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection with at most one request in flight."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self.closed = False
        self.keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(BenchClientError("bad HTTP response", str(exc)))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(BenchClientError("connection closed by the server"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, message: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self._waiter is None, "one request at a time per connection"
        assert self.transport is not None
        waiter = self._waiter = self._loop.create_future()
        self.transport.write(message)
        return waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttpClient:
    """A keep-alive DynamoDB client over one connection; reconnects when the server closes it."""

    def __init__(self, endpoint: Endpoint, signer: Signer | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.endpoint = endpoint
        self.signer = signer or Signer(endpoint.host_header)
        self.timeout_s = timeout_s
        self._conn: _Connection | None = None
        self._heads: dict[str, bytes] = {}
        self.connects = 0

    async def connect(self) -> None:
        """Open the connection if there is none open (the loader may have opened it already)."""
        if self._conn is not None and not self._conn.closed:
            return
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if self.endpoint.scheme == "https" else None
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(
                lambda: _Connection(loop), self.endpoint.host, self.endpoint.port, ssl=context), self.timeout_s)
        except (OSError, TimeoutError) as exc:
            raise BenchClientError("cannot connect", f"{self.endpoint.url}: {exc}") from None
        self._conn = conn
        self.connects += 1

    def message(self, target: str, body: bytes) -> bytes:
        """The whole HTTP request: the cached head for the target, then date, signature, length, body."""
        head = self._heads.get(target)
        if head is None:
            head = self._heads[target] = (
                f"POST / HTTP/1.1\r\nHost: {self.endpoint.host_header}\r\nContent-Type: {CONTENT_TYPE}\r\n"
                f"X-Amz-Target: {TARGET_PREFIX}{target}\r\n").encode()
        amz_date = self.signer.amz_date()
        authorization = self.signer.authorization(target, amz_date, body)
        return b"".join((head, (f"X-Amz-Date: {amz_date}\r\nAuthorization: {authorization}\r\n"
                                f"Content-Length: {len(body)}\r\n\r\n").encode(), body))

    async def call(self, target: str, body: bytes) -> tuple[int, bytes]:
        conn = self._conn
        if conn is None or conn.closed:
            await self.connect()
            conn = self._conn
            assert conn is not None
        waiter = conn.send(self.message(target, body))
        timer = asyncio.get_running_loop().call_later(self.timeout_s, _expire, waiter, conn)
        try:
            reply = await waiter
        except BaseException:
            # Cancelled or failed: an answer arriving later would be read as the next request's.
            conn.close()
            raise
        finally:
            timer.cancel()
        if not conn.keep_alive:
            conn.close()
        return reply

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _expire(waiter: asyncio.Future[tuple[int, bytes]], conn: _Connection) -> None:
    # A late answer would be read as the next request's: the connection goes with the request.
    if not waiter.done():
        waiter.set_exception(BenchClientError("timed out"))
        conn.close()


def _snake(target: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", target).lower()


class BotoClient:
    """boto3's low-level client, called from a thread pool; errors come back as DynamoDB error bodies."""

    def __init__(self, endpoint: Endpoint, threads: int, region: str = "us-east-1") -> None:
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        self._client: Any = boto3.client(
            "dynamodb", endpoint_url=endpoint.url, region_name=region, aws_access_key_id="ddb",
            aws_secret_access_key="ddb", config=Config(max_pool_connections=threads))
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="boto3")
        self._methods: dict[str, Any] = {}

    def _call_sync(self, target: str, body: bytes) -> tuple[int, bytes]:
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]

        method = self._methods.get(target)
        if method is None:
            method = self._methods[target] = getattr(self._client, _snake(target))
        try:
            method(**orjson.loads(body))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            return status, orjson.dumps({"__type": error.get("Code", ""), "message": error.get("Message", "")})
        return 200, b"{}"

    async def call(self, target: str, body: bytes) -> tuple[int, bytes]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call_sync, target, body)

    async def close(self) -> None:
        self._pool.shutdown(wait=False)
