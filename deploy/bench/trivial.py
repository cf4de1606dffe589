"""A trivial HTTP server that answers every request ``200 {}``: the benchmark client's own ceiling.

    python -m deploy.bench.trivial [--port 24080]

Run ``ddb bench --endpoint http://127.0.0.1:24080 --workload get --no-load`` against it: the figure is
what one client process can send, with nothing behind it (GetItem of a missing item answers ``{}``).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, cast

import httptools

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n"
            b"x-amzn-RequestId: 0\r\n\r\n{}")


class TrivialProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    def on_message_complete(self) -> None:
        assert self._transport is not None
        self._transport.write(RESPONSE)


async def start(port: int = 0, host: str = "127.0.0.1") -> tuple[Any, int]:
    """Start serving; returns the server and its port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(TrivialProtocol, host, port, reuse_address=True)
    return server, server.sockets[0].getsockname()[1]


def main(argv: list[str]) -> None:
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 24080

    async def serve() -> None:
        server, bound = await start(port)
        print(f"answering {{}} on http://127.0.0.1:{bound}", flush=True)
        async with server:
            await server.serve_forever()

    try:
        import uvloop
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


if __name__ == "__main__":
    main(sys.argv[1:])
