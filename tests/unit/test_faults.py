"""Fault rules: which links a rule cuts or slows, and how the table file is written and watched."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.clock import ManualClock
from runtime.faults import (
    PASS,
    FaultError,
    FaultRule,
    FaultTable,
    FaultWatcher,
    RuleKind,
    Verdict,
    decode,
    encode,
    judge,
)

AZ = {"sn-a1": "a", "sn-a2": "a", "sn-b1": "b", "sn-c1": "c", "cp-a": "a", "rr-1": None, "aa-1": None}
NODES = sorted(AZ)


def fate(rules: list[FaultRule], src: str, dst: str) -> Verdict:
    return judge(rules, src, AZ[src], dst, AZ[dst])


def cut(a: str, b: str, oneway: bool = False) -> FaultRule:
    return FaultRule(RuleKind.DROP, a, b, oneway=oneway)


def slow(a: str, b: str, ms: int, oneway: bool = False) -> FaultRule:
    return FaultRule(RuleKind.DELAY, a, b, oneway=oneway, delay_ms=ms)


def test_no_rules_pass_everything() -> None:
    assert fate([], "sn-a1", "sn-b1") is PASS


def test_two_way_cut_between_nodes() -> None:
    rules = [cut("sn-a1", "sn-b1")]
    assert fate(rules, "sn-a1", "sn-b1").drop
    assert fate(rules, "sn-b1", "sn-a1").drop
    assert fate(rules, "sn-a1", "sn-c1") == PASS
    assert fate(rules, "sn-a2", "sn-b1") == PASS


def test_one_way_cut_only_drops_from_a_to_b() -> None:
    rules = [cut("sn-a1", "sn-b1", oneway=True)]
    assert fate(rules, "sn-a1", "sn-b1").drop
    assert fate(rules, "sn-b1", "sn-a1") == PASS


def test_az_cut_isolates_every_node_of_the_az() -> None:
    rules = [cut("az-a", "*")]
    for node in ("sn-a1", "sn-a2", "cp-a"):
        assert fate(rules, node, "sn-b1").drop
        assert fate(rules, "rr-1", node).drop
    assert fate(rules, "sn-b1", "sn-c1") == PASS
    assert fate(rules, "rr-1", "aa-1") == PASS, "processes without an AZ are not in az-a"


def test_az_to_az_cut_keeps_traffic_inside_each_az() -> None:
    rules = [cut("az-a", "az-b")]
    assert fate(rules, "sn-a1", "sn-b1").drop
    assert fate(rules, "sn-a1", "sn-a2") == PASS
    assert fate(rules, "sn-a1", "sn-c1") == PASS


def test_slow_links_take_the_largest_delay_and_a_cut_wins() -> None:
    rules = [slow("sn-a1", "*", 50), slow("az-a", "az-b", 200, oneway=True)]
    assert fate(rules, "sn-a1", "sn-b1") == Verdict(delay_ms=200)
    assert fate(rules, "sn-b1", "sn-a1") == Verdict(delay_ms=50)
    assert fate(rules, "sn-a2", "sn-b1") == Verdict(delay_ms=200)
    assert fate(rules, "sn-b1", "sn-c1") == PASS
    assert fate([*rules, cut("sn-a1", "sn-b1")], "sn-a1", "sn-b1").drop


@given(st.lists(st.tuples(st.sampled_from(NODES + ["az-a", "az-b", "*"]), st.sampled_from(NODES + ["az-c"]),
                          st.booleans()), max_size=4),
       st.sampled_from(NODES), st.sampled_from(NODES))
@settings(max_examples=200, deadline=None)
def test_two_way_rules_are_symmetric_and_one_way_rules_are_their_half(
    specs: list[tuple[str, str, bool]], src: str, dst: str
) -> None:
    two_way = [cut(a, b) for a, b, _ in specs]
    assert fate(two_way, src, dst) == fate(two_way, dst, src)
    both_halves = [cut(a, b, oneway=True) for a, b, _ in specs] + [cut(b, a, oneway=True) for a, b, _ in specs]
    assert fate(both_halves, src, dst) == fate(two_way, src, dst)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: cut("sn-a1", "nobody"), "bad endpoint 'nobody'"),
        (lambda: cut("az-ab", "*"), "bad AZ endpoint"),
        (lambda: slow("sn-a1", "sn-b1", 0), "positive delay"),
        (lambda: FaultRule(RuleKind.DROP, "sn-a1", "sn-b1", delay_ms=5), "no delay"),
        (lambda: decode(b"{"), "not valid JSON"),
        (lambda: decode(b'{"version": 9, "rules": []}'), "must be"),
        (lambda: decode(b'{"version": 1, "rules": [{"kind": "melt", "a": "*", "b": "*"}]}'), "bad fault rule"),
    ],
)
def test_malformed_rules_are_rejected(make: object, message: str) -> None:
    with pytest.raises(FaultError, match=message):
        make()  # type: ignore[operator]


def test_table_api_writes_the_file(tmp_path: Path) -> None:
    table = FaultTable(tmp_path / "faults.json")
    assert table.list() == []
    table.add_partition("sn-a1", "az-b")
    table.add_partition("sn-a1", "az-b")  # idempotent
    table.add_slow("cp-a", "*", 150, oneway=True)
    assert table.list() == [cut("sn-a1", "az-b"), slow("cp-a", "*", 150, oneway=True)]
    assert decode(encode(table.list())) == tuple(table.list())
    assert table.heal("az-b", "sn-a1") == [cut("sn-a1", "az-b")]
    assert table.list() == [slow("cp-a", "*", 150, oneway=True)]
    table.heal()
    assert table.list() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".faults.json.lock", "faults.json"]


def test_watcher_polls_at_most_every_poll_ms_and_keeps_the_last_good_table(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "faults.json"
    watcher = FaultWatcher(path, AZ, poll_ms=100, clock=clock)
    assert watcher.verdict("sn-a1", "sn-b1") == PASS
    table = FaultTable(path)
    table.add_partition("sn-a1", "sn-b1")
    assert watcher.verdict("sn-a1", "sn-b1") == PASS, "not re-read before poll_ms"
    clock.advance(100)
    assert watcher.verdict("sn-a1", "sn-b1").drop
    generation = watcher.generation
    path.write_bytes(b"{broken")
    clock.advance(100)
    assert watcher.verdict("sn-a1", "sn-b1").drop, "a broken file does not heal the partition"
    assert watcher.last_error and "not valid JSON" in watcher.last_error
    table_path_rules = encode([])
    path.write_bytes(table_path_rules)
    clock.advance(100)
    assert watcher.verdict("sn-a1", "sn-b1") == PASS
    assert watcher.generation == generation + 1
    path.unlink()
    clock.advance(100)
    assert watcher.refresh() == generation + 1
