"""Messages per second through one transport stream pair on this machine.

    python -m deploy.bench_transport [--messages 200000] [--payload 100] [--concurrency 256] [--two-processes] [--no-uvloop]

Over real gRPC on 127.0.0.1, both endpoints in this process (sharing one core) or, with
--two-processes, the receiver in a child process. Prints one-way throughput (send N, then one request
that the receiver answers with its count: the stream keeps order, so it arrives after them all) and
request/response throughput (many concurrent calls). A figure to watch, not a test.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Coroutine
from typing import Any

import click
import grpc.aio

from runtime.config import Limits
from runtime.proc_stat import cpu_seconds
from runtime.transport import Message, Transport

KIND_DATA, KIND_ECHO, KIND_COUNT = 1, 2, 3
LIMITS = Limits(peer_queue_limit=1_000_000, max_in_flight_per_peer=100_000)


async def _start_receiver(port: int = 0) -> tuple[grpc.aio.Server, int]:
    received = 0

    def on_message(sender: str, message: Message) -> None:
        nonlocal received
        received += 1

    def on_request(sender: str, message: Message) -> bytes:
        return str(received).encode() if message.kind == KIND_COUNT else message.payload

    receiver = Transport("sn-b1", {}, LIMITS, on_message=on_message, on_request=on_request)
    server = grpc.aio.server(options=receiver.server_options())
    receiver.add_to_server(server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, bound


async def _serve_forever(port: int) -> None:
    server, bound = await _start_receiver(port)
    print(bound, flush=True)
    await server.wait_for_termination()


async def _bench(messages: int, payload_bytes: int, concurrency: int, port: int | None,
                 receiver_pid: int | None = None) -> None:
    server = None
    if port is None:
        server, port = await _start_receiver()
    client = Transport("sn-a1", {"sn-b1": f"127.0.0.1:{port}"}, LIMITS)
    payload = b"x" * payload_bytes
    try:
        base = int(await client.call("sn-b1", "g", KIND_COUNT, b""))
        started = time.perf_counter()
        sent = 0
        while sent < messages:
            for _ in range(min(1000, messages - sent)):
                client.send("sn-b1", "g", KIND_DATA, payload)
                sent += 1
            await asyncio.sleep(0)  # let the writer drain; a real process yields between events
        counted = int(await client.call("sn-b1", "g", KIND_COUNT, b"", timeout_ms=120_000)) - base
        elapsed = time.perf_counter() - started
        stats = client.stats_for("sn-b1")
        print(f"one-way: {counted}/{messages} x {payload_bytes} B in {elapsed:.2f} s = {messages / elapsed:,.0f} "
              f"msg/s ({messages / max(stats.sent_batches, 1):.0f} msg/batch)")

        calls = messages // 4
        remaining = calls

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await client.call("sn-b1", "g", KIND_ECHO, payload)

        receiver_before_s = (cpu_seconds(receiver_pid) or 0.0) if receiver_pid is not None else 0.0
        caller_before_s = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = ""
        if receiver_pid is not None:
            caller_s = time.process_time() - caller_before_s
            callee_s = (cpu_seconds(receiver_pid) or 0.0) - receiver_before_s
            cpu = f"; CPU per call: caller {caller_s / calls * 1e6:.0f} µs, receiver {callee_s / calls * 1e6:.0f} µs"
        print(f"request/response: {calls} calls, {concurrency} concurrent, in {elapsed:.2f} s = "
              f"{calls / elapsed:,.0f} calls/s{cpu}")
    finally:
        await client.close()
        if server is not None:
            await server.stop(grace=None)


def _run(coro: Coroutine[Any, Any, None], use_uvloop: bool) -> None:
    if use_uvloop:
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


@click.command()
@click.option("--messages", default=200_000, show_default=True)
@click.option("--payload", "payload_bytes", default=100, show_default=True)
@click.option("--concurrency", default=256, show_default=True)
@click.option("--two-processes", is_flag=True, help="Run the receiver in a child process")
@click.option("--uvloop/--no-uvloop", "use_uvloop", default=True, show_default=True)
@click.option("--serve", "serve_port", type=int, default=None, hidden=True)
def main(messages: int, payload_bytes: int, concurrency: int, two_processes: bool, use_uvloop: bool,
         serve_port: int | None) -> None:
    if serve_port is not None:
        _run(_serve_forever(serve_port), use_uvloop)
        return
    if not two_processes:
        _run(_bench(messages, payload_bytes, concurrency, None), use_uvloop)
        return
    flag = "--uvloop" if use_uvloop else "--no-uvloop"
    child = subprocess.Popen([sys.executable, "-m", "deploy.bench_transport", "--serve", "0", flag],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        _run(_bench(messages, payload_bytes, concurrency, port, child.pid), use_uvloop)
    finally:
        child.terminate()
        child.wait(timeout=10)


if __name__ == "__main__":
    main()
