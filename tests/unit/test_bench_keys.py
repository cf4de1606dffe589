"""The benchmark's key choosers draw what YCSB's generators draw: skew, scrambling, recency, insert order."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.bench.keys import (
    SCRAMBLED_ZETAN,
    AcknowledgedCounter,
    Latest,
    ScrambledZipfian,
    Uniform,
    Zipfian,
    fnv64,
    key_name,
    zeta,
)
from deploy.bench.workloads import WORKLOADS, Chooser, Op

SAMPLES = 40_000


def test_fnv64_matches_ycsb_utils_fnvhash64() -> None:
    # Printed by YCSB's Utils.fnvhash64, run under java, for these inputs.
    known = {0: 6284781860667377211, 1: 8517097267634966620, 2: 1820151046732198393, 42: 55488592825689361,
             1000: 5952875239596136740, 999999: 2744965632448235251, 123456789: 2350796791908741607,
             9999999999: 3605131173811637474}
    assert {value: fnv64(value) for value in known} == known
    assert key_name(42) == "user55488592825689361"


def test_zeta_extends_incrementally() -> None:
    assert zeta(0, 2, 0.99) == pytest.approx(1 + 1 / 2**0.99)
    assert zeta(100, 250, 0.99, zeta(0, 100, 0.99)) == pytest.approx(zeta(0, 250, 0.99))


def test_scrambled_zetan_is_plausible() -> None:
    # YCSB's shipped constant is zeta(10^10, 0.99); it must exceed the zeta of any smaller count.
    assert zeta(0, 100_000, 0.99) < SCRAMBLED_ZETAN < zeta(0, 100_000, 0.99) * 3


def test_zipfian_frequencies_follow_the_power_law() -> None:
    items = 1000
    chooser = Zipfian(random.Random(7), 0, items)
    counts = Counter(chooser.next_value() for _ in range(SAMPLES))
    zetan = zeta(0, items, 0.99)
    # The first two ranks are exact in Gray's method; the rest follow the same law approximately.
    assert counts[0] / SAMPLES == pytest.approx(1 / zetan, rel=0.06)
    assert counts[1] / SAMPLES == pytest.approx(1 / 2**0.99 / zetan, rel=0.08)
    assert counts[0] > counts[1] > counts[3] > counts[10] > counts[100]
    top_tenth = sum(n for item, n in counts.items() if item < items // 10)
    assert top_tenth / SAMPLES > 0.6  # the skew: 10 % of the items take most of the traffic
    assert min(counts) >= 0 and max(counts) < items


def test_zipfian_base_offsets_every_value() -> None:
    chooser = Zipfian(random.Random(1), 500, 10)
    assert all(500 <= chooser.next_value() < 510 for _ in range(2000))


def test_zipfian_grows_its_item_count_like_a_fresh_one() -> None:
    grown = Zipfian(random.Random(3), 0, 10)
    grown.next_value(5000)
    fresh = Zipfian(random.Random(3), 0, 5000)
    fresh.next_value()
    assert grown.item_count == 5000
    assert [grown.next_value() for _ in range(100)] == [fresh.next_value() for _ in range(100)]


def test_scrambled_zipfian_is_skewed_but_spread_over_the_range() -> None:
    low, high = 100, 10_099
    chooser = ScrambledZipfian(random.Random(11), low, high)
    values = [chooser.next_value() for _ in range(SAMPLES)]
    assert all(low <= v <= high for v in values)
    top = Counter(values).most_common(5)
    # The hottest item is the zipfian's rank 0: about 1/zeta(10^10) of the draws.
    assert top[0][1] / SAMPLES == pytest.approx(1 / SCRAMBLED_ZETAN, rel=0.15)
    # Scrambled: the hot items are not the lowest numbers.
    assert sorted(v for v, _ in top) != list(range(low, low + 5))
    assert top[0][0] == low + fnv64(0) % (high - low + 1)


def test_uniform_covers_the_range_evenly() -> None:
    chooser = Uniform(random.Random(5), 10, 19)
    counts = Counter(chooser.next_value() for _ in range(SAMPLES))
    assert set(counts) == set(range(10, 20))
    assert all(n / SAMPLES == pytest.approx(0.1, rel=0.08) for n in counts.values())


def test_latest_favours_the_newest_acknowledged_record() -> None:
    counter = AcknowledgedCounter(1000)
    chooser = Latest(random.Random(9), counter)
    draws = Counter(chooser.next_value() for _ in range(SAMPLES))
    assert max(draws) == 999 and draws.most_common(1)[0][0] == 999
    assert draws[999] / SAMPLES == pytest.approx(1 / zeta(0, 1000, 0.99), rel=0.08)
    assert sum(n for v, n in draws.items() if v >= 900) / SAMPLES > 0.6
    for _ in range(50):
        counter.acknowledge(counter.next_value())
    assert counter.last_value == 1049
    after = Counter(chooser.next_value() for _ in range(5000))
    assert after.most_common(1)[0][0] == 1049 and max(after) == 1049


@settings(max_examples=50, deadline=None)
@given(st.permutations(list(range(20))))
def test_acknowledged_counter_exposes_only_a_finished_prefix(order: list[int]) -> None:
    counter = AcknowledgedCounter(100)
    issued = [counter.next_value() for _ in range(20)]
    assert issued == list(range(100, 120)) and counter.last_value == 99
    done: set[int] = set()
    for index in order:
        counter.acknowledge(issued[index])
        done.add(issued[index])
        prefix = 99
        while prefix + 1 in done:
            prefix += 1
        assert counter.last_value == prefix
    assert counter.last_value == 119


def test_acknowledging_twice_is_a_bug() -> None:
    counter = AcknowledgedCounter(0)
    counter.acknowledge(counter.next_value())
    with pytest.raises(AssertionError):
        counter.acknowledge(0)


@pytest.mark.parametrize("name", ["a", "b", "d", "e", "f"])
def test_operation_mix_matches_the_workload(name: str) -> None:
    workload = WORKLOADS[name]
    chooser = Chooser(workload, 1000, random.Random(2))
    counts = Counter(chooser.next_op() for _ in range(20_000))
    for op, share in workload.mix:
        assert counts[op] / 20_000 == pytest.approx(share, abs=0.015)
    assert set(counts) == {op for op, _ in workload.mix}


def test_reads_never_choose_an_insert_in_flight() -> None:
    chooser = Chooser(WORKLOADS["d"], 100, random.Random(4))
    in_flight = [chooser.next_insert() for _ in range(30)]
    assert in_flight[0] == 100
    assert all(chooser.next_record() <= 99 for _ in range(2000))
    for record in in_flight[:10]:
        chooser.acknowledge_insert(record)
    draws = Counter(chooser.next_record() for _ in range(5000))
    assert max(draws) == 109 and draws.most_common(1)[0][0] == 109


def test_zipfian_workload_reaches_inserted_records() -> None:
    chooser = Chooser(WORKLOADS["e"], 1000, random.Random(6), expected_ops=10_000)
    for _ in range(500):
        chooser.acknowledge_insert(chooser.next_insert())
    draws = [chooser.next_record() for _ in range(20_000)]
    assert max(draws) <= 1499 and any(d >= 1000 for d in draws)
    assert chooser.workload.proportion(Op.INSERT) == 0.05
