"""One benchmark run against one endpoint (load, measure, report), and ``--compare`` over the peers."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from deploy.bench import peers as peer_servers
from deploy.bench.bodies import Bodies, value_pool
from deploy.bench.client import DEFAULT_TIMEOUT_S, BenchClientError, BotoClient, Client, Endpoint, HttpClient
from deploy.bench.loader import LoadError, load_records, prepare_table
from deploy.bench.report import RunInfo, render, render_comparison, to_json
from deploy.bench.runner import Recorder, RunLimits, run
from deploy.bench.server_cpu import ServerCpu
from deploy.bench.workloads import WORKLOADS, Chooser

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BenchOptions:
    endpoint: str = "http://localhost:8000"
    workload: str = "get"
    records: int = 10_000
    ops: int | None = None
    duration_s: float | None = 10.0
    clients: int = 32
    consistent: bool = False
    value_bytes: int = 170
    client: str = "http"
    table: str = "ddb_bench"
    load: bool = True
    seed: int = 1
    json_path: Path | None = None
    compare: bool = False
    peers: tuple[str, ...] | None = None
    timeline: bool = True
    warmup_s: float = 0.0
    timeout_s: float = DEFAULT_TIMEOUT_S
    target: str = "endpoint"


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is there: the client's own cost per request is part of what is measured."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _progress_line(recorder: Recorder, now_ns: int, options: BenchOptions) -> str:
    elapsed_s = (now_ns - recorder.start_ns) / 1e9
    last = recorder.completed_second(now_ns)
    rate = f"last second {last[0]:,} ops/s, p99 {last[1]:.2f} ms" if last is not None else ""
    if options.ops is not None:
        bound = f"{recorder.ok + recorder.failed:,}/{options.ops:,} ops"
    else:
        bound = f"{elapsed_s:.0f}/{options.duration_s:.0f} s, {recorder.ok:,} ops"
    errors = f", [red]{recorder.failed:,} errors[/]" if recorder.failed else ""
    return f"[bold]{options.target}[/] {options.workload}: {bound}; {rate}{errors}"


async def bench_once(options: BenchOptions, console: Console) -> dict[str, Any]:
    """Load the table (unless told not to), run the workload, and return the report's JSON."""
    workload = WORKLOADS[options.workload]
    endpoint = Endpoint.parse(options.endpoint)
    rng = random.Random(options.seed)
    bodies = Bodies(options.table, workload.items_per_key, options.consistent)
    values = value_pool(rng, options.value_bytes)
    http_clients = [HttpClient(endpoint, timeout_s=options.timeout_s) for _ in range(options.clients)]
    boto: BotoClient | None = None
    load_s: float | None = None
    loaded = 0
    try:
        if options.load:
            with console.status(f"creating table {options.table} on {endpoint.url}"):
                await prepare_table(http_clients[0], bodies)
            if workload.load_records:
                started = time.perf_counter()
                with Progress(TextColumn(f"loading {options.records:,} records"), BarColumn(), MofNCompleteColumn(),
                              TimeRemainingColumn(), console=console, transient=True) as progress:
                    task = progress.add_task("load", total=options.records)
                    await load_records(list(http_clients[:min(16, options.clients)]), bodies, options.records,
                                       values, lambda n: progress.advance(task, n))
                load_s = time.perf_counter() - started
                loaded = options.records
        clients: list[Client]
        if options.client == "boto3":
            boto = BotoClient(endpoint, options.clients)
            clients = [boto] * options.clients
        else:
            for client in http_clients:  # connection set-up is not part of what is measured
                await client.connect()
            clients = list(http_clients)
        chooser = Chooser(workload, options.records, rng, options.ops)
        if options.warmup_s > 0:
            # Unrecorded: JIT compilers (DynamoDB Local's JVM), caches and connection pools settle first.
            with console.status(f"warming up for {options.warmup_s:.0f} s"):
                await run(clients, chooser, bodies, values, RunLimits(duration_s=options.warmup_s))
        limits = RunLimits(ops=options.ops) if options.ops is not None else RunLimits(duration_s=options.duration_s)
        server = ServerCpu.for_endpoint(endpoint.host, endpoint.port)
        with Live(console=console, transient=True, refresh_per_second=2) as live:
            if server is not None:
                server.start()
            result = await run(clients, chooser, bodies, values, limits,
                               lambda rec, now_ns: live.update(_progress_line(rec, now_ns, options)))
            server_cpu_s = server.stop() if server is not None else None
    finally:
        for client in http_clients:
            await client.close()
        if boto is not None:
            await boto.close()
    info = RunInfo(target=options.target, endpoint=endpoint.url, workload=workload.name, title=workload.title,
                   client=options.client, clients=options.clients, records=options.records,
                   consistent=options.consistent, value_bytes=options.value_bytes,
                   item_bytes=bodies.item_size_bytes(0, values[0]), load_s=load_s, loaded=loaded)
    return to_json(info, result, server_cpu_s)


def _write_json(path: Path | None, body: Any) -> None:
    if path is None:
        return
    text = orjson.dumps(body, option=orjson.OPT_INDENT_2)
    if str(path) == "-":
        sys.stdout.buffer.write(text + b"\n")
    else:
        path.write_bytes(text + b"\n")


def _bench_or_fail(options: BenchOptions, console: Console) -> dict[str, Any]:
    try:
        return run_async(bench_once(options, console))
    except (BenchClientError, LoadError) as exc:
        raise click.ClickException(f"{options.target} ({options.endpoint}): {exc}") from None


def _compare(options: BenchOptions, console: Console, quiet: bool) -> list[dict[str, Any]]:
    root = peer_servers.peers_dir()
    available = peer_servers.installed(root)
    wanted = list(options.peers) if options.peers is not None else list(peer_servers.PEERS)
    unknown = [name for name in wanted if name not in peer_servers.PEERS]
    if unknown:
        raise click.ClickException(f"unknown peers {', '.join(unknown)}; known: {', '.join(peer_servers.PEERS)}")
    missing = [name for name in wanted if name not in available]
    if missing:
        console.print(f"[yellow]not installed: {', '.join(missing)}[/] (scripts/install-peers.sh installs them "
                      f"into {root})")
    reports = []
    endpoint = Endpoint.parse(options.endpoint)
    if peer_servers.answers(endpoint.host, endpoint.port):
        reports.append(_bench_or_fail(replace(options, target="ddb"), console))
        if not quiet:
            render(console, reports[-1], options.timeline)
    else:
        console.print(f"[yellow]nothing answers at {endpoint.url}[/]: measuring the peers only")
    for name in [n for n in wanted if n in available]:
        with console.status(f"starting {name}"):
            peer = peer_servers.start(name, root)
        with peer:
            # A peer starts empty: it is always loaded, whatever --no-load says for the endpoint.
            report = _bench_or_fail(replace(options, endpoint=peer.endpoint, target=name, load=True), console)
        reports.append(report)
        if not quiet:
            render(console, report, options.timeline)
    return reports


def main(options: BenchOptions) -> None:
    quiet = options.json_path is not None and str(options.json_path) == "-"
    # Off a terminal (a log, CI) rich would wrap at 80 columns: the tables need more (150: the comparison).
    console = Console(highlight=False, stderr=quiet, width=None if sys.stdout.isatty() else 150)
    if options.compare:
        try:
            reports = _compare(options, console, quiet)
        except peer_servers.PeerError as exc:
            raise click.ClickException(str(exc)) from None
        if not quiet:
            render_comparison(console, reports)
        _write_json(options.json_path, {"runs": reports})
        return
    report = _bench_or_fail(options, console)
    if not quiet:
        render(console, report, options.timeline)
    _write_json(options.json_path, report)
