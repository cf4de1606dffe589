"""The simulator as a test: many seeds with every fault kind pass; each broken variant is caught; a
failing seed prints a trace and replays exactly."""

from __future__ import annotations

import re
import time

import pytest

from paxos.sim import InvariantViolation, SimOptions, Simulation, run_seed
from paxos.sim.__main__ import main
from paxos.sim.cluster import TICK, Node
from paxos.sim.linearizability import INFINITY, Op, Verdict, check_register
from paxos.sim.variants import VARIANTS

SEEDS = 300


def test_300_seeds_with_every_fault_kind_pass() -> None:
    start = time.perf_counter()
    totals = {"events": 0, "writes_ok": 0, "reads_ok": 0}
    early_crashes = bounces = 0
    for seed in range(1, SEEDS + 1):
        sim = run_seed(seed)
        for k in totals:
            totals[k] += sim.stats[k]
        early_crashes += sim.early_crashes
        bounces += sim.bounces
    elapsed = time.perf_counter() - start
    print(f"{SEEDS} seeds in {elapsed:.1f}s ({SEEDS / elapsed:.1f} seeds/s): {totals}, "
          f"{early_crashes} crashes after early ACCEPTs, {bounces} bounces")
    assert totals["writes_ok"] > 50 * SEEDS and totals["reads_ok"] > 50 * SEEDS  # the runs do real work
    # Leaders died with their ACCEPTs out and their own fsync unfinished, many times over.
    assert early_crashes > SEEDS // 10
    # Followers restarted just as a campaigner's vote request reached them (the lease's worst case), often.
    assert bounces > SEEDS // 10


def test_five_replicas() -> None:
    for seed in range(1, 21):
        run_seed(seed, SimOptions(replicas=5))


# Each broken variant must be caught within this many seeds.
BOUNDS = {"no-adoption": 100, "ack-before-persist": 100, "read-without-lease": 100, "minority-commit": 50,
          "no-boot-promise": 100, "no-stickiness": 100}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_broken_variant_is_caught(name: str) -> None:
    opts = SimOptions(replica_factory=VARIANTS[name])
    for seed in range(1, BOUNDS[name] + 1):
        try:
            run_seed(seed, opts)
        except InvariantViolation as exc:
            report = str(exc)
            assert f"seed {seed}: INVARIANT VIOLATED" in report
            assert f"replay: python -m paxos.sim --seed {seed} --variant {name}" in report
            # ... and the replay fails the same way.
            with pytest.raises(InvariantViolation) as again:
                run_seed(seed, opts)
            assert str(again.value) == report
            return
    pytest.fail(f"variant {name} survived {BOUNDS[name]} seeds")


def test_several_groups_share_machines_crashes_and_fsyncs() -> None:
    for seed in range(1, 11):
        sim = run_seed(seed, SimOptions(groups=3))
        assert all(len(g.chosen) > 20 for g in sim.groups)


def test_a_seed_replays_exactly() -> None:
    a, b = run_seed(7), run_seed(7)
    assert a.stats == b.stats and a.groups[0].chosen == b.groups[0].chosen
    assert a.groups[0].leaders == b.groups[0].leaders
    assert run_seed(8).groups[0].chosen != a.groups[0].chosen


def test_the_per_step_checks_fire() -> None:
    sim = Simulation(1)
    sim._run_until(40 * TICK)
    node: Node = next(n for n in sim.nodes if n.replica.commit > 0)
    node.max_commit = node.replica.commit + 1
    with pytest.raises(InvariantViolation, match="commit index went back"):
        sim._check_node(node)
    node.max_commit = node.replica.commit - 1
    chosen = node.group.chosen
    wrong = chosen[node.replica.commit]
    chosen[wrong.index] = type(wrong)(wrong.index, wrong.ballot, wrong.kind, b"other")
    with pytest.raises(InvariantViolation, match="was chosen"):
        sim._check_node(node)


def test_linearizability_checker() -> None:
    def ok(*ops: Op) -> bool:
        verdict = check_register(list(ops)).verdict
        assert verdict is not Verdict.UNKNOWN
        return verdict is Verdict.OK

    w1 = Op(0, True, "a", 0, 10)
    w2 = Op(1, True, "b", 20, 30)
    assert ok(w1, w2, Op(2, False, "b", 40, 50))
    assert not ok(w1, w2, Op(2, False, "a", 40, 50))  # stale read
    assert ok(w1, Op(1, True, "b", 5, 30), Op(2, False, "a", 8, 12))  # concurrent
    assert ok(w1, Op(1, True, "b", 20, INFINITY), Op(2, False, "b", 40, 50))  # unknown fate
    assert ok(w1, Op(1, True, "b", 20, INFINITY), Op(2, False, "a", 40, 50))
    assert not ok(Op(2, False, "a", 0, 1), Op(0, True, "a", 2, 10))  # read before the write
    # Two readers disagree on the order of two concurrent writes: either order alone is fine, not both.
    b_then_a = [Op(2, False, "b", 1, 2), Op(2, False, "a", 3, 4)]
    assert ok(w1, Op(1, True, "b", 0, 10), *b_then_a, Op(3, False, "a", 1, 2))
    assert not ok(w1, Op(1, True, "b", 0, 10), *b_then_a, Op(3, False, "a", 1, 2), Op(3, False, "b", 3, 4))
    # An unobserved write of unknown fate is never needed, and never hides a violation.
    assert not ok(w1, w2, Op(3, True, "c", 35, INFINITY), Op(2, False, "a", 40, 50))


def test_a_violation_names_the_op_it_cannot_place() -> None:
    w1 = Op(0, True, "a", 0, 10)
    stale = Op(2, False, "a", 40, 50)
    result = check_register([w1, Op(1, True, "b", 20, 30), stale])
    assert result.verdict is Verdict.VIOLATION and result.culprit is stale
    assert "client 2 read 'a' [40, 50]" in result.explain()


def test_an_undecided_history_fails_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    import paxos.sim.cluster as cluster

    monkeypatch.setattr(cluster, "check_register", lambda ops: check_register(ops, max_steps=1))
    with pytest.raises(InvariantViolation, match="was not decided: unknown"):
        run_seed(1)


def test_cli_prints_seeds_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 seeds, 0 failed" in out and "seeds/s" in out
    assert main(["--seeds", str(BOUNDS["minority-commit"]), "--variant", "minority-commit"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"replay: python -m paxos.sim --seed \d+ --variant minority-commit", err)
