"""The chaos runner end to end against the in-process fake endpoint: a correct fake passes under every
fault kind, a fake that serves stale reads or drops acknowledged writes fails, and the same seed gives
the same fault schedule."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.chaos.checker import check_history
from deploy.chaos.client import DynamoClient
from deploy.chaos.fake import FakeDynamo, FakeFlaws, FakeInjector, _Reject
from deploy.chaos.history import History, Outcome
from deploy.chaos.report import write_report
from deploy.chaos.runner import ChaosConfig, FinalVerdict, RunResult, Topology, run_chaos
from deploy.chaos.schedule import (
    ALL_FAULTS,
    DEFAULT_FAULTS,
    LEADER,
    FaultKind,
    ScheduleTiming,
    make_schedule,
    timing_for,
)
from deploy.chaos.workloads import table_request
from deploy.cli import cli

NODES = ["cp-a", "cp-b", "cp-c", "sn-a1", "sn-a2", "sn-b1", "sn-b2", "sn-c1", "sn-c2"]
TOPOLOGY = Topology(list(FakeInjector.NODES), list(FakeInjector.AZS))
QUICK = ScheduleTiming(warmup_s=0.3, cooldown_s=0.3, min_fault_s=0.4, max_fault_s=0.8, min_gap_s=0.1, max_gap_s=0.3)

pytestmark = pytest.mark.timeout(120)


# -- the schedule ------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), duration_s=st.floats(5, 900),
       kinds=st.sets(st.sampled_from(ALL_FAULTS), min_size=1))
def test_same_seed_same_schedule_and_windows_never_overlap(seed: int, duration_s: float,
                                                           kinds: set[FaultKind]) -> None:
    timing = timing_for(duration_s)
    first = make_schedule(seed, duration_s, kinds, NODES, ["a", "b", "c"], timing)
    again = make_schedule(seed, duration_s, sorted(kinds, reverse=True), list(reversed(NODES)), ["c", "b", "a"],
                          timing)
    assert first == again
    previous_end = 0.0
    for window in first:
        assert window.kind in kinds
        assert previous_end <= window.start_s < window.end_s <= duration_s
        previous_end = window.end_s
        if window.kind in (FaultKind.KILL, FaultKind.PAUSE):
            assert window.target in [*NODES, LEADER] and not window.peer
        elif window.kind is FaultKind.WIPE:  # only storage nodes have disks to lose
            assert (window.target == LEADER or window.target.startswith("sn-")) and not window.peer
        else:
            assert window.peer and window.target != window.peer
        assert (window.delay_ms > 0) == (window.kind is FaultKind.SLOW)


def test_schedules_differ_between_seeds_and_cover_every_kind() -> None:
    a = make_schedule(7, 600, ALL_FAULTS, NODES, ["a", "b", "c"])
    b = make_schedule(8, 600, ALL_FAULTS, NODES, ["a", "b", "c"])
    assert a != b
    assert {w.kind for w in a} == set(ALL_FAULTS)
    assert any(w.target == LEADER for w in a) and any(w.target in NODES for w in a)
    assert len(make_schedule(7, 60, ALL_FAULTS, NODES, ["a", "b", "c"])) >= 3
    assert make_schedule(7, 60, (), NODES, ["a", "b", "c"]) == []
    assert FaultKind.WIPE not in DEFAULT_FAULTS, "wipes are asked for by name"


def test_fault_list_parsing() -> None:
    assert FaultKind.parse_list("kill, partition,kill") == (FaultKind.KILL, FaultKind.PARTITION)
    assert FaultKind.parse_list("none") == ()
    with pytest.raises(ValueError, match="unknown fault"):
        FaultKind.parse_list("kill,meteor")


# -- the client ----------------------------------------------------------------------------------------------


async def test_client_tells_definite_from_indeterminate() -> None:
    fake = FakeDynamo()
    endpoint = await fake.start()
    client = DynamoClient(endpoint, timeout_s=0.3)
    try:
        answer = await client.call("CreateTable", table_request("tbl"))
        assert answer.ok
        answer = await client.call("CreateTable", table_request("tbl"))
        assert answer.outcome is Outcome.FAIL and answer.error == "ResourceInUseException"
        answer = await client.call("PutItem", {"TableName": "tbl", "Item": {"k": {"N": "x"}}})
        assert answer.outcome is Outcome.FAIL and answer.error == "ValidationException"
        put = {"TableName": "tbl", "Item": {"k": {"S": "x"}, "v": {"S": "1"}}}
        fake.pause()
        answer = await client.call("PutItem", put)
        assert answer.outcome is Outcome.INFO and answer.error == "timeout"
        fake.resume()
        answer = await client.call("GetItem", {"TableName": "tbl", "Key": {"k": {"S": "x"}}})
        assert answer.ok and answer.body == {"Item": put["Item"]}  # the timed-out write landed late
        fake.kill()
        answer = await client.call("GetItem", {"TableName": "tbl", "Key": {"k": {"S": "x"}}})
        assert answer.outcome is Outcome.INFO and "connection lost" in (answer.error or "")
    finally:
        await client.close()
        await fake.stop()
    refused = DynamoClient(endpoint, timeout_s=0.3)
    answer = await refused.call("GetItem", {"TableName": "tbl", "Key": {"k": {"S": "x"}}})
    assert answer.outcome is Outcome.FAIL and "refused" in (answer.error or "")


# -- whole runs against the fake -----------------------------------------------------------------------------


async def run_fake(tmp_path: Path, flaws: FakeFlaws | None = None, *, seed: int = 1, workload: str = "register",
                   faults: tuple[FaultKind, ...] = ALL_FAULTS, duration_s: float = 3.0,
                   fake: FakeDynamo | None = None) -> RunResult:
    fake = fake or FakeDynamo(flaws or FakeFlaws(), seed=seed)
    endpoint = await fake.start()
    config = ChaosConfig(seed=seed, duration_s=duration_s, workload=workload, faults=faults, clients=4,
                         request_timeout_s=0.25, timing=QUICK, recovery_timeout_s=10)
    lines: list[str] = []
    try:
        result = await run_chaos(config, endpoint, FakeInjector(fake), TOPOLOGY, tmp_path / "out", log=lines.append,
                                 verify_replicas=lambda: (asyncio.run(asyncio.sleep(0)), (True, "fake: one copy"))[1])
    finally:
        await fake.stop()
    assert any("fault schedule" in line for line in lines)
    return result


@pytest.mark.parametrize("workload", ["register", "append", "bank"])
async def test_correct_fake_passes_under_every_fault_kind(tmp_path: Path, workload: str) -> None:
    result = await run_fake(tmp_path, workload=workload)
    assert result.verdict is FinalVerdict.PASS, result.reasons
    ops = result.history.ops
    assert len(ops) > 100
    assert any(o.outcome is Outcome.INFO for o in ops), "the faults should leave indeterminate ops to check"
    assert {r.window.kind for r in result.faults} >= {FaultKind.KILL, FaultKind.PAUSE} or len(result.faults) >= 2
    assert all(r.began_s is not None and r.ended_s is not None for r in result.faults)
    text = write_report(result, tmp_path / "out")
    assert "VERDICT: PASS" in text and "fault schedule (seed 1" in text
    html = (tmp_path / "out" / "timeline.html").read_text()
    assert "<svg" in html and "healed" in html
    assert all(r.window.label() in html for r in result.faults), "every fault window is drawn"
    if workload != "bank":  # a recorded history can be checked again
        again = check_history(workload, History.load(tmp_path / "out" / "history.jsonl"))
        assert again.verdict.value == "pass"


async def test_late_landing_writes_are_accepted(tmp_path: Path) -> None:
    # Only pauses: requests held by the server apply after their clients gave up (indeterminate ops).
    result = await run_fake(tmp_path, faults=(FaultKind.PAUSE,), seed=4)
    assert result.verdict is FinalVerdict.PASS, result.reasons
    assert sum(o.error == "timeout" for o in result.history.ops) >= 1


@pytest.mark.parametrize("flaw, workload", [
    (FakeFlaws(stale_read_probability=0.2), "register"),
    (FakeFlaws(lost_write_probability=0.1), "register"),
    (FakeFlaws(lost_write_probability=0.1), "append"),
    (FakeFlaws(stale_read_probability=0.2), "append"),
    (FakeFlaws(lost_write_probability=0.1), "bank"),
])
async def test_broken_fake_is_caught(tmp_path: Path, flaw: FakeFlaws, workload: str) -> None:
    result = await run_fake(tmp_path, flaw, workload=workload, faults=(), duration_s=2.0)
    assert result.verdict is FinalVerdict.FAIL
    assert result.check is not None and result.check.first_violation is not None
    text = write_report(result, tmp_path / "out")
    assert "VERDICT: FAIL" in text and "first violation" in text and "rerun: ddb chaos --seed 1" in text


class NoTransactions(FakeDynamo):
    def _dispatch(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        if operation.startswith("Transact"):
            raise _Reject(400, "ValidationException", f"ddb does not support the {operation} operation yet")
        return super()._dispatch(operation, request)


async def test_bank_is_unavailable_without_transactions(tmp_path: Path) -> None:
    result = await run_fake(tmp_path, workload="bank", fake=NoTransactions())
    assert result.verdict is FinalVerdict.UNAVAILABLE
    assert "transactions" in result.reasons[0]


# -- the command ------------------------------------------------------------------------------------------


def test_failing_run_prints_its_seed_and_first_violation(tmp_path: Path) -> None:
    args = ["chaos", "--fake", "stale", "--duration", "2", "--seed", "11", "--faults", "pause",
            "--clients", "3", "--timeout-ms", "250", "--data-dir", str(tmp_path)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, res.output
    assert "FAILED: seed 11" in res.output and "first:" in res.output
    assert "ddb chaos --seed 11 --duration 2" in res.output
    schedule_lines = [line for line in res.output.splitlines() if line.startswith("  #")]
    out_dir = tmp_path / "chaos" / "fake-stale-11"
    assert (out_dir / "report.txt").exists() and (out_dir / "timeline.html").exists()
    # Re-checking the recorded history finds the same problem.
    res2 = CliRunner().invoke(cli, ["chaos", "--check", str(out_dir / "history.jsonl")])
    assert res2.exit_code == 1 and "FAIL" in res2.output
    # The same seed prints the same schedule.
    res3 = CliRunner().invoke(cli, args)
    assert [line for line in res3.output.splitlines() if line.startswith("  #")] == schedule_lines


def test_chaos_needs_a_serving_cluster(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["chaos", "--duration", "2", "--seed", "1", "--data-dir", str(tmp_path)])
    assert res.exit_code != 0 and "ddb up" in res.output


async def test_an_interrupted_run_heals_what_it_broke(tmp_path: Path) -> None:
    fake = FakeDynamo(seed=2)
    endpoint = await fake.start()
    config = ChaosConfig(seed=2, duration_s=30, faults=(FaultKind.PAUSE,), clients=2, request_timeout_s=0.25,
                         timing=QUICK)
    task = asyncio.create_task(run_chaos(config, endpoint, FakeInjector(fake), TOPOLOGY, tmp_path, log=lambda _: None))
    try:
        for _ in range(100):  # until the pause window is open
            await asyncio.sleep(0.05)
            if fake.paused:
                break
        assert fake.paused
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not fake.paused, "the paused endpoint was resumed"
    finally:
        await fake.stop()
