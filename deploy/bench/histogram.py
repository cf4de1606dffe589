"""Latency recording: HDR histograms (the ``hdrhistogram`` package) per operation and per second.

Latencies are recorded in microseconds from 1 µs to 60 s. The per-operation histograms keep 3 significant
digits (0.1 % error); the per-second ones, which exist only for the timeline, keep 2 (1 %) to stay small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

LOWEST_US = 1
HIGHEST_US = 60_000_000
PERCENTILES = (50.0, 95.0, 99.0, 99.9)


def new_histogram(significant_digits: int = 3) -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, significant_digits)


@dataclass(frozen=True, slots=True)
class Summary:
    """What a histogram says, in milliseconds."""

    count: int
    mean_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float

    @staticmethod
    def of(histogram: HdrHistogram) -> Summary:
        count = histogram.get_total_count()
        if count == 0:
            return Summary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        p50, p95, p99, p999 = (histogram.get_value_at_percentile(p) / 1000.0 for p in PERCENTILES)
        return Summary(count, histogram.get_mean_value() / 1000.0, histogram.get_min_value() / 1000.0,
                       histogram.get_max_value() / 1000.0, p50, p95, p99, p999)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "mean_ms": round(self.mean_ms, 3), "min_ms": round(self.min_ms, 3),
                "max_ms": round(self.max_ms, 3), "p50_ms": round(self.p50_ms, 3),
                "p95_ms": round(self.p95_ms, 3), "p99_ms": round(self.p99_ms, 3),
                "p99.9_ms": round(self.p999_ms, 3)}


def clamp_us(latency_us: int) -> int:
    """HDR histograms refuse values outside their range; a 0 µs reading is 1 µs, a 2-minute stall is 60 s."""
    if latency_us < LOWEST_US:
        return LOWEST_US
    if latency_us > HIGHEST_US:
        return HIGHEST_US
    return latency_us
