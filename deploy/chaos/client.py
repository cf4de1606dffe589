"""A small DynamoDB client for chaos runs: one HTTP/1.1 keep-alive connection on asyncio streams, SigV4
signed with botocore, and NO retries, so each request is exactly one operation in the history.

What matters here is telling definite answers from indeterminate ones:

* a 200 is ``ok``; a 4xx (ConditionalCheckFailed, throttling, validation) means the request was refused,
  so it is ``fail`` (definitely not applied);
* a 5xx, a timeout, or a connection that breaks after the request went out is ``info``: it may have been
  applied (now or later). A timed-out connection is closed, so a late answer can never be mistaken for
  the answer to the next request;
* a refused connection is ``fail``: nothing was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from deploy.chaos.history import Outcome

API_PREFIX = "DynamoDB_20120810."
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class Answer:
    """What one request came to. ``error`` is the DynamoDB error type (``ConditionalCheckFailedException``)
    or a transport failure (``timeout``, ``connection lost``, ``connection refused``, ``http 503``)."""

    outcome: Outcome
    status: int = 0
    body: dict[str, Any] | None = None
    error: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


def error_type(body: dict[str, Any] | None) -> str:
    """``com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException`` -> the part after '#'."""
    raw = str((body or {}).get("__type", "")) or "UnknownError"
    return raw.rsplit("#", 1)[-1]


def classify(status: int, body: dict[str, Any] | None) -> Answer:
    if status == 200:
        return Answer(Outcome.OK, status, body)
    message = str((body or {}).get("message", (body or {}).get("Message", "")))
    if 400 <= status < 500:
        return Answer(Outcome.FAIL, status, body, error_type(body), message)
    return Answer(Outcome.INFO, status, body, error_type(body) if body else f"http {status}", message)


class _Broken(Exception):
    """The connection failed; ``sent`` says whether any of the request may have reached the server."""

    def __init__(self, what: str, sent: bool) -> None:
        super().__init__(what)
        self.what = what
        self.sent = sent


class DynamoClient:
    def __init__(self, endpoint: str, *, region: str = "us-east-1", access_key: str = "ddb",
                 secret_key: str = "ddb", timeout_s: float = 2.0, connect_timeout_s: float = 1.0) -> None:
        parts = urlsplit(endpoint)
        assert parts.scheme == "http" and parts.hostname, f"need an http:// endpoint, not {endpoint!r}"
        self.endpoint = endpoint.rstrip("/") + "/"
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        # botocore is imported here, not at the top: `ddb` imports this module on every command.
        from botocore.auth import SigV4Auth
        from botocore.credentials import Credentials

        self._signer = SigV4Auth(Credentials(access_key, secret_key), "dynamodb", region)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def call(self, operation: str, request: dict[str, Any], timeout_s: float | None = None,
                   api: str = API_PREFIX) -> Answer:
        """``api``: the target prefix (DynamoDB's, or DynamoDB Streams' at the same endpoint)."""
        body = orjson.dumps(request)
        wire = self._encode(api + operation, body)
        try:
            async with asyncio.timeout(timeout_s or self.timeout_s):
                status, raw = await self._exchange(wire)
        except TimeoutError:
            await self.close()
            return Answer(Outcome.INFO, error="timeout")
        except _Broken as exc:
            await self.close()
            return Answer(Outcome.INFO if exc.sent else Outcome.FAIL, error=exc.what)
        try:
            parsed = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            parsed = {"__type": "UnparsableResponse", "message": raw[:200].decode(errors="replace")}
        return classify(status, parsed if isinstance(parsed, dict) else {})

    def _encode(self, target: str, body: bytes) -> bytes:
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="POST", url=self.endpoint, data=body,
                             headers={"Content-Type": "application/x-amz-json-1.0",
                                      "X-Amz-Target": target})
        self._signer.add_auth(request)
        head = ["POST / HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in request.headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    self._reader, self._writer = await asyncio.open_connection(self.host, self.port,
                                                                               limit=MAX_HEADER_BYTES)
            except TimeoutError:
                raise _Broken("connect timeout", sent=False) from None
            except OSError as exc:
                raise _Broken(f"connection refused ({exc.__class__.__name__})", sent=False) from None
        return self._reader, self._writer

    async def _exchange(self, wire: bytes) -> tuple[int, bytes]:
        reader, writer = await self._connect()
        try:
            writer.write(wire)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
            raise _Broken(f"connection lost ({exc.__class__.__name__})", sent=True) from None
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise _Broken(f"bad status line {lines[0][:80]!r}", sent=True) from None
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        try:
            if headers.get("transfer-encoding", "").lower() == "chunked":
                raw = await _read_chunked(reader)
            else:
                length = int(headers.get("content-length", "0"))
                if length > MAX_BODY_BYTES:
                    raise _Broken(f"response body of {length} bytes", sent=True)
                raw = await reader.readexactly(length)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ValueError) as exc:
            raise _Broken(f"connection lost ({exc.__class__.__name__})", sent=True) from None
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, raw

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.5)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)
        if len(out) > MAX_BODY_BYTES:
            raise ValueError("chunked body too large")
