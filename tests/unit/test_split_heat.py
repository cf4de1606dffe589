"""Split entries and the heat meter of a partition replica."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autoadmin.planner import FinishSplit, ProposeSplit, plan
from storagenode.partition import (
    SPLIT_MAGIC,
    HeatMeter,
    PartitionSplit,
    SplitInfo,
    encode_effects,
    encode_split,
)
from tests.unit.test_autoadmin_planner import part, state


def test_split_info_round_trips_with_hashes_beyond_63_bits() -> None:
    info = SplitInfo((1 << 64) - 5, 7, 8, index=42)
    assert SplitInfo.decode(info.encode()) == info
    assert encode_split(info).startswith(SPLIT_MAGIC)


@given(st.integers(1, 1 << 40))
def test_an_effects_entry_never_looks_like_a_split(proposal_id: int) -> None:
    assert not encode_effects(proposal_id, []).startswith(SPLIT_MAGIC)


def test_heat_counts_only_a_full_window_and_forgets_old_seconds() -> None:
    meter = HeatMeter(window_s=3)
    for t in range(3):
        meter.record(100.0 + t, 10, 5)
    assert meter.rate(102.5) == 0.0  # not sustained for a whole window yet
    meter.record(103.0, 10, 5)
    assert meter.rate(103.5) == 10.0
    assert meter.rate(110.0) == 0.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 999), min_size=1, max_size=300), st.integers(0, 500))
def test_heat_split_point_falls_inside_the_range(hashes: list[int], lo: int) -> None:
    meter = HeatMeter(window_s=1)
    for h in hashes:
        meter.record(0.0, 1, h)
    hi = 1000
    mid = meter.split_point(lo, hi)
    inside = [h for h in hashes if lo <= h < hi]
    if not inside:
        assert mid is None
    else:
        assert mid is not None and lo < mid < hi
        if len(set(inside)) > 1:
            below = sum(h < mid for h in inside)
            assert 0 < below < len(inside)  # both sides get traffic


def test_one_hot_key_at_the_start_is_cut_off_alone() -> None:
    meter = HeatMeter(window_s=1)
    for _ in range(50):
        meter.record(0.0, 1, 10)
    assert meter.split_point(10, 100) == 11
    assert meter.split_point(10, 11) is None  # a single-hash range cannot split further
    assert meter.split_point(0, 100) == 10


def with_usage(s: dict[str, Any], pid: int, size: int, wcu: float, split: int = 0) -> dict[str, Any]:
    s["usage"] = {f"p{pid}": [1, size]}
    s["reports"] = {f"p{pid}": {"sn-a1": {"role": "leader", "wcu_per_s": wcu, "split": split,
                                          "voters": ["sn-a1", "sn-b1", "sn-c1"]}}}
    s["policy"] = {"split_size_bytes": 1000, "split_heat_wcu": 50.0}
    return s


def test_planner_splits_by_size_then_heat_and_finishes_once_applied() -> None:
    p = part("sn-a1", "sn-b1", "sn-c1")
    assert plan(with_usage(state({1: p}), 1, 999, 10)) == []
    assert plan(with_usage(state({1: p}), 1, 1000, 10)) == [ProposeSplit(1, "size", "sn-a1")]
    assert plan(with_usage(state({1: p}), 1, 10, 50)) == [ProposeSplit(1, "heat", "sn-a1")]
    # not with a replica on a dead node: repair first
    assert plan(with_usage(state({1: p}, dead={"sn-c1"}), 1, 5000, 10))[0].__class__.__name__ == "BeginRepair"
    splitting = {**p, "split": {"mid": "5", "left": 2, "right": 3}}
    assert plan(with_usage(state({1: splitting}), 1, 5000, 100)) == []
    one = with_usage(state({1: splitting}), 1, 5000, 100, split=17)
    assert plan(one) == [], "one replica of three applied the split entry: not yet"
    one["reports"]["p1"]["sn-b1"] = {"role": "follower", "split": 17}
    assert plan(one) == [FinishSplit(1, 17)], "a majority applied it: the map flips, with its index"


def test_partition_split_is_a_paxos_error_for_the_write_path() -> None:
    from paxos.errors import PaxosError

    assert issubclass(PartitionSplit, PaxosError)
