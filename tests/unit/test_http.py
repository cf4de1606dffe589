"""The HTTP layer on raw sockets: keep-alive, pipelining, limits, garbage, timeouts, a handler that raises."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.http import HttpLimits, HttpRequest, HttpResponse, HttpServer, encode_response

pytestmark = pytest.mark.timeout(30)


async def echo(request: HttpRequest) -> HttpResponse:
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    if request.path.startswith("/sleep"):
        await asyncio.sleep(float(request.path.rpartition("/")[2]))
    return HttpResponse(200, f"{request.method} {request.path} {len(request.body)}".encode())


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    srv = HttpServer(
        echo,
        HttpLimits(max_body_bytes=1000, max_header_bytes=2000, request_timeout_s=0.5, idle_timeout_s=0.5),
    )
    await srv.start()
    yield srv
    await srv.stop()


async def connect(server: HttpServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def post(path: str, body: bytes = b"", extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def test_keep_alive_serves_many_requests_on_one_connection(server: HttpServer) -> None:
    reader, writer = await connect(server)
    for index in range(5):
        writer.write(post(f"/r{index}", b"x" * index))
        status, headers, body = await read_response(reader)
        assert (status, body) == (200, f"POST /r{index} {index}".encode())
        assert "connection" not in headers
    writer.close()


async def test_pipelined_requests_are_answered_in_order(server: HttpServer) -> None:
    reader, writer = await connect(server)
    # The first request is the slowest: its answer must still come first.
    writer.write(post("/sleep/0.05") + post("/a", b"12") + post("/sleep/0.01") + post("/b", b"123"))
    bodies = [(await read_response(reader))[2] for _ in range(4)]
    assert bodies == [b"POST /sleep/0.05 0", b"POST /a 2", b"POST /sleep/0.01 0", b"POST /b 3"]
    writer.close()


async def test_byte_at_a_time_request_is_parsed(server: HttpServer) -> None:
    reader, writer = await connect(server)
    for byte in post("/slowly", b"abc"):
        writer.write(bytes([byte]))
        await writer.drain()
    status, _, body = await read_response(reader)
    assert (status, body) == (200, b"POST /slowly 3")
    writer.close()


async def test_chunked_body_is_reassembled(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    assert (await read_response(reader))[2] == b"POST /c 5"
    writer.close()


async def test_oversize_content_length_is_refused_before_the_body(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
    status, headers, _ = await read_response(reader)
    assert status == 413 and headers["connection"] == "close"
    assert await reader.read() == b""  # and the connection is closed
    writer.close()


async def test_oversize_chunked_body_is_refused(server: HttpServer) -> None:
    reader, writer = await connect(server)
    chunk = b"x" * 600
    writer.write(b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    writer.write(b"258\r\n" + chunk + b"\r\n258\r\n" + chunk + b"\r\n0\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status == 413
    writer.close()


async def test_body_at_the_limit_is_accepted(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(post("/edge", b"y" * 1000))
    assert (await read_response(reader))[0] == 200
    writer.close()


async def test_huge_headers_are_refused(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(post("/h", extra="X-Big: " + "z" * 3000 + "\r\n"))
    assert (await read_response(reader))[0] == 431
    writer.close()


async def test_too_many_headers_are_refused() -> None:
    srv = HttpServer(echo, HttpLimits(max_header_count=5))
    await srv.start()
    try:
        reader, writer = await connect(srv)
        writer.write(post("/h", extra="".join(f"X-{i}: v\r\n" for i in range(10))))
        assert (await read_response(reader))[0] == 431
        writer.close()
    finally:
        await srv.stop()


@pytest.mark.parametrize(
    "garbage", [b"\x00\x01\x02garbage\r\n\r\n", b"HELLO WORLD\r\n\r\n", b"GET / HTTP/9.Z\r\n\r\n"]
)
async def test_garbage_gets_400_and_the_server_keeps_serving(server: HttpServer, garbage: bytes) -> None:
    reader, writer = await connect(server)
    writer.write(garbage)
    status, headers, _ = await read_response(reader)
    assert status == 400 and headers["connection"] == "close"
    writer.close()
    reader, writer = await connect(server)
    writer.write(post("/after"))
    assert (await read_response(reader))[2] == b"POST /after 0"
    writer.close()


async def test_handler_exception_is_500_and_the_connection_keeps_serving(
    server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await connect(server)
    writer.write(post("/boom") + post("/fine"))
    status, _, _ = await read_response(reader)
    assert status == 500
    assert (await read_response(reader))[2] == b"POST /fine 0"
    assert "handler bug" in caplog.text  # the traceback is logged
    writer.close()


async def test_expect_100_continue_gets_the_go_ahead(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"abcd")
    assert (await read_response(reader))[2] == b"POST /e 4"
    writer.close()


async def test_expect_100_continue_with_oversize_body_gets_413(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
    assert (await read_response(reader))[0] == 413
    writer.close()


async def test_connection_close_and_http_1_0_close_after_the_answer(server: HttpServer) -> None:
    for request in (post("/c", extra="Connection: close\r\n"), b"GET /old HTTP/1.0\r\n\r\n"):
        reader, writer = await connect(server)
        writer.write(request)
        status, headers, _ = await read_response(reader)
        assert status == 200 and headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_idle_connection_is_closed(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(post("/once"))
    await read_response(reader)
    # idle_timeout_s is 0.5: the server hangs up on its own.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_slow_client_gets_408_and_does_not_block_others(server: HttpServer) -> None:
    slow_reader, slow_writer = await connect(server)
    slow_writer.write(b"POST /slow HTTP/1.1\r\nHost: x\r\n")  # and never finishes
    reader, writer = await connect(server)
    writer.write(post("/fast"))
    assert (await read_response(reader))[2] == b"POST /fast 0"
    status, _, _ = await read_response(slow_reader)
    assert status == 408
    slow_writer.close()
    writer.close()


async def test_client_that_never_reads_is_bounded(server: HttpServer) -> None:
    srv = HttpServer(echo, HttpLimits(max_queued_requests=2, write_buffer_high_bytes=1024))
    await srv.start()
    try:
        _, writer = await connect(srv)
        burst = post("/p", b"q" * 10) * 2000
        writer.write(burst)
        await asyncio.sleep(0.3)
        (connection,) = srv.connections
        # The server stopped reading: parsed-but-unanswered requests stay within the limit.
        assert len(connection._queue) <= 2
        # Others are still served.
        reader2, writer2 = await connect(srv)
        writer2.write(post("/other"))
        assert (await read_response(reader2))[2] == b"POST /other 0"
        writer.close()
        writer2.close()
    finally:
        await srv.stop()


async def test_many_concurrent_connections(server: HttpServer) -> None:
    async def one(index: int) -> bytes:
        reader, writer = await connect(server)
        writer.write(post(f"/n{index}"))
        body = (await read_response(reader))[2]
        writer.close()
        return body

    bodies = await asyncio.gather(*(one(i) for i in range(50)))
    assert bodies == [f"POST /n{i} 0".encode() for i in range(50)]


async def test_stop_closes_open_connections() -> None:
    srv = HttpServer(echo)
    await srv.start()
    reader, writer = await connect(srv)
    writer.write(post("/x"))
    await read_response(reader)
    await srv.stop()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


def test_encode_response() -> None:
    wire = encode_response(HttpResponse(404, b"nope", (("X-A", "1"),)), keep_alive=False)
    assert wire == b"HTTP/1.1 404 Not Found\r\nX-A: 1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"


def test_serves_under_uvloop() -> None:
    """Production runs on uvloop, whose transports are not asyncio classes: serve a few requests on it."""
    import uvloop

    async def main() -> list[bytes]:
        srv = HttpServer(echo)
        await srv.start()
        try:
            reader, writer = await connect(srv)
            writer.write(post("/u1", b"a") + post("/u2"))
            bodies = [(await read_response(reader))[2] for _ in range(2)]
            writer.close()
            return bodies
        finally:
            await srv.stop()

    assert uvloop.run(main()) == [b"POST /u1 1", b"POST /u2 0"]


async def test_half_closed_client_still_gets_its_answers(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(post("/sleep/0.05") + post("/last"))
    writer.write_eof()
    bodies = [(await read_response(reader))[2] for _ in range(2)]
    assert bodies == [b"POST /sleep/0.05 0", b"POST /last 0"]
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise=st.binary(min_size=1, max_size=300), cut=st.integers(min_value=0, max_value=120))
async def test_random_bytes_never_break_the_server(server: HttpServer, noise: bytes, cut: int) -> None:
    # Noise alone, and noise spliced into a valid request: the server answers or hangs up, and then serves.
    for payload in (noise, post("/ok", b"body")[:cut] + noise):
        reader, writer = await connect(server)
        writer.write(payload)
        writer.write_eof()
        try:
            await asyncio.wait_for(reader.read(), 5)
        except ConnectionError:
            pass
        writer.close()
    reader, writer = await connect(server)
    writer.write(post("/still"))
    assert (await read_response(reader))[2] == b"POST /still 0"
    writer.close()


async def test_client_gone_mid_request_lets_the_handler_finish_and_drops_the_rest() -> None:
    started: list[str] = []
    finished: list[str] = []

    async def slow(request: HttpRequest) -> HttpResponse:
        started.append(request.path)
        await asyncio.sleep(0.2)
        finished.append(request.path)
        return HttpResponse(200)

    srv = HttpServer(slow)
    await srv.start()
    try:
        reader, writer = await connect(srv)
        writer.write(post("/first") + post("/second"))
        await asyncio.sleep(0.05)
        # A reset, not a half-close (which would still expect both answers).
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        await asyncio.sleep(0.4)
        assert started == ["/first"] and finished == ["/first"]
    finally:
        await srv.stop()


async def test_queued_body_bytes_pause_reading() -> None:
    srv = HttpServer(
        echo, HttpLimits(max_queued_requests=1000, max_queued_bytes=3000, write_buffer_high_bytes=1024)
    )
    await srv.start()
    try:
        _, writer = await connect(srv)
        writer.write(post("/sleep/0.5", b"") + post("/p", b"q" * 900) * 2000)  # 1.8 MB
        await asyncio.sleep(0.3)
        (connection,) = srv.connections
        # Reading stops past the limit; what one socket read already brought in is still parsed.
        one_read = 256 * 1024
        assert connection._queued_bytes <= 3000 + one_read
        writer.close()
    finally:
        await srv.stop()


async def test_connections_past_the_limit_get_503() -> None:
    srv = HttpServer(echo, HttpLimits(max_connections=2))
    await srv.start()
    try:
        held = [await connect(srv) for _ in range(2)]
        await asyncio.sleep(0.05)
        reader, writer = await connect(srv)
        status, headers, _ = await read_response(reader)
        assert status == 503 and headers["connection"] == "close"
        writer.close()
        # The held connections still work.
        held[0][1].write(post("/held"))
        assert (await read_response(held[0][0]))[2] == b"POST /held 0"
        for _, w in held:
            w.close()
    finally:
        await srv.stop()
