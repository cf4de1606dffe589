"""The measured phase: C clients, each one request at a time, until an operation count or a duration.

Latency is taken around the request(s) of one operation only (bodies are made before the clock starts)
and recorded in microseconds, successful operations in one HDR histogram per operation type and every
operation in the second it finished in, for the timeline. Failed operations are counted by error name,
not timed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from deploy.bench.bodies import Bodies
from deploy.bench.client import BenchClientError, Client, error_name
from deploy.bench.histogram import clamp_us, new_histogram
from deploy.bench.workloads import Chooser, Op

# After the duration ends, operations still in flight get this long to finish before they are cancelled.
DRAIN_GRACE_S = 5.0
# A client whose connection fails waits this long before trying again, so a dead server is not spun on.
RECONNECT_PAUSE_S = 0.05


@dataclass(slots=True)
class Second:
    ok: int = 0
    errors: int = 0
    histogram: HdrHistogram = field(default_factory=lambda: new_histogram(2))


class Recorder:
    """What the clients did, by operation type and by second since the start."""

    def __init__(self, ops: list[Op], start_ns: int) -> None:
        self.start_ns = start_ns
        self.by_op: dict[Op, HdrHistogram] = {op: new_histogram(3) for op in ops}
        self.errors: Counter[tuple[Op, str]] = Counter()
        self.seconds: list[Second] = []
        self.ok = 0
        self.failed = 0

    def _second(self, end_ns: int) -> Second:
        index = (end_ns - self.start_ns) // 1_000_000_000
        seconds = self.seconds
        while len(seconds) <= index:
            seconds.append(Second())
        return seconds[index]

    def success(self, op: Op, start_ns: int, end_ns: int) -> None:
        latency_us = clamp_us((end_ns - start_ns) // 1000)
        self.by_op[op].record_value(latency_us)
        second = self._second(end_ns)
        second.ok += 1
        second.histogram.record_value(latency_us)
        self.ok += 1

    def failure(self, op: Op, end_ns: int, error: str) -> None:
        self.errors[(op, error)] += 1
        self._second(end_ns).errors += 1
        self.failed += 1


@dataclass(frozen=True, slots=True)
class RunLimits:
    ops: int | None = None
    duration_s: float | None = None

    def __post_init__(self) -> None:
        assert (self.ops is None) != (self.duration_s is None), "exactly one of ops and duration"


@dataclass(slots=True)
class RunResult:
    recorder: Recorder
    elapsed_s: float
    cancelled: int = 0


class _Failed(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


async def _ok(client: Client, target: str, body: bytes) -> bytes:
    status, reply = await client.call(target, body)
    if status != 200:
        raise _Failed(error_name(status, reply))
    return reply


async def run(clients: list[Client], chooser: Chooser, bodies: Bodies, values: list[str], limits: RunLimits,
              on_tick: Callable[[Recorder, float], None] | None = None) -> RunResult:
    """Drive the workload with one task per client; ``on_tick`` is called about every second."""
    ops = [op for op, _ in chooser.workload.mix]
    start_ns = time.perf_counter_ns()
    recorder = Recorder(ops, start_ns)
    deadline_ns = start_ns + int(limits.duration_s * 1e9) if limits.duration_s is not None else None
    remaining = limits.ops
    pool = len(values)
    perf_ns = time.perf_counter_ns

    async def worker(client: Client) -> None:
        nonlocal remaining
        while True:
            if remaining is not None:
                if remaining <= 0:
                    return
                remaining -= 1
            elif deadline_ns is not None and perf_ns() >= deadline_ns:
                return
            op = chooser.next_op()
            inserted = -1
            try:
                if op is Op.READ:
                    body = bodies.get_item(chooser.next_record())
                    t0 = perf_ns()
                    await _ok(client, "GetItem", body)
                elif op is Op.UPDATE:
                    body = bodies.update_item(chooser.next_record(), values[chooser.next_value_index(pool)])
                    t0 = perf_ns()
                    await _ok(client, "UpdateItem", body)
                elif op is Op.PUT:
                    body = bodies.put_item(chooser.next_record(), values[chooser.next_value_index(pool)])
                    t0 = perf_ns()
                    await _ok(client, "PutItem", body)
                elif op is Op.QUERY:
                    body = bodies.query(chooser.next_record())
                    t0 = perf_ns()
                    await _ok(client, "Query", body)
                elif op is Op.SCAN:
                    body = bodies.query(chooser.next_record(), limit=chooser.scan_length(), from_record=True)
                    t0 = perf_ns()
                    await _ok(client, "Query", body)
                elif op is Op.INSERT:
                    inserted = chooser.next_insert()
                    body = bodies.put_item(inserted, values[chooser.next_value_index(pool)])
                    t0 = perf_ns()
                    await _ok(client, "PutItem", body)
                else:
                    assert op is Op.READ_MODIFY_WRITE, op
                    record = chooser.next_record()
                    body = bodies.get_item(record)
                    update = bodies.update_item(record, values[chooser.next_value_index(pool)])
                    t0 = perf_ns()
                    await _ok(client, "GetItem", body)
                    await _ok(client, "UpdateItem", update)
                recorder.success(op, t0, perf_ns())
            except _Failed as exc:
                recorder.failure(op, perf_ns(), exc.error)
            except BenchClientError as exc:
                recorder.failure(op, perf_ns(), str(exc).partition(":")[0])
                await asyncio.sleep(RECONNECT_PAUSE_S)
            finally:
                if inserted >= 0:
                    chooser.acknowledge_insert(inserted)

    async def ticker() -> None:
        while True:
            await asyncio.sleep(1.0)
            if on_tick is not None:
                on_tick(recorder, (perf_ns() - start_ns) / 1e9)

    tasks = [asyncio.ensure_future(worker(c)) for c in clients]
    tick = asyncio.ensure_future(ticker())
    cancelled = 0
    try:
        if deadline_ns is None:
            await asyncio.gather(*tasks)
        else:
            timeout_s = (deadline_ns - perf_ns()) / 1e9 + DRAIN_GRACE_S
            done, pending = await asyncio.wait(tasks, timeout=max(timeout_s, 0.0))
            cancelled = len(pending)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
            for task in done:
                task.result()  # a worker's unexpected exception is a bug: raise it
    finally:
        tick.cancel()
        for task in tasks:
            task.cancel()
    elapsed_s = (perf_ns() - start_ns) / 1e9
    return RunResult(recorder, elapsed_s, cancelled)
