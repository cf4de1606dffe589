"""Messages per second through one transport stream pair on this machine.

    python -m deploy.bench_transport [--messages 200000] [--payload 100] [--no-uvloop]

Both endpoints run in this one process and event loop (so they share one core), over real gRPC on
127.0.0.1. Prints one-way throughput (send, count at the receiver) and request/response throughput
(many concurrent calls). A figure to watch, not a test.
"""

from __future__ import annotations

import asyncio
import time

import click
import grpc.aio

from runtime.config import Limits
from runtime.transport import Message, Transport


async def _bench(messages: int, payload_bytes: int, concurrency: int) -> None:
    received = 0
    done = asyncio.Event()

    def on_message(sender: str, message: Message) -> None:
        nonlocal received
        received += 1
        if received == messages:
            done.set()

    limits = Limits(peer_queue_limit=max(messages, 10_000), max_in_flight_per_peer=max(concurrency, 1))
    server_side = Transport("sn-b1", {}, limits, on_message=on_message, on_request=lambda s, m: m.payload)
    server = grpc.aio.server(options=server_side.server_options())
    server_side.add_to_server(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = Transport("sn-a1", {"sn-b1": f"127.0.0.1:{port}"}, limits)
    payload = b"x" * payload_bytes
    try:
        await client.call("sn-b1", "g", 1, b"warm up")
        started = time.perf_counter()
        sent = 0
        while sent < messages:
            for _ in range(min(1000, messages - sent)):
                client.send("sn-b1", "g", 1, payload)
                sent += 1
            await asyncio.sleep(0)  # let the writer drain; a real process yields between events
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - started
        stats = client.stats_for("sn-b1")
        print(f"one-way: {messages} x {payload_bytes} B in {elapsed:.2f} s = {messages / elapsed:,.0f} msg/s "
              f"({stats.sent_batches} batches, {messages / max(stats.sent_batches, 1):.0f} msg/batch)")

        calls = messages // 4
        started = time.perf_counter()
        remaining = calls

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await client.call("sn-b1", "g", 2, payload)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        print(f"request/response: {calls} calls, {concurrency} concurrent, in {elapsed:.2f} s = "
              f"{calls / elapsed:,.0f} calls/s")
    finally:
        await client.close()
        await server.stop(grace=None)


@click.command()
@click.option("--messages", default=200_000, show_default=True)
@click.option("--payload", "payload_bytes", default=100, show_default=True)
@click.option("--concurrency", default=256, show_default=True)
@click.option("--uvloop/--no-uvloop", "use_uvloop", default=True, show_default=True)
def main(messages: int, payload_bytes: int, concurrency: int, use_uvloop: bool) -> None:
    if use_uvloop:
        import uvloop

        uvloop.run(_bench(messages, payload_bytes, concurrency))
    else:
        asyncio.run(_bench(messages, payload_bytes, concurrency))


if __name__ == "__main__":
    main()
