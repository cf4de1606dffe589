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
    """What the clients did, by operation type and by second since the start.

    While the run goes, a success costs one list append: latencies are kept raw per second and per
    operation, and go into the HDR histograms (``by_op``, ``seconds``) when ``finish`` is called, so the
    client spends its time sending requests.
    """

    def __init__(self, ops: list[Op], start_ns: int) -> None:
        self.start_ns = start_ns
        self.ops = ops
        self._raw: list[dict[Op, list[int]]] = [{op: [] for op in ops}]
        self._raw_errors: list[int] = [0]
        self._index = 0
        self._current = self._raw[0]
        self.errors: Counter[tuple[Op, str]] = Counter()
        self.ok = 0
        self.failed = 0
        self.by_op: dict[Op, HdrHistogram] = {}
        self.seconds: list[Second] = []

    def _second(self, end_ns: int) -> int:
        index = (end_ns - self.start_ns) // 1_000_000_000
        if index != self._index:
            while len(self._raw) <= index:
                self._raw.append({op: [] for op in self.ops})
                self._raw_errors.append(0)
            self._index = index
            self._current = self._raw[index]
        return index

    def success(self, op: Op, start_ns: int, end_ns: int) -> None:
        self._second(end_ns)
        self._current[op].append((end_ns - start_ns) // 1000)
        self.ok += 1

    def failure(self, op: Op, end_ns: int, error: str) -> None:
        self._raw_errors[self._second(end_ns)] += 1
        self.errors[(op, error)] += 1
        self.failed += 1

    def completed_second(self, now_ns: int) -> tuple[int, float] | None:
        """Operations and p99 latency (ms) of the last whole second before ``now_ns``, for a progress line."""
        index = (now_ns - self.start_ns) // 1_000_000_000 - 1
        if not 0 <= index < len(self._raw):
            return None
        latencies = sorted(v for values in self._raw[index].values() for v in values)
        if not latencies:
            return 0, 0.0
        return len(latencies), latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1000.0

    def finish(self) -> None:
        """Build the histograms from the raw latencies (identical values recorded once, with their count)."""
        self.by_op = {op: new_histogram(3) for op in self.ops}
        self.seconds = []
        for raw, errors in zip(self._raw, self._raw_errors, strict=True):
            second = Second(errors=errors)
            for op, latencies in raw.items():
                second.ok += len(latencies)
                for latency_us, count in Counter(latencies).items():
                    value = clamp_us(latency_us)
                    self.by_op[op].record_value(value, count)
                    second.histogram.record_value(value, count)
            self.seconds.append(second)


def merge(results: list[RunResult]) -> RunResult:
    """Several finished runs of the same workload as one (the slices of an interleaved comparison): counts,
    errors, histograms, time and client CPU added up. The per-second timeline is not kept: the slices' own
    figures stand in for it."""
    assert results, "nothing to merge"
    first = results[0].recorder
    merged = Recorder(first.ops, first.start_ns)
    merged.by_op = {op: new_histogram(3) for op in first.ops}
    for result in results:
        recorder = result.recorder
        merged.ok += recorder.ok
        merged.failed += recorder.failed
        merged.errors.update(recorder.errors)
        for op, histogram in recorder.by_op.items():
            merged.by_op[op].add(histogram)
    return RunResult(merged, sum(r.elapsed_s for r in results), sum(r.cancelled for r in results),
                     sum(r.client_cpu_s for r in results))


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
    # CPU time of this whole process (all threads) over the run: whether the client was the bottleneck.
    client_cpu_s: float = 0.0


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
              on_tick: Callable[[Recorder, int], None] | None = None) -> RunResult:
    """Drive the workload with one task per client; ``on_tick`` is called about every second."""
    ops = [op for op, _ in chooser.workload.mix]
    cpu_start_s = time.process_time()
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
                elif op is Op.QUERY_INDEX:
                    body = bodies.query_index(chooser.next_record())
                    t0 = perf_ns()
                    await _ok(client, "Query", body)
                elif op is Op.TRANSACT:
                    first = chooser.next_record()
                    second = chooser.next_record()
                    while second == first and chooser.records > 1:
                        second = chooser.next_record()
                    body = bodies.transact_put(first, second, values[chooser.next_value_index(pool)])
                    t0 = perf_ns()
                    await _ok(client, "TransactWriteItems", body)
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
                recorder.failure(op, perf_ns(), exc.kind)
                await asyncio.sleep(RECONNECT_PAUSE_S)
            finally:
                if inserted >= 0:
                    chooser.acknowledge_insert(inserted)

    async def ticker() -> None:
        while True:
            await asyncio.sleep(1.0)
            if on_tick is not None:
                on_tick(recorder, perf_ns())

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
    client_cpu_s = time.process_time() - cpu_start_s
    recorder.finish()
    return RunResult(recorder, elapsed_s, cancelled, client_cpu_s)
