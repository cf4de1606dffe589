"""Latency summaries: the HDR histograms' percentiles are within their precision of the exact ones."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("hdrh", reason="the hdrhistogram package is not installed (ddb bench needs it)")
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.bench.histogram import HIGHEST_US, LOWEST_US, Summary, clamp_us, new_histogram


def exact_percentile(values: list[int], percentile: float) -> int:
    """The value at rank round(p% of n) (at least 1), HdrHistogram's definition of a percentile."""
    ordered = sorted(values)
    rank = max(1, math.floor(percentile / 100.0 * len(ordered) + 0.5))
    return ordered[rank - 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(LOWEST_US, 5_000_000), min_size=1, max_size=400), st.sampled_from([2, 3]))
def test_percentiles_are_within_the_histograms_precision(values: list[int], digits: int) -> None:
    histogram = new_histogram(digits)
    for value in values:
        histogram.record_value(value)
    summary = Summary.of(histogram)
    tolerance = 10.0**-digits  # 2 digits: 1 %, 3 digits: 0.1 %, of the value
    for percentile, got_ms in ((50.0, summary.p50_ms), (95.0, summary.p95_ms), (99.0, summary.p99_ms),
                               (99.9, summary.p999_ms)):
        exact_ms = exact_percentile(values, percentile) / 1000.0
        assert abs(got_ms - exact_ms) <= exact_ms * tolerance + 1e-9, (percentile, got_ms, exact_ms)
    assert summary.count == len(values)
    assert abs(summary.max_ms - max(values) / 1000.0) <= max(values) / 1000.0 * tolerance + 1e-9
    assert abs(summary.mean_ms - sum(values) / len(values) / 1000.0) <= summary.max_ms * tolerance + 1e-9


def test_empty_summary_is_zero() -> None:
    assert Summary.of(new_histogram()) == Summary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert Summary.of(new_histogram()).to_json()["p99.9_ms"] == 0.0


def test_out_of_range_latencies_are_clamped() -> None:
    assert clamp_us(0) == LOWEST_US and clamp_us(-5) == LOWEST_US
    assert clamp_us(HIGHEST_US * 10) == HIGHEST_US and clamp_us(1234) == 1234


def test_merging_histograms_adds_counts() -> None:
    first, second, total = new_histogram(), new_histogram(), new_histogram()
    for value in range(1, 1001):
        (first if value % 2 else second).record_value(value * 10)
    total.add(first)
    total.add(second)
    summary = Summary.of(total)
    assert summary.count == 1000
    assert abs(summary.p50_ms - 5.0) < 0.01 and abs(summary.p99_ms - 9.9) < 0.01


def test_recorder_keeps_latencies_by_second_and_operation() -> None:
    from deploy.bench.runner import Recorder
    from deploy.bench.workloads import Op

    second_ns = 1_000_000_000
    recorder = Recorder([Op.READ, Op.UPDATE], start_ns=0)
    for i in range(100):
        recorder.success(Op.READ, i * 1000, i * 1000 + (i + 1) * 1000)  # second 0: 1..100 µs
    recorder.success(Op.UPDATE, second_ns, second_ns + 5_000_000)  # 5 ms
    recorder.failure(Op.UPDATE, 2 * second_ns + 1, "ThrottlingException")
    recorder.success(Op.READ, 3 * second_ns - 90_000_000_000, 3 * second_ns)  # beyond the histogram: clamped
    assert recorder.completed_second(second_ns + 1) == (100, 0.1)
    assert recorder.completed_second(3 * second_ns) == (0, 0.0)
    assert recorder.completed_second(0) is None
    recorder.finish()
    assert [(s.ok, s.errors) for s in recorder.seconds] == [(100, 0), (1, 0), (0, 1), (1, 0)]
    assert Summary.of(recorder.seconds[0].histogram).p50_ms == 0.05
    assert recorder.by_op[Op.READ].get_total_count() == 101
    assert Summary.of(recorder.by_op[Op.UPDATE]).p50_ms == pytest.approx(5.0, rel=1e-3)
    assert recorder.by_op[Op.READ].get_max_value() >= HIGHEST_US * 0.99
    assert recorder.errors == {(Op.UPDATE, "ThrottlingException"): 1}
    assert (recorder.ok, recorder.failed) == (102, 1)
