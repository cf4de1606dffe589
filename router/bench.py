"""Requests per second of the bare front door: HTTP parse, auth check, validation, dispatch, JSON answer.

    python -m router.bench                 # server in a child process (uvloop), built-in asyncio client
    python -m router.bench --wrk           # the same server, driven by wrk (if installed)
    python -m router.bench --serve 22000   # only the server, for any client

The backend is trivial (GetItem answers a fixed item), so the figure is the router's own ceiling per core.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import subprocess
import tempfile
import time
from typing import Any

from router.backend import BaseBackend, Request, RequestContext, Response
from router.front import FrontDoor
from router.http import HttpServer
from runtime.proc_stat import cpu_seconds

BODY = b'{"TableName":"bench","Key":{"pk":{"S":"user#1"},"sk":{"N":"42"}},"ConsistentRead":true}'
HEADERS = (
    "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n"
    "Content-Type: application/x-amz-json-1.0\r\nX-Amz-Date: 20240101T000000Z\r\n"
    "Authorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host;x-amz-date;x-amz-target, Signature=0123456789abcdef\r\n"
)
REQUEST = (HEADERS + f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
ITEM = {"pk": {"S": "user#1"}, "sk": {"N": "42"}, "name": {"S": "Ada"}, "visits": {"N": "7"}}


class TrivialBackend(BaseBackend):
    async def get_item(self, request: Request, ctx: RequestContext) -> Response:
        return {"Item": ITEM}


def serve(port: int, ready: Any = None) -> None:
    import uvloop

    async def main() -> None:
        server = HttpServer(FrontDoor(TrivialBackend()).handle)
        await server.start("127.0.0.1", port)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()

    uvloop.run(main())


async def _client(port: int, connections: int, depth: int, seconds: float) -> tuple[int, float]:
    done = 0
    deadline = time.perf_counter() + seconds
    batch = REQUEST * depth

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            writer.write(batch)
            for _ in range(depth):
                head = await reader.readuntil(b"\r\n\r\n")
                start = head.index(b"Content-Length: ") + 16
                length = int(head[start : head.index(b"\r\n", start)])
                await reader.readexactly(length)
            done += depth
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return done, time.perf_counter() - started


def _wrk(port: int, connections: int, seconds: float) -> str:
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = [[{BODY.decode()}]]\n"
        'wrk.headers["X-Amz-Target"] = "DynamoDB_20120810.GetItem"\n'
        'wrk.headers["Content-Type"] = "application/x-amz-json-1.0"\n'
        'wrk.headers["X-Amz-Date"] = "20240101T000000Z"\n'
        'wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/dynamodb/'
        'aws4_request, SignedHeaders=host, Signature=0"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "-s",
            lua.name,
            f"http://127.0.0.1:{port}/",
        ]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 30, check=True
        ).stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=22900)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--depth", type=int, default=1, help="pipelined requests per round trip")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--wrk", action="store_true")
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
        return
    ready = multiprocessing.Event()
    child = multiprocessing.Process(target=serve, args=(args.port, ready), daemon=True)
    child.start()
    try:
        assert ready.wait(10), "server did not start"
        if args.wrk:
            if shutil.which("wrk") is None:
                raise SystemExit("wrk is not installed")
            print(_wrk(args.port, args.connections, args.seconds))
        else:
            assert child.pid is not None
            cpu_before_s = cpu_seconds(child.pid) or 0.0
            done, elapsed = asyncio.run(_client(args.port, args.connections, args.depth, args.seconds))
            server_cpu_s = (cpu_seconds(child.pid) or 0.0) - cpu_before_s
            print(
                f"{done} requests in {elapsed:.2f}s: {done / elapsed:,.0f} requests/s "
                f"({args.connections} connections, pipelining depth {args.depth}); "
                f"server {server_cpu_s / elapsed:.2f} cores, {server_cpu_s / max(done, 1) * 1e6:.1f} µs of CPU "
                "per request"
            )
    finally:
        child.terminate()
        child.join(5)


if __name__ == "__main__":
    main()
