"""A small HTTP/1.1 server on asyncio with httptools: keep-alive, pipelining, bounded everything.

One ``HttpConnection`` per TCP connection parses bytes with httptools (callbacks fill a request), queues
complete requests and answers them strictly in order from one worker task, so pipelined requests get their
responses in the order they were sent. Everything a client controls is bounded: header bytes and count,
body bytes (413 past ``max_body_bytes``, before reading the body when Content-Length says so), requests
queued per connection (reading pauses), bytes buffered for a client that does not read (the worker waits),
time to send a whole request and time a kept-alive connection may sit idle. A handler that raises is a bug:
the client gets a 500, the traceback goes to the log, and the connection keeps serving.

The server knows nothing of DynamoDB: it calls ``handler(HttpRequest) -> HttpResponse``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import cast

import httptools

log = logging.getLogger("ddb.router.http")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_body_bytes: int = 16 * 1024 * 1024  # DynamoDB's request size limit
    max_header_bytes: int = 64 * 1024  # request line + all header lines
    max_header_count: int = 128
    max_queued_requests: int = 32  # pipelined requests parsed but not answered; reading pauses past it
    max_queued_bytes: int = 16 * 1024 * 1024  # their bodies' bytes; reading pauses past it too
    max_connections: int = 10_000  # past it, a new connection is answered 503 and closed
    write_buffer_high_bytes: int = 1024 * 1024  # stop answering a client that does not read past this
    request_timeout_s: float = 30.0  # first byte of a request to its last
    idle_timeout_s: float = 60.0  # kept-alive connection with nothing to do

    def __post_init__(self) -> None:
        assert self.max_body_bytes > 0 and self.max_header_bytes > 0 and self.max_header_count > 0
        assert self.max_queued_requests >= 1 and self.max_queued_bytes > 0 and self.max_connections >= 1
        assert self.write_buffer_high_bytes > 0
        assert self.request_timeout_s > 0 and self.idle_timeout_s > 0


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    # Lower-case names; a repeated header keeps its values joined by ", " as HTTP allows.
    headers: dict[str, str]
    body: bytes
    keep_alive: bool = True


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]

# How often the server looks for connections past their deadline: a quarter of the shortest timeout, within
# these bounds.
MIN_SWEEP_INTERVAL_S = 0.01
MAX_SWEEP_INTERVAL_S = 1.0

_REASONS = {status.value: status.phrase for status in HTTPStatus}

# Header names as sent -> their lower-case text: SDKs send the same few names on every request. Bounded, so a
# client inventing names cannot grow it; past the bound, names are decoded every time.
_HEADER_NAMES: dict[bytes, str] = {}
_HEADER_NAMES_MAX = 256


def encode_response(response: HttpResponse, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}\r\n"]
    for name, value in response.headers:
        lines.append(f"{name}: {value}\r\n")
    lines.append(f"Content-Length: {len(response.body)}\r\n")
    if not keep_alive:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + response.body


def _plain(status: int, text: str = "") -> HttpResponse:
    return HttpResponse(status, text.encode(), (("Content-Type", "text/plain"),), close=True)


class _TooLarge(Exception):
    """Raised inside a parser callback to stop parsing a request that broke a limit."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(slots=True)
class _Partial:
    url: bytearray = field(default_factory=bytearray)
    headers: dict[str, str] = field(default_factory=dict)
    header_bytes: int = 0
    header_count: int = 0
    body: list[bytes] = field(default_factory=list)
    body_bytes: int = 0


class HttpConnection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._limits = server.limits
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._partial = _Partial()
        self._queue: deque[HttpRequest | HttpResponse] = deque()
        self._queued_bytes = 0
        self._worker: asyncio.Task[None] | None = None
        # Loop time past which ``on_timeout`` runs (the server's sweeper checks), None when nothing is timed:
        # a deadline costs one clock read per request where a timer handle cost two allocations and a cancel.
        self.deadline: float | None = None
        self._reading_paused = False
        self._closing = False
        self._can_write = asyncio.Event()
        self._can_write.set()

    # ---- asyncio.Protocol -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.set_write_buffer_limits(high=self._limits.write_buffer_high_bytes)
        if len(self._server.connections) >= self._limits.max_connections:
            self._closing = True
            self._write(encode_response(_plain(503, "Too many connections"), keep_alive=False))
            self._transport.close()
            return
        self._server.connections.add(self)
        self._arm(self._limits.idle_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._server.connections.discard(self)
        self._disarm()
        self._can_write.set()
        # A handler already running finishes (a write may be half way through the cluster); its answer is
        # dropped and the requests queued behind it are not started.

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(_plain(400, "Upgrade is not supported"))
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            status = cause.status if isinstance(cause, _TooLarge) else 400
            self._fail(_plain(status))
        except httptools.HttpParserError:
            self._fail(_plain(400, "Bad request"))

    def eof_received(self) -> bool | None:
        # The client finished sending; answer what it asked, then close (returning False closes at once when
        # nothing is queued).
        if self._worker is None or self._worker.done():
            return False
        self._queue.append(HttpResponse(0, close=True))
        return True

    # ---- httptools callbacks ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._partial = _Partial()
        self._arm(self._limits.request_timeout_s)

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        self._partial.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        partial = self._partial
        partial.header_count += 1
        if partial.header_count > self._limits.max_header_count:
            raise _TooLarge(431)
        partial.header_bytes += len(name) + len(value) + 4
        if partial.header_bytes > self._limits.max_header_bytes:
            raise _TooLarge(431)
        key = _HEADER_NAMES.get(name)
        if key is None:
            key = name.decode("latin-1").lower()
            if len(_HEADER_NAMES) < _HEADER_NAMES_MAX:
                _HEADER_NAMES[name] = key
        text = value.decode("latin-1")
        previous = partial.headers.get(key)
        partial.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        headers = self._partial.headers
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._limits.max_body_bytes:
            raise _TooLarge(413)
        if headers.get("expect", "").lower() == "100-continue" and self._idle():
            # The client waits for our go-ahead before sending the body. When earlier pipelined responses are
            # still owed, we say nothing rather than answer out of order; the client then sends anyway.
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        partial = self._partial
        partial.body_bytes += len(body)
        if partial.body_bytes > self._limits.max_body_bytes:
            raise _TooLarge(413)
        partial.body.append(body)

    def on_message_complete(self) -> None:
        partial = self._partial
        parser = self._parser
        request = HttpRequest(
            method=parser.get_method().decode("latin-1"),
            path=partial.url.decode("latin-1"),
            headers=partial.headers,
            body=b"".join(partial.body),
            keep_alive=parser.should_keep_alive(),
        )
        self._partial = _Partial()
        self._disarm()
        self._enqueue(request)

    # ---- the pipeline ----------------------------------------------------------------------------------

    def _count_header_bytes(self, count: int) -> None:
        self._partial.header_bytes += count
        if self._partial.header_bytes > self._limits.max_header_bytes:
            raise _TooLarge(431)

    def _idle(self) -> bool:
        return not self._queue and (self._worker is None or self._worker.done())

    def _full(self) -> bool:
        return (
            len(self._queue) >= self._limits.max_queued_requests
            or self._queued_bytes >= self._limits.max_queued_bytes
        )

    def _enqueue(self, item: HttpRequest) -> None:
        self._queue.append(item)
        self._queued_bytes += len(item.body)
        if self._full() and not self._reading_paused:
            assert self._transport is not None
            self._transport.pause_reading()
            self._reading_paused = True
        if self._worker is None or self._worker.done():
            self._worker = self._loop.create_task(self._work())

    def _fail(self, response: HttpResponse) -> None:
        """A request broke the protocol or a limit: answer it after what is owed, then close."""
        self._closing = True
        self._disarm()
        if self._reading_paused is False and self._transport is not None:
            self._transport.pause_reading()
            self._reading_paused = True
        self._queue.append(response)
        if self._worker is None or self._worker.done():
            self._worker = self._loop.create_task(self._work())

    async def _work(self) -> None:
        queue = self._queue
        handler = self._server.handler
        while queue:
            if self._transport is None or self._transport.is_closing():
                queue.clear()
                return
            item = queue.popleft()
            if isinstance(item, HttpRequest):
                self._queued_bytes -= len(item.body)
            if isinstance(item, HttpResponse):
                if item.status:
                    self._write(encode_response(item, keep_alive=False))
                self._close()
                return
            try:
                response = await handler(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handler failed on %s %s", item.method, item.path)
                response = HttpResponse(500, b"Internal server error", (("Content-Type", "text/plain"),))
            keep_alive = item.keep_alive and not response.close
            self._write(encode_response(response, keep_alive))
            if not keep_alive:
                self._close()
                return
            if not self._can_write.is_set():
                await self._can_write.wait()
            if self._reading_paused and not self._closing and not self._full():
                assert self._transport is not None
                self._transport.resume_reading()
                self._reading_paused = False
        if not self._closing:
            partial = self._partial
            started = partial.header_bytes or partial.body_bytes
            self._arm(self._limits.request_timeout_s if started else self._limits.idle_timeout_s)

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def abort(self) -> None:
        """Shut down: close the connection and cancel the handler in flight."""
        self._close()
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()

    def _close(self) -> None:
        self._closing = True
        self._disarm()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    # ---- timeouts --------------------------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self.deadline = self._loop.time() + seconds

    def _disarm(self) -> None:
        self.deadline = None

    def on_timeout(self) -> None:
        """Called by the server's sweeper once ``deadline`` has passed."""
        self.deadline = None
        if self._partial.header_bytes or self._partial.body_bytes:
            # A request too slow to arrive (slowloris): answer what is owed, then this, then close.
            self._fail(_plain(408, "Request timeout"))
        elif self._idle():
            self._close()
        # else a handler is running under its own deadlines; the worker re-arms when it is done.


class HttpServer:
    """Listens on one address and runs ``HttpConnection``s; ``stop()`` closes the listener and every
    connection."""

    def __init__(self, handler: Handler, limits: HttpLimits | None = None) -> None:
        self.handler = handler
        self.limits = limits or HttpLimits()
        self.connections: set[HttpConnection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        # A timeout fires between its deadline and one sweep later.
        shortest_s = min(self.limits.request_timeout_s, self.limits.idle_timeout_s)
        self.sweep_interval_s = min(MAX_SWEEP_INTERVAL_S, max(MIN_SWEEP_INTERVAL_S, shortest_s / 4))

    async def start(self, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False) -> int:
        """Start listening; return the bound port (pass 0 for an ephemeral one)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self), host, port, reuse_port=reuse_port or None, backlog=1024
        )
        self._sweeper = loop.create_task(self._sweep(), name="http-timeouts")
        sockets = self._server.sockets
        assert sockets
        return int(sockets[0].getsockname()[1])

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            now = loop.time()
            for connection in [c for c in self.connections if c.deadline is not None and c.deadline <= now]:
                try:
                    connection.on_timeout()
                except Exception:  # a bug in one connection's timeout must not end every other one's
                    log.exception("timing out a connection failed")

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._server.close()
        for connection in list(self.connections):
            connection.abort()
        await self._server.wait_closed()
        self._server = None
