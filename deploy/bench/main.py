"""One benchmark run against one endpoint (load, measure, report), and ``--compare`` over the peers."""

from __future__ import annotations

import asyncio
import contextlib
import math
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
from deploy.bench.report import RunInfo, render, render_comparison, server_json, to_json
from deploy.bench.runner import Recorder, RunLimits, RunResult, merge, run
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
    # With compare: measure the targets in turns of this many seconds (all of them running meanwhile) until
    # each has had duration_s, instead of one after the other.
    interleave_s: float | None = None


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


class Target:
    """One endpoint under test: its table (created and loaded by ``open``), connected clients and key chooser,
    kept across measured runs so that an interleaved comparison can measure it in several slices."""

    def __init__(self, options: BenchOptions) -> None:
        self.options = options
        self.workload = WORKLOADS[options.workload]
        self.endpoint = Endpoint.parse(options.endpoint)
        self.rng = random.Random(options.seed)
        self.bodies = Bodies(options.table, self.workload.items_per_key, options.consistent,
                             self.workload.index_group)
        self.values = value_pool(self.rng, options.value_bytes)
        self.http_clients = [HttpClient(self.endpoint, timeout_s=options.timeout_s) for _ in range(options.clients)]
        self.clients: list[Client] = []
        self.boto: BotoClient | None = None
        self.load_s: float | None = None
        self.loaded = 0
        self.chooser = Chooser(self.workload, options.records, self.rng, options.ops)
        self.server = ServerCpu.for_endpoint(self.endpoint.host, self.endpoint.port)

    async def open(self, console: Console) -> None:
        """Create and load the table (unless told not to), connect the clients, and warm up."""
        options, bodies = self.options, self.bodies
        if options.load:
            with console.status(f"creating table {options.table} on {self.endpoint.url}"):
                await prepare_table(self.http_clients[0], bodies)
            if self.workload.load_records:
                started = time.perf_counter()
                with Progress(TextColumn(f"loading {options.records:,} records"), BarColumn(), MofNCompleteColumn(),
                              TimeRemainingColumn(), console=console, transient=True) as progress:
                    task = progress.add_task("load", total=options.records)
                    await load_records(list(self.http_clients[:min(16, options.clients)]), bodies, options.records,
                                       self.values, lambda n: progress.advance(task, n))
                self.load_s = time.perf_counter() - started
                self.loaded = options.records
        if options.client == "boto3":
            self.boto = BotoClient(self.endpoint, options.clients)
            self.clients = [self.boto] * options.clients
        else:
            for client in self.http_clients:  # connection set-up is not part of what is measured
                await client.connect()
            self.clients = list(self.http_clients)
        if options.warmup_s > 0:
            # Unrecorded: JIT compilers (DynamoDB Local's JVM), caches and connection pools settle first.
            with console.status(f"warming up {options.target} for {options.warmup_s:.0f} s"):
                await run(self.clients, self.chooser, self.bodies, self.values,
                          RunLimits(duration_s=options.warmup_s))

    async def measure(self, limits: RunLimits, console: Console) -> tuple[RunResult, dict[str, float] | None]:
        """One measured run, with the server's CPU over it when it can be read."""
        with Live(console=console, transient=True, refresh_per_second=2) as live:
            if self.server is not None:
                self.server.start()
            result = await run(self.clients, self.chooser, self.bodies, self.values, limits,
                               lambda rec, now_ns: live.update(_progress_line(rec, now_ns, self.options)))
            return result, self.server.stop() if self.server is not None else None

    async def close(self) -> None:
        for client in self.http_clients:
            await client.close()
        if self.boto is not None:
            await self.boto.close()

    def report(self, result: RunResult, server_cpu_s: dict[str, float] | None) -> dict[str, Any]:
        options = self.options
        info = RunInfo(target=options.target, endpoint=self.endpoint.url, workload=self.workload.name,
                       title=self.workload.title, client=options.client, clients=options.clients,
                       records=options.records, consistent=options.consistent, value_bytes=options.value_bytes,
                       item_bytes=self.bodies.item_size_bytes(0, self.values[0]), load_s=self.load_s,
                       loaded=self.loaded)
        return to_json(info, result, server_cpu_s)


def _limits(options: BenchOptions) -> RunLimits:
    return RunLimits(ops=options.ops) if options.ops is not None else RunLimits(duration_s=options.duration_s)


async def bench_once(options: BenchOptions, console: Console) -> dict[str, Any]:
    """Load the table (unless told not to), run the workload, and return the report's JSON."""
    target = Target(options)
    try:
        await target.open(console)
        result, server_cpu_s = await target.measure(_limits(options), console)
    finally:
        await target.close()
    return target.report(result, server_cpu_s)


async def compare_interleaved(targets: list[BenchOptions], console: Console, slice_s: float) -> list[dict[str, Any]]:
    """Measure the targets in turns of ``slice_s`` until each has had its ``duration_s``, so that whatever
    changes the machine's speed meanwhile (other work, a shared host) falls on every target alike. Each
    report adds up its slices and lists them (``slices``): ops/s and the server's CPU per operation."""
    duration_s = targets[0].duration_s
    assert duration_s is not None and all(t.ops is None for t in targets), "an interleaved comparison is timed"
    rounds = max(1, math.ceil(duration_s / slice_s - 1e-9))
    opened: list[Target] = []
    runs: list[list[tuple[RunResult, dict[str, float] | None]]] = []
    try:
        for options in targets:
            target = Target(options)
            opened.append(target)
            runs.append([])
            await target.open(console)
        for _ in range(rounds):
            for target, measured in zip(opened, runs, strict=True):
                measured.append(await target.measure(RunLimits(duration_s=duration_s / rounds), console))
    finally:
        for target in opened:
            await target.close()
    reports = []
    for target, measured in zip(opened, runs, strict=True):
        cpu: dict[str, float] | None = None
        if all(spent is not None for _, spent in measured):
            cpu = {}
            for _, spent in measured:
                for name, seconds in (spent or {}).items():
                    cpu[name] = cpu.get(name, 0.0) + seconds
        report = target.report(merge([result for result, _ in measured]), cpu)
        report["slices"] = []
        for result, spent in measured:
            operations = result.recorder.ok + result.recorder.failed
            server = server_json(spent, result.elapsed_s, operations)
            report["slices"].append({"ops_per_s": round(result.recorder.ok / max(result.elapsed_s, 1e-9), 1),
                                     "server_us_per_op": server["us_per_op"] if server else None})
        reports.append(report)
    return reports


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
    running = [_running_peer(options, entry) for entry in wanted if "=" in entry]
    wanted = [entry for entry in wanted if "=" not in entry]
    unknown = [name for name in wanted if name not in peer_servers.PEERS]
    if unknown:
        raise click.ClickException(f"unknown peers {', '.join(unknown)}; known: {', '.join(peer_servers.PEERS)}, "
                                   "or NAME=URL for a server already running")
    missing = [name for name in wanted if name not in available]
    if missing:
        console.print(f"[yellow]not installed: {', '.join(missing)}[/] (scripts/install-peers.sh installs them "
                      f"into {root})")
    names = [n for n in wanted if n in available]
    endpoint = Endpoint.parse(options.endpoint)
    targets = [replace(options, target="ddb")] if peer_servers.answers(endpoint.host, endpoint.port) else []
    if not targets:
        console.print(f"[yellow]nothing answers at {endpoint.url}[/]: measuring the peers only")
    for peer_options in running:
        peer_endpoint = Endpoint.parse(peer_options.endpoint)
        if not peer_servers.answers(peer_endpoint.host, peer_endpoint.port):
            raise click.ClickException(f"{peer_options.target}: nothing answers at {peer_endpoint.url}")
    targets += running
    if options.interleave_s is not None:
        reports = _compare_interleaved(options, console, targets, names, root)
        if not quiet:
            for report in reports:
                render(console, report, timeline=False)  # slices, not seconds
        return reports
    reports = []
    for target in targets:
        reports.append(_bench_or_fail(target, console))
        if not quiet:
            render(console, reports[-1], options.timeline)
    for name in names:
        with console.status(f"starting {name}"):
            peer = peer_servers.start(name, root)
        with peer:
            report = _bench_or_fail(_peer_options(options, peer), console)
        reports.append(report)
        if not quiet:
            render(console, report, options.timeline)
    return reports


def _running_peer(options: BenchOptions, entry: str) -> BenchOptions:
    """``NAME=URL`` in --peers: a server already running (another build of the cluster, say), measured as it
    is, loaded as the endpoint is (so --no-load holds for it too)."""
    name, _, url = entry.partition("=")
    try:
        Endpoint.parse(url)
    except ValueError as exc:
        raise click.ClickException(f"--peers {entry}: {exc}") from None
    if not name.strip():
        raise click.ClickException(f"--peers {entry}: NAME=URL needs a name")
    return replace(options, endpoint=url, target=name.strip())


def _peer_options(options: BenchOptions, peer: peer_servers.RunningPeer) -> BenchOptions:
    # A peer starts empty: it is always loaded, whatever --no-load says for the endpoint.
    return replace(options, endpoint=peer.endpoint, target=peer.name, load=True)


def _compare_interleaved(options: BenchOptions, console: Console, targets: list[BenchOptions], names: list[str],
                         root: Path) -> list[dict[str, Any]]:
    """Start every peer first, then measure ``targets`` (the endpoint, if it answers) and the peers in turns."""
    assert options.interleave_s is not None
    targets = list(targets)
    with contextlib.ExitStack() as running:
        for name in names:
            with console.status(f"starting {name}"):
                peer = running.enter_context(peer_servers.start(name, root))
            targets.append(_peer_options(options, peer))
        if not targets:
            return []
        try:
            return run_async(compare_interleaved(targets, console, options.interleave_s))
        except (BenchClientError, LoadError) as exc:
            raise click.ClickException(str(exc)) from None


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
