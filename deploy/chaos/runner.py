"""One chaos run: clients drive a workload through the DynamoDB API while faults open and close on the
seeded schedule; then everything is healed, the endpoint must recover, every key is read once more with a
strongly consistent read, and the history is checked.

    result = await run_chaos(ChaosConfig(seed=7, duration_s=60), endpoint, injector, topology, out_dir)

The runner owns no process and no fault mechanism: the ``Injector`` applies faults (to a real cluster, or
to the fake endpoint in tests) and ``verify_replicas`` (``ddb verify`` on a cluster) compares replicas.
Every bound is explicit: clients, request timeout, recovery time, final-read attempts, search budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from deploy.chaos.checker import (
    DEFAULT_MAX_STEPS_PER_KEY,
    FINAL_CLIENT,
    CheckReport,
    RunVerdict,
    check_history,
)
from deploy.chaos.client import Answer, DynamoClient
from deploy.chaos.history import History, Outcome, Recorder
from deploy.chaos.injector import Injector
from deploy.chaos.schedule import (
    DEFAULT_FAULTS,
    FaultKind,
    FaultWindow,
    ScheduleTiming,
    make_schedule,
    timing_for,
)
from deploy.chaos.streams import VIEW_TYPE as STREAM_VIEW_TYPE
from deploy.chaos.streams import check_stream, read_stream
from deploy.chaos.workloads import (
    AppendWorkload,
    BankWorkload,
    RegisterWorkload,
    Request,
    make_workload,
    table_request,
    unsupported,
)

Log = Callable[[str], None]
# (passed, what it says); passed is None when the check could not run (e.g. `ddb verify` does not exist).
ReplicaCheck = Callable[[], tuple[bool | None, str]]


class FinalVerdict(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"
    UNAVAILABLE = "UNAVAILABLE"  # the workload needs something the cluster does not have (transactions)


@dataclass(frozen=True)
class ChaosConfig:
    seed: int
    duration_s: float
    workload: str = "register"
    faults: tuple[FaultKind, ...] = DEFAULT_FAULTS
    clients: int = 5
    request_timeout_s: float = 2.0
    setup_timeout_s: float = 60.0
    recovery_timeout_s: float = 60.0
    final_read_attempts: int = 30
    final_read_concurrency: int = 4
    max_steps_per_key: int = DEFAULT_MAX_STEPS_PER_KEY
    table_prefix: str = "chaos"
    timing: ScheduleTiming | None = None  # None: scaled to the duration

    def __post_init__(self) -> None:
        assert self.duration_s > 0 and 1 <= self.clients <= 64 and self.request_timeout_s > 0
        assert self.final_read_attempts >= 1 and self.final_read_concurrency >= 1

    @property
    def table(self) -> str:
        return f"{self.table_prefix}_{self.workload}"

    @property
    def schedule_timing(self) -> ScheduleTiming:
        return self.timing or timing_for(self.duration_s)

    def rerun_command(self) -> str:
        faults = ",".join(f.value for f in self.faults) or "none"
        return (f"ddb chaos --seed {self.seed} --duration {self.duration_s:g} --workload {self.workload} "
                f"--faults {faults} --clients {self.clients}")


@dataclass
class FaultRecord:
    window: FaultWindow
    began_s: float | None = None
    ended_s: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Topology:
    nodes: list[str]  # what may be killed or paused
    azs: list[str]


@dataclass
class RunResult:
    config: ChaosConfig
    endpoint: str
    schedule: list[FaultWindow]
    faults: list[FaultRecord]
    history: History
    check: CheckReport | None
    verdict: FinalVerdict
    reasons: list[str]
    run_tag: str
    heal_notes: list[str] = field(default_factory=list)
    healed_at_s: float | None = None
    recovered_after_s: float | None = None
    replicas: tuple[bool | None, str] = (None, "not checked")
    stream: tuple[bool | None, str] = (None, "not checked")  # the append workload's stream (deploy.chaos.streams)
    out_dir: Path | None = None
    wall_time_s: float = 0.0


def schedule_for(config: ChaosConfig, topology: Topology) -> list[FaultWindow]:
    return make_schedule(config.seed, config.duration_s, config.faults, topology.nodes, topology.azs,
                         config.schedule_timing)


async def _with_retries(client: DynamoClient, operation: str, body: dict[str, object], deadline: float,
                        accept: Callable[[Answer], bool]) -> Answer:
    answer = await client.call(operation, body)
    while not accept(answer) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        answer = await client.call(operation, body)
    return answer


async def _setup(config: ChaosConfig, client: DynamoClient, workload: object, log: Log) -> str | None:
    """Create the table (or reuse it) and wait until it is ACTIVE. Returns a reason to stop, or None."""
    deadline = time.monotonic() + config.setup_timeout_s
    answer = await _with_retries(client, "CreateTable", table_request(config.table), deadline,
                                 lambda a: a.ok or a.error == "ResourceInUseException")
    if not (answer.ok or answer.error == "ResourceInUseException"):
        return f"could not create table {config.table}: {answer.error} {answer.message}".strip()
    answer = await _with_retries(client, "DescribeTable", {"TableName": config.table}, deadline,
                                 lambda a: a.ok and (a.body or {}).get("Table", {}).get("TableStatus") == "ACTIVE")
    if not answer.ok:
        return f"table {config.table} did not become ACTIVE: {answer.error} {answer.message}".strip()
    if isinstance(workload, AppendWorkload):
        # Its stream is checked against the history too. An endpoint without streams refuses, or keeps
        # none: the check is then skipped ("already has an enabled stream" is a table from an earlier run).
        await client.call("UpdateTable", {"TableName": config.table, "StreamSpecification": {
            "StreamEnabled": True, "StreamViewType": STREAM_VIEW_TYPE}})
    if isinstance(workload, BankWorkload):
        probe = await client.call("TransactGetItems", workload.final_read("*").body)
        if unsupported(probe):
            return f"UNAVAILABLE: the bank workload needs transactions, and the endpoint says: {probe.message}"
        for operation, body in workload.setup_requests():
            answer = await _with_retries(client, operation, body, deadline, lambda a: a.ok)
            if not answer.ok:
                return f"could not create the bank's accounts: {answer.error} {answer.message}".strip()
    log(f"table {config.table} is ACTIVE")
    return None


async def run_chaos(config: ChaosConfig, endpoint: str, injector: Injector, topology: Topology, out_dir: Path,
                    *, verify_replicas: ReplicaCheck | None = None, log: Log = print) -> RunResult:
    wall_start = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    schedule = schedule_for(config, topology)
    (out_dir / "schedule.json").write_bytes(orjson.dumps([w.to_json() for w in schedule], option=orjson.OPT_INDENT_2))
    log(f"chaos: seed {config.seed}, workload {config.workload}, {config.duration_s:g} s, {config.clients} clients, "
        f"endpoint {endpoint}")
    log(f"fault schedule (seed {config.seed}, {len(schedule)} faults):")
    for window in schedule:
        log(f"  {window.describe()}")
    run_tag = f"s{config.seed}-{int(time.time() * 1000) % 10**10:x}"
    workload = make_workload(config.workload, config.table, run_tag, config.clients)
    admin = DynamoClient(endpoint, timeout_s=max(config.request_timeout_s, 5.0))
    records = [FaultRecord(w) for w in schedule]
    result = RunResult(config, endpoint, schedule, records, History(), None, FinalVerdict.UNKNOWN, [], run_tag,
                       out_dir=out_dir)
    leftovers = await asyncio.to_thread(injector.heal_all)
    if leftovers:
        log("healed faults left from before: " + "; ".join(leftovers))
    try:
        problem = await _setup(config, admin, workload, log)
        if problem is not None:
            result.verdict = FinalVerdict.UNAVAILABLE if problem.startswith("UNAVAILABLE") else FinalVerdict.FAIL
            result.reasons.append(problem)
            return result
        with open(out_dir / "history.jsonl", "wb") as sink:
            recorder = Recorder(sink)
            try:
                await _drive(config, endpoint, workload, injector, records, recorder, result, log)
            except BaseException:
                # Interrupted (Ctrl-C) or broken: never leave the cluster partitioned, paused or dead.
                log("run interrupted; healing: " + "; ".join(injector.heal_all()))
                raise
        result.history = recorder.history()
        if isinstance(workload, AppendWorkload) and result.recovered_after_s is not None:
            log("reading the table's stream")
            deadline = time.monotonic() + config.recovery_timeout_s
            lists = await read_stream(admin, config.table, workload.ATTR, deadline)
            if lists is None:
                result.stream = (None, "the endpoint keeps no stream for the table")
            elif isinstance(lists, str):
                result.stream = (False, lists)
            else:
                problems = check_stream(result.history, lists)
                count = sum(len(one) for one in lists.values())
                result.stream = (not problems, "; ".join(problems[:3]) if problems else
                                 f"{count} records agree with the history")
            log(f"stream: {result.stream[1]}")
    finally:
        await admin.close()
    log(f"recorded {len(result.history)} operations; checking")
    bank_total = workload.total if isinstance(workload, BankWorkload) else None
    result.check = check_history(config.workload, result.history, bank_total=bank_total,
                                 max_steps_per_key=config.max_steps_per_key)
    if verify_replicas is not None:
        log("checking that the replicas converged")
        result.replicas = await asyncio.to_thread(verify_replicas)  # it may run its own event loop
    _decide(result)
    result.wall_time_s = time.monotonic() - wall_start
    return result


async def _drive(config: ChaosConfig, endpoint: str, workload: RegisterWorkload | AppendWorkload | BankWorkload,
                 injector: Injector, records: list[FaultRecord], recorder: Recorder, result: RunResult,
                 log: Log) -> None:
    t0 = time.monotonic()

    def now() -> float:
        return time.monotonic() - t0

    async def one(client: DynamoClient, cid: int, request: Request) -> Answer:
        op_id = recorder.invoke(cid, request.kind, request.key, request.value, now())
        answer = await client.call(request.operation, request.body)
        meaning = workload.interpret(cid, request, answer)
        recorder.complete(op_id, now(), meaning.outcome, meaning.result, meaning.error)
        return answer

    async def worker(cid: int) -> None:
        rng = random.Random(config.seed * 1009 + cid)
        client = DynamoClient(endpoint, timeout_s=config.request_timeout_s)
        try:
            while now() < config.duration_s:
                answer = await one(client, cid, workload.next_request(cid, rng))
                if answer.status == 0 and answer.outcome is not Outcome.OK:
                    await asyncio.sleep(0.05)  # no HTTP answer at all (refused, reset): do not spin
        finally:
            await client.close()

    async def faults() -> None:
        for record in records:
            window = record.window
            await asyncio.sleep(max(0.0, window.start_s - now()))
            record.began_s = now()
            record.notes.append(await asyncio.to_thread(injector.begin, window))
            log(f"  t={record.began_s:6.1f}s  begin {window.label()}: {record.notes[-1]}")
            await asyncio.sleep(max(0.0, window.end_s - now()))
            record.notes.append(await asyncio.to_thread(injector.end, window))
            record.ended_s = now()
            log(f"  t={record.ended_s:6.1f}s  end   {window.label()}: {record.notes[-1]}")

    fault_task = asyncio.create_task(faults())
    workers = [asyncio.create_task(worker(cid)) for cid in range(1, config.clients + 1)]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        # Windows close before the cooldown, so the fault task is normally done; heal_all covers the rest.
        fault_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fault_task
    for record in records:
        if record.began_s is not None and record.ended_s is None:
            record.ended_s = now()
    result.heal_notes = await asyncio.to_thread(injector.heal_all)
    result.healed_at_s = now()
    log(f"  t={result.healed_at_s:6.1f}s  healed: " + ("; ".join(result.heal_notes) or "nothing to heal"))

    # Recovery: the endpoint must serve a strongly consistent read again.
    probe = DynamoClient(endpoint, timeout_s=config.request_timeout_s)
    try:
        keys = workload.keys()
        deadline = time.monotonic() + config.recovery_timeout_s
        answer = await _with_retries(probe, workload.final_read(keys[0]).operation,
                                     workload.final_read(keys[0]).body, deadline, lambda a: a.ok)
        if answer.ok:
            result.recovered_after_s = now() - result.healed_at_s
            log(f"  recovered {result.recovered_after_s:.1f} s after healing")
        else:
            log(f"  NOT recovered {config.recovery_timeout_s:g} s after healing: last answer {answer.error}")
    finally:
        await probe.close()
    if result.recovered_after_s is None:
        return

    # Final reads: every key once more, retried until one read succeeds.
    pending = list(keys)

    async def final_reader() -> None:
        client = DynamoClient(endpoint, timeout_s=config.request_timeout_s)
        try:
            while pending:
                key = pending.pop()
                for _attempt in range(config.final_read_attempts):
                    answer = await one(client, FINAL_CLIENT, workload.final_read(key))
                    if answer.ok:
                        break
                    await asyncio.sleep(0.2)
        finally:
            await client.close()

    await asyncio.gather(*(final_reader() for _ in range(config.final_read_concurrency)))
    log(f"  final reads of {len(keys)} keys done at t={now():.1f}s")


def _decide(result: RunResult) -> None:
    check = result.check
    assert check is not None
    reasons = result.reasons
    if check.verdict is RunVerdict.FAIL:
        first = check.first_violation
        assert first is not None
        reasons.append(f"{len(check.violations)} violation(s); first: {first.describe()}")
    if result.recovered_after_s is None:
        reasons.append(f"the endpoint did not serve a strongly consistent read within "
                       f"{result.config.recovery_timeout_s:g} s of healing")
    passed, what = result.replicas
    if passed is False:
        reasons.append(f"replicas did not converge after healing: {what}")
    if result.stream[0] is False:
        reasons.append(f"the stream disagrees with the history: {result.stream[1]}")
    if reasons:
        result.verdict = FinalVerdict.FAIL
    elif check.verdict is RunVerdict.UNKNOWN:
        result.verdict = FinalVerdict.UNKNOWN
        reasons.extend(check.unknown[:5])
    else:
        result.verdict = FinalVerdict.PASS
